"""The runtime dependencies of pyproject.toml at their lower bounds (scripts/check-oldest).

    python scripts/lib/lower_bounds.py requirements   # [project.dependencies], one a line (uv's input)
    python scripts/lib/lower_bounds.py verify         # in the venv to check: each installed at its bound

`verify` fails unless every dependency with a `>=` bound is installed in the version the bound
names, compared to the bound's precision (`>=4.10` is met by 4.10.0.82, the first 4.10 release
on PyPI; not by 4.11): it proves that the venv really holds the oldest versions we allow.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def dependencies() -> list[str]:
    with PYPROJECT.open("rb") as f:
        deps: list[str] = tomllib.load(f)["project"]["dependencies"]
    return deps


def verify() -> int:
    wrong = 0
    for line in dependencies():
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        bounds = [s.version for s in req.specifier if s.operator == ">="]
        if not bounds:
            continue
        bound = Version(bounds[0])
        try:
            installed = Version(version(req.name))
        except PackageNotFoundError:
            print(f"  {req.name}: not installed (wants {req.specifier})")
            wrong += 1
            continue
        width = len(bound.release)
        ok = (installed.release + (0,) * width)[:width] == bound.release
        print(f"  {req.name} {installed} (lower bound {bound}){'' if ok else ': NOT the lower bound'}")
        wrong += not ok
    return 1 if wrong else 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "requirements":
        print("\n".join(dependencies()))
        return 0
    if command == "verify":
        return verify()
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
