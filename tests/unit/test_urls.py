from __future__ import annotations

import pytest

from shoplink.catalog.urls import DomainRule, UrlRejected, check_url_on_domains, normalize_host

RULES = [DomainRule("shop.example"), DomainRule("brand.example", include_subdomains=True)]


@pytest.mark.parametrize(("url", "expected"), [
    ("https://shop.example/p/1", "https://shop.example/p/1"),
    ("https://SHOP.example/p/1?x=1#frag", "https://shop.example/p/1?x=1#frag"),
    ("https://shop.example", "https://shop.example/"),
    ("https://shop.example:8443/p", "https://shop.example:8443/p"),
    ("https://www.brand.example/p", "https://www.brand.example/p"),
    ("https://brand.example/p/ü", "https://brand.example/p/%C3%BC"),
])
def test_accepted_and_canonical(url: str, expected: str) -> None:
    assert check_url_on_domains(url, RULES, allow_http=False) == expected


@pytest.mark.parametrize("url", [
    "http://shop.example/p",                       # http without the dev setting
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "//shop.example/p",                            # scheme-relative
    "https://evil.example/p",                      # foreign domain
    "https://shop.example@evil.example/",          # userinfo trick
    "https://user:pw@shop.example/",               # any userinfo
    "https://www.shop.example/p",                  # subdomain not allowed for this entry
    "https://shop.example.evil.example/",          # suffix trick
    "https://evilshop.example/",                   # no dot boundary
    "https://shop.example\\@evil.example/",        # backslash
    "https://shop.example/p\r\nLocation: x",       # CRLF
    "https://shop.example /p",                     # space
    "https://127.0.0.1/p",                         # IP
    "https://shop.example:99999/",                 # bad port
    "ftp://shop.example/",
    "",
    "https://",
])
def test_rejected(url: str) -> None:
    with pytest.raises(UrlRejected):
        check_url_on_domains(url, RULES, allow_http=False)


def test_idn_host_compared_in_ascii_form() -> None:
    rules = [DomainRule(normalize_host("bücher.example"))]
    assert rules[0].domain == "xn--bcher-kva.example"
    assert check_url_on_domains("https://BÜCHER.example/x", rules, allow_http=False) == \
        "https://xn--bcher-kva.example/x"
    assert check_url_on_domains("https://xn--bcher-kva.example/x", rules, allow_http=False)
    with pytest.raises(UrlRejected):  # a look-alike host is a different domain
        check_url_on_domains("https://bucher.example/x", rules, allow_http=False)


def test_dev_setting_allows_http_and_localhost() -> None:
    rules = [DomainRule(normalize_host("localhost", allow_local=True))]
    assert check_url_on_domains("http://localhost:8080/x", rules, allow_http=True) == \
        "http://localhost:8080/x"
    with pytest.raises(UrlRejected):
        normalize_host("localhost")


@pytest.mark.parametrize("host", ["", "-bad.example", "a..example", "example", "x" * 64 + ".example",
                                  "shop.123", "[::1]"])
def test_bad_hosts(host: str) -> None:
    with pytest.raises(UrlRejected):
        normalize_host(host)
