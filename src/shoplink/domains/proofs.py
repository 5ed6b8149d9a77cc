"""Looking for a domain's proof: a DNS TXT record, or a file served over HTTPS.

DNS goes through dnspython's asyncio resolver (nothing blocks the event loop), asking the
servers of SHOPLINK_DNS_NAMESERVERS (empty: the system's, from /etc/resolv.conf) with no cache,
so a check sees what the domain publishes now.

The HTTPS file is fetched defensively, because the host is named by a seller (SSRF):
- the host's addresses come from the same resolver, and every one must be a public address
  (no loopback, private, link-local, shared, reserved or multicast address; development mode,
  SHOPLINK_ALLOW_HTTP_URLS=true, lifts this) — and the connection goes to exactly the addresses
  that were checked (a pinned resolver), so a second DNS answer cannot point it elsewhere;
- TLS is verified for the domain's name (the system trust store, or only the CA bundle of
  SHOPLINK_DOMAIN_PROOF_CA_FILE), on port SHOPLINK_DOMAIN_PROOF_HTTPS_PORT (443);
- one overall timeout, at most MAX_BODY_BYTES read, no proxy from the environment, no cookies,
  and redirects followed only within the same https origin (at most MAX_REDIRECTS).
Both settings are the operator's (environment), never a request's: no input of a seller can
point a check at another host, port or trust store.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from aiohttp.abc import AbstractResolver, ResolveResult

from shoplink.domains.models import DNS_TXT, HTTPS_FILE, CheckResult, ProofAttempt, https_url, proof_value, txt_name

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 4096
MAX_REDIRECTS = 3
USER_AGENT = "shoplink-domain-check/1 (domain ownership proof)"


def public_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is on the public internet (what a proof fetch may connect to)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _PinnedResolver(AbstractResolver):
    """aiohttp's resolver for one fetch: the checked addresses of the one host, nothing else."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"the proof check connects to {self._host} only")
        return [{"hostname": host, "host": ip, "port": port,
                 "family": socket.AF_INET6 if ":" in ip else socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST} for ip in self._addresses]

    async def close(self) -> None:
        return None


def make_resolver(nameservers: tuple[str, ...], timeout_s: float) -> dns.asyncresolver.Resolver:
    """A resolver asking `nameservers` (`host:port` items; empty: the system's resolvers)."""
    if nameservers:
        resolver = dns.asyncresolver.Resolver(configure=False)
        servers: list[dns.nameserver.Nameserver] = []
        for item in nameservers:
            host, _, port = item.rpartition(":")
            servers.append(dns.nameserver.Do53Nameserver(host.strip("[]"), int(port)))
        resolver.nameservers = servers
    else:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            log.error("no DNS resolver configured (/etc/resolv.conf): set SHOPLINK_DNS_NAMESERVERS; "
                      "every domain check fails until then")
            resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.timeout = timeout_s
    resolver.lifetime = timeout_s
    resolver.cache = None
    return resolver


class ProofChecker:
    def __init__(self, *, nameservers: tuple[str, ...] = (), timeout_s: float = 5.0,
                 https_port: int = 443, ca_file: Path | None = None,
                 allow_private: bool = False) -> None:
        self._resolver = make_resolver(nameservers, timeout_s)
        self._timeout_s = timeout_s
        self.https_port = https_port
        self._ssl = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        self._allow_private = allow_private

    async def check(self, domain: str, token: str, *, include_subdomains: bool) -> CheckResult:
        """Look for the TXT record, then (a single host only) for the HTTPS file."""
        expected = proof_value(token)
        attempts = [await self.check_txt(domain, expected)]
        if not attempts[0].ok and not include_subdomains:
            attempts.append(await self.check_https(domain, expected))
        return CheckResult(tuple(attempts))

    # ---- DNS TXT -------------------------------------------------------------------------

    async def check_txt(self, domain: str, expected: str) -> ProofAttempt:
        name = txt_name(domain)
        try:
            answer = await self._resolver.resolve(name, dns.rdatatype.TXT, search=False,
                                                  lifetime=self._timeout_s)
        except dns.resolver.NXDOMAIN:
            return ProofAttempt(DNS_TXT, "nxdomain", f"{name} does not exist (NXDOMAIN)")
        except dns.resolver.NoAnswer:
            return ProofAttempt(DNS_TXT, "no_record", f"{name} has no TXT record")
        except dns.exception.Timeout:
            return ProofAttempt(DNS_TXT, "timeout", f"no DNS answer for {name} within {self._timeout_s:g} s")
        except dns.resolver.NoNameservers:
            return ProofAttempt(DNS_TXT, "dns_error", f"the DNS servers failed to answer for {name} (SERVFAIL)")
        except dns.exception.DNSException as exc:
            return ProofAttempt(DNS_TXT, "dns_error", f"DNS lookup of {name} failed: {exc}")
        values = []
        for rdata in answer:
            strings: tuple[bytes, ...] = getattr(rdata, "strings", ())
            values.append(b"".join(strings).decode("utf-8", "replace").strip())
        if expected in values:
            return ProofAttempt(DNS_TXT, None, f"TXT record {name} holds the token")
        shown = ", ".join(repr(v[:80]) for v in values[:5])
        return ProofAttempt(DNS_TXT, "wrong_value",
                            f"{name} has {len(values)} TXT record(s) ({shown}); none is {expected!r}")

    # ---- HTTPS file ----------------------------------------------------------------------

    async def _addresses(self, domain: str) -> list[str] | ProofAttempt:
        found: list[str] = []
        failures: list[str] = []
        for rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            try:
                answer = await self._resolver.resolve(domain, rdtype, search=False, lifetime=self._timeout_s)
            except dns.resolver.NXDOMAIN:
                return ProofAttempt(HTTPS_FILE, "nxdomain", f"{domain} does not exist (NXDOMAIN)")
            except dns.resolver.NoAnswer:
                continue
            except dns.exception.Timeout:
                failures.append("timeout")
                continue
            except dns.exception.DNSException:
                failures.append("dns_error")
                continue
            found.extend(rdata.to_text() for rdata in answer)
        if not found:
            if failures:
                return ProofAttempt(HTTPS_FILE, failures[0], f"the addresses of {domain} could not be resolved")
            return ProofAttempt(HTTPS_FILE, "no_address", f"{domain} has no A or AAAA record")
        if not self._allow_private:
            refused = [a for a in found if not public_address(ipaddress.ip_address(a))]
            if refused:
                return ProofAttempt(HTTPS_FILE, "private_address",
                                    f"{domain} resolves to a non-public address ({refused[0]}): not fetched")
        return found

    async def check_https(self, domain: str, expected: str) -> ProofAttempt:
        addresses = await self._addresses(domain)
        if isinstance(addresses, ProofAttempt):
            return addresses
        url = https_url(domain, self.https_port)
        connector = aiohttp.TCPConnector(resolver=_PinnedResolver(domain, addresses), ssl=self._ssl,
                                         use_dns_cache=False, force_close=True, limit=1)
        try:
            async with aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                    trust_env=False, cookie_jar=aiohttp.DummyCookieJar(),
                    headers={"User-Agent": USER_AGENT, "Accept": "text/plain"}) as session:
                return await self._fetch(session, domain, url, expected)
        except TimeoutError:
            return ProofAttempt(HTTPS_FILE, "https_timeout", f"{url} did not answer within {self._timeout_s:g} s")
        except (aiohttp.ClientSSLError, ssl.SSLError) as exc:
            return ProofAttempt(HTTPS_FILE, "https_tls", f"TLS with {domain} failed: {exc}")
        except (aiohttp.ClientError, OSError) as exc:
            return ProofAttempt(HTTPS_FILE, "https_unreachable", f"{url} could not be fetched: {exc}")

    async def _fetch(self, session: aiohttp.ClientSession, domain: str, url: str,
                     expected: str) -> ProofAttempt:
        first = url
        for _ in range(MAX_REDIRECTS + 1):
            async with session.get(url, allow_redirects=False) as resp:
                if resp.status in (301, 302, 303, 307, 308):
                    target = urljoin(url, resp.headers.get("Location", ""))
                    parts = urlsplit(target)
                    if (parts.scheme != "https" or parts.hostname != domain
                            or (parts.port or 443) != self.https_port):
                        return ProofAttempt(HTTPS_FILE, "https_redirect",
                                            f"{first} redirects off its origin (to {target[:200]!r})")
                    url = target
                    continue
                if resp.status != 200:
                    return ProofAttempt(HTTPS_FILE, "https_status", f"{url} answered HTTP {resp.status}")
                body = await resp.content.read(MAX_BODY_BYTES + 1)
                if len(body) > MAX_BODY_BYTES:
                    return ProofAttempt(HTTPS_FILE, "https_too_large",
                                        f"{url} is larger than {MAX_BODY_BYTES} bytes")
                lines = [line.strip() for line in body.decode("utf-8", "replace").splitlines()]
                if expected in lines:
                    return ProofAttempt(HTTPS_FILE, None, f"{url} holds the token")
                return ProofAttempt(HTTPS_FILE, "https_wrong_value", f"{url} does not hold {expected!r}")
        return ProofAttempt(HTTPS_FILE, "https_redirect", f"{first} redirects more than {MAX_REDIRECTS} times")
