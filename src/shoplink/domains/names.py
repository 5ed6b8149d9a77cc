"""Host names: their one canonical form, and which of them a shop may claim at all.

The canonical form is the lower-case ASCII (A-label) form after UTS 46 mapping and IDNA 2008
validation (the `idna` package: Python's own codec is IDNA 2003), without the trailing dot.
Fullwidth letters and dots, uppercase and one trailing dot therefore name the same domain as
their plain form; anything that cannot be a host name (a slash, `#`, `%`, `_`, a space, a
control character, a bad A-label) is refused.

A claim must name something a shop can own (`check_claimable`):
- no IP literal (development mode excepted) and no single-label or special-use name;
- not a public suffix, nor anything that is not a registrable domain or below one, per the Public
  Suffix List (ICANN and private sections: `co.uk`, `github.io`, `s3.amazonaws.com`; the list
  ships inside the `publicsuffixlist` wheel, so checking never touches the network);
- every internationalized label (given in Unicode or as `xn--` punycode) is written in one
  script (Unicode TS #39 "highly restrictive": Han may go with Hiragana/Katakana, Hangul or
  Bopomofo), and is not a whole-label look-alike of an ASCII label: a label all of whose
  characters have an ASCII confusable in the TS #39 data (`аррӏе`, `ɑpple`) is refused.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass

import idna
from confusable_homoglyphs import categories, confusables
from publicsuffixlist import PublicSuffixList

_PSL = PublicSuffixList()  # the list shipped in the wheel; ICANN and private sections
_LDH = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# Top-level names reserved for special uses (RFC 6761, 6762, 7686, 9476, ...): nobody owns them.
# `.example` stays usable: it is what documentation and tests use.
SPECIAL_USE_TLDS = frozenset({"localhost", "local", "arpa", "invalid", "onion", "internal", "alt", "test"})
_CJK_COMBOS = (frozenset({"HAN", "HIRAGANA", "KATAKANA"}), frozenset({"HAN", "HANGUL"}),
               frozenset({"HAN", "BOPOMOFO"}))
_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})


class NameRefused(ValueError):
    """`code` is stable (for the API's details), the message says why to a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """`localhost`, `*.localhost`, 127.0.0.0/8 and ::1 (canonical forms)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = ip_literal(host)
    return ip is not None and ip.is_loopback


def canonical(raw: str, *, allow_local: bool = False) -> str:
    """The canonical ASCII form of a host name; NameRefused when it is not one.

    `allow_local` (development mode) also accepts IP literals and `localhost`."""
    host = raw.strip()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise NameRefused("invalid_name", "the host name is empty")
    ip = ip_literal(host)
    if ip is not None or host.startswith("["):
        if not allow_local or ip is None:
            raise NameRefused("ip_address", "IP addresses are not accepted as shop domains")
        return ip.compressed
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise NameRefused("invalid_name", f"{raw!r} is not a valid domain name ({exc})") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LDH.match(label) for label in labels):
        raise NameRefused("invalid_name", f"{raw!r} is not a valid domain name")
    if ip_literal(ascii_host) is not None:  # fullwidth digits and dots map to an IPv4 address
        if not allow_local:
            raise NameRefused("ip_address", "IP addresses are not accepted as shop domains")
        return ascii_host
    if ascii_host == "localhost" and allow_local:
        return ascii_host
    if len(labels) < 2:
        raise NameRefused("not_registrable", f"{raw!r} is a single label, not a registrable domain")
    if labels[-1].isdigit():
        raise NameRefused("invalid_name", f"{raw!r} is not a valid domain name")
    return ascii_host


def registrable(host: str) -> str:
    """The registrable domain (eTLD+1) a canonical host belongs to; the host itself for IPs,
    loopback names and names the list does not cover. Claims that can conflict share it."""
    if ip_literal(host) is not None or is_loopback(host):
        return host
    return _PSL.privatesuffix(host) or host


def unicode_label(label: str) -> str:
    """The Unicode form of one canonical label (`xn--...` decoded)."""
    if label.startswith("xn--"):
        return idna.decode(label)
    return label


def script_problem(label: str) -> tuple[str, str] | None:
    """(code, message) when a Unicode label mixes scripts or passes for an ASCII label."""
    if label.isascii():
        return None
    scripts = {categories.alias(ch) for ch in label if ch != "-" and not ch.isdigit()} - _NEUTRAL_SCRIPTS
    if len(scripts) > 1 and not any(scripts <= combo for combo in _CJK_COMBOS):
        names = ", ".join(sorted(s.title() for s in scripts))
        return "mixed_script", f"the label {label!r} mixes scripts ({names})"
    if all(ch.isascii() or _ascii_lookalike(ch) for ch in label):
        return "confusable", f"the label {label!r} looks like an ASCII name (Unicode TS #39 confusables)"
    return None


def _ascii_lookalike(ch: str) -> bool:
    for glyph in confusables.confusables_data.get(ch, ()):
        shape = glyph["c"]
        if len(shape) == 1 and shape.isascii() and shape.isalnum():
            return True
    return False


def check_claimable(host: str, *, dev: bool = False) -> None:
    """NameRefused unless a shop may claim the canonical `host` (see the module docstring).
    `dev` (development mode) also allows IP literals and loopback names."""
    if dev and (is_loopback(host) or ip_literal(host) is not None):
        return
    if ip_literal(host) is not None:
        raise NameRefused("ip_address", "IP addresses are not accepted as shop domains")
    labels = host.split(".")
    if len(labels) < 2:
        raise NameRefused("not_registrable", f"{host} is a single label, not a registrable domain")
    if labels[-1] in SPECIAL_USE_TLDS:
        raise NameRefused("special_use", f"{host} is under .{labels[-1]}, a special-use name nobody owns")
    if _PSL.is_public(host):
        raise NameRefused("public_suffix", f"{host} is a public suffix (Public Suffix List): "
                                           "claim your own domain under it instead")
    if _PSL.privatesuffix(host) is None:
        raise NameRefused("not_registrable", f"{host} is not a registrable domain or below one")
    for label in labels:
        try:
            text = unicode_label(label)
        except (idna.IDNAError, UnicodeError, ValueError):
            raise NameRefused("invalid_name", f"{label!r} is not a valid punycode label") from None
        problem = script_problem(text)
        if problem is not None:
            raise NameRefused(*problem)


@functools.lru_cache(maxsize=65_536)
def claimable(host: str, *, dev: bool = False) -> bool:
    """`check_claimable` as a yes/no, cached: what the click resolver asks of every verified domain
    when it loads an anchor (defence in depth against rows older than these rules)."""
    try:
        check_claimable(host, dev=dev)
    except NameRefused:
        return False
    return True


def covers(domain: str, include_subdomains: bool, host: str) -> bool:
    """Whether a domain entry covers `host` (both canonical)."""
    return host == domain or (include_subdomains and host.endswith("." + domain))


@dataclass(frozen=True)
class DomainRule:
    """A domain entry as URL checks see it: the name, and whether its subdomains count."""

    domain: str
    include_subdomains: bool = False

    def matches(self, host: str) -> bool:
        return covers(self.domain, self.include_subdomains, host)


def display(host: str) -> str:
    """The Unicode form of a canonical host for people (the ASCII form when it does not decode)."""
    try:
        return idna.decode(host) if "xn--" in host else host
    except (idna.IDNAError, UnicodeError, ValueError):
        return host
