"""A Python client generated from the contract (openapi-python-client, into a temporary folder at
test time) runs the whole story against the real server, as an integrator's code would: shop,
domain proven through the test DNS server, product, video upload, plan, join, anchor, timeline,
click, stats, conversion, report. Every body parses into its generated model, and none carries a
property the contract does not name (the models keep those in `additional_properties`)."""

from __future__ import annotations

import contextlib
import importlib
import io
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from support.api import AccountFactory
from support.clients import PACKAGE
from support.dns_server import DnsServer
from support.video_data import make_video
from support.wait import until

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


def undocumented(value: Any, where: str = "") -> list[str]:
    """Properties of a parsed body (and its nested models) that the contract does not name."""
    found = []
    if attrs.has(type(value)):
        extra = getattr(value, "additional_properties", {})
        if extra and type(value).__name__ != "LiveTimelineEventData":  # documented as free-form
            found.append(f"{where or type(value).__name__}: {sorted(extra)}")
        for field in attrs.fields(type(value)):
            if field.name != "additional_properties":
                found += undocumented(getattr(value, field.name), f"{type(value).__name__}.{field.name}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            found += undocumented(item, f"{where}[{n}]")
    return found


class Api:
    """The generated package, imported at test time (so its names are looked up by string)."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.types = importlib.import_module(f"{PACKAGE}.types")

    def call(self, tag: str, operation: str) -> Any:
        return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation}")

    def client(self, base_url: str, token: str | None = None, **kw: Any) -> Any:
        if token is None:
            return self.package.Client(base_url=base_url, **kw)
        return self.package.AuthenticatedClient(base_url=base_url, token=token, **kw)

    def check(self, response: Any, status: int, model: str) -> Any:
        """The parsed body of a `*_detailed` call: the status, the model, nothing undocumented."""
        assert response.status_code == status, (response.status_code, response.content[:500])
        parsed = response.parsed
        if model == "str":
            assert isinstance(parsed, str), parsed
            return parsed
        assert isinstance(parsed, getattr(self.models, model)), parsed
        assert undocumented(parsed) == [], f"undocumented properties in {model}: {undocumented(parsed)}"
        return parsed


@pytest.mark.usefixtures("count_worker")  # counts and attributes the clicks, as deployed
async def test_a_generated_python_client_runs_the_whole_story(
        client_package: ModuleType, make_account: AccountFactory, base_url: str, dns: DnsServer,
        tmp_path: Path) -> None:
    api = Api(client_package)
    creator_account = await make_account("creator", name="Creator")
    async with contextlib.AsyncExitStack() as clients:
        seller = await clients.enter_async_context(
            api.client(base_url, (await make_account("seller", name="Brand")).token))
        creator = await clients.enter_async_context(api.client(base_url, creator_account.token))
        viewer = await clients.enter_async_context(
            api.client(base_url, headers={"User-Agent": CHROME}, follow_redirects=False))
        await _story(api, seller, creator, creator_account.account_id, viewer, dns, tmp_path)


async def _story(api: Api, seller: Any, creator: Any, creator_id: int, viewer: Any, dns: DnsServer,
                 tmp_path: Path) -> None:
    m = api.models

    me = api.check(await api.call("accounts", "get_me").asyncio_detailed(client=creator), 200, "Account")
    assert me.id == creator_id and [r.value for r in me.roles] == ["creator"]

    # a shop and its domain, proven by the DNS TXT record the domain's JSON asks for
    shop = api.check(await api.call("shops", "create_shop").asyncio_detailed(
        client=seller, body=m.ShopCreate(name="Acme", domains=["acme.example"])), 201, "Shop")
    domain = shop.domains[0]
    assert domain.state.value == "pending"
    dns.add_txt(domain.verification.dns_txt.name, domain.verification.dns_txt.value)
    verified = api.check(await api.call("domains", "verify_shop_domain").asyncio_detailed(
        shop.id, "acme.example", client=seller), 200, "Domain")
    assert verified.state.value == "verified" and verified.verified_by.value == "dns_txt"
    product = api.check(await api.call("products", "create_product").asyncio_detailed(
        shop.id, client=seller, body=m.ProductCreate(title="Trail shoe", url="https://acme.example/p/trail",
                                                     price="89.00", currency=m.ProductCreateCurrency.USD)),
        201, "Product")
    assert (product.price, product.price_minor, product.status.value) == ("89.00", 8900, "active")
    page = api.check(await api.call("products", "list_shop_products").asyncio_detailed(
        shop.id, client=seller, q="trail", limit=10), 200, "ProductPage")
    assert [p.id for p in page.items] == [product.id] and page.next_after is None

    # a plan the creator joins, and the creator's video with an anchor on the product
    plan = api.check(await api.call("plans", "create_plan").asyncio_detailed(client=seller, body=m.PlanCreate(
        name="Spring", kind=m.PlanCreateKind.OPEN, rate="10.00",
        products=[m.PlanCreateProductsItem(product_id=product.id)])), 201, "Plan")
    enrolment = api.check(await api.call("marketplace", "join_plan").asyncio_detailed(plan.id, client=creator),
                          201, "Enrolment")
    assert enrolment.status.value == "enrolled"
    clip = make_video(tmp_path / "clip.mp4", seconds=4.0)
    video = api.check(await api.call("videos", "upload_video").asyncio_detailed(
        client=creator, body=m.UploadVideoBody(
            file=api.types.File(payload=io.BytesIO(clip.path.read_bytes()), file_name="clip.mp4",
                                mime_type="video/mp4"), title="Haul")), 201, "Video")
    assert video.frame_count == clip.frame_count
    anchor = api.check(await api.call("anchors", "create_anchor").asyncio_detailed(
        video.id, client=creator, body=m.AnchorCreate(product_id=product.id, start_s=0.5, end_s=3.0,
                                                      position=m.AnchorCreatePosition(x=0.1, y=0.2))),
        201, "Anchor")
    assert anchor.plan_id == plan.id and anchor.position.x == 0.1

    # the player's timeline, a viewer's click
    timeline = api.check(await api.call("viewer", "get_video_timeline").asyncio_detailed(
        video.id, client=viewer, at=1.0), 200, "Timeline")
    assert [a.code for a in timeline.anchors] == [anchor.code]
    click = await api.call("clicks", "follow_link").asyncio_detailed(anchor.code, client=viewer, t=1.5)
    assert click.status_code == 302
    location = urlsplit(click.headers["Location"])
    assert location.netloc == "acme.example"
    click_id = parse_qs(location.query)["sl_click"][0]

    # counted by `shoplink count`: the stats, and the plan's report once the click is attributed
    stats_call = api.call("stats", "get_video_stats")

    async def counted() -> Any:
        stats = api.check(await stats_call.asyncio_detailed(video.id, client=creator, granularity=m.Granularity.HOUR),
                          200, "ClickStats")
        return stats if stats.totals.clicks == 1 else None

    stats = await until(counted, timeout=30, interval=0.1)
    assert stats.totals.by_class.human == 1 and stats.totals.by_outcome.redirected == 1
    report_call = api.call("reports", "get_affiliate_report")

    async def attributed() -> Any:
        report = api.check(await report_call.asyncio_detailed(client=seller, plan_id=plan.id), 200,
                           "AffiliateReport")
        return report if report.items and report.items[0].clicks.total == 1 else None

    await until(attributed, timeout=30, interval=0.1)

    # the shop's sale, credited to the creator's click; the creator's report
    sale = api.check(await api.call("conversions", "report_conversion").asyncio_detailed(
        client=seller, body=m.ConversionCreate(shop_id=shop.id, order_id="ORD-1", amount="89.00",
                                               currency=m.ConversionCreateCurrency.USD, click_id=click_id)),
        201, "Conversion")
    assert sale.attributed and sale.creator_id == creator_id and sale.commission_minor == 890
    mine = api.check(await report_call.asyncio_detailed(client=creator, group_by=m.ReportGroupBy.CREATOR),
                     200, "AffiliateReport")
    assert [(r.creator_id, r.conversions, r.sales[0].commission_owed) for r in mine.items] == [
        (creator_id, 1, "8.90")]
    csv = api.check(await api.call("reports", "get_affiliate_report_csv").asyncio_detailed(
        client=seller, group_by=m.ReportGroupBy.PLAN), 200, "str")
    assert csv.startswith("group_by,id,currency,") and csv.endswith("\r\n")
    # an error is the Error model, with its code
    missing = await api.call("products", "get_product").asyncio_detailed(product.id + 1000, client=seller)
    assert missing.status_code == 404 and missing.parsed.error.code == "not_found"
