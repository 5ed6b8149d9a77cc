"""Domain rules: claims, proofs and states, one owner per domain, operator approvals.

States (docs/security.md has the whole picture):
- `pending`: claimed, proof not found yet. Re-checked with backoff (SHOPLINK_DOMAIN_RETRY_*)
  until SHOPLINK_DOMAIN_PENDING_MAX_S after the claim, then `failed`.
- `verified`: proven (DNS TXT or HTTPS file: re-checked every SHOPLINK_DOMAIN_RECHECK_S), or
  approved by an operator / a development loopback host (never re-checked). A proof missing for
  SHOPLINK_DOMAIN_LAPSE_AFTER_S makes it `lapsed`.
- `lapsed`: was verified, proof gone; re-checked, and verified again as soon as the proof is back.
- `failed`: no longer checked by itself: not proven in time, another shop verified the name
  first (`claimed_by_another_shop`), or an operator revoked it (`revoked`). A seller may ask for a
  check again (or re-add the domain for a new pending period), except after a revocation.

Only `verified` domains are redirect targets (shoplink.clicks.resolver). Every state change is
published on the change bus as a change of the shop, so every instance's click resolver drops
the shop's anchors at once.

One owner: a name (and with include_subdomains everything under it) verified by one shop cannot
be verified by another. Claims never block each other (a squatter's pending claim must not keep
the real owner out); verification decides: the first to verify wins, under a PostgreSQL advisory
lock per registrable domain, and the other overlapping claims fail. A unique index backs the
exact-name case.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shoplink.changes import Change, ChangeBus
from shoplink.config import Settings
from shoplink.db import Conn
from shoplink.domains import repository as repo
from shoplink.domains.models import (
    DEV_LOOPBACK,
    FAILED,
    LAPSED,
    OPERATOR,
    PENDING,
    RECHECKED,
    REVOKED,
    VERIFIED,
    AuditEntry,
    CheckResult,
    ShopDomain,
)
from shoplink.domains.names import DomainRule, NameRefused, canonical, check_claimable, is_loopback, registrable
from shoplink.domains.proofs import ProofChecker
from shoplink.errors import Conflict, NotFound

log = logging.getLogger(__name__)

LEASE_S = 300.0  # a watcher owns the domains it took for this long (then another may take them)
CHECK_CONCURRENCY = 8


@dataclass(frozen=True)
class Schedule:
    retry_min_s: float = 60.0
    retry_max_s: float = 21_600.0
    recheck_s: float = 86_400.0
    pending_max_s: float = 604_800.0
    lapse_after_s: float = 259_200.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Schedule:
        return cls(retry_min_s=settings.domain_retry_min_s, retry_max_s=settings.domain_retry_max_s,
                   recheck_s=settings.domain_recheck_s, pending_max_s=settings.domain_pending_max_s,
                   lapse_after_s=settings.domain_lapse_after_s)

    def backoff(self, failures: int) -> timedelta:
        seconds = self.retry_min_s * 2 ** min(max(failures - 1, 0), 40)
        return timedelta(seconds=min(self.retry_max_s, seconds))


def new_token() -> str:
    return secrets.token_hex(16)


class DomainService:
    def __init__(self, pool: asyncpg.Pool, *, checker: ProofChecker, changes: ChangeBus,
                 dev: bool = False, schedule: Schedule | None = None) -> None:
        self._pool = pool
        self._checker = checker
        self._changes = changes
        self._dev = dev
        self.schedule = schedule or Schedule()

    @classmethod
    def from_settings(cls, pool: asyncpg.Pool, settings: Settings, changes: ChangeBus) -> DomainService:
        checker = ProofChecker(nameservers=settings.dns_nameservers, timeout_s=settings.dns_timeout_s,
                               https_port=settings.domain_proof_https_port,
                               ca_file=settings.domain_proof_ca_file, allow_private=settings.allow_http_urls)
        return cls(pool, checker=checker, changes=changes, dev=settings.allow_http_urls,
                   schedule=Schedule.from_settings(settings))

    def _shown(self, domains: Iterable[ShopDomain]) -> list[ShopDomain]:
        port = self._checker.https_port
        return [d if d.https_port == port else dataclasses.replace(d, https_port=port) for d in domains]

    async def _publish(self, shop_ids: Iterable[int]) -> None:
        for shop_id in sorted(set(shop_ids)):
            await self._changes.publish(Change("shop", shop_id))

    # ---- names ---------------------------------------------------------------------------

    def normalize(self, raw: str) -> str:
        """Canonical form of a name a shop wants to claim; NameRefused when nobody may own it."""
        domain = canonical(raw, allow_local=self._dev)
        check_claimable(domain, dev=self._dev)
        return domain

    def _dev_loopback(self, domain: str) -> bool:
        return self._dev and is_loopback(domain)

    # ---- reads (for the catalog) -------------------------------------------------------

    async def for_shop(self, con: Conn, shop_id: int) -> list[ShopDomain]:
        return self._shown(await repo.for_shop(con, shop_id))

    async def for_shops(self, con: Conn, shop_ids: list[int]) -> dict[int, list[ShopDomain]]:
        found = await repo.for_shops(con, shop_ids)
        return {shop_id: self._shown(domains) for shop_id, domains in found.items()}

    async def get(self, shop_id: int, domain: str) -> ShopDomain:
        async with self._pool.acquire() as con:
            found = await repo.get(con, shop_id, domain)
        if found is None:
            raise NotFound(f"domain {domain} is not registered for this shop")
        return self._shown([found])[0]

    # ---- claims (inside the catalog's transaction) -------------------------------------

    async def claim(self, con: Conn, shop_id: int, rule: DomainRule) -> None:
        """Add or change this shop's claim on `rule.domain` (already normalized). 409 when another
        shop verified it (or a wildcard above it, or, for a wildcard claim, a name below it), or when
        an operator revoked it for this shop. The caller publishes the shop's change after commit."""
        domain = rule.domain
        await repo.lock_name(con, registrable(domain))
        local = self._dev_loopback(domain)
        if not local:
            if await repo.last_operator_action(con, shop_id, domain) == "revoke":
                raise Conflict(f"{domain} was revoked for this shop by an operator", code="domain_revoked")
            taken = await repo.verified_conflicts(con, shop_id, domain, rule.include_subdomains)
            if taken:
                raise Conflict(_taken_message(domain, taken[0][1]), code="domain_taken",
                               details={"domain": domain, "conflicts_with": taken[0][1]})
        existing = await repo.get(con, shop_id, domain, for_update=True)
        if existing is None:
            if local:
                await repo.insert(con, shop_id, domain, rule.include_subdomains, new_token(),
                                  state=VERIFIED, verified_by=DEV_LOOPBACK, next_check_in_s=None)
                await repo.insert_audit(con, shop_id, domain, "auto_verify", "development mode",
                                        "loopback host with SHOPLINK_ALLOW_HTTP_URLS=true",
                                        rule.include_subdomains)
            else:
                await repo.insert(con, shop_id, domain, rule.include_subdomains, new_token(), state=PENDING,
                                  verified_by=None, next_check_in_s=self.schedule.retry_min_s)
            return
        changes: dict[str, Any] = {}
        if existing.include_subdomains != rule.include_subdomains:
            changes["include_subdomains"] = rule.include_subdomains
            if (existing.state in (VERIFIED, LAPSED) and existing.verified_by == "https_file"
                    and rule.include_subdomains):  # a file on one host does not prove its subdomains
                changes.update(self._restart_pending(await repo.now(con)))
        if existing.state == FAILED:  # re-adding starts a new pending period
            changes.update(self._restart_pending(await repo.now(con)))
        if changes:
            await repo.update(con, shop_id, domain, changes)

    async def claim_all(self, con: Conn, shop_id: int, rules: Iterable[DomainRule]) -> None:
        """`claim` each, in the order of their locks (two transactions never wait on each other)."""
        for rule in sorted(rules, key=lambda r: (registrable(r.domain), r.domain)):
            await self.claim(con, shop_id, rule)

    def _restart_pending(self, now: datetime) -> dict[str, Any]:
        return {"state": PENDING, "pending_since": now, "check_failures": 0, "verified_by": None,
                "proof_missing_since": None, "failure_reason": None, "failure": None,
                "next_check_at": now + timedelta(seconds=self.schedule.retry_min_s)}

    async def release(self, con: Conn, shop_id: int, domain: str) -> bool:
        """Drop this shop's claim (the catalog checked nothing still uses it)."""
        return await repo.delete(con, shop_id, domain)

    # ---- checking --------------------------------------------------------------------------

    async def verify(self, shop_id: int, domain: str) -> ShopDomain:
        """Check the proofs now and apply the outcome (POST .../domains/{domain}/verify)."""
        async with self._pool.acquire() as con:
            current = await repo.get(con, shop_id, domain)
        if current is None:
            raise NotFound(f"domain {domain} is not registered for this shop")
        if current.revoked:
            raise Conflict(f"{domain} was revoked for this shop by an operator", code="domain_revoked")
        if current.verified and current.verified_by not in RECHECKED:
            return self._shown([current])[0]  # an approval is its own proof: nothing to look for
        result = await self._checker.check(domain, current.token, include_subdomains=current.include_subdomains)
        applied = await self._apply(current, result)
        return self._shown([applied])[0]

    async def _apply(self, checked: ShopDomain, result: CheckResult) -> ShopDomain:
        """Record one check of `checked` (its claim as it was when the check started)."""
        shop_id, domain = checked.shop_id, checked.domain
        touched: set[int] = set()
        async with self._pool.acquire() as con, con.transaction():
            await repo.lock_name(con, registrable(domain))
            row = await repo.get(con, shop_id, domain, for_update=True)
            if row is None:
                raise NotFound(f"domain {domain} is not registered for this shop")
            if (row.token != checked.token or row.include_subdomains != checked.include_subdomains
                    or row.revoked or (row.verified and row.verified_by not in RECHECKED)):
                return row  # the claim changed while we looked: this check says nothing about it
            now = await repo.now(con)
            if result.proven_by is not None:
                changes = await self._proven(con, row, result, now, touched)
            else:
                changes = self._not_proven(row, result, now)
            changes["last_checked_at"] = now
            await repo.update(con, shop_id, domain, changes)
            if changes.get("state", row.state) != row.state:
                touched.add(shop_id)
                log.info("domain state changed", extra={"shop_id": shop_id, "domain": domain,
                                                        "from": row.state, "to": changes["state"]})
            updated = await repo.get(con, shop_id, domain)
        assert updated is not None
        await self._publish(touched)
        return updated

    async def _proven(self, con: Conn, row: ShopDomain, result: CheckResult, now: datetime,
                      touched: set[int]) -> dict[str, Any]:
        taken = await repo.verified_conflicts(con, row.shop_id, row.domain, row.include_subdomains)
        if taken:
            message = _taken_message(row.domain, taken[0][1])
            return {"state": FAILED, "next_check_at": None, "failure_reason": "claimed_by_another_shop",
                    "failure": result.failure_json(now, reason="claimed_by_another_shop", message=message)}
        await self._fail_rivals(con, row.shop_id, row.domain, row.include_subdomains, now, touched)
        return {"state": VERIFIED, "verified_by": result.proven_by,
                "verified_at": row.verified_at if row.state == VERIFIED and row.verified_at else now,
                "check_failures": 0, "proof_missing_since": None, "failure_reason": None, "failure": None,
                "next_check_at": now + timedelta(seconds=self.schedule.recheck_s)}

    async def _fail_rivals(self, con: Conn, shop_id: int, domain: str, include_subdomains: bool,
                           now: datetime, touched: set[int]) -> None:
        """This shop now owns `domain`: the other shops' overlapping claims lose."""
        for rival in await repo.rivals(con, shop_id, domain, include_subdomains):
            message = _taken_message(rival.domain, domain)
            await repo.update(con, rival.shop_id, rival.domain, {
                "state": FAILED, "next_check_at": None, "failure_reason": "claimed_by_another_shop",
                "failure": {"reason": "claimed_by_another_shop", "message": message,
                            "checked_at": now.isoformat()}})
            touched.add(rival.shop_id)

    def _not_proven(self, row: ShopDomain, result: CheckResult, now: datetime) -> dict[str, Any]:
        schedule = self.schedule
        failures = row.check_failures + 1
        backoff = schedule.backoff(failures)
        changes: dict[str, Any] = {"check_failures": failures, "failure_reason": result.reason,
                                   "failure": result.failure_json(now)}
        if row.state == PENDING:
            if now - row.pending_since >= timedelta(seconds=schedule.pending_max_s):
                message = f"no proof found within {schedule.pending_max_s / 86400:g} days of the claim " \
                          f"(last check: {result.attempts[0].message})"
                changes.update(state=FAILED, next_check_at=None, failure_reason="not_proven_in_time",
                               failure=result.failure_json(now, reason="not_proven_in_time", message=message))
            else:
                changes["next_check_at"] = now + backoff
        elif row.state == VERIFIED:
            missing_since = row.proof_missing_since or now
            grace_left = timedelta(seconds=schedule.lapse_after_s) - (now - missing_since)
            changes["proof_missing_since"] = missing_since
            if grace_left <= timedelta(0):
                changes["state"] = LAPSED
                changes["next_check_at"] = now + min(backoff, timedelta(seconds=schedule.recheck_s))
            else:  # look again in time to lapse it when the grace period ends
                floor = timedelta(seconds=min(schedule.retry_min_s, schedule.lapse_after_s))
                changes["next_check_at"] = now + max(floor, min(backoff, grace_left))
        elif row.state == LAPSED:
            changes["next_check_at"] = now + min(backoff, timedelta(seconds=schedule.recheck_s))
        else:  # failed: a seller's check that found nothing again; still not re-checked by itself
            changes["next_check_at"] = None
        return changes

    # ---- the background job ----------------------------------------------------------------

    async def check_due(self, limit: int = 100) -> int:
        """Check the domains whose time has come (at most `limit`); returns how many. Several
        watchers may run: each takes different domains (SKIP LOCKED and a lease)."""
        async with self._pool.acquire() as con:
            due = await repo.claim_due(con, limit, LEASE_S)
        if not due:
            return 0
        gate = asyncio.Semaphore(CHECK_CONCURRENCY)

        async def one(domain: ShopDomain) -> None:
            async with gate:
                try:
                    result = await self._checker.check(domain.domain, domain.token,
                                                       include_subdomains=domain.include_subdomains)
                    await self._apply(domain, result)
                except NotFound:
                    pass  # removed meanwhile
                except Exception:
                    log.exception("domain check failed", extra={"shop_id": domain.shop_id,
                                                                "domain": domain.domain})

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

    async def watch(self, interval_s: float, stop: asyncio.Event | None = None) -> None:
        """Check due domains until `stop` is set: batches back to back while any are due, then one
        look every `interval_s`. A database outage is logged and waited out."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                checked = await self.check_due()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("domain watch cannot read PostgreSQL", extra={"error": repr(exc)})
                checked = 0
            if checked:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    # ---- operators (shoplink domains approve | revoke) -----------------------------------

    async def approve(self, shop_id: int, raw: str, *, actor: str, reason: str,
                      include_subdomains: bool | None = None) -> ShopDomain:
        """Verify a domain for a shop by hand (no proof), logged with who and why. The name rules
        and the one-owner rule still apply (NameRefused / 409)."""
        domain = self.normalize(raw)
        touched = {shop_id}
        async with self._pool.acquire() as con, con.transaction():
            await repo.lock_name(con, registrable(domain))
            existing = await repo.get(con, shop_id, domain, for_update=True)
            subs = include_subdomains if include_subdomains is not None else (
                existing.include_subdomains if existing else False)
            taken = await repo.verified_conflicts(con, shop_id, domain, subs)
            if taken and not self._dev_loopback(domain):
                raise Conflict(_taken_message(domain, taken[0][1]) + f" (shop {taken[0][0]}): "
                               "revoke it there first", code="domain_taken")
            now = await repo.now(con)
            if existing is None:
                try:
                    await repo.insert(con, shop_id, domain, subs, new_token(), state=VERIFIED,
                                      verified_by=OPERATOR, next_check_in_s=None)
                except asyncpg.ForeignKeyViolationError:
                    raise NotFound(f"shop {shop_id} does not exist") from None
            else:
                await repo.update(con, shop_id, domain, {
                    "include_subdomains": subs, "state": VERIFIED, "verified_by": OPERATOR,
                    "verified_at": now, "check_failures": 0, "proof_missing_since": None,
                    "failure_reason": None, "failure": None, "next_check_at": None})
            await self._fail_rivals(con, shop_id, domain, subs, now, touched)
            await repo.insert_audit(con, shop_id, domain, "approve", actor, reason, subs)
            approved = await repo.get(con, shop_id, domain)
        assert approved is not None
        await self._publish(touched)
        return self._shown([approved])[0]

    async def revoke(self, shop_id: int, raw: str, *, actor: str, reason: str) -> ShopDomain:
        """Take a domain away from a shop (whatever its state), logged; the seller cannot verify
        or re-add it until an operator approves it again."""
        domain = canonical(raw, allow_local=self._dev)
        async with self._pool.acquire() as con, con.transaction():
            await repo.lock_name(con, registrable(domain))
            existing = await repo.get(con, shop_id, domain, for_update=True)
            if existing is None:
                raise NotFound(f"shop {shop_id} has no domain {domain}")
            now = await repo.now(con)
            await repo.update(con, shop_id, domain, {
                "state": FAILED, "next_check_at": None, "failure_reason": REVOKED,
                "failure": {"reason": REVOKED, "message": f"revoked by an operator: {reason}",
                            "checked_at": now.isoformat()}})
            await repo.insert_audit(con, shop_id, domain, "revoke", actor, reason, existing.include_subdomains)
            revoked = await repo.get(con, shop_id, domain)
        assert revoked is not None
        await self._publish([shop_id])
        return self._shown([revoked])[0]

    async def audit_log(self, *, shop_id: int | None = None, domain: str | None = None,
                        limit: int = 100) -> list[AuditEntry]:
        async with self._pool.acquire() as con:
            return await repo.audit_log(con, shop_id=shop_id, domain=domain, limit=limit)

    async def list_domains(self, *, shop_id: int | None = None, state: str | None = None,
                           domain: str | None = None, limit: int = 1000) -> list[ShopDomain]:
        async with self._pool.acquire() as con:
            return self._shown(await repo.list_domains(con, shop_id=shop_id, state=state, domain=domain,
                                                       limit=limit))


def _taken_message(domain: str, other: str) -> str:
    if other == domain:
        return f"{domain} is verified by another shop"
    if domain.endswith("." + other):
        return f"{domain} is under {other}, which another shop verified with its subdomains"
    return f"{domain} with its subdomains would cover {other}, which another shop verified"


__all__ = ["DomainService", "NameRefused", "Schedule"]
