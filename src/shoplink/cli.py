"""The one entry point: `shoplink serve | migrate | accounts | demo | count | domains | reconcile |
settings` (also `python -m shoplink`). COMMANDS is the table of commands; no command module imports this one."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from shoplink import db, demo, logs, server
from shoplink.affiliates import reconcile
from shoplink.analytics import command as count
from shoplink.auth.service import AuthService
from shoplink.config import MAX_WORKERS, ConfigError, Settings, documented_variables, markdown_table, parse_workers
from shoplink.domains import command as domains
from shoplink.supervisor import WorkerLink, supervise

log = logging.getLogger("shoplink")

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def run_async(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    con = await db.connect(settings.database_url)
    try:
        applied = await db.migrate(con)
    finally:
        await con.close()
    _print_json({"applied": applied})
    return 0


async def _accounts(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        service = AuthService(pool)
        if args.accounts_command == "create":
            account, token = await service.create_account(args.name, args.role)
            _print_json({"id": account.id, "token": token.token, "name": account.name,
                         "roles": [str(r) for r in account.roles]})
        elif args.accounts_command == "token":
            _, token = await service.create_account_token(args.account_id, args.label)
            _print_json({"id": args.account_id, "token": token.token, "token_id": token.id})
        elif args.accounts_command == "revoke":
            await service.revoke_token_admin(args.token_id)
            _print_json({"revoked": args.token_id})
    finally:
        await pool.close()
    return 0


def _workers_arg(raw: str) -> int:
    try:
        return parse_workers(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a number of processes (1 to {MAX_WORKERS}, or auto)") from None


# The commands that run in an event loop (`serve` runs its own; `settings` needs none).
COMMANDS: dict[str, Command] = {
    "migrate": _migrate,
    "accounts": _accounts,
    "demo": demo.seed_demo,
    "count": count.count_command,
    "domains": domains.domains_command,
    "reconcile": reconcile.reconcile_command,
}


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    unsafe = settings.unsafe_to_serve()
    if unsafe is not None:
        print(f"shoplink: refusing to start: {unsafe}", file=sys.stderr)
        return 2
    if args.worker_slot is not None or args.control_fd is not None:
        if args.worker_slot is None or args.control_fd is None:
            print("shoplink: --worker-slot and --control-fd go together", file=sys.stderr)
            return 2
        try:
            link = WorkerLink(args.worker_slot, args.control_fd)
        except OSError as exc:
            print(f"shoplink: --control-fd {args.control_fd}: {exc}", file=sys.stderr)
            return 2
        return server.serve(settings, worker=link)
    workers = settings.workers if args.workers is None else args.workers
    if settings.metrics_port and settings.metrics_port + workers - 1 > 65535:
        print(f"shoplink: SHOPLINK_METRICS_PORT {settings.metrics_port} + {workers} workers runs past "
              "port 65535", file=sys.stderr)
        return 1
    if workers == 1:
        return server.serve(settings, migrate_first=args.migrate)
    if args.migrate:  # once, before any worker checks the schema
        try:
            asyncio.run(server.apply_migrations(settings))
        except (db.MigrationError, OSError) as exc:
            print(f"shoplink: {exc}", file=sys.stderr)
            return 1
    return supervise(settings, workers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shoplink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--migrate", action="store_true", help="apply pending migrations first")
    serve.add_argument("--workers", type=_workers_arg, metavar="N",
                       help="server processes on the one port (a number or `auto`: one per core; "
                            "default SHOPLINK_WORKERS)")
    # Set by the supervisor on the processes it starts (see supervisor.py), not by people.
    serve.add_argument("--worker-slot", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--control-fd", type=int, help=argparse.SUPPRESS)

    sub.add_parser("migrate", help="apply pending database migrations (idempotent)")

    accounts = sub.add_parser("accounts", help="create accounts and tokens")
    acc_sub = accounts.add_subparsers(dest="accounts_command", required=True)
    create = acc_sub.add_parser("create", help="create an account and print its first token")
    create.add_argument("--role", action="append", required=True,
                        choices=["admin", "seller", "creator", "analyst"],
                        help="a role (repeat for several)")
    create.add_argument("--name", required=True)
    token = acc_sub.add_parser("token", help="issue another token for an account")
    token.add_argument("--account-id", type=int, required=True)
    token.add_argument("--label", default="cli")
    revoke = acc_sub.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("--token-id", type=int, required=True)

    settings_cmd = sub.add_parser("settings", help="list every SHOPLINK_* variable (--markdown: as a table)")
    settings_cmd.add_argument("--markdown", action="store_true")

    demo_cmd = sub.add_parser("demo", help="seed demo accounts, a shop and products; print tokens")
    demo_cmd.add_argument("--quiet", action="store_true")

    count.add_parser(sub)
    domains.add_parser(sub)
    reconcile.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "settings":
        if args.markdown:
            print(markdown_table())
        else:
            for var, default, doc, _ in documented_variables():
                print(f"{var}={default}\t# {doc}")
        return 0
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"shoplink: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    if args.command == "serve":
        return _serve(settings, args)
    try:
        return run_async(COMMANDS[args.command](settings, args))
    except db.MigrationError as exc:
        print(f"shoplink: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shoplink: cannot reach a store: {exc}", file=sys.stderr)
        return 1
