"""Clients generated from the contract at test time, as an integrator generates them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shoplink.openapi import BUNDLED

PACKAGE = "shoplink_client"


def generate_python_client(into: Path) -> tuple[Path, list[str]]:
    """openapi-python-client on schemas/openapi.bundled.yaml: (the package's folder, its warnings)."""
    config = into / "config.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\nproject_name_override: {PACKAGE}\n")
    target = into / PACKAGE
    done = subprocess.run(
        [sys.executable, "-m", "openapi_python_client", "generate", "--path", str(BUNDLED), "--meta", "none",
         "--output-path", str(target), "--config", str(config), "--overwrite"],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    output = done.stdout + done.stderr
    return target, [block.strip() for block in output.split("WARNING")[1:]]
