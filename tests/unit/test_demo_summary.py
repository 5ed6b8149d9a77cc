"""The lines `scripts/serve` ends with: addresses, and each demo account with its role and token."""

from __future__ import annotations

import socket

from shoplink.demo_summary import summary, wait_until_up


def test_summary_lists_addresses_and_accounts() -> None:
    lines = summary({"base_url": "http://localhost:8080", "demo_url": "http://localhost:8080/demo",
                     "seller": {"id": 1, "name": "Demo Seller", "token": "slk_s"},
                     "creator": {"id": 2, "name": "Demo Creator", "token": "slk_c"}})
    text = "\n".join(lines)
    assert "  demo:     http://localhost:8080/demo" in lines
    assert "  sign in:  http://localhost:8080/signin  (paste a token below)" in lines
    assert "  seller    Demo Seller (account 1): slk_s" in lines
    assert "  creator   Demo Creator (account 2): slk_c" in lines
    assert "{" not in text  # no JSON blob


def test_summary_without_accounts_still_names_the_addresses() -> None:
    lines = summary({"base_url": "http://h:1/"})
    assert "  demo:     http://h:1/demo" in lines and not any("slk_" in line for line in lines)


def test_wait_until_up_sees_a_listening_port_and_gives_up_on_a_closed_one() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert wait_until_up(f"http://127.0.0.1:{port}", timeout_s=5)
    assert not wait_until_up(f"http://127.0.0.1:{port}", timeout_s=0.3)
