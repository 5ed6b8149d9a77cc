"""The layout rules of DESIGN.md that a reader can check: SQL only in `repository.py` modules, and
each table written by one module (the anchors table by the anchors domain alone)."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "shoplink"
QUERY_METHODS = {"fetch", "fetchrow", "fetchval", "execute", "executemany", "cursor", "prepare"}
# Not domains: schema migrations, and the readiness probe's `SELECT 1`.
SQL_OUTSIDE_REPOSITORIES = {"db.py", "health.py"}
WRITE = re.compile(r"\b(?:INSERT\s+INTO|DELETE\s+FROM|(?<!DO )UPDATE)\s+([a-z_]+)\b")


def _modules() -> dict[str, ast.Module]:
    return {path.relative_to(SRC).as_posix(): ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted(SRC.rglob("*.py"))}


def _strings(tree: ast.Module) -> list[str]:
    """Every string literal, f-strings' literal parts joined (placeholders dropped)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            out.append("".join(v.value for v in node.values
                               if isinstance(v, ast.Constant) and isinstance(v.value, str)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
    return out


def test_queries_are_made_in_repositories_only() -> None:
    offenders = []
    for name, tree in _modules().items():
        if name.endswith("repository.py") or name in SQL_OUTSIDE_REPOSITORIES:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in QUERY_METHODS and node.args
                    and isinstance(node.args[0], ast.Constant | ast.JoinedStr)):
                offenders.append(f"{name}:{node.lineno}")
    assert offenders == []


def test_each_table_has_one_writer() -> None:
    writers: dict[str, set[str]] = defaultdict(set)
    for name, tree in _modules().items():
        for text in _strings(tree):
            for table in WRITE.findall(text):
                writers[table].add(name)
    assert writers["anchors"] == {"anchors/repository.py"}
    assert {"live_sessions", "live_pins", "videos", "plans", "products"} <= writers.keys()  # the scan works
    shared = {table: sorted(names) for table, names in writers.items()
              if len(names - SQL_OUTSIDE_REPOSITORIES) > 1}
    assert shared == {}
