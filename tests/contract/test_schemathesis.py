"""The API fuzzed from its contract with schemathesis, against the real server (rate limits on).

Every operation of schemas/openapi.bundled.yaml gets `EXAMPLES` generated requests, valid
(positive) and invalid (negative) per the schema, for one of the four roles' real tokens, on a
database seeded with real ids; then a stateful run follows the links schemathesis infers between
operations (a shop created, then read, changed, its products listed...). Every response must pass:

- no 5xx;
- a documented status code and content type;
- a body matching its schema, with no property the schema does not name (the strict copy of
  the contract below: a field the server adds must be documented);
- invalid data refused with a 4xx (schemathesis' negative_data_rejection);
- valid data never refused as malformed: no 400 or 415, and no 422 from the request schema's own
  keywords (a rule beyond the schema, such as a URL on another domain, is a 422 of its own code).

Failures are collected over all operations and reported together, each with its operation and
the check that failed (then the request to replay it). Hypothesis is derandomized.

Rate limits stay on at their defaults. The four roles' tokens are exempt from them through the
test-only SHOPLINK_RATE_EXEMPT_TOKENS (what an operator would set for a fuzzing run), so the
fuzzer's requests carrying them are never throttled, while everything else it sends without
them (sign-in forms with generated tokens, for one) meets the real limits, whose 429 the contract
documents.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import asyncpg
import hypothesis
import pytest
import schemathesis
import yaml
from aiohttp import ClientSession
from hypothesis import strategies as st
from schemathesis import APIOperation
from schemathesis.checks import CheckContext, not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from shoplink.auth.service import AuthService
from shoplink.openapi import BUNDLED

from support.api import Account, ServerFactory
from support.click_data import insert_anchor, insert_live, insert_video, make_shop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLES = 50  # per operation, positive and negative mixed
STATEFUL_SCENARIOS = 40
STATEFUL_STEPS = 8
# These end sessions and tokens the other operations use: run last, and never in stateful runs.
LAST = {"DELETE /api/v1/tokens/{token_id}", "POST /signout"}
# An event stream stays open while its live is on: stateful runs would create live sessions.
NOT_STATEFUL = LAST | {"GET /v1/live/{live_id}/events"}
SCHEMA_KEYWORDS = {"type", "required", "additionalProperties", "pattern", "enum", "const", "format",
                   "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
                   "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "anyOf",
                   "oneOf", "allOf", "not", "multipleOf", "dependentRequired"}


# ---- the strict contract: no undocumented property in a response -----------------------------

def strict_contract(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy where every object schema (in components and inline) refuses properties it does not
    name, with `unevaluatedProperties: false`. Schemas that other schemas extend with allOf get
    a strict twin (`X__strict`) used wherever they are referenced on their own."""
    spec = copy.deepcopy(spec)
    schemas: dict[str, Any] = spec["components"]["schemas"]
    extended = {item["$ref"].rsplit("/", 1)[1] for schema in schemas.values()
                for item in schema.get("allOf", []) if "$ref" in item}

    def visit(node: Any, in_all_of: bool = False) -> Any:
        if isinstance(node, list):
            return [visit(item, in_all_of) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and not in_all_of:
            name = node["$ref"].rsplit("/", 1)[1]
            if name in extended and node["$ref"].startswith("#/components/schemas/"):
                return {**node, "$ref": f"#/components/schemas/{name}__strict"}
            return node
        out = {key: visit(value, key == "allOf") for key, value in node.items()}
        closed = ("properties" in node or "allOf" in node) and "additionalProperties" not in node
        if closed and not in_all_of:
            out["unevaluatedProperties"] = False
        return out

    for name, schema in list(schemas.items()):
        schemas[name] = visit(schema, in_all_of=name in extended)
        if name in extended:
            schemas[name + "__strict"] = {"allOf": [{"$ref": f"#/components/schemas/{name}"}],
                                          "unevaluatedProperties": False}
    spec["paths"] = visit(spec["paths"])
    return spec


# ---- the check schemathesis does not have ----------------------------------------------------

def _error(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


@schemathesis.check
def valid_data_is_not_refused_as_malformed(ctx: CheckContext, response: Any, case: schemathesis.Case) -> None:
    """What the contract calls valid, the server takes as well-formed: no 400, no 415, and no 422
    whose details are the request schema's own keywords (rules beyond the schema have their codes)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    error = _error(response)
    code = error.get("code")
    status = response.status_code
    if status == 400 and code == "malformed_csv" and case.media_type == "text/csv":
        return  # `type: string` cannot say "CSV with a header line"
    if status in (400, 415):
        raise AssertionError(f"valid per the contract, refused as malformed: {status} {code}: "
                             f"{error.get('message')}")
    if status == 422 and code == "validation_failed":
        keywords = {d.get("code") for d in error.get("details") or [] if isinstance(d, dict)}
        if keywords & SCHEMA_KEYWORDS:
            raise AssertionError(f"valid per the contract, refused by the request schema "
                                 f"(schemas/requests/): {error.get('message')} {error.get('details')}")


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          negative_data_rejection, valid_data_is_not_refused_as_malformed]


# ---- the run -----------------------------------------------------------------------------------

async def _role_tokens(pool: asyncpg.Pool) -> list[tuple[int, str]]:
    """One account per role (admin, seller, creator, analyst): its id and token."""
    auth = AuthService(pool)
    tokens = []
    for role in ("admin", "seller", "creator", "analyst"):
        account, token = await auth.create_account(f"fuzz-{role}", [role])
        tokens.append((account.id, token.token))
    return tokens


async def _seed(pool: asyncpg.Pool, http: ClientSession, base_url: str,
                accounts: list[tuple[int, str]]) -> list[str]:
    apis = [Account(http, base_url, token, account_id) for account_id, token in accounts]
    seller = apis[1]
    shop = await make_shop(seller, urls=("https://acme.example/p/1", "https://acme.example/p/2"))
    video_id = await insert_video(pool, seller.account_id)
    await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=seller.account_id, video_id=video_id)
    live_id = await insert_live(pool, seller.account_id)
    await insert_anchor(pool, product_id=shop.product_ids[1], publisher_id=seller.account_id,
                        live_session_id=live_id)
    # ended: its event stream closes (one of a live session never would)
    assert (await seller.post(f"/api/v1/live/{live_id}/end")).status == 200
    plan = await seller.post("/api/v1/plans", {"name": "Promo", "kind": "open", "rate": "10.00",
                                               "products": [{"product_id": shop.product_ids[0]}]})
    assert plan.status == 201, plan.body
    return [api.token for api in apis if api.token]


def _schema(base_url: str) -> Any:
    raw = yaml.safe_load(BUNDLED.read_text())
    schema = schemathesis.openapi.from_dict(strict_contract(raw))
    schema.config.update(base_url=base_url, request_timeout=15)
    # Text never holds NUL (documented: a 400). The token is ours (headers=...): no mutations of it.
    schema.config.generation.update(allow_x00=False, with_security_parameters=False)
    return schema


def _record(failures: list[str], seen: set[str], label: str, exc: BaseException) -> None:
    key = f"{label}: {str(exc).split(chr(10), 1)[0]}"
    if key not in seen and len([f for f in failures if f.startswith(label + ":")]) < 3:
        seen.add(key)
        failures.append(f"{label}: {exc}"[:3000])


def _fuzz_operation(operation: APIOperation, tokens: list[str], failures: list[str], seen: set[str]) -> int:
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
            case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # failed checks, or no answer
            _record(failures, seen, operation.label, exc)

    run()
    return calls


def _stateful(schema: Any, token: str, failures: list[str], seen: set[str]) -> int:
    """Scenarios along the links schemathesis infers (created ids flow into the next calls)."""
    calls = 0
    stateful = schema.exclude(func=lambda ctx: ctx.operation.label in NOT_STATEFUL)
    base = stateful.as_state_machine()

    class Machine(base):  # type: ignore[valid-type, misc]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response: Any, case: schemathesis.Case,
                              additional_checks: Any = None, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            try:
                for check in CHECKS:
                    case.validate_response(response, checks=[check], transport_kwargs=kwargs or None)
            except (Exception, BaseExceptionGroup) as exc:
                _record(failures, seen, f"stateful {case.operation.label}", exc)

    Machine.run(settings=hypothesis.settings(max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS,
                                             deadline=None, database=None, derandomize=True,
                                             phases=[hypothesis.Phase.generate],
                                             suppress_health_check=list(hypothesis.HealthCheck)))
    return calls


def _fuzz(base_url: str, tokens: list[str]) -> tuple[list[str], int, int, float]:
    schema = _schema(base_url)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    operations.sort(key=lambda op: op.label in LAST)
    failures: list[str] = []
    seen: set[str] = set()
    started = time.monotonic()
    calls = sum(_fuzz_operation(operation, tokens, failures, seen) for operation in operations)
    stateful_calls = _stateful(_schema(base_url), tokens[0], failures, seen)
    return failures, calls, stateful_calls, time.monotonic() - started


async def test_api_survives_fuzzing(start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool) -> None:
    accounts = await _role_tokens(pool)
    # Default limits; only the roles' tokens are exempt (see above).
    server = await start_server(rate_exempt_tokens=tuple(token for _, token in accounts))
    base_url = str(server.make_url("")).rstrip("/")
    tokens = await _seed(pool, http, base_url, accounts)
    failures, calls, stateful_calls, seconds = await asyncio.to_thread(_fuzz, base_url, tokens)
    print(f"schemathesis: {calls} requests over every operation, {stateful_calls} in stateful scenarios, "
          f"{seconds:.0f} s")
    assert calls > 2000 and stateful_calls > 50
    assert not failures, f"{len(failures)} failures (operation: check and message, then the request):\n\n" + \
        "\n\n".join(failures)
