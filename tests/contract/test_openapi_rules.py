"""The rules of the contract (schemas/openapi.yaml) that the third-party linters do not know.

Each failure names the operation and the rule it breaks. The linters themselves
(openapi-spec-validator, Redocly, Spectral) run in scripts/check-contract.
"""

from __future__ import annotations

import ast
import inspect
import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import yaml
from aiohttp import web

from shoplink import money, openapi
from shoplink.app import create_app
from shoplink.config import Settings
from shoplink.http import MAX_ID
from shoplink.paths import SCHEMAS_DIR

from support.query_reads import function_of, query_reads

METHODS = {"get", "post", "put", "patch", "delete"}
Operation = tuple[str, str, dict[str, Any]]  # METHOD, path, the operation object


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((SCHEMAS_DIR / "openapi.yaml").read_text())
    return spec


@cache
def _bundled() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(openapi.BUNDLED.read_text())
    return spec


def _operations(spec: dict[str, Any] | None = None) -> Iterator[Operation]:
    for path, item in (spec or _spec())["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def _resolve(node: dict[str, Any], spec: dict[str, Any] | None = None) -> dict[str, Any]:
    """Follow a local `$ref` (as many times as it takes)."""
    while "$ref" in node and node["$ref"].startswith("#/"):
        target: Any = spec or _spec()
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


@cache
def _app_routes() -> dict[tuple[str, str], Any]:
    """(METHOD, path) -> handler of every route the app serves (HEAD and static files aside)."""
    app = create_app(Settings.from_env({}))
    routes = {}
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource):  # files under /static/, not API
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method in ("HEAD", "*") or path is None:
            continue
        routes[(route.method, path)] = route.handler
    return routes


def _fail(problems: list[str], rule: str) -> None:
    assert not problems, f"{len(problems)} operation(s) break the rule: {rule}\n  " + "\n  ".join(problems)


def test_every_route_is_in_the_spec_and_vice_versa() -> None:
    spec = {(method, path) for method, path, _ in _operations()}
    app = set(_app_routes())
    _fail([f"{m} {p}" for m, p in sorted(app - spec)], "every route the app serves is in schemas/openapi.yaml")
    _fail([f"{m} {p}" for m, p in sorted(spec - app)], "schemas/openapi.yaml documents only routes the app serves")


def test_spec_is_openapi_31() -> None:
    assert _spec()["openapi"].startswith("3.1")


def test_every_operation_has_an_id_tags_and_a_summary() -> None:
    defined = {tag["name"] for tag in _spec()["tags"]}
    problems, seen = [], set()
    for method, path, op in _operations():
        op_id = op.get("operationId")
        if not op_id:
            problems.append(f"{method} {path}: no operationId")
        elif op_id in seen:
            problems.append(f"{method} {path}: operationId {op_id} is used twice")
        seen.add(op_id)
        if not op.get("tags") or not set(op["tags"]) <= defined:
            problems.append(f"{method} {path}: tags {op.get('tags')} (each must be one of the top-level tags)")
        if not op.get("summary"):
            problems.append(f"{method} {path}: no summary")
    _fail(problems, "an operationId (unique), tags defined at the top, a summary")


def _typed(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    """A named schema with properties (or a composition of such), or an array of them, or a string."""
    if "$ref" in schema:
        target = _resolve(schema, spec)
        return bool(target.get("properties") or target.get("allOf") or target.get("type") == "string")
    return False


def test_every_success_response_has_a_real_schema() -> None:
    problems = []
    for method, path, op in _operations():
        for status, response in op["responses"].items():
            if not str(status).startswith("2"):
                continue
            for media_type, media in _resolve(response).get("content", {}).items():
                schema = media.get("schema")
                if media_type == "application/json" and (schema is None or not _typed(schema, _spec())):
                    problems.append(f"{method} {path} {status}: {schema} is not a named schema with properties")
                if media_type == "text/csv" and (not path.endswith(".csv") or len(op["responses"][status]
                                                                                    ["content"]) != 1):
                    problems.append(f"{method} {path} {status}: CSV belongs to its own `.csv` operation")
                if schema is None:
                    problems.append(f"{method} {path} {status} {media_type}: no schema")
    _fail(problems, "every 2xx body has a schema; JSON ones a named schema with properties; CSV alone")


def test_every_list_is_typed() -> None:
    problems = []
    for name, schema in _spec()["components"]["schemas"].items():
        for prop, value in schema.get("properties", {}).items():
            types = value.get("type")
            is_array = types == "array" or (isinstance(types, list) and "array" in types)
            if is_array and not value.get("items"):
                problems.append(f"components/schemas/{name}.{prop}: an array without `items`")
        props = schema.get("properties", {})
        page = "items" in props and "next_after" in props
        if page and set(schema.get("required", [])) != {"items", "next_after"}:
            problems.append(f"components/schemas/{name}: a page requires items and next_after")
    _fail(problems, "every array says what it holds (a typed Page per list)")


def test_every_error_response_is_the_error_schema() -> None:
    error = {"$ref": "#/components/schemas/Error"}
    problems = []
    for method, path, op in _operations():
        if not path.startswith(("/api/", "/v1/")):
            continue  # pages answer some errors in HTML, as documented per operation
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            content = _resolve(response).get("content", {})
            if content.get("application/json", {}).get("schema") != error:
                problems.append(f"{method} {path} {status}: not application/json with the Error schema")
    _fail(problems, "every 4xx/5xx response of the API is the Error schema")


# Operations that touch neither PostgreSQL nor Redis (or, /readyz, document their own 503).
NO_STORE = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/signin"),
            ("GET", "/v1/player.js"), ("GET", "/demo/shop/products/{number}"),
            ("GET", "/media/thumbnails/{name}"), ("GET", "/watch/live/{live_id}"), ("GET", "/favicon.ico")}


def test_every_operation_touching_a_store_documents_503_with_retry_after() -> None:
    unavailable = _spec()["components"]["responses"]["Unavailable"]
    assert _resolve(unavailable["headers"]["Retry-After"])["schema"]["type"] == "integer"
    assert unavailable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    missing = [f"{method} {path}" for method, path, op in _operations()
               if (method, path) not in NO_STORE
               and op["responses"].get("503") != {"$ref": "#/components/responses/Unavailable"}]
    _fail(missing, "an operation touching PostgreSQL or Redis documents 503 (Unavailable)")
    assert NO_STORE.issubset({(m, p) for m, p, _ in _operations()})


def test_ids_in_paths_are_the_ids_the_server_takes() -> None:
    """`path_id` takes 1 .. 2**63-1 (PostgreSQL's bigint): so says every `*_id` path parameter."""
    want = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
    problems = []
    for method, path, op in _operations():
        for parameter in map(_resolve, op.get("parameters", [])):
            if parameter["in"] == "path" and parameter["name"].endswith("_id") and parameter["schema"] != want:
                problems.append(f"{method} {path}: {parameter['name']} is {parameter['schema']}")
    _fail(problems, f"an id in a path is {want}")


def test_request_bodies_are_required_and_the_ones_the_server_validates_with() -> None:
    problems = []
    routes = _app_routes()
    for method, path, op in _operations():
        body = op.get("requestBody")
        validated = _schemas_read_by(routes[(method, path)])
        declared = set()
        if body is not None:
            if body.get("required") is not True:
                problems.append(f"{method} {path}: requestBody is not `required: true`")
            for media in body["content"].values():
                schema = media["schema"]
                ref = schema.get("$ref") or schema.get("items", {}).get("$ref", "")
                if ref.startswith("requests/"):
                    declared.add(ref.removeprefix("requests/").removesuffix(".schema.json"))
        if validated != declared:
            problems.append(f"{method} {path}: the server validates with {sorted(validated) or 'nothing'}, "
                            f"the spec declares {sorted(declared) or 'nothing'} (schemas/requests/)")
    _fail(problems, "a JSON body is declared with the schemas/requests/ file the server validates it with")


def _schemas_read_by(handler: Any) -> set[str]:
    """The request schema names passed to read_json / validate in the handler's own code."""
    node = function_of(handler).node
    names = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id in ("read_json",
                                                                                              "validate"):
            arg = call.args[1] if len(call.args) > 1 else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                names.add(arg.value)
    return names


def test_every_query_parameter_the_server_reads_is_declared_and_no_other() -> None:
    problems = []
    for (method, path), handler in sorted(_app_routes().items()):
        op = _spec()["paths"][path][method.lower()]
        declared = {p["name"] for p in map(_resolve, op.get("parameters", [])) if p["in"] == "query"}
        reads = query_reads(handler)
        problems += reads.problems
        for name in sorted(reads.names - declared):
            problems.append(f"{method} {path}: the server reads ?{name}, which the spec does not declare")
        for name in sorted(declared - reads.names):
            problems.append(f"{method} {path}: the spec declares ?{name}, which the server never reads")
    _fail(problems, "the query parameters of an operation are the ones its handler reads "
                    f"(found in the source: {inspect.getsourcefile(query_reads)})")


def test_the_bundle_is_current_and_self_contained() -> None:
    assert openapi.render(openapi.bundle()) == openapi.BUNDLED.read_text(), \
        "schemas/openapi.bundled.yaml is stale: run scripts/bundle-openapi and commit it"
    text = json.dumps(_bundled())
    assert "$defs" not in text, "a $defs left in the bundle would become a property in generated types"
    assert '"$schema"' not in text
    refs = {ref for ref in _refs(_bundled())}
    assert all(ref.startswith("#/") for ref in refs), sorted(r for r in refs if not r.startswith("#/"))
    for ref in refs:  # and each resolves
        _resolve({"$ref": ref}, _bundled())


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_currencies_in_request_schemas_are_the_ones_the_server_knows() -> None:
    known = sorted(money.currencies())
    for name in ("product_create", "product_update", "conversion_create"):
        schema = json.loads((SCHEMAS_DIR / "requests" / f"{name}.schema.json").read_text())
        assert sorted(schema["$defs"]["currency"]["enum"]) == known, f"{name}: $defs/currency is not money.py's list"
        assert "#/$defs/currency" in json.dumps(schema["properties"]["currency"]), name


def test_every_operation_with_a_body_documents_the_408_of_a_slow_body() -> None:
    timeout = _spec()["components"]["responses"]["RequestTimeout"]
    assert timeout["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    missing = [f"{method} {path}" for method, path, op in _operations()
               if "requestBody" in op
               and op["responses"].get("408") != {"$ref": "#/components/responses/RequestTimeout"}]
    _fail(missing, "an operation with a body documents 408 (RequestTimeout: a slow body is cut)")
