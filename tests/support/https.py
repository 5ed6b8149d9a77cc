"""An HTTPS server on loopback for the HTTPS-file domain proof, with a test CA (trustme).

The application is pointed at it only through operator settings that exist in production too:
SHOPLINK_DOMAIN_PROOF_HTTPS_PORT (its port), SHOPLINK_DOMAIN_PROOF_CA_FILE (the test CA) and
the test DNS server (the shop's domain resolving to 127.0.0.1). Loopback is a private address,
so the fetch only happens in development mode; in production mode the same setup must end in
`private_address` without a single request reaching this server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class HttpsProofServer:
    """Serves `replies[path]` (404 otherwise) over TLS for the names given to `start`."""

    def __init__(self, ca: trustme.CA | None = None) -> None:
        self.ca = ca or trustme.CA()
        self.replies: dict[str, Reply] = {}
        self.requests: list[tuple[str, str]] = []  # (Host header, path)
        self._server: TestServer | None = None

    def write_ca(self, directory: Path) -> Path:
        path = directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(path))
        return path

    async def start(self, *names: str) -> int:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ca.issue_cert(*names).configure_cert(context)
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server(ssl=context)
        port = self._server.port
        assert port is not None
        return port

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.host, request.path))
        reply = self.replies.get(request.path)
        if reply is None:
            return web.Response(status=404, text="not found")
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
