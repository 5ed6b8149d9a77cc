"""Which names a shop may claim, and their canonical form (shoplink.domains.names)."""

from __future__ import annotations

import pytest

from shoplink.catalog.urls import UrlRejected, normalize_url
from shoplink.domains.names import NameRefused, canonical, check_claimable, claimable, registrable


def claim(raw: str, *, dev: bool = False) -> str:
    host = canonical(raw, allow_local=dev)
    check_claimable(host, dev=dev)
    return host


@pytest.mark.parametrize(("raw", "expected"), [
    ("acme.example", "acme.example"),
    ("ACME.Example.", "acme.example"),                  # uppercase, one trailing dot
    ("ａｃｍｅ．example", "acme.example"),               # fullwidth letters and dot (UTS 46)
    ("acme。example", "acme.example"),                  # ideographic full stop
    ("shop.acme.example", "shop.acme.example"),          # below a registrable domain
    ("bücher.example", "xn--bcher-kva.example"),         # Latin with a diacritic: its own name
    ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),  # punycode, any case
    ("пример.рф", "xn--e1afmkfd.xn--p1ai"),              # Cyrillic, no Latin look-alike
    ("例え.jp", "xn--r8jz45g.jp"),                        # Han + Hiragana (Japanese) is one writing system
    ("straße.de", "xn--strae-oqa.de"),                   # IDNA 2008: ß is kept
    ("attacker.github.io", "attacker.github.io"),        # one's own site under a private suffix
    ("foo.co.uk", "foo.co.uk"),
    ("city.kawasaki.jp", "city.kawasaki.jp"),            # an exception rule of the list
])
def test_claimable_names_and_their_canonical_form(raw: str, expected: str) -> None:
    assert claim(raw) == expected


@pytest.mark.parametrize(("raw", "code"), [
    ("co.uk", "public_suffix"),
    ("CO.UK.", "public_suffix"),
    ("github.io", "public_suffix"),
    ("s3.amazonaws.com", "public_suffix"),
    ("blogspot.com", "public_suffix"),
    ("x.kawasaki.jp", "public_suffix"),                  # a wildcard rule: *.kawasaki.jp
    ("pvt.k12.ma.us", "public_suffix"),                  # a multi-level suffix
    ("com", "not_registrable"),
    ("рф", "not_registrable"),
    ("xn--p1ai", "not_registrable"),
    ("localhost", "not_registrable"),
    ("printer.local", "special_use"),
    ("db.internal", "special_use"),
    ("foo.localhost", "special_use"),
    ("hidden.onion", "special_use"),
    ("1.0.0.127.in-addr.arpa", "special_use"),
    ("127.0.0.1", "ip_address"),
    ("[::1]", "ip_address"),
    ("１２７．０．０．１", "ip_address"),                  # fullwidth digits and dots: still an IP
    ("2130706433", "not_registrable"),
    ("0x7f.0.0.1", "invalid_name"),
    ("аррӏе.com", "confusable"),                         # Cyrillic whole-label look-alike of "apple"
    ("xn--80ak6aa92e.com", "confusable"),                # ... and its punycode
    ("ɑpple.com", "confusable"),                         # Latin alpha
    ("раураl.com", "mixed_script"),                      # Cyrillic р а у + Latin l
    ("xn--l-7sbahl3b.com", "mixed_script"),              # ... its punycode
    ("аpple.com", "mixed_script"),                       # one Cyrillic а
    ("www.аррӏе.com", "confusable"),                     # a look-alike label anywhere
    ("shop.example／evil.com", "invalid_name"),          # fullwidth solidus
    ("shop.example#evil.com", "invalid_name"),
    ("a_b.example", "invalid_name"),
    ("xn--abc.example", "invalid_name"),                 # punycode that decodes to nonsense
    ("-bad.example", "invalid_name"),
    ("a..example", "invalid_name"),
    ("", "invalid_name"),
    ("x" * 64 + ".example", "invalid_name"),
])
def test_refused_names_say_why(raw: str, code: str) -> None:
    with pytest.raises(NameRefused) as refused:
        claim(raw)
    assert refused.value.code == code, refused.value.message


def test_development_mode_allows_loopback_and_ip_literals() -> None:
    assert claim("127.0.0.1", dev=True) == "127.0.0.1"
    assert claim("[::1]", dev=True) == "::1"
    assert claim("localhost", dev=True) == "localhost"
    assert claim("10.0.0.5", dev=True) == "10.0.0.5"
    with pytest.raises(NameRefused):  # the other rules still hold
        claim("co.uk", dev=True)


def test_claimable_is_the_same_rule_as_a_yes_or_no() -> None:
    assert claimable("acme.example") and not claimable("github.io")
    assert not claimable("xn--80ak6aa92e.com") and not claimable("127.0.0.1")
    assert claimable("127.0.0.1", dev=True)


def test_registrable_domain_groups_the_names_that_can_conflict() -> None:
    assert registrable("a.b.shop.example") == "shop.example"
    assert registrable("x.foo.co.uk") == "foo.co.uk"
    assert registrable("me.github.io") == "me.github.io"
    assert registrable("127.0.0.1") == "127.0.0.1"


@pytest.mark.parametrize("url", [
    "https://[shop.example]/",
    "https://shop.example\uff0fevil.com/",
    "https://[::1/",
    "https://shop.example\uff03x/",
    "https://a\u2100b.example/",
    "https://shop.example:99999/",
    "https://xn--abc.example/",
])
def test_malformed_urls_are_refused_never_raised(url: str) -> None:
    with pytest.raises(UrlRejected):
        normalize_url(url, allow_http=False)


def test_ipv6_literal_in_development_keeps_its_brackets() -> None:
    assert normalize_url("http://[::1]:8080/p", allow_http=True) == ("http://[::1]:8080/p", "::1")
