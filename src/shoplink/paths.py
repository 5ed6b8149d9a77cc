"""Where the project's non-Python files live (schemas, SQL migrations)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent.parent
SCHEMAS_DIR = PROJECT_DIR / "schemas"  # the package is installed in place (pip install -e .)
SQL_DIR = SCHEMAS_DIR / "sql"
