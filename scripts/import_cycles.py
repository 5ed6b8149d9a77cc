#!/usr/bin/env python3
"""Fail on any import cycle in a package (default: src/shoplink), `if TYPE_CHECKING:` blocks aside,
and on any import of the package's own modules inside a function (the usual way to hide one).

The graph has an edge from a module to every module it imports at run time, wherever the import
statement sits (an import inside a function still runs, so hiding one there does not break a
cycle), and to the packages whose `__init__` that import runs first: importing `a.b.c` from
outside package `a` runs `a/__init__.py` and `a/b/__init__.py`, so a cycle through a package's
`__init__` is found too. Only `if TYPE_CHECKING:` bodies (their `else:` runs) are left out.

Usage: import_cycles.py [PACKAGE_DIR]   exit 0: none; 1: cycles and hidden imports on stderr.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

DEFAULT_PACKAGE = Path(__file__).resolve().parents[1] / "src" / "shoplink"


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the package (namespace packages too)."""
    root = package_dir.resolve()
    modules: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [root.name, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


Found = tuple[ast.Import | ast.ImportFrom, bool]  # the statement, and whether it is in a function


def _run_time_imports(nodes: list[ast.stmt], in_function: bool = False) -> Iterator[Found]:
    """Every import statement that can run, at any depth, except under `if TYPE_CHECKING:`."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _run_time_imports(node.orelse, in_function)
            continue
        inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _run_time_imports([child], inner)
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                yield from _run_time_imports(child.body, inner)


def _resolve_relative(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, target] if target else base)


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _imports(package_dir: Path) -> Iterator[tuple[str, str, int, bool, bool]]:
    """(importing module, imported module or package, line, inside a function, implied) for every
    run-time import of the package's own modules; implied: a package whose __init__ it runs first."""
    modules = module_files(package_dir)
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        own_packages = {name, *_ancestors(name)} if is_package else set(_ancestors(name))
        for node, in_function in _run_time_imports(tree.body):
            targets: set[str] = set()
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            else:
                base = (_resolve_relative(name, is_package, node.level, node.module) if node.level
                        else node.module or "")
                # `from pkg import sub` imports the submodule `pkg.sub` when there is one; any
                # other name comes from `pkg` itself (its __init__ when it is a package).
                submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
                targets.update(submodules)
                if base not in own_packages or len(submodules) < len(node.names):
                    targets.add(base)
            for target in targets:
                # The enclosing packages' __init__ run first, unless this module is inside them
                # (they are then already being imported).
                implied = [a for a in _ancestors(target) if a not in own_packages]
                if target in modules and target != name:
                    yield name, target, node.lineno, in_function, False
                for module in implied:
                    if module in modules:
                        yield name, module, node.lineno, in_function, True


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Module -> the package's modules that importing it runs (see the module docstring)."""
    graph: dict[str, set[str]] = {name: set() for name in module_files(package_dir)}
    for name, target, _, _, _ in _imports(package_dir):
        graph[name].add(target)
    return graph


def hidden_imports(package_dir: Path) -> list[str]:
    """`module:line imports target` for each import of the package's own modules inside a function."""
    found = {(name, line, target) for name, target, line, in_function, implied in _imports(package_dir)
             if in_function and not implied}
    return [f"{name}:{line} imports {target}" for name, line, target in sorted(found)]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan), each as
    a closed path `a -> b -> ... -> a` through that component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(v: str) -> None:  # recursion depth is bounded by the module count
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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
            if len(component) > 1 or v in graph[v]:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, set(c)) for c in sorted(components)]


def _cycle_in(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest closed path from the component's first module back to itself (breadth first)."""
    start = min(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]  # back from v to start through the parents
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if w not in parents:
                    parents[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError("a strongly connected component always has a cycle")


def main(argv: list[str]) -> int:
    package_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_PACKAGE
    if not package_dir.is_dir():
        print(f"import_cycles: {package_dir} is not a directory", file=sys.stderr)
        return 2
    cycles = find_cycles(import_graph(package_dir))
    hidden = hidden_imports(package_dir)
    for cycle in cycles:
        print("import cycle: " + " -> ".join(cycle), file=sys.stderr)
    for where in hidden:
        print(f"import inside a function: {where} (import it at the top of the module)", file=sys.stderr)
    if cycles or hidden:
        print(f"import_cycles: {len(cycles)} cycle(s), {len(hidden)} import(s) inside functions in "
              f"{package_dir} (imports under `if TYPE_CHECKING:` do not count)", file=sys.stderr)
        return 1
    print(f"import_cycles: no import cycle and no import inside a function in {package_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
