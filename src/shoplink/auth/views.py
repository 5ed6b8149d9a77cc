"""HTTP: accounts, tokens, and /me."""

from __future__ import annotations

from aiohttp import web

from shoplink.auth import policy
from shoplink.http import json_response, page, page_params, path_id, principal
from shoplink.keys import AUTH, SETTINGS
from shoplink.validation import read_json

routes = web.RouteTableDef()


@routes.get("/api/v1/me")
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    account = await request.app[AUTH].get_account(who, who.account_id)
    return json_response(account.to_json())


@routes.post("/api/v1/accounts")
async def create_account(request: web.Request) -> web.Response:
    who = principal(request)
    policy.require(who, "accounts.manage")
    body = await read_json(request, "account_create", request.app[SETTINGS].max_body_bytes)
    account, token = await request.app[AUTH].create_account(body["name"], body["roles"])
    return json_response({**account.to_json(), "token": token.token, "token_id": token.id},
                         status=201)


@routes.get("/api/v1/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    limit, after = page_params(request)
    accounts = await request.app[AUTH].list_accounts(principal(request), limit, after)
    return json_response(page([a.to_json() for a in accounts], limit))


@routes.get("/api/v1/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    account = await request.app[AUTH].get_account(principal(request), path_id(request, "account_id"))
    return json_response(account.to_json())


@routes.get("/api/v1/accounts/{account_id}/tokens")
async def list_tokens(request: web.Request) -> web.Response:
    tokens = await request.app[AUTH].list_tokens(principal(request), path_id(request, "account_id"))
    return json_response({"items": tokens})


@routes.post("/api/v1/accounts/{account_id}/tokens")
async def issue_token(request: web.Request) -> web.Response:
    body = await read_json(request, "token_create", request.app[SETTINGS].max_body_bytes)
    token = await request.app[AUTH].issue_token(principal(request), path_id(request, "account_id"),
                                                body.get("label", ""))
    return json_response(token.to_json(), status=201)


@routes.delete("/api/v1/tokens/{token_id}")
async def revoke_token(request: web.Request) -> web.Response:
    await request.app[AUTH].revoke_token(principal(request), path_id(request, "token_id"))
    return web.Response(status=204)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
