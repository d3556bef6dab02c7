"""The package's shape: no import cycles, each layer imports only the layers below it, no
module over 700 lines, no public function over 15 parameters, and one spelling of the input-key
rule, the version, the lazy loader (and none of the removed ``seed=``/``return_info`` shims).

The source is read with ``ast`` (nothing is imported), so a violation is found wherever it
hides, inside a function too. The layer rule is DESIGN.md's:
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
    "input_keys": set(),
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
#: random_state, the labels-are-classes check, which key holds the inputs
LEAVES = {"_version", "_names", "arrays", "imaging", "seeding", "labels", "input_keys"}


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


# -- size limits ---------------------------------------------------------------------------------
MAX_LINES = 700
MAX_PARAMETERS = 15

#: scikit-learn's contract: every hyperparameter of an estimator is an ``__init__`` argument
#: (``get_params``/``set_params``/``clone`` and grid search need them flat), so an estimator's
#: ``__init__`` may be wider, as scikit-learn's own TSNE and MLPClassifier are.
ESTIMATOR_HYPERPARAMETERS = {("inspect_kit/analysis/embedding/_tsne.py", "TSNEEmbedding.__init__")}


def _sources() -> dict[str, tuple[str, ast.Module]]:
    return {
        path.relative_to(ROOT).as_posix(): (text, ast.parse(text))
        for path in sorted((ROOT / PKG).rglob("*.py"))
        for text in [path.read_text()]
    }


def _parameters(fn: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> list[str]:
    a = fn.args
    names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
    return names[1:] if method and names and names[0] in ("self", "cls") else names


def public_functions(tree: ast.Module) -> list[tuple[str, list[str]]]:
    """``(qualified name, parameters)`` of module-level functions and the methods of public
    classes whose names have no leading underscore (``__init__`` counts: it is the class's
    signature)."""
    found: list[tuple[str, list[str]]] = []

    def visit(body: list[ast.stmt], prefix: str, in_class: bool) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if not node.name.startswith("_") or node.name == "__init__":
                    found.append((prefix + node.name, _parameters(node, in_class)))
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                visit(node.body, f"{prefix}{node.name}.", True)
            elif isinstance(node, ast.If):  # functions defined under a version check
                visit(node.body + node.orelse, prefix, in_class)

    visit(tree.body, "", False)
    return found


def test_the_parameter_counter_counts_what_a_caller_can_pass():
    tree = ast.parse(
        "def f(a, /, b, *args, c=1, **kw): ...\n"
        "def _hidden(*many): ...\n"
        "class C:\n    def __init__(self, x, *, y): ...\n    def _p(self, z): ...\n"
        "class _Private:\n    def g(self, q): ...\n"
    )
    assert public_functions(tree) == [
        ("f", ["a", "b", "c", "args", "kw"]),
        ("C.__init__", ["x", "y"]),
    ]


def test_no_module_over_700_lines():
    sizes = {name: len(text.splitlines()) for name, (text, _) in _sources().items()}
    over = {n: k for n, k in sizes.items() if k > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them by job): {over}"


def test_no_public_function_over_15_parameters():
    wide = {
        (name, fn): len(params)
        for name, (_, tree) in _sources().items()
        for fn, params in public_functions(tree)
        if len(params) > MAX_PARAMETERS
    }
    new = {k: v for k, v in wide.items() if k not in ESTIMATOR_HYPERPARAMETERS}
    assert not new, (
        f"public functions over {MAX_PARAMETERS} parameters (use an option object): {new}"
    )
    assert set(ESTIMATOR_HYPERPARAMETERS) <= set(wide), "an exemption no longer needed"


# -- one spelling of each rule -------------------------------------------------------------------
def _string_tuples(tree: ast.AST) -> list[tuple[int, set[str]]]:
    return [
        (node.lineno, {e.value for e in node.elts if isinstance(e, ast.Constant)})
        for node in ast.walk(tree)
        # a rule of which key wins is an ordered list (a set of words is a membership test)
        if isinstance(node, ast.Tuple | ast.List)
        and len(node.elts) >= 3
        and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
    ]


def test_one_input_key_rule():
    """Which key of a dict batch or an array file holds the inputs (and the labels) is
    inspect_kit/input_keys.py's; a second list of such keys anywhere else is a second rule."""
    found = [
        f"{name}:{line}"
        for name, (_, tree) in _sources().items()
        if name != f"{PKG}/input_keys.py"
        for line, words in _string_tuples(tree)
        if ({"x", "X"} & words and {"input", "inputs", "image", "images", "img"} & words)
        or ({"y", "Y"} & words and {"label", "labels", "target", "targets"} & words)
    ]
    assert not found, f"lists of input/label keys outside inspect_kit/input_keys.py: {found}"


#: importlib.metadata's lookups (and the wrappers around them that the package had)
VERSION_LOOKUPS = {"version", "metadata", "distribution", "package_version", "_package_version"}


def _called_name(node: ast.Call) -> str:
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""


def test_one_version_source():
    """The version is written once, in _version.py; setuptools reads it from there and every
    module imports it (no second literal, no metadata lookup of our own package)."""
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert 'dynamic = ["version"]' in project
    assert not any(line.startswith("version") for line in project.splitlines())
    assert 'version = { attr = "inspect_kit._version.__version__" }' in pyproject
    found = []
    for name, (_, tree) in _sources().items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and _called_name(node) in VERSION_LOOKUPS
                and any(
                    isinstance(a, ast.Constant) and a.value in ("inspect-kit", "inspect_kit")
                    for a in node.args
                )
            ):
                found.append(f"{name}:{node.lineno} looks the package up by name")
            targets = node.targets if isinstance(node, ast.Assign) else []
            if name != f"{PKG}/_version.py" and any(
                isinstance(t, ast.Name) and t.id == "__version__" for t in targets
            ):
                found.append(f"{name}:{node.lineno} sets __version__")
    assert not found, "\n".join(found)


def test_one_lazy_loader():
    """Packages that resolve names on first use do it with lazy_loader.attach, never a
    hand-written module-level __getattr__ (PEP 562)."""
    found = [
        name
        for name, (_, tree) in _sources().items()
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name in ("__getattr__", "__dir__")
    ]
    assert not found, f"hand-written lazy loaders (use lazy_loader.attach): {found}"
    lazy = [n for n, (text, _) in _sources().items() if "lazy_loader.attach(" in text]
    assert f"{PKG}/__init__.py" in lazy, lazy


SHIM_NAMES = {"renamed_seed", "deprecated_seed", "NOT_GIVEN", "return_info"}


def test_no_compatibility_shims():
    """``random_state`` is the one name of a seed: no public ``seed=`` parameter, no
    ``return_info`` overloads, no alias helpers, and the README mentions none."""
    found: dict[str, list[str]] = {}
    for name, (_, tree) in _sources().items():
        hits = [f"{fn}(seed=...)" for fn, params in public_functions(tree) if "seed" in params]
        hits += [
            f"{fn}(return_info=...)"
            for fn, params in public_functions(tree)
            if "return_info" in params
        ]
        hits += sorted(
            {
                n.id if isinstance(n, ast.Name) else n.name
                for n in ast.walk(tree)
                if (isinstance(n, ast.Name) and n.id in SHIM_NAMES)
                or (isinstance(n, ast.FunctionDef) and n.name in SHIM_NAMES)
            }
        )
        if hits:
            found[name] = hits
    assert not found, f"compatibility shims: {found}"
    readme = (ROOT / "README.md").read_text()
    assert "return_info" not in readme and "`seed=`" not in readme
