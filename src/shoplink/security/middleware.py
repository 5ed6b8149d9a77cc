"""Where the rate limits apply: the management API (per client, per token) and failed
authentications (bearer tokens here; web sign-ins in `shoplink.web.views`).

- Every `/api/v1/` call is charged, in one Redis round trip and before the session or token is
  looked up, to its client (keyed hash of the address) and to its credential (a keyed hash of the
  bearer token, or of the session cookie for the web pages' calls).
- A failed authentication (an invalid or revoked bearer token, or a rejected web sign-in) is
  charged to the client's failure bucket and to the guessed token's (its head and its tail, see
  `RateLimits`). A client over its failure budget gets 429 for its failed attempts, never for a
  valid credential; a token whose head or tail is being guessed is refused (429) before it is
  checked, from every address. Calls without credentials are not attempts and never count.
- 429 carries `Retry-After` (seconds) and the usual JSON error (`too_many_requests`).
- Bearer tokens listed in SHOPLINK_RATE_EXEMPT_TOKENS (test and fuzzing runs) are not limited.

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


def too_many(verdict: Verdict) -> web.Response:
    return json_error(429, "too_many_requests", f"too many {verdict.limit}: retry in {verdict.retry_after_s} s",
                      {"retry_after_s": verdict.retry_after_s},
                      headers={"Retry-After": str(verdict.retry_after_s)})


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return (value.strip() or None) if scheme.lower() == "bearer" else None


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per-client and per-token API limits, and the failed-authentication buckets."""
    limits = request.app.get(RATE_LIMITS)
    if limits is None or not request.path.startswith(API_PREFIX):
        return await handler(request)
    bearer = _bearer(request)
    secret = bearer if bearer is not None else request.cookies.get(COOKIE_NAME)
    credential = limits.credential(secret) if secret else None
    if bearer is not None and credential is not None and limits.exempt(credential):
        return await handler(request)
    client = limits.keys.client(request.remote)
    verdict = await limits.before_api_call(client, credential, bearer)
    if not verdict.allowed:
        return too_many(verdict)
    try:
        return await handler(request)
    except DomainError as exc:
        if exc.status == 401 and exc.code == "invalid_token" and bearer is not None:
            verdict = await limits.failed_auth(client, bearer)
            if not verdict.allowed:
                return too_many(verdict)
        raise
