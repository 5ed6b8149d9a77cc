"""A small authoritative DNS server on 127.0.0.1 for tests (UDP; dnspython builds the messages).

It answers from a zone the tests edit (TXT, A and AAAA records), with NXDOMAIN for names that do
not exist and NOERROR/no answer for names that exist without the asked type; a name can also be
made to time out (the query is dropped) or to fail (SERVFAIL). It runs in its own thread, so it
answers while a test blocks its event loop or waits on a subprocess.

`shared()` is the one server of the test process: the `settings` fixture points
SHOPLINK_DNS_NAMESERVERS at it, so no test ever asks a DNS server outside this machine.
"""

from __future__ import annotations

import socket
import threading
from collections import defaultdict

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset


class DnsServer:
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], list[str]] = defaultdict(list)
        self._behaviour: dict[str, str] = {}
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port: int = self._sock.getsockname()[1]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-dns", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """For SHOPLINK_DNS_NAMESERVERS."""
        return f"127.0.0.1:{self.port}"

    # ---- the zone ------------------------------------------------------------------------

    @staticmethod
    def _name(name: str) -> str:
        return name.rstrip(".").lower()

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._behaviour.clear()
            self.queries.clear()

    def add(self, name: str, rdtype: str, *values: str) -> None:
        with self._lock:
            self._records[(self._name(name), rdtype)].extend(values)

    def set(self, name: str, rdtype: str, *values: str) -> None:
        """Replace the records of one type (no values: remove them)."""
        with self._lock:
            key = (self._name(name), rdtype)
            self._records.pop(key, None)
            if values:
                self._records[key] = list(values)

    def add_txt(self, name: str, *values: str) -> None:
        self.add(name, "TXT", *values)

    def set_txt(self, name: str, *values: str) -> None:
        self.set(name, "TXT", *values)

    def set_address(self, name: str, *ips: str) -> None:
        """A and AAAA records of `name` (replacing its others)."""
        self.set(name, "A", *[ip for ip in ips if ":" not in ip])
        self.set(name, "AAAA", *[ip for ip in ips if ":" in ip])

    def misbehave(self, name: str, how: str | None) -> None:
        """`timeout` (drop the queries for `name`), `servfail`, or None (answer normally)."""
        with self._lock:
            if how is None:
                self._behaviour.pop(self._name(name), None)
            else:
                self._behaviour[self._name(name)] = how

    def asked(self, name: str) -> int:
        """How many queries for `name` arrived."""
        with self._lock:
            return sum(1 for qname, _ in self.queries if qname == self._name(name))

    # ---- answering -----------------------------------------------------------------------

    def _exists(self, name: str) -> bool:
        return any(qname == name or qname.endswith("." + name) for qname, _ in self._records)

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        qname = self._name(question.name.to_text())
        qtype = dns.rdatatype.to_text(question.rdtype)
        with self._lock:
            self.queries.append((qname, qtype))
            how = self._behaviour.get(qname)
            values = list(self._records.get((qname, qtype), ()))
            exists = self._exists(qname)
        if how == "timeout":
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if how == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif values:
            if qtype == "TXT":
                rdatas: list[dns.rdata.Rdata] = [
                    dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, [v.encode()])
                          for v in values]
            else:
                rdatas = [dns.rdata.from_text(dns.rdataclass.IN, question.rdtype, v) for v in values]
            response.answer.append(dns.rrset.from_rdata_list(question.name, 60, rdatas))
        elif not exists:
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire_out: bytes = response.to_wire()
        return wire_out

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                reply = self.answer(data)
            except Exception:  # a malformed query: no answer, like a real server under attack
                continue
            if reply is not None:
                self._sock.sendto(reply, peer)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=2)
        self._sock.close()


_shared: DnsServer | None = None
_shared_lock = threading.Lock()


def shared() -> DnsServer:
    """The test process's DNS server (started on first use)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DnsServer()
        return _shared
