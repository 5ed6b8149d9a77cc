"""`python -m shoplink.demo_summary < demo.json`: the readable lines `scripts/serve` ends with
(the home, demo and sign-in addresses, and each demo account with its role and token)."""

from __future__ import annotations

import socket
import sys
import time
from typing import Any
from urllib.parse import urlsplit

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
    """Wait until the server accepts connections at `base` (at most `timeout_s`). A TCP connect,
    not a request: nothing lands in the access log after the summary."""
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or (443 if url.scheme == "https" else 80)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2):
                return True
        except OSError:
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
