"""The API fuzzed from schemas/openapi.yaml with schemathesis, against the real server.

Every documented operation gets `EXAMPLES` generated requests (valid and invalid data, for one
of the four roles' real tokens, on a database seeded with real ids 1..n), and every response
must pass: no 5xx, a documented status code, a documented content type, and a body that matches
the documented schema. Failures are collected over all operations and reported together.

About 7,600 requests and a minute of CPU (80 s wall on the shared 2-core machine). Hypothesis is
derandomized, yet some generated values differ between runs: a failure here is a real bug.
"""

from __future__ import annotations

import asyncio

import asyncpg
import hypothesis
import pytest
import schemathesis
from aiohttp import ClientSession
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shoplink.auth.service import AuthService
from shoplink.paths import SCHEMAS_DIR

from support.api import Account, ServerFactory
from support.click_data import insert_anchor, insert_live, insert_video, make_shop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXAMPLES = 80
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Endless by design (an event stream); covered by tests/api/test_live_stream.py.
SKIPPED = {"GET /v1/live/{live_id}/events"}
# These end sessions and tokens the other operations use: run them last.
LAST = {"DELETE /api/v1/tokens/{token_id}", "POST /signout"}


async def _seed(pool: asyncpg.Pool, http: ClientSession, base_url: str) -> list[str]:
    auth = AuthService(pool)
    apis = []
    for role in ("admin", "seller", "creator", "analyst"):
        account, token = await auth.create_account(f"fuzz-{role}", [role])
        apis.append(Account(http, base_url, token.token, account.id))
    seller = apis[1]
    shop = await make_shop(seller, urls=("https://acme.example/p/1", "https://acme.example/p/2"))
    video_id = await insert_video(pool, seller.account_id)
    await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=seller.account_id, video_id=video_id)
    live_id = await insert_live(pool, seller.account_id)
    await insert_anchor(pool, product_id=shop.product_ids[1], publisher_id=seller.account_id,
                        live_session_id=live_id)
    plan = await seller.post("/api/v1/plans", {"name": "Promo", "kind": "open", "rate": "10.00",
                                               "products": [{"product_id": shop.product_ids[0]}]})
    assert plan.status == 201, plan.body
    return [api.token for api in apis if api.token]


def _fuzz_operation(operation: APIOperation, base_url: str, tokens: list[str]) -> tuple[list[str], int]:
    """(failures, at most 3 distinct ones; requests made) for one operation."""
    failures: list[str] = []
    seen: set[str] = set()
    calls = 0
    cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                      operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))

    @hypothesis.given(case=cases, token=st.sampled_from(tokens))
    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    def run(case: schemathesis.Case, token: str) -> None:
        nonlocal calls
        calls += 1
        try:
            case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                   checks=CHECKS, timeout=15)
        except (Exception, BaseExceptionGroup) as exc:  # failed checks, or no answer
            key = str(exc).split("\n", 1)[0]
            if key not in seen and len(seen) < 3:
                seen.add(key)
                failures.append(f"{operation.label}: {exc}"[:3000])

    run()
    return failures, calls


def _fuzz(base_url: str, tokens: list[str]) -> tuple[list[str], int]:
    schema = schemathesis.openapi.from_path(SCHEMAS_DIR / "openapi.yaml")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    operations.sort(key=lambda op: op.label in LAST)
    failures: list[str] = []
    calls = 0
    for operation in operations:
        if operation.label not in SKIPPED:
            found, made = _fuzz_operation(operation, base_url, tokens)
            failures += found
            calls += made
    return failures, calls


async def test_api_survives_fuzzing(start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool) -> None:
    # Rate limits off: fuzzing POST /signin with wrong tokens would lock this client out of the
    # API (the 429s are documented; tests/api/test_rate_limits.py covers them).
    server = await start_server(rate_limits=False)
    base_url = str(server.make_url("")).rstrip("/")
    tokens = await _seed(pool, http, base_url)
    failures, calls = await asyncio.to_thread(_fuzz, base_url, tokens)
    print(f"fuzz: {calls} requests")
    assert calls > 500
    assert not failures, f"{len(failures)} failures:\n\n" + "\n\n".join(failures)
