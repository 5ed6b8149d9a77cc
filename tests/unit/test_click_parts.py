"""Pure pieces of the click path: cookie parsing, hashes, referrer hosts, Location building,
playback validation, the spool file format, the access log."""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from shoplink.clicks.events import video_playback
from shoplink.clicks.resolver import location_parts
from shoplink.clicks.viewer import ViewerIds, referrer_host
from shoplink.delivery.spool import SpoolFile
from shoplink.logs import AccessLogger

SECRET = "unit-test-secret-0123456789"


def test_cookie_value_is_found_only_under_its_own_name() -> None:
    ids = ViewerIds(SECRET, secure=False)
    value, _ = ids.issue(secure_request=False)
    assert len(value) == 32
    assert ids.from_cookie_header(f"sl_vid={value}") == value
    assert ids.from_cookie_header(f"a=1; sl_vid={value}; b=2") == value
    assert ids.from_cookie_header(f"xsl_vid={value}") is None
    assert ids.from_cookie_header(f"xsl_vid=1; sl_vid={value}") == value
    assert ids.from_cookie_header("sl_vid=short") is None
    assert ids.from_cookie_header("sl_vid=" + "a" * 31 + "!") is None
    assert ids.from_cookie_header(None) is None and ids.from_cookie_header("") is None


def test_set_cookie_attributes() -> None:
    value, plain = ViewerIds(SECRET, secure=False).issue(secure_request=False)
    assert plain == f"sl_vid={value}; Max-Age=63072000; Path=/; HttpOnly; SameSite=Lax"
    assert ViewerIds(SECRET, secure=False).issue(secure_request=True)[1].endswith("; Secure")
    assert ViewerIds(SECRET, secure=True).issue(secure_request=False)[1].endswith("; Secure")


def test_issue_gives_a_new_value_and_its_set_cookie_header_in_one_call() -> None:
    attributes = "; Max-Age=63072000; Path=/; HttpOnly; SameSite=Lax"
    for always_secure, secure_request in ((False, False), (False, True), (True, False)):
        ids = ViewerIds(SECRET, secure=always_secure)
        values = set()
        for _ in range(300):  # crosses a 4 KiB block of randomness (256 values per block)
            value, header = ids.issue(secure_request=secure_request)
            assert ids.from_cookie_header(f"sl_vid={value}") == value
            secure = "; Secure" if always_secure or secure_request else ""
            assert header == f"sl_vid={value}{attributes}{secure}"
            values.add(value)
        assert len(values) == 300


def test_viewer_hash_is_hmac_sha256_under_a_derived_key() -> None:
    ids = ViewerIds(SECRET, secure=False)
    key = hmac.digest(SECRET.encode(), b"shoplink:viewer", "sha256")
    assert ids.viewer_hash("abc") == hmac.digest(key, b"abc", "sha256").hex()[:32]
    assert ViewerIds("another-secret-0123456789", secure=False).viewer_hash("abc") != ids.viewer_hash("abc")


def test_network_hash_groups_a_network_and_never_shows_the_address() -> None:
    ids = ViewerIds(SECRET, secure=False)
    a, b, c = (ids.network_hash(ip) for ip in ("203.0.113.7", "203.0.113.200", "203.0.114.7"))
    assert a == b != c and a is not None and len(a) == 16 and "203" not in a
    assert ids.network_hash("2001:db8:1:2::1") == ids.network_hash("2001:db8:1:ffff::2")
    assert ids.network_hash("::ffff:203.0.113.9") == a
    assert ids.network_hash(None) is None and ids.network_hash("not-an-ip") is None


@pytest.mark.parametrize(("referer", "host"), [
    ("https://www.tiktok.com/@shop/video/1?x=1", "www.tiktok.com"),
    ("https://user:pw@Example.COM:8443/path", "example.com"),
    ("http://l.facebook.com", "l.facebook.com"),
    ("android-app://com.zhiliaoapp.musically/", "com.zhiliaoapp.musically"),
    ("https://10.1.2.3/intranet", None),
    ("https://[2001:db8::1]/", None),
    ("not a url", None), ("", None), (None, None), ("https://bad host/", None),
])
def test_referrer_host(referer: str | None, host: str | None) -> None:
    assert referrer_host(referer) == host


def test_location_keeps_query_and_fragment_and_replaces_our_parameters() -> None:
    head, tail = location_parts("https://shop.example/p/1?a=1&utm_source=x&b=2&sl_click=old#frag",
                                medium="video", campaign="plan-3", code="AbCdEf12")
    assert head == ("https://shop.example/p/1?a=1&b=2&utm_source=shoplink&utm_medium=video"
                    "&utm_campaign=plan-3&utm_content=AbCdEf12&sl_click=")
    assert tail == "#frag"
    head, tail = location_parts("https://shop.example/", medium="live", campaign="publisher-9",
                                code="Zz123456")
    assert head.startswith("https://shop.example/?utm_source=shoplink&utm_medium=live&") and tail == ""


def test_playback_validation() -> None:
    assert video_playback("12.25", 20.0) == (12.25, "ok")
    assert video_playback("20.5", 20.0) == (None, "invalid")
    assert video_playback(None, 20.0) == (None, "absent")
    assert video_playback("1e309", 20.0) == (None, "invalid")


def test_spool_round_trip_skips_torn_and_malformed_lines(tmp_path: Path) -> None:
    spool = SpoolFile.create(tmp_path)
    spool.append([(0, b'{"a":1}'), (3, b'{"b":2}')])
    with open(spool.path, "ab") as f:  # a malformed line, then a line cut short by a crash
        f.write(b"garbage\n1 {\"c\":3}\n2 {\"torn")
    spool.size = spool.path.stat().st_size
    lines = spool.read(10)
    assert [(s, p) for s, p, _ in lines] == [(0, b'{"a":1}'), (3, b'{"b":2}'), (1, b'{"c":3}')]
    spool.replayed_to = lines[-1][2]
    assert spool.read(10) == [] and not spool.pending and spool.skipped == 2
    spool.close()


def test_spool_of_a_live_process_is_not_claimed(tmp_path: Path) -> None:
    mine = SpoolFile.create(tmp_path)
    mine.append([(0, b"{}")])
    assert SpoolFile.claim_orphans(tmp_path) == []  # still locked by its owner
    mine.close()  # the owner is gone
    claimed = SpoolFile.claim_orphans(tmp_path)
    assert [c.path for c in claimed] == [mine.path] and claimed[0].pending
    claimed[0].remove()
    assert not mine.path.exists()


def test_access_log_never_carries_the_client_address(caplog: pytest.LogCaptureFixture) -> None:
    request = make_mocked_request("GET", "/r/AbCdEf12?t=3", headers={"X-Forwarded-For": "198.51.100.23"})
    logger = logging.getLogger("shoplink.access.test")
    with caplog.at_level(logging.INFO, logger="shoplink.access.test"):
        AccessLogger(logger, "").log(request, web.Response(status=302), 0.001)
    (record,) = caplog.records
    assert "198.51.100" not in str(record.__dict__) and "127.0.0.1" not in str(record.__dict__)
    assert not {"remote", "ip", "peer", "client"} & set(record.__dict__)
