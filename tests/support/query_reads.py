"""Which query parameters a route handler reads, found in its source (and its helpers' sources).

Reads are `request.query.get("name")`, `request.query["name"]`, `.getone/.getall("name")` and
`"name" in request.query`. The name may also come through a helper that passes its own parameter
on (`query_int(request, "limit", ...)`, `_when(request, "from")`), or from a module constant the
code loops over (`for name in ATTRIBUTION_PARAMS`). Calls are followed into functions of the
shoplink package: plain names (module functions, imports) and, when the request itself is passed
along (`service.click(request, ...)`), every shoplink function of that name taking a `request`.

A read this analysis cannot name (a computed name) is reported as an error rather than ignored:
write the parameter's name where it is read.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import shoplink

READ_METHODS = {"get", "getone", "getall"}


@dataclass
class Reads:
    names: set[str] = field(default_factory=set)
    by_param: set[str] = field(default_factory=set)  # the function's parameters used as query names
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Function:
    module: ModuleType
    qualname: str
    node: ast.FunctionDef | ast.AsyncFunctionDef

    @property
    def params(self) -> list[str]:
        args = self.node.args
        return [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]

    @property
    def label(self) -> str:
        return f"{self.module.__name__}.{self.qualname}"


def _functions_of(module: ModuleType) -> dict[str, Function]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(module)))
    found: dict[str, Function] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qualname = f"{prefix}{child.name}"
                found[qualname] = Function(module, qualname, child)
                visit(child, f"{qualname}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(tree, "")
    return found


@functools.cache
def _index() -> dict[str, dict[str, Function]]:
    """module name -> qualname -> function, for every module of the shoplink package."""
    index = {}
    root = Path(shoplink.__file__).parent
    for path in sorted(root.rglob("*.py")):  # packages without __init__.py too
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__main__":
            continue  # runs the command line when imported
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        index[name] = _functions_of(importlib.import_module(name))
    return index


def function_of(obj: Callable[..., Any]) -> Function:
    obj = inspect.unwrap(obj)
    return _index()[obj.__module__][obj.__qualname__]


def _methods_named(name: str) -> list[Function]:
    return [f for functions in _index().values() for q, f in functions.items()
            if q.rsplit(".", 1)[-1] == name and "request" in f.params]


def _is_query(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "query"


def _loop_targets(fn: Function) -> dict[str, ast.expr]:
    """Names bound by `for NAME in ITER` (statements and comprehensions) -> ITER."""
    out: dict[str, ast.expr] = {}
    for node in ast.walk(fn.node):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(node.target, ast.Name):
            out[node.target.id] = node.iter
    return out


class _Analyzer:
    def __init__(self) -> None:
        self.cache: dict[str, Reads] = {}

    def reads(self, fn: Function) -> Reads:
        if fn.label in self.cache:
            return self.cache[fn.label]
        result = self.cache[fn.label] = Reads()  # a recursion sees what is known so far
        loops = _loop_targets(fn)
        params = fn.params

        def name_of(arg: ast.expr, where: ast.AST) -> None:
            """Record the query name `arg` stands for."""
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                result.names.add(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in params:
                result.by_param.add(arg.id)
            elif isinstance(arg, ast.Name) and arg.id in loops:
                source = loops[arg.id]
                values = getattr(fn.module, source.id, None) if isinstance(source, ast.Name) else None
                if isinstance(values, (tuple, list, frozenset, set)) and all(isinstance(v, str) for v in values):
                    result.names.update(values)
                else:
                    result.problems.append(f"{fn.label}, line {getattr(where, 'lineno', '?')}: cannot tell which query "
                                           f"parameter `{ast.unparse(arg)}` names")
            else:
                result.problems.append(f"{fn.label}, line {getattr(where, 'lineno', '?')}: cannot tell which query "
                                       f"parameter `{ast.unparse(arg)}` names")

        for node in ast.walk(fn.node):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in READ_METHODS and _is_query(node.func.value) and node.args):
                name_of(node.args[0], node)
                continue
            if isinstance(node, ast.Subscript) and _is_query(node.value):
                name_of(node.slice, node)
            elif isinstance(node, ast.Compare) and any(_is_query(c) for c in node.comparators):
                name_of(node.left, node)
            elif isinstance(node, ast.Call):
                for callee in self._callees(fn, node):
                    self._merge_call(fn, node, callee, result, name_of)
        return result

    def _callees(self, fn: Function, call: ast.Call) -> Iterator[Function]:
        func = call.func
        if isinstance(func, ast.Name):
            target = getattr(fn.module, func.id, None)
            if inspect.isfunction(target) and target.__module__.startswith("shoplink"):
                yield function_of(target)
            elif func.id in _index().get(fn.module.__name__, {}):  # a function defined beside it
                yield _index()[fn.module.__name__][func.id]
            else:
                local = fn.qualname + ".<locals>." + func.id
                if local in _index()[fn.module.__name__]:
                    yield _index()[fn.module.__name__][local]
        elif isinstance(func, ast.Attribute):
            passes_request = any(isinstance(a, ast.Name) and a.id == "request" for a in call.args)
            if passes_request:
                yield from _methods_named(func.attr)

    def _merge_call(self, fn: Function, call: ast.Call, callee: Function, result: Reads,
                    name_of: Callable[[ast.expr, ast.AST], None]) -> None:
        inner = self.reads(callee)
        result.names |= inner.names
        result.problems += [p for p in inner.problems if p not in result.problems]
        params = callee.params
        offset = 1 if params and params[0] in ("self", "cls") and isinstance(call.func, ast.Attribute) else 0
        for param in inner.by_param:
            position = params.index(param) - offset
            given: ast.expr | None = None
            if 0 <= position < len(call.args):
                given = call.args[position]
            for keyword in call.keywords:
                if keyword.arg == param:
                    given = keyword.value
            if given is None:
                default = _default_of(callee, param)
                if default is not None:
                    name_of(default, call)
                continue
            name_of(given, call)


def _default_of(fn: Function, param: str) -> ast.expr | None:
    args = fn.node.args
    positional = [*args.posonlyargs, *args.args]
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(args.defaults):]], args.defaults,
                        strict=True))
    defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None})
    return defaults.get(param)


def query_reads(handler: Callable[..., Any]) -> Reads:
    """The query parameters `handler` (a route handler) reads."""
    return _Analyzer().reads(function_of(handler))
