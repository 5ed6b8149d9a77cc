"""Where the rate limits apply: the management API (per token, per client) and failed sign-ins.

- Every `/api/v1/` call is charged to its client (keyed hash of the address) before the session
  or token is even looked up, and, once authenticated, to its token (a web session counts as
  the token that opened it).
- A failed authentication (an invalid or revoked bearer token, or a rejected web sign-in)
  takes a token from the client's "failures" bucket; while it is empty every authentication
  attempt from that client (bearer-token calls, POST /signin) is answered 429 before the token
  is checked, so guessing is throttled even for tokens that would be right.
- 429 carries `Retry-After` (seconds) and the usual JSON error (`too_many_requests`).

Not here: `/r/{code}` and the public viewer endpoints (they are `@fast_route` handlers and
never reach these middlewares), pages and static files. SHOPLINK_RATE_LIMITS=false turns it off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shoplink.auth.middleware import API_PREFIX
from shoplink.errors import DomainError, Handler, json_error
from shoplink.keys import PRINCIPAL, RATE_LIMITS, REDIS, SETTINGS
from shoplink.security.ratelimit import ClientKeys, Limit, RateLimiter, RateLimits, Verdict

SIGNIN_PATH = "/signin"


def too_many(verdict: Verdict, what: str) -> web.Response:
    return json_error(429, "too_many_requests", f"too many {what}: retry in {verdict.retry_after_s} s",
                      {"retry_after_s": verdict.retry_after_s},
                      headers={"Retry-After": str(verdict.retry_after_s)})


def _is_signin(request: web.Request) -> bool:
    return request.method == "POST" and request.path == SIGNIN_PATH


@web.middleware
async def client_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per-client API limit and the failed-authentication lockout (before sessions and tokens)."""
    limits = request.app.get(RATE_LIMITS)
    if limits is None:
        return await handler(request)
    api = request.path.startswith(API_PREFIX)
    signin = not api and _is_signin(request)
    if not (api or signin):
        return await handler(request)
    client = limits.keys.client(request.remote)
    if api:
        verdict = await limits.before_api_call(client, bearer="Authorization" in request.headers)
        if not verdict.allowed:
            return too_many(verdict, "requests from this client")
    else:
        verdict = await limits.before_signin(client)
        if not verdict.allowed:
            return too_many(verdict, "failed sign-ins from this client")
    try:
        response = await handler(request)
    except DomainError as exc:
        if exc.status == 401 and exc.code == "invalid_token":
            await limits.failed_auth(client)
        raise
    if signin and response.status == 401:
        await limits.failed_auth(client)
    return response


@web.middleware
async def token_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Per-token API limit, once the caller is known (runs after authentication)."""
    limits = request.app.get(RATE_LIMITS)
    principal = request.get(PRINCIPAL)
    if limits is not None and principal is not None and request.path.startswith(API_PREFIX):
        subject = str(principal.token_id) if principal.token_id is not None else f"a{principal.account_id}"
        verdict = await limits.token_call(subject)
        if not verdict.allowed:
            return too_many(verdict, "requests with this token")
    return await handler(request)


async def rate_limits_context(app: web.Application) -> AsyncIterator[None]:
    """The limits, when SHOPLINK_RATE_LIMITS is on (needs the Redis client: after `_redis`)."""
    settings = app[SETTINGS]
    if settings.rate_limits:
        app[RATE_LIMITS] = RateLimits(
            RateLimiter(app[REDIS]), ClientKeys(settings.secret_key),
            api_token=Limit(settings.rate_api_token_per_s, settings.rate_api_token_burst),
            api_client=Limit(settings.rate_api_client_per_s, settings.rate_api_client_burst),
            auth_failures=Limit(settings.rate_auth_fail_per_s, settings.rate_auth_fail_burst))
    yield
