"""The package's shape: no import cycles, and each layer imports only the layers below it.

The imports are read from the source with ``ast`` (nothing is imported), so a violation is
found wherever it hides, inside a function too. The layer rule is DESIGN.md's:
cli -> workflows -> report / figures / analysis -> capture / hooks / store / data.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "inspect_kit"

#: what each top-level part of the package may import (besides itself and the leaf _version)
ALLOWED: dict[str, set[str]] = {
    "_version": set(),
    "_names": set(),
    # leaves every layer may use (see LEAVES)
    "arrays": set(),
    "imaging": set(),
    "seeding": set(),
    "labels": set(),
    "store": set(),
    "data": {"store"},  # schema constants (metadata names), nothing that reads or writes
    "hooks": set(),
    "capture": {"hooks", "store", "data"},
    "models": {"hooks", "capture", "store", "data"},
    "analysis": {"hooks", "capture", "store", "data", "models"},
    # figures show results: they never import analysis code (types only, under TYPE_CHECKING)
    "figures": {"hooks", "capture", "store", "data"},
    # the document is built from figures; analyses and workflows hand it their results
    "report": {"figures", "store"},  # the store: its schema's attribute names
    "workflows": {"hooks", "capture", "store", "data", "models", "analysis", "figures", "report"},
    "cli": {"workflows"},
    "__main__": {"cli"},
    "featurevis": {"analysis"},  # the alias module inspect_kit.featurevis
    "": set(),  # the root resolves its names lazily, with no import statement
}


#: Known debts, each a lazy import inside a function, named here so that no new one slips in
#: (and checked to still exist, so a paid debt is removed from the list). None today.
KNOWN_UPWARD: set[tuple[str, str]] = set()


#: the registry of embedding methods is where the CLI, the report and the figures take the
#: methods' names and display names from (nothing there computes)
SHARED_NAMES = {"inspect_kit.analysis.embedding.registry": {"figures", "report", "cli"}}

#: one-module helpers below every layer: the version, close-match errors, pooling, thumbnails,
#: random_state, the labels-are-classes check
LEAVES = {"_version", "_names", "arrays", "imaging", "seeding", "labels"}


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted((ROOT / PKG).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module, module_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """Import statements run when the code runs (not those under ``if TYPE_CHECKING``);
    ``module_level`` keeps only those run when the module is imported."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if module_level and isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
        ):
            # a class body runs at import time, its methods do not
            if isinstance(node, ast.ClassDef):
                for child in node.body:
                    if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                        visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(module_level: bool) -> dict[str, set[str]]:
    """``{module: modules of inspect_kit it imports}``.

    ``from pkg import sub`` where ``sub`` is a module counts as importing ``pkg.sub`` only:
    a submodule doing ``from . import theme`` does not need its package's ``__init__``.
    """
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, (path, is_pkg) in mods.items():
        base = name if is_pkg else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _import_nodes(ast.parse(path.read_text()), module_level):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    # `import a.b.c` runs a, a.b and a.b.c
                    # (the root itself is lazy: importing it runs nothing of the package)
                    deps.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
                continue
            if node.level:
                anchor = base.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                deps.add(sub if sub in mods else target)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return [*stack[stack.index(w) :], w]
            if w not in state:
                found = visit(w)
                if found:
                    return found
        stack.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state:
            found = visit(v)
            if found:
                return found
    return None


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_graph_reads_relative_and_absolute_imports():
    g = import_graph(module_level=True)
    assert f"{PKG}.capture.loop" in g[f"{PKG}.capture"]
    assert f"{PKG}.workflows.report_steps" in g[f"{PKG}.workflows.pipeline"]  # relative
    assert g[PKG] == {f"{PKG}._version"}  # the root is lazy


def test_no_import_cycles_when_modules_are_imported():
    # what `import` runs: no module needs another that needs it back
    cycle = find_cycle(import_graph(module_level=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_cycles_between_the_packages_even_through_lazy_imports():
    # an import inside a function may close a loop within one package; never across two
    graph = import_graph(module_level=False)
    parts: dict[str, set[str]] = {}
    for a, deps in graph.items():
        parts.setdefault(layer_of(a), set()).update(
            layer_of(b)
            for b in deps
            if (a, b) not in KNOWN_UPWARD and layer_of(a) not in SHARED_NAMES.get(b, set())
        )
    parts = {k: v - {k} for k, v in parts.items()}
    cycle = find_cycle(parts)
    assert cycle is None, "packages import each other: " + " -> ".join(cycle or [])


def test_each_layer_imports_only_the_layers_below():
    graph = import_graph(module_level=False)
    unknown = sorted({layer_of(m) for m in graph} - set(ALLOWED))
    assert not unknown, f"new top-level parts {unknown}: give them a place in ALLOWED (DESIGN.md)"
    bad = [
        f"{a} -> {b}"
        for a, deps in sorted(graph.items())
        for b in sorted(deps)
        if layer_of(b) not in ALLOWED[layer_of(a)] | {layer_of(a)} | LEAVES
        and (a, b) not in KNOWN_UPWARD
        and layer_of(a) not in SHARED_NAMES.get(b, set())
    ]
    gone = [f"{a} -> {b}" for a, b in sorted(KNOWN_UPWARD) if b not in graph.get(a, set())]
    assert not gone, f"paid debts, remove them from KNOWN_UPWARD: {gone}"
    assert not bad, "imports against the layer rule:\n" + "\n".join(bad)


def test_figures_and_analysis_never_import_each_other():
    graph = import_graph(module_level=False)
    for a, deps in graph.items():
        for b in deps:
            if (a, b) not in KNOWN_UPWARD and b not in SHARED_NAMES:
                assert {layer_of(a), layer_of(b)} != {"analysis", "figures"}, f"{a} -> {b}"


#: numpy names report/ may use: types and checks for formatting numbers, no computation
REPORT_NUMPY = {"ndarray", "bool_", "integer", "floating", "isfinite", "asarray"}
#: what computes: report/ imports none of it
COMPUTE = {"torch", "sklearn", "scipy", "inspect_kit.analysis", "inspect_kit.capture"}


def test_report_only_renders():
    """report/ holds the document and its sections: analyses compute (caveats, verdicts,
    summaries) and hand their results over. Its numpy use is limited to types and formatting
    checks, so a verdict or a statistic computed there fails here."""
    graph = import_graph(module_level=False)
    found = []
    for name, (path, _) in _modules().items():
        if layer_of(name) != "report":
            continue
        tree = ast.parse(path.read_text())
        numpy_names = {"numpy"}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and not node.level:
                    mods.append(node.module or "")
                for mod in mods:
                    if any(mod == c or mod.startswith(c + ".") for c in COMPUTE):
                        if mod not in SHARED_NAMES:
                            found.append(f"{name} imports {mod}")
                if isinstance(node, ast.Import):
                    numpy_names |= {a.asname for a in node.names if a.name == "numpy" and a.asname}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in numpy_names
                and node.attr not in REPORT_NUMPY
            ):
                found.append(f"{name}:{node.lineno} computes with numpy.{node.attr}")
        found += [
            f"{name} imports {dep}"
            for dep in graph[name]
            if layer_of(dep) == "analysis" and dep not in SHARED_NAMES
        ]
    assert not found, "report/ computes; move it to analysis/:\n" + "\n".join(sorted(set(found)))


def test_figures_and_report_import_no_computing_library():
    """What fits, searches or differentiates (scikit-learn, SciPy, torch) stays in analysis/:
    the explorer's neighbours and new maps come from the MapSource it is handed."""
    found = []
    for name, (path, _) in _modules().items():
        if layer_of(name) not in ("figures", "report"):
            continue
        for node in _import_nodes(ast.parse(path.read_text()), module_level=False):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([] if node.level else [node.module or ""])
            )
            found += [
                f"{name} imports {m}"
                for m in mods
                if m.split(".")[0] in {"sklearn", "scipy", "torch"}
            ]
    assert not found, "\n".join(found)
