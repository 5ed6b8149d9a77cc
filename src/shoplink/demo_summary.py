"""`python -m shoplink.demo_summary < demo.json`: the readable lines `scripts/serve` ends with
(the home, demo and sign-in addresses, and each demo account with its role and token)."""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from typing import Any

import orjson

ROLES = (("seller", "seller"), ("creator", "creator"))


def summary(demo: dict[str, Any]) -> list[str]:
    base = str(demo.get("base_url", "")).rstrip("/")
    lines = ["", "shoplink is ready:",
             f"  home:     {base}/",
             f"  demo:     {demo.get('demo_url') or base + '/demo'}",
             f"  sign in:  {base}/signin  (paste a token below)"]
    for key, role in ROLES:
        account = demo.get(key)
        if isinstance(account, dict):
            lines.append(f"  {role:<8}  {account.get('name', '')} (account {account.get('id', '?')}): "
                         f"{account.get('token', '')}")
    lines.append("")
    return lines


def wait_until_up(base: str, timeout_s: float = 60.0) -> bool:
    """Poll {base}/healthz until the server answers (at most `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return True
        except (OSError, urllib.error.URLError):
            time.sleep(0.25)  # the server is still starting
    return False


def main() -> int:
    demo = orjson.loads(sys.stdin.buffer.read() or b"{}")
    if "--wait" in sys.argv[1:] and isinstance(demo, dict) and demo.get("base_url"):
        wait_until_up(str(demo["base_url"]).rstrip("/"))
    sys.stdout.write("\n".join(summary(demo if isinstance(demo, dict) else {})) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
