"""Where the rate limits apply: the management API (per client, per token) and failed sign-ins.

- Every `/api/v1/` call is charged, in one Redis round trip and before the session or token is
  looked up, to its client (keyed hash of the address) and to its credential (a keyed hash of the
  bearer token, or of the session cookie for the web pages' calls).
- A failed authentication (an invalid or revoked bearer token, or a rejected web sign-in) takes
  a token from the client's "failures" bucket; while it is empty every authentication attempt
  from that client (bearer-token calls, POST /signin) is answered 429 before the token is
  checked, so guessing is throttled even for tokens that would be right. Calls without any
  credentials are not attempts and never count.
- 429 carries `Retry-After` (seconds) and the usual JSON error (`too_many_requests`).

Not here: `/r/{code}` and the public viewer endpoints (they are `@fast_route` handlers and never
reach this middleware), pages and static files. SHOPLINK_RATE_LIMITS=false turns it all off.
"""

from __future__ import annotations

from aiohttp import web

from shoplink.auth.middleware import API_PREFIX
from shoplink.errors import DomainError, Handler, json_error
from shoplink.keys import RATE_LIMITS
from shoplink.security.ratelimit import Verdict
from shoplink.web.sessions import COOKIE_NAME

SIGNIN_PATH = "/signin"


def too_many(verdict: Verdict) -> web.Response:
    return json_error(429, "too_many_requests", f"too many {verdict.limit}: retry in {verdict.retry_after_s} s",
                      {"retry_after_s": verdict.retry_after_s},
                      headers={"Retry-After": str(verdict.retry_after_s)})


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per-client and per-token API limits and the failed-authentication lockout."""
    limits = request.app.get(RATE_LIMITS)
    if limits is None:
        return await handler(request)
    path = request.path
    if path.startswith(API_PREFIX):
        signin = False
        client = limits.keys.client(request.remote)
        bearer = _bearer(request)
        secret = bearer if bearer is not None else request.cookies.get(COOKIE_NAME)
        verdict = await limits.before_api_call(
            client, limits.credential(secret) if secret else None,
            bearer="Authorization" in request.headers)
    elif path == SIGNIN_PATH and request.method == "POST":
        signin = True
        client = limits.keys.client(request.remote)
        verdict = await limits.before_signin(client)
    else:
        return await handler(request)
    if not verdict.allowed:
        return too_many(verdict)
    try:
        response = await handler(request)
    except DomainError as exc:
        if exc.status == 401 and exc.code == "invalid_token":
            await limits.failed_auth(client)
        raise
    if signin and response.status == 401:
        await limits.failed_auth(client)
    return response
