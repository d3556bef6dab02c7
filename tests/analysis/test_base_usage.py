"""Every analysis reads stores only through the base (an AST check over inspect_kit/analysis).

Only the base (``base.py``), its block readers (``blocks.py``) and the result cache
(``cache.py``) may import h5py, open a store, read a layer's raw chunks or write a result;
every other module of ``inspect_kit/analysis`` (attribution and trust included) goes through
them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import inspect_kit.analysis

ANALYSIS = Path(inspect_kit.analysis.__file__).parent
BASE_MODULES = {"base.py", "blocks.py", "cache.py"}
#: names that open a store or reach its file directly
OPENERS = {"open_store", "ActivationStore", "open_h5_read", "File"}
#: store methods only the base and the cache call
STORE_METHODS = {"save_result", "load_result", "iter_chunks"}


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = path.relative_to(ANALYSIS) if path.is_relative_to(ANALYSIS) else path.name
    found = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "h5py":
                    found.append(f"{where} imports h5py")
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] == "h5py":
                found.append(f"{where} imports from h5py")
            if "store" in module.split(".") or module.endswith("store.reader"):
                bad = [a.name for a in node.names if a.name in OPENERS]
                if bad:
                    found.append(f"{where} imports {bad} from {module}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in STORE_METHODS:
                found.append(f"{where} calls .{name}() (go through analysis.base / cache)")
            if name in {"open_store", "ActivationStore"}:
                found.append(f"{where} opens a store with {name}()")
    return found


def _analysis_modules() -> list[Path]:
    return [
        p
        for p in sorted(ANALYSIS.rglob("*.py"))
        if p.relative_to(ANALYSIS).as_posix() not in BASE_MODULES
    ]


def test_analyses_read_and_write_stores_only_through_the_base():
    modules = _analysis_modules()
    assert len(modules) > 20  # the walk found the package
    problems = [v for p in modules for v in _violations(p)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_direct_read(tmp_path):
    bad = tmp_path / "direct.py"
    source = (
        "import h5py\n"
        "from inspect_kit.store import open_store\n"
        "def f(path):\n"
        "    s = open_store(path)\n"
        "    return list(s.iter_chunks('x')), s.save_result('probes/x', {}, {})\n"
    )
    bad.write_text(source)
    found = _violations(bad)
    assert len(found) == 5, found


def test_no_public_function_in_analysis_takes_over_15_parameters():
    """What travels together is an option object (SimilarityOptions, StreamingOptions ...)."""
    over = []
    for path in _analysis_modules() + [ANALYSIS / m for m in sorted(BASE_MODULES)]:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs]
                names = [n for n in names if n not in ("self", "cls")]
                if len(names) > 15:
                    over.append(f"{path.relative_to(ANALYSIS)}:{node.name} ({len(names)})")
    assert not over, over


def test_no_module_in_analysis_is_over_700_lines():
    long = [
        f"{p.relative_to(ANALYSIS)} ({n})"
        for p in ANALYSIS.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 700
    ]
    assert not long, long
