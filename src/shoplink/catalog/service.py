"""Catalog rules: who owns what, and which URLs a shop may send viewers to."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import asyncpg

from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.catalog import repository as repo
from shoplink.catalog.models import Product, Shop
from shoplink.catalog.urls import DomainRule, UrlRejected, host_allowed, normalize_host, normalize_url
from shoplink.changes import Change, ChangeBus
from shoplink.db import Conn
from shoplink.domains.models import FAILED, ShopDomain
from shoplink.domains.names import NameRefused, claimable
from shoplink.domains.service import DomainService
from shoplink.errors import Conflict, NotFound, ValidationFailed, field_error
from shoplink.money import MoneyError, is_currency, to_minor

log = logging.getLogger(__name__)

MAX_BULK_ROWS = 1000


class CatalogService:
    def __init__(self, pool: asyncpg.Pool, *, domains: DomainService, allow_http_urls: bool,
                 changes: ChangeBus | None = None, media_base_url: str | None = None) -> None:
        self._pool = pool
        self._domains = domains
        self._allow_http = allow_http_urls
        self._changes = changes or ChangeBus()
        # Images we serve ourselves (uploads, thumbnails) may be product images on any shop.
        self._media_prefix = f"{media_base_url.rstrip('/')}/media/" if media_base_url else None

    async def _notify(self, change: Change) -> None:
        """After commit: caches of every instance (click resolver, timelines) drop what changed."""
        await self._changes.publish(change)

    # ---- shops -------------------------------------------------------------------------

    def _domain_rules(self, entries: list[Any], field: str = "domains") -> list[DomainRule]:
        """Normalized claims; a 422 naming the entry (and a stable code) for a name nobody may own."""
        rules: dict[str, DomainRule] = {}
        for i, entry in enumerate(entries):
            raw, subs = (entry, False) if isinstance(entry, str) else (
                entry["domain"], entry.get("include_subdomains", False))
            name = field if field == "domain" else f"{field}.{i}"
            try:
                host = self._domains.normalize(raw)
            except NameRefused as exc:
                raise field_error(name, exc.message, code=exc.code) from None
            rules[host] = DomainRule(host, subs)
        return list(rules.values())

    def _fallback(self, raw: str | None, shop: Shop) -> str | None:
        if raw is None:
            return None
        return self._url_on_shop(raw, shop, "fallback_url")

    async def _with_domains(self, con: Conn, shop: Shop) -> Shop:
        return replace(shop, domains=tuple(await self._domains.for_shop(con, shop.id)))

    async def create_shop(self, who: Principal, body: dict[str, Any]) -> Shop:
        policy.require(who, "shops.create")
        rules = self._domain_rules(body["domains"])
        async with self._pool.acquire() as con, con.transaction():
            shop_id = await repo.insert_shop(con, who.account_id, body["name"].strip(), None)
            await self._domains.claim_all(con, shop_id, rules)
            shop = await repo.get_shop(con, shop_id)
            assert shop is not None
            shop = await self._with_domains(con, shop)
            fallback = self._fallback(body.get("fallback_url"), shop)
            if fallback is not None:
                await repo.update_shop(con, shop_id, {"fallback_url": fallback})
                shop = replace(shop, fallback_url=fallback)
        return shop

    async def _owned_shop(self, con: Conn, who: Principal, shop_id: int,
                          *, for_update: bool = False) -> Shop:
        shop = await repo.get_shop(con, shop_id, for_update=for_update)
        if shop is None:
            raise NotFound("shop not found")
        policy.require_owner(who, shop.owner_id, "shop")
        return await self._with_domains(con, shop)

    async def get_shop(self, who: Principal, shop_id: int) -> Shop:
        async with self._pool.acquire() as con:
            return await self._owned_shop(con, who, shop_id)

    async def list_shops(self, who: Principal, limit: int, after_id: int) -> list[Shop]:
        owner = None if who.is_admin else who.account_id
        async with self._pool.acquire() as con:
            shops = await repo.list_shops(con, owner, limit, after_id)
            domains = await self._domains.for_shops(con, [s.id for s in shops])
        return [replace(s, domains=tuple(domains.get(s.id, ()))) for s in shops]

    async def update_shop(self, who: Principal, shop_id: int, body: dict[str, Any]) -> Shop:
        async with self._pool.acquire() as con, con.transaction():
            shop = await self._owned_shop(con, who, shop_id, for_update=True)
            changes: dict[str, Any] = {}
            if "name" in body:
                changes["name"] = body["name"].strip()
            if "fallback_url" in body:
                changes["fallback_url"] = self._fallback(body["fallback_url"], shop)
            await repo.update_shop(con, shop_id, changes)
            updated = await repo.get_shop(con, shop_id)
            assert updated is not None
            updated = await self._with_domains(con, updated)
        await self._notify(Change("shop", shop_id))
        return updated

    async def add_domain(self, who: Principal, shop_id: int, body: dict[str, Any]) -> Shop:
        rule = self._domain_rules([body], field="domain")[0]
        async with self._pool.acquire() as con, con.transaction():
            await self._owned_shop(con, who, shop_id, for_update=True)
            await self._domains.claim(con, shop_id, rule)
            shop = await repo.get_shop(con, shop_id)
            assert shop is not None
            shop = await self._with_domains(con, shop)
        await self._notify(Change("shop", shop_id))
        return shop

    def _domain_name(self, raw: str) -> str:
        """A domain named in a path, in canonical form (claimed or not: no ownability check)."""
        try:
            return normalize_host(raw, allow_local=self._allow_http)
        except UrlRejected as exc:
            raise field_error("domain", str(exc)) from None

    async def get_domain(self, who: Principal, shop_id: int, raw_domain: str) -> ShopDomain:
        domain = self._domain_name(raw_domain)
        async with self._pool.acquire() as con:
            shop = await self._owned_shop(con, who, shop_id)
        found = shop.domain(domain)
        if found is None:
            raise NotFound(f"domain {domain} is not registered for this shop")
        return found

    async def verify_domain(self, who: Principal, shop_id: int, raw_domain: str) -> ShopDomain:
        """Look for the domain's proof now (its owner only) and return its new state."""
        domain = self._domain_name(raw_domain)
        policy.require(who, "catalog.manage")
        async with self._pool.acquire() as con:
            await self._owned_shop(con, who, shop_id)
        return await self._domains.verify(shop_id, domain)

    async def remove_domain(self, who: Principal, shop_id: int, raw_domain: str) -> Shop:
        domain = self._domain_name(raw_domain)
        async with self._pool.acquire() as con, con.transaction():
            shop = await self._owned_shop(con, who, shop_id, for_update=True)
            remaining = [d.rule for d in shop.domains if d.domain != domain]
            if len(remaining) == len(shop.domains):
                raise NotFound(f"domain {domain} is not registered for this shop")
            stranded = [r["id"] for r in await repo.active_product_urls(con, shop_id)
                        if not self._url_on(r["url"], remaining)]
            if stranded:
                raise Conflict(f"{len(stranded)} active product(s) link to {domain}; "
                               "change or delist them first", code="domain_in_use",
                               details={"product_ids": stranded[:100]})
            if shop.fallback_url and not self._url_on(shop.fallback_url, remaining):
                raise Conflict(f"the shop's fallback_url is on {domain}; change it first",
                               code="domain_in_use")
            await self._domains.release(con, shop_id, domain)
            updated = await repo.get_shop(con, shop_id)
            assert updated is not None
            updated = await self._with_domains(con, updated)
        await self._notify(Change("shop", shop_id))
        return updated

    def _url_on(self, url: str, rules: list[DomainRule]) -> bool:
        try:
            _, host = normalize_url(url, allow_http=True)
        except UrlRejected:
            return False
        return host_allowed(host, rules)

    def _usable(self, rules: list[DomainRule]) -> list[DomainRule]:
        """Rules whose name may be owned at all (rows older than the name rules may not)."""
        return [r for r in rules if claimable(r.domain, dev=self._allow_http)]

    def _url_on_shop(self, raw: str, shop: Shop, field: str) -> str:
        """The canonical URL when it is on one of the shop's usable domains; a 422 on `field`."""
        try:
            url, host = normalize_url(raw, allow_http=self._allow_http)
        except UrlRejected as exc:
            raise field_error(field, str(exc)) from None
        if host_allowed(host, self._usable(shop.rules)):
            return url
        failed = next((d for d in shop.domains if d.state == FAILED and d.rule.matches(host)), None)
        if failed is not None:
            raise field_error(field, f"the domain {failed.domain} failed verification "
                                     f"({failed.failure_reason}): verify it again or add it again",
                              code="domain_failed")
        names = ", ".join(d.domain for d in shop.domains) or "(none)"
        raise field_error(field, f"host {host!r} is not one of the shop's domains: {names}")

    def _image_url(self, raw: str, shop: Shop, field: str) -> str:
        """A product image is shown inside the player on other sites: it must come from a verified
        domain of the shop, or from this service's own media (no third-party tracking pixels)."""
        try:
            url, host = normalize_url(raw, allow_http=self._allow_http)
        except UrlRejected as exc:
            raise field_error(field, str(exc)) from None
        if host_allowed(host, self._usable(shop.verified_rules)):
            return url
        if self._media_prefix is not None and url.startswith(self._media_prefix):
            return url
        if host_allowed(host, shop.rules):
            raise field_error(field, f"{host} is not verified yet: product images must come from a "
                                     "verified domain of the shop", code="domain_not_verified")
        raise field_error(field, f"host {host!r} is not a verified domain of the shop (images from "
                                 "other sites are not accepted)")

    # ---- products ----------------------------------------------------------------------

    def _product_fields(self, body: dict[str, Any], shop: Shop, prefix: str = "",
                        current: Product | None = None) -> dict[str, Any]:
        """Validate and normalize product fields (already schema-checked)."""
        out: dict[str, Any] = {}
        if "title" in body:
            title = body["title"].strip()
            if not title:
                raise field_error(f"{prefix}title", "must not be blank")
            out["title"] = title
        if "url" in body:
            out["url"] = self._url_on_shop(body["url"], shop, f"{prefix}url")
        if "image_url" in body:
            out["image_url"] = None
            if body["image_url"] is not None:
                out["image_url"] = self._image_url(body["image_url"], shop, f"{prefix}image_url")
        if "sku" in body:
            out["sku"] = body["sku"].strip() or None if body["sku"] is not None else None
        if "price" in body or "currency" in body:
            price = body.get("price", current.price if current else None)
            currency = body.get("currency", current.currency if current else None)
            if price is None and currency is None:
                out["price_minor"], out["currency"] = None, None
            elif price is None or currency is None:
                raise field_error(f"{prefix}price", "price and currency go together")
            else:
                if not is_currency(currency):
                    raise field_error(f"{prefix}currency", f"unknown ISO 4217 currency {currency!r}")
                try:
                    out["price_minor"] = to_minor(price, currency)
                except MoneyError as exc:
                    raise field_error(f"{prefix}price", str(exc)) from None
                out["currency"] = currency
        return out

    async def create_products(self, who: Principal, shop_id: int, rows: list[dict[str, Any]],
                              found: list[dict[str, Any]] | None = None) -> list[Product]:
        """Insert every row or none; a 422 lists each bad row (with `found`: problems the caller
        already found, e.g. by JSON Schema; their rows are not checked again)."""
        policy.require(who, "catalog.manage")
        if len(rows) > MAX_BULK_ROWS:
            raise ValidationFailed(f"at most {MAX_BULK_ROWS} products per request")
        async with self._pool.acquire() as con, con.transaction():
            shop = await self._owned_shop(con, who, shop_id)
            clean = await self._checked_rows(con, shop, rows, found or [])
            ids = await repo.insert_products(con, shop_id, clean)
            return await repo.get_products(con, ids)

    async def check_products(self, who: Principal, shop_id: int, rows: list[dict[str, Any]],
                             found: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """The same checks as `create_products` (a 422 lists each bad row), storing nothing:
        the products' fields as they would be stored."""
        policy.require(who, "catalog.manage")
        if len(rows) > MAX_BULK_ROWS:
            raise ValidationFailed(f"at most {MAX_BULK_ROWS} products per request")
        async with self._pool.acquire() as con:
            shop = await self._owned_shop(con, who, shop_id)
            return await self._checked_rows(con, shop, rows, found or [])

    async def _checked_rows(self, con: Conn, shop: Shop, rows: list[dict[str, Any]],
                            found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        clean: list[tuple[int, dict[str, Any]]] = []
        errors: list[dict[str, Any]] = list(found)
        known_bad = {e.get("row") for e in found}
        for n, row in enumerate(rows):
            if n in known_bad:
                continue
            try:
                clean.append((n, self._product_fields(row, shop)))
            except ValidationFailed as exc:
                errors.extend({"row": n, **d} for d in exc.details)
        skus = [r["sku"] for _, r in clean if r.get("sku")]
        seen: set[str] = set()
        taken = await repo.existing_skus(con, shop.id, skus) if skus else set()
        for n, row in clean:
            sku = row.get("sku")
            if sku and (sku in seen or sku in taken):
                errors.append({"row": n, "field": "sku", "code": "duplicate",
                               "message": f"sku {sku!r} already exists in this shop"})
            if sku:
                seen.add(sku)
        if errors:
            errors.sort(key=lambda e: int(e.get("row", -1)))
            raise ValidationFailed(f"{len(errors)} problem(s) in the products; nothing was stored",
                                   details=errors[:200])
        return [r for _, r in clean]

    async def get_product(self, who: Principal, product_id: int) -> Product:
        product = await self.product_by_id(product_id)
        if product is None:
            raise NotFound("product not found")
        policy.require_owner(who, product.owner_id, "product")
        return product

    async def product_by_id(self, product_id: int) -> Product | None:
        """For other domains (anchors, plans): no ownership check, callers apply their rules."""
        async with self._pool.acquire() as con:
            return await repo.get_product(con, product_id)

    async def products_by_ids(self, product_ids: list[int]) -> list[Product]:
        async with self._pool.acquire() as con:
            return await repo.get_products(con, product_ids)

    async def list_products(self, who: Principal, *, shop_id: int | None, status: str | None,
                            search: str | None, limit: int, after_id: int) -> list[Product]:
        async with self._pool.acquire() as con:
            if shop_id is not None:
                await self._owned_shop(con, who, shop_id)
            owner = None if who.is_admin else who.account_id
            pattern = None
            if search:
                pattern = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            return await repo.list_products(con, shop_id=shop_id, owner_id=owner, status=status,
                                            search=pattern, limit=limit, after_id=after_id)

    async def update_product(self, who: Principal, product_id: int, body: dict[str, Any]) -> Product:
        async with self._pool.acquire() as con, con.transaction():
            product = await repo.get_product(con, product_id)
            if product is None:
                raise NotFound("product not found")
            policy.require_owner(who, product.owner_id, "product")
            shop = await repo.get_shop(con, product.shop_id)
            assert shop is not None
            shop = await self._with_domains(con, shop)
            changes = self._product_fields(body, shop, current=product)
            if "status" in body:
                changes["status"] = body["status"]
            if changes.get("sku") and changes["sku"] != product.sku and await repo.existing_skus(
                    con, shop.id, [changes["sku"]]):
                raise field_error("sku", f"sku {changes['sku']!r} already exists in this shop",
                                  code="duplicate")
            if changes:
                await repo.update_product(con, product_id, changes)
            updated = await repo.get_product(con, product_id)
        assert updated is not None
        await self._notify(Change("product", product_id))
        return updated

    async def delist_product(self, who: Principal, product_id: int) -> Product:
        return await self.update_product(who, product_id, {"status": "delisted"})
