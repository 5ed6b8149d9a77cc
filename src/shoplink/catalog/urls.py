"""Domain names and product URLs: the rules that keep every redirect on a shop's own domains.

A product URL is accepted only when it is absolute, https (http only in development),
carries no user-info, and its host is one of the shop's domains (or a subdomain of one
whose entry allows subdomains). Hosts are compared in their IDNA (ASCII) form, and the
stored URL is rebuilt from the parsed parts so what is stored is exactly what was checked.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_FORBIDDEN_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
MAX_URL_LENGTH = 2048


class UrlRejected(ValueError):
    """The message says why, for a person."""


@dataclass(frozen=True)
class DomainRule:
    domain: str
    include_subdomains: bool = False

    def matches(self, host: str) -> bool:
        if host == self.domain:
            return True
        return self.include_subdomains and host.endswith("." + self.domain)


def normalize_host(raw: str, *, allow_local: bool = False) -> str:
    """Lower-case IDNA form of a host name; raises UrlRejected when it is not a usable name."""
    host = raw.strip().rstrip(".").lower()
    if not host:
        raise UrlRejected("host is empty")
    if allow_local and (host == "localhost" or _is_ip(host)):
        return host
    if _is_ip(host) or host.startswith("["):
        raise UrlRejected("IP addresses are not accepted as shop domains")
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UrlRejected(f"{raw!r} is not a valid international domain name") from None
    labels = ascii_host.split(".")
    if len(labels) < 2 or len(ascii_host) > 253 or not all(_LABEL.match(lb) for lb in labels):
        raise UrlRejected(f"{raw!r} is not a valid domain name")
    if labels[-1].isdigit():
        raise UrlRejected(f"{raw!r} is not a valid domain name")
    return ascii_host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def normalize_url(raw: str, *, allow_http: bool, field: str = "url") -> tuple[str, str]:
    """Return (canonical URL, ASCII host) or raise UrlRejected."""
    if not isinstance(raw, str) or not raw:
        raise UrlRejected("must be a non-empty string")
    if len(raw) > MAX_URL_LENGTH:
        raise UrlRejected(f"must be at most {MAX_URL_LENGTH} characters")
    if _FORBIDDEN_CHARS.search(raw):
        raise UrlRejected("must not contain spaces, control characters or backslashes")
    parts = urlsplit(raw)
    schemes = ("https", "http") if allow_http else ("https",)
    if parts.scheme.lower() not in schemes:
        raise UrlRejected(f"scheme must be {' or '.join(schemes)}")
    if not parts.netloc or parts.hostname is None:
        raise UrlRejected("must be an absolute URL with a host")
    if "@" in parts.netloc:
        raise UrlRejected("must not contain user info (user@host)")
    try:
        port = parts.port
    except ValueError:
        raise UrlRejected("has an invalid port") from None
    host = normalize_host(parts.hostname, allow_local=allow_http)
    netloc = host if port is None else f"{host}:{port}"
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=?-._~")
    fragment = quote(parts.fragment, safe="/%:@!$&'()*+,;=?-._~")
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
