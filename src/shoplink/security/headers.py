"""Security headers on everything the app renders besides the public fast routes.

Pages (any `text/html` response: the signed-in pages, sign-in, the public viewer pages, error
pages) get a strict Content-Security-Policy: scripts and styles only from our own origin (no
inline script, no inline style, no eval), no plugins, no framing by other sites
(`frame-ancestors 'none'` plus `X-Frame-Options: DENY` for old browsers: no page here is meant
to be framed, shops embed the player *script*, not a page), no `<base>` rewriting, forms posting
only to us. Product images may come from the shops' own sites (https:, and http: for development
with SHOPLINK_ALLOW_HTTP_URLS).

Every response that passes through here also gets `X-Content-Type-Options: nosniff` and a
`Referrer-Policy`. `/r/{code}` and the viewer timeline are `@fast_route` handlers: they skip this
middleware and cost nothing more (the redirect sets its own headers).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from aiohttp import web

from shoplink.errors import Handler

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https: http:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
])

PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_ALL_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _add(headers: MutableMapping[str, str], content_type: str | None) -> None:
    wanted = PAGE_HEADERS if content_type == "text/html" else _ALL_HEADERS
    for name, value in wanted.items():
        headers.setdefault(name, value)


@web.middleware
async def security_headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own pages (404, 405, redirects) are raised
        _add(exc.headers, exc.content_type)
        raise
    if not response.prepared:  # a streamed response (SSE) has sent its headers already
        _add(response.headers, response.content_type)
    return response
