"""Token buckets kept in Redis, shared by every process and instance.

One Lua script checks (and, when every bucket allows it, charges) one or more buckets atomically,
with Redis' clock (`TIME`) so instances with skewed clocks agree. A bucket is a hash
{tokens, ts} that refills at `rate` tokens per second up to `burst`; it expires once it would be
full again, so idle clients and tokens leave nothing behind. Buckets checked by one script call
share a hash tag, so the script runs unchanged on a Redis Cluster; calls on other slots go out in
the same pipeline (one round trip on a single Redis).

Keys never hold a raw client address or credential: a client is the keyed hash (HMAC-SHA256
under a key derived from SHOPLINK_SECRET_KEY) of its IPv4 address or IPv6 /64, a credential the
keyed hash of the bearer token or session cookie, a guessed token the keyed hash of a part of
it, all truncated to 32 hex digits.

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

from shoplink.auth.service import TOKEN_PREFIX  # API tokens: slk_ + 43 url-safe characters
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

    @property
    def one_node(self) -> bool:
        """One Redis (not a cluster): buckets of any slots can share a script call."""
        return not isinstance(self._redis, RedisCluster)

    async def check(self, *groups: Group) -> Verdict:
        now = time.monotonic()
        if now < self._skip_until:
            return ALLOW
        try:
            async with asyncio.timeout(self._timeout_s):
                replies = await self._run(groups)
                missing = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
                if missing:  # a restarted or new node: load the script, run again only what it refused
                    await self._redis.script_load(_LUA)  # (the others already charged their buckets)
                    for n, reply in zip(missing, await self._run([groups[n] for n in missing]), strict=True):
                        replies[n] = reply
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
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
        """Each group's reply, or the exception it raised (a node may lack the script while the
        others ran theirs)."""
        if len(groups) == 1:
            try:
                return [await self._redis.evalsha(self._sha, *self._call(groups[0]))]
            except NoScriptError as exc:
                return [exc]
        if isinstance(self._redis, RedisCluster):  # its pipelines refuse EVALSHA: one call per slot
            return list(await asyncio.gather(*(self._redis.evalsha(self._sha, *self._call(group))
                                               for group in groups), return_exceptions=True))
        pipe = self._redis.pipeline(transaction=False)
        for group in groups:
            pipe.evalsha(self._sha, *self._call(group))
        replies: list[Any] = await pipe.execute(raise_on_error=False)
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


def target_key(subject: str) -> str:
    """The failure bucket of one guessed token neighbourhood (see `RateLimits.targets`). They all
    share one hash tag, so a token's head and tail are checked in one script call (on a Redis
    Cluster they live on one node: a small hash each, touched only by management calls)."""
    return f"{PREFIX}g:{{guess}}:{subject}"


TARGET_CHARS = 8  # characters of a token's head and of its tail that name what is guessed


class RateLimits:
    """The limiter plus the configured limits, as the middleware and the sign-in use them.

    Failed authentications are kept in two kinds of buckets, so that they hurt the guesser and
    nobody else:
    - per client (keyed hash of the address): once empty, that client's *failed* attempts are
      answered 429 instead of 401. It never refuses a valid credential: behind a load balancer
      every client shares one address, and bad tokens from one of them must not lock out the
      integrations sending good ones.
    - per guessed token: the first and the last `TARGET_CHARS` characters of the presented
      token. Once either bucket is empty, every attempt with that head (or tail) is refused
      before the token is checked, valid or not, from any address. This is the bound on
      guessing: completing a token of which a part leaked (a screenshot, a truncated log) takes
      the same head or tail over and over. Blind guessing needs no bound (256 random bits; each
      guess costs one request of the client's API budget); it spreads over 2^48 buckets and
      never meets a real token's.
    Tokens in `exempt` (SHOPLINK_RATE_EXEMPT_TOKENS, for test and fuzzing runs) skip every limit.
    """

    def __init__(self, limiter: RateLimiter, secret_key: str, *, api_token: Limit, api_client: Limit,
                 auth_failures: Limit, exempt_tokens: Sequence[str] = ()) -> None:
        self.limiter = limiter
        self.keys = ClientKeys(secret_key)
        self._credential_key = hmac.digest(secret_key.encode(), b"shoplink:ratelimit-credential", "sha256")
        self._target_key = hmac.digest(secret_key.encode(), b"shoplink:ratelimit-target", "sha256")
        self.api_token = api_token
        self.api_client = api_client
        self.auth_failures = auth_failures
        self._exempt = frozenset(self.credential(token) for token in exempt_tokens)

    def credential(self, value: str) -> str:
        """A bucket subject for a bearer token or session cookie (a keyed hash: never the secret)."""
        return hmac.digest(self._credential_key, value.encode(), "sha256").hex()[:32]

    def exempt(self, credential: str) -> bool:
        """Is this credential hash (`credential(token)`) one of SHOPLINK_RATE_EXEMPT_TOKENS?"""
        return credential in self._exempt

    def targets(self, token: str) -> list[str]:
        """The guessed-token buckets of a presented token: keyed hashes of its head and tail
        (none for something that is not shaped like a token: it cannot be anybody's)."""
        body = token[len(TOKEN_PREFIX):] if token.startswith(TOKEN_PREFIX) else ""
        if len(body) < 2 * TARGET_CHARS:
            return []
        return [target_key(hmac.digest(self._target_key, part.encode(), "sha256").hex()[:32])
                for part in (f"head:{body[:TARGET_CHARS]}", f"tail:{body[-TARGET_CHARS:]}")]

    async def before_api_call(self, client: str, credential: str | None, bearer: str | None) -> Verdict:
        """Charge the client and the credential (one round trip); a bearer token whose head or
        tail is being guessed is refused before it is checked."""
        groups: list[Group] = [[Charge(client_key(client, "api"), self.api_client,
                                       name="requests from this client")]]
        if credential is not None:
            groups.append([Charge(token_key(credential), self.api_token, name="requests with this token")])
        targets = [self._lockout(target) for target in self.targets(bearer)] if bearer is not None else []
        if targets and self.limiter.one_node and credential is not None:
            groups[-1] = [*groups[-1], *targets]  # one script call less (a refused call costs the token nothing)
        elif targets:
            groups.append(targets)
        return await self.limiter.check(*groups)

    async def before_signin(self, token: str) -> Verdict:
        """A sign-in with `token`: refused while its head or tail is being guessed."""
        targets = self.targets(token)
        return await self.limiter.check([self._lockout(t) for t in targets]) if targets else ALLOW

    async def failed_auth(self, client: str, token: str) -> Verdict:
        """Record a failed attempt with `token` from `client`. Not allowed: the client is over
        its failure budget (answer 429 rather than 401)."""
        own = Charge(client_key(client, "fail"), self.auth_failures, need=1, cost=1,
                     name="failed authentications from this client")
        targets = [Charge(target, self.auth_failures, need=0, cost=1) for target in self.targets(token)]
        return await self.limiter.check([own], targets) if targets else await self.limiter.check([own])

    def _lockout(self, target: str) -> Charge:
        return Charge(target, self.auth_failures, need=1, cost=0,
                      name="failed authentications with this token")
