"""gsbook's layers, read from its source: no import cycles, no upward arrows, one way in.

The layer table lives in ``gsbook/__init__.py`` (``LAYERS``). Every import counts, including
those inside functions (a lazy import is still a dependency). ``widgets`` and the chapters
sit above gsbook and may import it; gsbook never imports them.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

import gsbook

ROOT = Path(__file__).resolve().parents[1]


def module_files(package: Path, prefix: str) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` under ``package``."""
    mods = {}
    for f in package.rglob("*.py"):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return {m: f for m, f in mods.items() if m == prefix or m.startswith(prefix + ".")}


def imported_modules(module: str, path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file (absolute names)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found |= {f"{target}.{a.name}" for a in node.names}
    return found


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    """Edges between gsbook modules (a name that is not a module resolves to its module).

    A package's ``__init__`` importing its own modules is an edge (it runs them); a module
    naming its own package (``from gsbook.sds.prior import …`` inside ``gsbook/sds``) is not,
    since Python has that package half-initialised by then anyway."""
    graph: dict[str, set[str]] = {m: set() for m in files}
    for m, f in files.items():
        for t in imported_modules(m, f):
            while t and t not in files:
                t = t.rpartition(".")[0]
            if t and t != m and not m.startswith(t + "."):
                graph[m].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def layer_of() -> dict[str, int]:
    return {name: i for i, (_, names) in enumerate(gsbook.LAYERS) for name in names}


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """``a → b`` where ``b``'s layer is above ``a``'s."""
    layers = layer_of()
    top = lambda m: layers[m.split(".")[1]]  # noqa: E731
    return sorted(f"{a} → {b}" for a, targets in graph.items() for b in targets
                  if a != "gsbook" and b != "gsbook" and top(b) > top(a))


FILES = module_files(ROOT / "gsbook", "gsbook")


def test_every_top_level_module_has_exactly_one_layer():
    tops = {m.split(".")[1] for m in FILES if m != "gsbook"}
    listed = [name for _, names in gsbook.LAYERS for name in names]
    assert len(listed) == len(set(listed)), "a module is listed in two layers"
    assert tops <= set(listed), f"modules without a layer in gsbook.LAYERS: {sorted(tops - set(listed))}"
    assert set(listed) <= tops, f"gsbook.LAYERS names modules that do not exist: {sorted(set(listed) - tops)}"


def test_no_import_cycles():
    found = cycles(import_graph(FILES))
    assert not found, "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


def test_no_upward_imports():
    arrows = upward_arrows(import_graph(FILES))
    assert not arrows, "imports that point up a layer (see gsbook.LAYERS): " + "; ".join(arrows)


def test_gsbook_never_imports_widgets_or_tools():
    bad = sorted(f"{m} imports {t}" for m, f in FILES.items() for t in imported_modules(m, f)
                 if t.split(".")[0] in ("widgets", "tools", "benchmarks"))
    assert not bad, bad


def test_widgets_import_gsbook_only_through_its_packages():
    """Widgets draw what gsbook computes; they import gsbook's public names, never deep paths."""
    files = module_files(ROOT / "widgets", "widgets")
    deep = sorted(f"{m}: {t}" for m, f in files.items() for t in imported_modules(m, f)
                  if t.startswith("gsbook.") and t.count(".") > 1 and not _is_public_name(t))
    assert not deep, "deep imports in widgets (import from the package instead): " + "; ".join(deep)


def _is_public_name(dotted: str) -> bool:
    """``gsbook.pkg.Name``: a name the package ``gsbook.pkg`` exports (not a submodule)."""
    parent, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(parent)
    except ImportError:
        return False
    return name in getattr(module, "__all__", ())


# ----------------------------------------------------------------------------------------------
# The checker itself: it must find what it is for (a test that cannot fail is a defect).
def _scratch_package(tmp_path: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = tmp_path / "gsbook" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return module_files(tmp_path / "gsbook", "gsbook")


def test_the_checker_finds_a_cycle_made_by_an_import_inside_a_function(tmp_path):
    files = _scratch_package(tmp_path, {
        "__init__.py": "",
        "zoo.py": "def load():\n    from .judge import Judge\n",
        "judge.py": "from . import zoo\n",
        "config.py": "",
    })
    assert cycles(import_graph(files)) == [["gsbook.judge", "gsbook.zoo"]]


def test_the_checker_follows_imports_through_packages(tmp_path):
    files = _scratch_package(tmp_path, {
        "__init__.py": "",
        "diffusion/__init__.py": "from .noise import add_noise\n",
        "diffusion/noise.py": "def f():\n    from gsbook.sds import BookPrior\n",
        "sds/__init__.py": "from .book import BookPrior\n",
        "sds/book.py": "from gsbook.diffusion import add_noise\n",
    })
    assert cycles(import_graph(files)) == [["gsbook.diffusion", "gsbook.diffusion.noise", "gsbook.sds",
                                            "gsbook.sds.book"]]


def test_the_checker_finds_an_upward_import(tmp_path):
    files = _scratch_package(tmp_path, {
        "__init__.py": "",
        "diffusion/__init__.py": "from .noise import add_noise\n",
        "diffusion/noise.py": "from gsbook.sds.prior import add_noise\n",
        "sds/__init__.py": "",
        "sds/prior.py": "from ..diffusion import noise\n",
    })
    graph = import_graph(files)
    assert upward_arrows(graph) == ["gsbook.diffusion.noise → gsbook.sds.prior"]
    assert cycles(graph) == [["gsbook.diffusion", "gsbook.diffusion.noise", "gsbook.sds.prior"]]


# ----------------------------------------------------------------------------------------------
# One way in: each package's public names, and no name that means two things.
PACKAGES = sorted(name for _, names in gsbook.LAYERS for name in names)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_module_declares_what_it_exports(name):
    module = importlib.import_module(f"gsbook.{name}")
    exported = getattr(module, "__all__", None)
    assert exported, f"gsbook.{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"gsbook.{name}.__all__ lists names it does not have: {missing}"


def test_no_two_packages_export_different_things_under_one_name():
    owners: dict[str, list[tuple[str, object]]] = {}
    for name in PACKAGES:
        module = importlib.import_module(f"gsbook.{name}")
        for n in module.__all__:
            owners.setdefault(n, []).append((name, getattr(module, n)))
    clashes = {n: [p for p, _ in found] for n, found in owners.items()
               if len({id(obj) for _, obj in found}) > 1}
    assert not clashes, f"one name, different things (chapters would have to rename them): {clashes}"


def test_subpackages_reexport_their_modules_public_names():
    """``from gsbook.sds import X`` works for every X a module of gsbook.sds exports."""
    for name in PACKAGES:
        package = importlib.import_module(f"gsbook.{name}")
        if not hasattr(package, "__path__"):
            continue
        for info in pkgutil.iter_modules(package.__path__):
            sub = importlib.import_module(f"gsbook.{name}.{info.name}")
            missing = [n for n in getattr(sub, "__all__", ()) if n not in package.__all__]
            assert not missing, f"gsbook.{name}.{info.name} exports {missing}, which gsbook.{name} does not"
