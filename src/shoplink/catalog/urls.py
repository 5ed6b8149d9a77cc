"""Product URLs: the rules that keep every redirect on a shop's own domains.

A product URL is accepted only when it is absolute, https (http only in development),
carries no user-info, and its host is one of the shop's domains (or a subdomain of one
whose entry allows subdomains). Hosts are compared in their canonical IDNA (ASCII) form
(shoplink.domains.names), and the stored URL is rebuilt from the parsed parts so what is stored
is exactly what was checked. Whatever the input, the answer is a URL or UrlRejected: never
another exception (a malformed URL is the sender's error, not ours).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

from shoplink.domains.names import DomainRule, NameRefused, canonical

__all__ = ["MAX_URL_LENGTH", "DomainRule", "UrlRejected", "check_url_on_domains", "host_allowed",
           "normalize_host", "normalize_url"]

_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
MAX_URL_LENGTH = 2048


class UrlRejected(ValueError):
    """The message says why, for a person."""


def normalize_host(raw: str, *, allow_local: bool = False) -> str:
    """Lower-case IDNA form of a host name; raises UrlRejected when it is not a usable name."""
    try:
        return canonical(raw, allow_local=allow_local)
    except NameRefused as exc:
        raise UrlRejected(exc.message) from None


def normalize_url(raw: str, *, allow_http: bool, field: str = "url") -> tuple[str, str]:
    """Return (canonical URL, ASCII host) or raise UrlRejected."""
    if not isinstance(raw, str) or not raw:
        raise UrlRejected("must be a non-empty string")
    if len(raw) > MAX_URL_LENGTH:
        raise UrlRejected(f"must be at most {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(raw):
        raise UrlRejected("must not contain spaces, control characters or backslashes")
    try:
        # Raises ValueError for a bad IPv6 literal ("[shop.example]", "[::1") and for hosts that
        # NFKC-normalize into URL delimiters (a fullwidth solidus or number sign, "℀").
        parts = urlsplit(raw)
        hostname = parts.hostname
    except ValueError:
        raise UrlRejected("is not a valid URL (malformed host)") from None
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UrlRejected(f"scheme must be {' or '.join(schemes)}")
    if not parts.netloc or hostname is None:
        raise UrlRejected("must be an absolute URL with a host")
    if "@" in parts.netloc:
        raise UrlRejected("must not contain user info (user@host)")
    try:
        port = parts.port
    except ValueError:
        raise UrlRejected("has an invalid port") from None
    host = normalize_host(hostname, allow_local=allow_http)
    shown = f"[{host}]" if ":" in host else host  # an IPv6 literal (development mode only)
    netloc = shown if port is None else f"{shown}:{port}"
    try:
        path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        query = quote(parts.query, safe="/%:@!$&'()*+,;=?-._~")
        fragment = quote(parts.fragment, safe="/%:@!$&'()*+,;=?-._~")
    except UnicodeError:  # a lone surrogate: no JSON or CSV parser here produces one, but never 500
        raise UrlRejected("is not valid text") from None
    return urlunsplit((parts.scheme.lower(), netloc, path, query, fragment)), host


def host_allowed(host: str, rules: Iterable[DomainRule]) -> bool:
    return any(rule.matches(host) for rule in rules)


def check_url_on_domains(raw: str, rules: Iterable[DomainRule], *, allow_http: bool) -> str:
    """Canonical URL when it is on one of `rules`' domains; UrlRejected otherwise."""
    url, host = normalize_url(raw, allow_http=allow_http)
    rules = list(rules)
    if not host_allowed(host, rules):
        names = ", ".join(r.domain for r in rules) or "(none)"
        raise UrlRejected(f"host {host!r} is not one of the shop's domains: {names}")
    return url
