"""The spec and the app agree: every registered route is documented, and nothing else is."""

from __future__ import annotations

import yaml
from aiohttp import web

from shoplink.app import create_app
from shoplink.config import Settings
from shoplink.paths import SCHEMAS_DIR

METHODS = {"get", "post", "put", "patch", "delete"}


def _spec_routes() -> set[tuple[str, str]]:
    spec = yaml.safe_load((SCHEMAS_DIR / "openapi.yaml").read_text())
    return {(method.upper(), path) for path, item in spec["paths"].items()
            for method in item if method in METHODS}


def _app_routes() -> set[tuple[str, str]]:
    app = create_app(Settings.from_env({}))
    routes = set()
    for route in app.router.routes():
        if isinstance(route.resource, web.StaticResource):  # files under /static/, not API
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter") or info.get("prefix")
        if route.method in ("HEAD", "*") or path is None:
            continue
        routes.add((route.method, path))
    return routes


def test_every_route_is_in_the_spec_and_vice_versa() -> None:
    spec, app = _spec_routes(), _app_routes()
    assert app - spec == set(), "routes missing from schemas/openapi.yaml"
    assert spec - app == set(), "documented routes the app does not serve"


def test_spec_is_openapi_31() -> None:
    spec = yaml.safe_load((SCHEMAS_DIR / "openapi.yaml").read_text())
    assert spec["openapi"].startswith("3.1")


# Operations that touch neither PostgreSQL nor Redis (or, /readyz, document their own 503).
NO_STORE = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"), ("GET", "/signin"),
            ("GET", "/v1/player.js"), ("GET", "/demo/shop/products/{number}"),
            ("GET", "/media/thumbnails/{name}"), ("GET", "/watch/live/{live_id}")}


def test_every_operation_touching_a_store_documents_503_with_retry_after() -> None:
    spec = yaml.safe_load((SCHEMAS_DIR / "openapi.yaml").read_text())
    unavailable = spec["components"]["responses"]["Unavailable"]
    assert unavailable["headers"]["Retry-After"]["schema"]["type"] == "integer"
    assert unavailable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    missing = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in METHODS or (method.upper(), path) in NO_STORE:
                continue
            if operation["responses"].get("503") != {"$ref": "#/components/responses/Unavailable"}:
                missing.append(f"{method.upper()} {path}")
    assert missing == [], "operations without the 503 response (Unavailable)"
    assert NO_STORE.issubset(_spec_routes())


def test_every_operation_with_a_body_documents_the_408_of_a_slow_body() -> None:
    spec = yaml.safe_load((SCHEMAS_DIR / "openapi.yaml").read_text())
    assert spec["components"]["responses"]["RequestTimeout"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}
    missing = [f"{method.upper()} {path}" for path, item in spec["paths"].items()
               for method, operation in item.items()
               if method in METHODS and "requestBody" in operation
               and operation["responses"].get("408") != {"$ref": "#/components/responses/RequestTimeout"}]
    assert missing == [], "operations with a body but without the 408 response (RequestTimeout)"
