"""The package's floors (docs/architecture.md), read from its own imports: every import,
at the top of a module or inside a function, goes down a floor or stays on its own, and no
module reaches itself again through imports (no import circle)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "vidret"

# Bottom to top; a folder may import its own floor and the floors below. "core" is the
# package's top-level modules (errors, io, locking, progress, ...).
FLOORS: list[set[str]] = [
    {"core", "config"},
    {"data"},
    {"text"},
    {"video"},
    {"models", "losses"},
    {"batches"},
    {"runs"},
    {"eval"},
    {"train", "moments"},
    {"search", "experiments"},
    {"cli"},
]
ENTRY_POINTS = {"vidret.__main__"}  # `python -m vidret` runs the CLI: above everything


def module_name(path: Path) -> str:
    parts = ("vidret", *path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every vidret module `path` imports, lazily or not (`from a.b import c` counts
    `a.b.c` when that is a module, else `a.b`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "vidret" or n.startswith("vidret."))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for target in imports_of(path):
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]  # a name inside a module
            if target in modules and target != name:
                graph[name].add(target)
        graph.setdefault(name, set())
    return graph


def folder(module: str) -> str:
    """The top folder a module lives in ("core" for the package's own modules; the
    entry point counts with the CLI)."""
    if module in ENTRY_POINTS:
        return "cli"
    parts = module.split(".")
    if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()):
        return parts[1]
    return "core"


def floor(module: str) -> int:
    name = folder(module)
    for level, names in enumerate(FLOORS):
        if name in names:
            return level
    raise AssertionError(f"{module}: folder '{name}' is on no floor; add it to FLOORS")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_runs_up_a_floor() -> None:
    graph = import_graph()
    upward = [
        f"{a} (floor {floor(a)}) -> {b} (floor {floor(b)})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if floor(b) > floor(a)
    ]
    assert not upward, "imports that run up a floor:\n" + "\n".join(upward)


def test_no_import_circle() -> None:
    found = cycles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_circle_between_folders_of_one_floor() -> None:
    graph = import_graph()
    folders: dict[str, set[str]] = defaultdict(set)
    for a, targets in graph.items():
        folders.setdefault(folder(a), set())
        for b in targets:
            if folder(a) != folder(b):
                folders[folder(a)].add(folder(b))
    assert not cycles(folders), cycles(folders)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from vidret.search.index import VideoIndex\n", {"vidret.search.index"}),
        ("def f():\n    import vidret.train.trainer\n", {"vidret.train.trainer"}),
        ("from vidret.runs import folder as run_files\n", {"vidret.runs.folder"}),
    ],
)
def test_the_reader_sees_every_kind_of_import(
    tmp_path: Path, source: str, expected: set[str]
) -> None:
    """The checks above are only as good as the import reader: top-level, lazy, and
    `from package import module` forms all count."""
    path = tmp_path / "m.py"
    path.write_text(source)
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    seen = set()
    for target in imports_of(path):
        while target not in modules and "." in target:
            target = target.rsplit(".", 1)[0]
        seen.add(target)
    assert expected <= seen


def test_the_checks_catch_a_circle_and_an_upward_import() -> None:
    graph = {"vidret.data.a": {"vidret.train.b"}, "vidret.train.b": {"vidret.data.a"}}
    assert cycles(graph) == [["vidret.data.a", "vidret.train.b"]]
    assert floor("vidret.train.b") > floor("vidret.data.a")
