"""`shoplink domains`: the operator's tools and the background re-check job.

    shoplink domains approve DOMAIN --shop ID --reason WHY [--by WHO] [--include-subdomains]
    shoplink domains revoke DOMAIN --shop ID --reason WHY [--by WHO]
    shoplink domains list [--shop ID] [--state STATE] [--domain DOMAIN]
    shoplink domains audit [--shop ID] [--domain DOMAIN] [--limit N]
    shoplink domains watch [--once]

`watch` is its own long-running command (not part of `shoplink count`, which consumes the click
streams): it needs DNS and outbound HTTPS, which a deployment may grant to it alone, and it is
tiny. Run one or more next to `serve`; they share the work through PostgreSQL (SKIP LOCKED).
Every state change is published on Redis, so running servers drop the affected anchors at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import signal
import socket
import sys
from typing import Any

import orjson

from shoplink import db
from shoplink.changes import ChangeBus
from shoplink.config import Settings
from shoplink.domains.models import STATES
from shoplink.domains.names import NameRefused
from shoplink.domains.service import DomainService
from shoplink.errors import DomainError
from shoplink.redis import RedisTopology


def _operator() -> str:
    """Who runs the command, for the audit log when --by is not given."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def add_parser(sub: Any) -> None:
    """The `domains` subcommand's arguments (cli.py's parser calls this)."""
    domains = sub.add_parser("domains", help="approve, revoke and list shop domains; re-check proofs (watch)")
    dsub = domains.add_subparsers(dest="domains_command", required=True)
    approve = dsub.add_parser("approve", help="verify a domain for a shop by hand (audited)")
    approve.add_argument("domain")
    approve.add_argument("--shop", type=int, required=True, help="shop id")
    approve.add_argument("--reason", required=True, help="why (kept in the audit log)")
    approve.add_argument("--by", help="who approves (default: user@host running the command)")
    approve.add_argument("--include-subdomains", action=argparse.BooleanOptionalAction, default=None,
                         help="cover the domain's subdomains too (default: as the shop claimed it)")
    revoke = dsub.add_parser("revoke", help="take a domain away from a shop (audited)")
    revoke.add_argument("domain")
    revoke.add_argument("--shop", type=int, required=True, help="shop id")
    revoke.add_argument("--reason", required=True, help="why (kept in the audit log)")
    revoke.add_argument("--by", help="who revokes (default: user@host running the command)")
    listing = dsub.add_parser("list", help="print shop domains and their states (JSON lines)")
    listing.add_argument("--shop", type=int)
    listing.add_argument("--state", choices=STATES)
    listing.add_argument("--domain")
    audit = dsub.add_parser("audit", help="print the approval and revocation log (newest first)")
    audit.add_argument("--shop", type=int)
    audit.add_argument("--domain")
    audit.add_argument("--limit", type=int, default=100)
    watch = dsub.add_parser("watch", help="re-check pending, verified and lapsed domains on schedule")
    watch.add_argument("--once", action="store_true", help="check what is due now, then exit")


def _print(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


async def domains_command(settings: Settings, args: argparse.Namespace) -> int:
    topology = RedisTopology.from_settings(settings)
    await topology.connect()
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=4,
                                timeout_s=settings.db_timeout_s,
                                command_timeout_s=settings.db_command_timeout_s)
    try:
        async with pool.acquire() as con:
            if await db.pending_migrations(con):
                print("shoplink: the database has unapplied migrations: run `shoplink migrate`",
                      file=sys.stderr)
                return 1
        # Publishes only (no subscription): servers drop the shop's anchors when a state changes.
        service = DomainService.from_settings(pool, settings, ChangeBus(topology))
        try:
            return await _run(service, settings, args)
        except NameRefused as exc:
            print(f"shoplink: {args.domain}: {exc.message} ({exc.code})", file=sys.stderr)
            return 1
        except DomainError as exc:
            print(f"shoplink: {exc.message} ({exc.code})", file=sys.stderr)
            return 1
    finally:
        await pool.close()
        await topology.aclose()


async def _run(service: DomainService, settings: Settings, args: argparse.Namespace) -> int:
    command = args.domains_command
    if command == "approve":
        domain = await service.approve(args.shop, args.domain, actor=args.by or _operator(),
                                       reason=args.reason, include_subdomains=args.include_subdomains)
        _print({"shop_id": domain.shop_id, **domain.to_json()})
    elif command == "revoke":
        domain = await service.revoke(args.shop, args.domain, actor=args.by or _operator(), reason=args.reason)
        _print({"shop_id": domain.shop_id, **domain.to_json()})
    elif command == "list":
        for found in await service.list_domains(shop_id=args.shop, state=args.state, domain=args.domain):
            _print({"shop_id": found.shop_id, **found.to_json()})
    elif command == "audit":
        for entry in await service.audit_log(shop_id=args.shop, domain=args.domain, limit=args.limit):
            _print(entry.to_json())
    elif command == "watch":
        if args.once:  # one pass over what is due now (what it reschedules waits for the next run)
            _print({"checked": await service.check_due(limit=100_000)})
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await service.watch(settings.domain_watch_interval_s, stop)
    return 0
