"""Authentication (tokens) and authorization (roles, ownership) over the real HTTP API."""

from __future__ import annotations

from support.api import AccountFactory, Api


async def test_no_token_bad_token_and_wrong_scheme(anon: Api, make_account: AccountFactory) -> None:
    for headers in ({}, {"Authorization": "Bearer slk_not-a-real-token"},
                    {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}):
        reply = await anon.get("/api/v1/me", headers=headers)
        assert reply.status == 401, headers
        assert reply.error_code in ("unauthorized", "invalid_token")
        assert reply.headers["WWW-Authenticate"] == "Bearer"


async def test_me_and_revoked_token(make_account: AccountFactory) -> None:
    seller = await make_account("seller", name="Sam")
    me = await seller.get("/api/v1/me")
    assert me.status == 200 and me.body["name"] == "Sam" and me.body["roles"] == ["seller"]
    tokens = await seller.get(f"/api/v1/accounts/{seller.account_id}/tokens")
    assert tokens.status == 200 and "token" not in tokens.body["items"][0]
    token_id = tokens.body["items"][0]["id"]
    assert (await seller.delete(f"/api/v1/tokens/{token_id}")).status == 204
    assert (await seller.get("/api/v1/me")).status == 401


async def test_admin_creates_accounts_others_cannot(make_account: AccountFactory, anon: Api) -> None:
    admin = await make_account("admin")
    seller = await make_account("seller")
    created = await admin.post("/api/v1/accounts", {"name": "Cleo", "roles": ["creator", "seller"]})
    assert created.status == 201
    assert created.body["roles"] == ["creator", "seller"] and created.body["token"].startswith("slk_")
    cleo = Api(anon.session, anon.base_url, created.body["token"])
    assert (await cleo.get("/api/v1/me")).body["id"] == created.body["id"]
    denied = await seller.post("/api/v1/accounts", {"name": "X", "roles": ["admin"]})
    assert denied.status == 403 and denied.error_code == "role_required"
    assert (await seller.get("/api/v1/accounts")).status == 403
    listed = await admin.get("/api/v1/accounts")
    assert listed.status == 200 and len(listed.body["items"]) == 3


async def test_token_issue_and_cross_account_access(make_account: AccountFactory) -> None:
    admin = await make_account("admin")
    a = await make_account("seller")
    b = await make_account("seller")
    issued = await a.post(f"/api/v1/accounts/{a.account_id}/tokens", {"label": "laptop"})
    assert issued.status == 201 and issued.body["label"] == "laptop"
    # another account's tokens and accounts look like they do not exist
    assert (await b.get(f"/api/v1/accounts/{a.account_id}/tokens")).status == 404
    assert (await b.get(f"/api/v1/accounts/{a.account_id}")).status == 404
    assert (await b.delete(f"/api/v1/tokens/{issued.body['id']}")).status == 404
    assert (await b.post(f"/api/v1/accounts/{a.account_id}/tokens", {})).status == 403
    # admins may
    assert (await admin.delete(f"/api/v1/tokens/{issued.body['id']}")).status == 204
    assert (await admin.get("/api/v1/accounts/999999")).status == 404


async def test_account_validation(make_account: AccountFactory) -> None:
    admin = await make_account("admin")
    for body in ({"name": "x", "roles": []}, {"name": "x", "roles": ["king"]}, {"name": "", "roles": ["seller"]},
                 {"name": "x"}, {"name": "x", "roles": ["seller"], "extra": 1}):
        reply = await admin.post("/api/v1/accounts", body)
        assert reply.status == 422, body
        assert reply.body["error"]["details"][0]["field"]


async def test_creator_cannot_create_shops(make_account: AccountFactory) -> None:
    creator = await make_account("creator")
    reply = await creator.post("/api/v1/shops", {"name": "Nope", "domains": ["nope.example"]})
    assert reply.status == 403
