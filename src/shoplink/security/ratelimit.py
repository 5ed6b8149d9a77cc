"""Token buckets kept in Redis, shared by every process and instance.

One Lua script checks (and, when every bucket allows it, charges) one or more buckets atomically,
with Redis' clock (`TIME`) so instances with skewed clocks agree. A bucket is a hash
{tokens, ts} that refills at `rate` tokens per second up to `burst`; it expires once it would be
full again, so idle clients and tokens leave nothing behind. Buckets checked by one script call
share a hash tag, so the script runs unchanged on a Redis Cluster; calls on other slots go out in
the same pipeline (one round trip on a single Redis).

Keys never hold a raw client address or credential: a client is the keyed hash (HMAC-SHA256
under a key derived from SHOPLINK_SECRET_KEY) of its IPv4 address or IPv6 /64, a credential the
keyed hash of the bearer token or session cookie, both truncated to 32 hex digits.

When Redis is unreachable or slow the limiter fails open (requests go through, unlimited) and
logs it at most once per `_LOG_EVERY_S`; it then skips Redis for `_PAUSE_S` so an outage does not
add a timeout to every management call. Redirects and viewer endpoints never reach this code.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisClusterException, RedisError

from shoplink.redis import AnyRedis

log = logging.getLogger(__name__)

PREFIX = "shoplink:rl:"
_TIMEOUT_S = 0.5
_PAUSE_S = 1.0
_LOG_EVERY_S = 10.0

# KEYS: the buckets. ARGV: per bucket (rate per second, burst, need, cost).
# A bucket allows the call when it holds at least `need` tokens; when all allow it, each is
# charged `cost` (never below zero). Returns {allowed (0/1), retry_after_ms, the refusing bucket (1-based)}.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state, denied, retry, which = {}, false, 0, 0
for i, key in ipairs(KEYS) do
  local rate, burst = tonumber(ARGV[i * 4 - 3]), tonumber(ARGV[i * 4 - 2])
  local need = tonumber(ARGV[i * 4 - 1])
  local held = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens, ts = tonumber(held[1]), tonumber(held[2])
  if tokens == nil or ts == nil then tokens, ts = burst, now end
  tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
  state[i] = tokens
  if tokens < need and (need - tokens) / rate >= retry then
    denied, retry, which = true, (need - tokens) / rate, i
  end
end
if denied then return {0, math.ceil(retry * 1000), which} end
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[i * 4 - 3]), tonumber(ARGV[i * 4 - 2]), tonumber(ARGV[i * 4])
  if cost > 0 then  -- a look without a charge writes nothing
    local tokens = math.max(0, state[i] - cost)
    redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(now))
    redis.call('PEXPIRE', key, math.ceil((burst - tokens) / rate * 1000) + 1000)
  end
end
return {1, 0, 0}
"""


@dataclass(frozen=True)
class Limit:
    """Refill `rate` tokens per second, hold at most `burst`."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Charge:
    """One bucket in a check: allowed when it holds `need` tokens, then `cost` taken from it."""

    key: str
    limit: Limit
    need: int = 1
    cost: int = 1
    name: str = "requests"  # what is limited, as the 429 names it


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int  # whole seconds, at least 1 when not allowed
    limit: str = ""  # the refusing charge's name


ALLOW = Verdict(True, 0)


class ClientKeys:
    """Keyed hashes of client addresses (no raw address is ever stored)."""

    def __init__(self, secret_key: str) -> None:
        self._key = hmac.digest(secret_key.encode(), b"shoplink:ratelimit-client", "sha256")

    def client(self, remote: str | None) -> str:
        network = remote or "unknown"
        try:
            address = ipaddress.ip_address(network)
        except ValueError:
            pass
        else:
            if address.version == 6 and address.ipv4_mapped is None:
                network = str(ipaddress.ip_network(f"{address}/64", strict=False))
            elif address.version == 6 and address.ipv4_mapped is not None:
                network = str(address.ipv4_mapped)
        return hmac.digest(self._key, network.encode(), "sha256").hex()[:32]


Group = Sequence[Charge]


class RateLimiter:
    """Checks buckets in Redis; fails open when Redis does not answer in time.

    `check` takes groups of charges: each group is one atomic script call (its keys must share a
    hash tag); several groups go out in one pipeline, one round trip on a single Redis (concurrent calls
    on a cluster, whose pipelines refuse EVALSHA).
    """

    def __init__(self, redis: AnyRedis, *, timeout_s: float = _TIMEOUT_S) -> None:
        self._redis = redis
        self._sha = hashlib.sha1(_LUA.encode()).hexdigest()
        self._timeout_s = timeout_s
        self._skip_until = 0.0
        self._logged_at = -math.inf

    async def check(self, *groups: Group) -> Verdict:
        now = time.monotonic()
        if now < self._skip_until:
            return ALLOW
        try:
            async with asyncio.timeout(self._timeout_s):
                try:
                    replies = await self._run(groups)
                except NoScriptError:  # a restarted or new Redis: load the script once, retry
                    await self._redis.script_load(_LUA)
                    replies = await self._run(groups)
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            self._skip_until = now + _PAUSE_S
            if now - self._logged_at >= _LOG_EVERY_S:
                self._logged_at = now
                log.warning("rate limits not enforced: Redis unavailable (failing open)",
                            extra={"error": repr(exc)})
            return ALLOW
        verdict = ALLOW
        for group, (allowed, retry_ms, which) in zip(groups, replies, strict=True):
            seconds = max(1, math.ceil(int(retry_ms) / 1000))
            if not int(allowed) and (verdict.allowed or seconds > verdict.retry_after_s):
                verdict = Verdict(False, seconds, group[int(which) - 1].name)
        return verdict

    async def _run(self, groups: Sequence[Group]) -> list[Any]:
        if len(groups) == 1:
            return [await self._redis.evalsha(self._sha, *self._call(groups[0]))]
        if isinstance(self._redis, RedisCluster):  # its pipelines refuse EVALSHA: one call per slot
            return list(await asyncio.gather(*(self._redis.evalsha(self._sha, *self._call(group))
                                               for group in groups)))
        pipe = self._redis.pipeline(transaction=False)
        for group in groups:
            pipe.evalsha(self._sha, *self._call(group))
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    @staticmethod
    def _call(group: Group) -> list[Any]:
        call: list[Any] = [len(group), *(c.key for c in group)]
        for c in group:
            call += [c.limit.rate, c.limit.burst, c.need, c.cost]
        return call


def client_key(client_hash: str, kind: str) -> str:
    """A bucket of one client; every bucket of a client shares its hash tag (one cluster slot)."""
    return f"{PREFIX}c:{{{client_hash}}}:{kind}"


def token_key(subject: str) -> str:
    """The bucket of one credential (API token or web session), by its keyed hash."""
    return f"{PREFIX}t:{{{subject}}}"


class RateLimits:
    """The limiter plus the configured limits, as the middleware uses them."""

    def __init__(self, limiter: RateLimiter, secret_key: str, *, api_token: Limit, api_client: Limit,
                 auth_failures: Limit) -> None:
        self.limiter = limiter
        self.keys = ClientKeys(secret_key)
        self._credential_key = hmac.digest(secret_key.encode(), b"shoplink:ratelimit-credential", "sha256")
        self.api_token = api_token
        self.api_client = api_client
        self.auth_failures = auth_failures

    def credential(self, value: str) -> str:
        """A bucket subject for a bearer token or session cookie (a keyed hash: never the secret)."""
        return hmac.digest(self._credential_key, value.encode(), "sha256").hex()[:32]

    async def before_api_call(self, client: str, credential: str | None, *, bearer: bool) -> Verdict:
        """Charge the client and the credential (one round trip); while the client is locked out
        after failed authentications, a bearer-token attempt is refused before the token is checked."""
        own = [Charge(client_key(client, "api"), self.api_client, name="requests from this client")]
        if bearer:
            own.append(self._lockout(client))
        if credential is None:
            return await self.limiter.check(own)
        return await self.limiter.check(
            own, [Charge(token_key(credential), self.api_token, name="requests with this token")])

    async def before_signin(self, client: str) -> Verdict:
        return await self.limiter.check([self._lockout(client)])

    async def failed_auth(self, client: str) -> None:
        await self.limiter.check([Charge(client_key(client, "fail"), self.auth_failures, need=0, cost=1)])

    def _lockout(self, client: str) -> Charge:
        return Charge(client_key(client, "fail"), self.auth_failures, need=1, cost=0,
                      name="failed authentications from this client")
