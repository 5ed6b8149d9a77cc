"""TypeScript types generated from the contract (openapi-typescript) type a small integration
(tests/contract/typescript/integration.ts) that `tsc --strict` compiles: typed bodies, pages,
errors and CSV, no `$defs` in request bodies, and wrong code refused (its `@ts-expect-error`
lines must each be an error). Both tools are web/package.json dev dependencies, run offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from shoplink.openapi import BUNDLED
from shoplink.paths import PROJECT_DIR

BIN = PROJECT_DIR / "web" / "node_modules" / ".bin"
SCRIPT = Path(__file__).parent / "typescript" / "integration.ts"


def _run(*args: str | Path) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout}{done.stderr}"
    return done.stdout


def test_tsc_strict_compiles_an_integration_typed_by_openapi_typescript(tmp_path: Path) -> None:
    assert (BIN / "openapi-typescript").exists() and (BIN / "tsc").exists(), "npm ci in web/ first"
    types = tmp_path / "shoplink.ts"
    _run(BIN / "openapi-typescript", BUNDLED, "--output", types)
    generated = types.read_text()
    # openapi-typescript always exports an empty `$defs` type; no schema may carry one
    assert re.findall(r".*\$defs.*", generated) == ["export type $defs = Record<string, never>;"]
    untyped = [line.strip() for line in generated.splitlines()
               if "Record<string, never>" in line and not line.startswith("export type ")]
    assert untyped == [], f"untyped objects in the contract (openapi-typescript: Record<string, never>): {untyped}"
    shutil.copy(SCRIPT, tmp_path / SCRIPT.name)
    _run(BIN / "tsc", "--strict", "--noEmit", "--target", "es2022", "--module", "esnext",
         "--moduleResolution", "bundler", "--lib", "es2022,dom", "--skipLibCheck", tmp_path / SCRIPT.name)
