"""scripts/import_cycles.py: finds import cycles (through package __init__ too, and imports hidden
in functions), ignores `if TYPE_CHECKING:` blocks, reports the package's imports inside functions,
and finds neither in src/shoplink."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "import_cycles.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_cycles", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checker = _load_script()


def _package(root: Path, files: dict[str, str]) -> Path:
    """A fake package `fake` under `root`: {relative path: source}."""
    package = root / "fake"
    for relative, source in {"__init__.py": "", **files}.items():
        path = package / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source), encoding="utf-8")
    return package


def _cycles(package: Path) -> list[list[str]]:
    cycles: list[list[str]] = checker.find_cycles(checker.import_graph(package))
    return cycles


def test_a_direct_cycle_is_found(tmp_path: Path) -> None:
    package = _package(tmp_path, {"a.py": "from fake.b import B\nA = 1\n",
                                  "b.py": "from fake import a\nB = 2\n"})
    assert _cycles(package) == [["fake.a", "fake.b", "fake.a"]]


def test_an_import_hidden_in_a_function_still_counts(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "a.py": "import fake.b\n",
        "b.py": """\
            def later() -> None:
                try:
                    from fake.a import nothing  # noqa
                except ImportError:
                    pass
            """})
    assert _cycles(package) == [["fake.a", "fake.b", "fake.a"]]


def test_type_checking_imports_do_not_count(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "a.py": "import fake.b\n",
        "b.py": """\
            from __future__ import annotations
            import typing
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from fake.a import A
            if typing.TYPE_CHECKING:
                import fake.a
            def f(x: A) -> None: ...
            """})
    assert _cycles(package) == []
    # ... but the `else:` of such a block runs.
    (package / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\n"
                                  "else:\n    from fake import a\n", encoding="utf-8")
    assert _cycles(package) == [["fake.a", "fake.b", "fake.a"]]


def test_a_cycle_through_a_package_init_is_found(tmp_path: Path) -> None:
    # fake.util imports fake.shop.rules, which runs fake/shop/__init__.py first; that imports
    # fake.shop.models, which imports fake.util: a cycle no single pair of modules shows.
    package = _package(tmp_path, {
        "util.py": "from fake.shop.rules import RULE\n",
        "shop/__init__.py": "from fake.shop.models import Shop\n",
        "shop/models.py": "from fake import util\nclass Shop: ...\n",
        "shop/rules.py": "RULE = 1\n"})
    assert _cycles(package) == [["fake.shop", "fake.shop.models", "fake.util", "fake.shop"]]


def test_a_module_inside_the_package_does_not_cycle_with_its_own_init(tmp_path: Path) -> None:
    package = _package(tmp_path, {"shop/__init__.py": "from fake.shop.models import Shop\n",
                                  "shop/models.py": "from fake.shop import rules\nclass Shop: ...\n",
                                  "shop/rules.py": "from .models import Shop\n"})
    assert _cycles(package) == [["fake.shop.models", "fake.shop.rules", "fake.shop.models"]]
    (package / "shop" / "rules.py").write_text("RULE = 1\n", encoding="utf-8")
    assert _cycles(package) == []
    # A name (not a submodule) taken from the enclosing package's __init__ is a real dependency.
    (package / "shop" / "rules.py").write_text("from fake.shop import Shop\n", encoding="utf-8")
    assert _cycles(package) == [["fake.shop", "fake.shop.models", "fake.shop.rules", "fake.shop"]]


def test_imports_of_own_modules_inside_functions_are_reported(tmp_path: Path) -> None:
    package = _package(tmp_path, {
        "a.py": """\
            import json
            def f() -> None:
                import uvloop  # noqa  (another package: not ours to judge)
                from fake import b  # noqa
            class C:
                async def g(self) -> None:
                    from fake.shop.models import Shop  # noqa
            """,
        "b.py": "",
        "shop/__init__.py": "",
        "shop/models.py": "class Shop: ...\n"})
    assert checker.hidden_imports(package) == ["fake.a:4 imports fake.b", "fake.a:7 imports fake.shop.models"]
    assert _cycles(package) == []
    done = subprocess.run([sys.executable, str(SCRIPT), str(package)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 1 and "import inside a function: fake.a:4 imports fake.b" in done.stderr


@pytest.mark.parametrize("cyclic", [True, False])
def test_the_command_fails_on_a_cycle(tmp_path: Path, cyclic: bool) -> None:
    package = _package(tmp_path, {"a.py": "from fake import b\n",
                                  "b.py": "from fake import a\n" if cyclic else "B = 1\n"})
    done = subprocess.run([sys.executable, str(SCRIPT), str(package)], capture_output=True, text=True,
                          check=False)
    if cyclic:
        assert done.returncode == 1
        assert "import cycle: fake.a -> fake.b -> fake.a" in done.stderr
    else:
        assert done.returncode == 0, done.stderr


def test_shoplink_has_no_import_cycle() -> None:
    package = SCRIPT.parents[1] / "src" / "shoplink"
    graph = checker.import_graph(package)
    assert "shoplink.app" in graph["shoplink.server"] and "shoplink.cli" in graph["shoplink.__main__"]
    assert _cycles(package) == []
    assert checker.hidden_imports(package) == []
