"""A whole business from an empty database, in the browser, at desktop and phone sizes:
a seller makes a shop, proves a domain (the TXT record the page shows, published in the test DNS
server, then "Check now"), imports products from CSV (a bad file first: its rows' problems are
shown and nothing is stored), opens plans; a creator joins from the marketplace, answers an
invitation, anchors a video and finds the link and its QR codes; a viewer clicks; the shop
reports the sale; the creator sees the commission, the seller the sale.

Every page is checked by walk.Walker.check (no sideways scroll, no console error, no serious or
critical axe-core violation) and saved under artifacts/screenshots/walk/."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Page

from shoplink.web.demo_media import make_webm

from .conftest import WebApp
from .walk import Walker, sign_in_as, walker
from support import dns_server
from support.api import Api
from support.wait import until
from support.web_data import upload_video

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("count_worker")]

BAD_CSV = ("title,url,price,currency,sku\n"
           "Walk Mug,{base}/demo/shop/products/1,12.00,USD,MUG-1\n"
           "Evil,https://evil.example/x,1.00,USD,EV-1\n"
           "Walk Cup,{base}/demo/shop/products/2,9.50,XXX,CUP-1\n")
GOOD_CSV = ("title,url,price,currency,sku\n"
            "Walk Mug,{base}/demo/shop/products/1,12.00,USD,MUG-1\n"
            "Walk Cup,{base}/demo/shop/products/2,9.50,USD,CUP-1\n"
            "Walk Bowl,{base}/demo/shop/products/3,20.00,USD,BOWL-1\n")


async def count_is(page: Page, selector: str, n: int) -> None:
    """Wait until `selector` matches `n` elements (the page's CSP forbids wait_for_function's eval)."""
    async def matches() -> bool:
        return len(await page.query_selector_all(selector)) == n
    await until(matches, timeout=10, interval=0.05, what=f"{n} x {selector}")


async def upload_csv(page: Page, text: str, tmp: Path, name: str) -> None:
    path = tmp / name
    path.write_text(text)
    await page.set_input_files("#csv-file", str(path))
    await page.click("#csv-check")


async def seller_builds_shop(w: Walker, tmp: Path, suffix: str) -> tuple[int, str]:
    """Shop, a proven domain, products by CSV: (shop id, the proven domain)."""
    pg = w.page
    await w.goto("/shops")
    await pg.wait_for_selector("#shops-list .empty")
    await w.check("shops-empty")
    await pg.fill("#shop-name", "Walk Shop")
    await pg.fill("#shop-domain", "127.0.0.1")  # a loopback host: verified at once in development
    await pg.fill("#shop-fallback", f"{w.base}/demo/shop/products/1")
    async with pg.expect_navigation():
        await pg.click("#shop-create")
    shop_id = int(pg.url.rsplit("/", 1)[1])
    await pg.wait_for_selector("#shop-title:has-text('Walk Shop')")

    # A second domain needs its proof: the TXT record the page shows, published, then "Check now".
    domain = f"walk-{suffix}.example"
    await pg.fill("#domain-name", domain)
    await pg.click("#domain-add")
    card = f".domain-card[data-domain='{domain}']"
    await pg.wait_for_selector(f"{card} .badge:has-text('pending')")
    values = await pg.eval_on_selector_all(f"{card} .proof-value", "els => els.map(e => e.textContent)")
    txt_name, txt_value = values[0], values[1]
    assert txt_name == f"_shoplink-verify.{domain}" and txt_value
    await w.check("shop-domain-pending")
    dns_server.shared().add_txt(txt_name, txt_value)
    await pg.click(f"{card} button[data-action=verify]")
    await pg.wait_for_selector(f"{card} .badge:has-text('verified')")
    await pg.wait_for_selector(f"{card} [role=status]:has-text('verified')")

    await pg.fill("#edit-name", "Walk Shop & Co")
    await pg.click("#shop-save")
    await pg.wait_for_selector("#shop-title:has-text('Walk Shop & Co')")
    await w.check("shop")

    # Products: a CSV with bad rows is refused row by row, nothing stored; then a good one.
    await pg.click("#shop-products-link")
    await pg.wait_for_selector("#products .empty")
    await upload_csv(pg, BAD_CSV.format(base=w.base), tmp, f"bad-{suffix}.csv")
    await pg.wait_for_selector("#csv-problems")
    bad_rows = await pg.eval_on_selector_all("#csv-problems tr.bad", "els => els.map(e => e.dataset.row)")
    assert bad_rows == ["1", "2"]
    assert await pg.is_disabled("#csv-import")
    await w.check("products-csv-problems")
    await pg.wait_for_selector("#products .empty")  # nothing was stored

    await upload_csv(pg, GOOD_CSV.format(base=w.base), tmp, f"good-{suffix}.csv")
    await pg.wait_for_selector("#csv-ok")
    assert await pg.is_enabled("#csv-import")
    await pg.wait_for_selector("#products .empty")  # checked, still nothing stored
    await pg.click("#csv-import")
    await pg.wait_for_selector("#csv-status:has-text('Imported 3')")
    await count_is(pg, "#product-table tbody tr", 3)

    # Edit with an image (on the shop's verified domain) and its preview; search; delist.
    await pg.click("#product-table tbody tr:has-text('Walk Bowl') button:has-text('Edit')")
    await pg.fill("#p-image", f"{w.base}/static/favicon.svg")
    await pg.wait_for_selector("#p-preview:not([hidden])")
    await pg.fill("#p-price", "22.00")
    await pg.click("#product-save")
    await pg.wait_for_selector("#product-status:has-text('Saved Walk Bowl')")
    await pg.wait_for_selector("#product-table tr:has-text('Walk Bowl') img.thumb-sm")
    assert "22.00" in (await pg.inner_text("#product-table tr:has-text('Walk Bowl')"))
    await pg.fill("#search-q", "cup")
    await pg.click("#search-go")
    await count_is(pg, "#product-table tbody tr", 1)
    await pg.fill("#search-q", "")
    await pg.click("#search-go")
    await count_is(pg, "#product-table tbody tr", 3)
    await w.check("products")
    return shop_id, domain


async def seller_opens_plans(w: Walker, creator_id: int) -> tuple[int, int]:
    """An open plan (10 %, the bowl at 15 %, then a cut announced) and a targeted one with an
    invitation: (open plan id, targeted plan id)."""
    pg = w.page
    await w.goto("/plans")
    await pg.wait_for_selector("#plans-list .empty")
    await pg.wait_for_selector("#plan-products input[name=product]")
    await w.check("plans-empty")
    await pg.fill("#plan-name", "Walk Spring")
    await pg.fill("#plan-rate", "10")
    for title in ("Walk Mug", "Walk Bowl"):
        await pg.check(f"#plan-products li:has-text('{title}') input[name=product]")
    await pg.fill("#plan-products li:has-text('Walk Bowl') input.rate-input", "15")
    async with pg.expect_navigation():
        await pg.click("#plan-create")
    open_id = int(pg.url.rsplit("/", 1)[1])
    await pg.wait_for_selector("#plan-title:has-text('Walk Spring')")
    await pg.wait_for_selector("#plan-product-table tr:has-text('Walk Bowl'):has-text('15.00 %')")
    await pg.fill("#rate-value", "8")
    await pg.click("#rate-go")
    await pg.wait_for_selector("#rate-status:has-text('applies from')")  # a cut waits for its notice date
    await pg.wait_for_selector("#rate-table tr.pending")
    await pg.click("#plan-pause")
    await pg.wait_for_selector("#plan-state .badge:has-text('paused')")
    assert await pg.is_disabled("#plan-pause")
    await pg.click("#plan-resume")
    await pg.wait_for_selector("#plan-state .badge:has-text('active')")
    await w.check("plan")

    await w.goto("/plans")
    await pg.wait_for_selector("#plan-products input[name=product]")
    await pg.fill("#plan-name", "Walk VIP")
    await pg.fill("#plan-rate", "20")
    await pg.check("#plan-products li:has-text('Walk Cup') input[name=product]")
    await pg.check("input[name=kind][value=targeted]")
    async with pg.expect_navigation():
        await pg.click("#plan-create")
    targeted_id = int(pg.url.rsplit("/", 1)[1])
    await pg.fill("#invite-id", str(creator_id))
    await pg.click("#invite-go")
    await pg.wait_for_selector(f"#enrolment-table tr[data-creator-id='{creator_id}'] .badge:has-text('invited')")
    await pg.wait_for_selector(f"#enrolment-table tr[data-creator-id='{creator_id}']:has-text('Walk Creator')")
    await w.check("plan-targeted")
    await w.goto("/plans")
    await pg.wait_for_selector("#plans tbody tr >> nth=1")
    await w.check("plans")
    return open_id, targeted_id


async def creator_joins(w: Walker, open_id: int, targeted_id: int) -> None:
    pg = w.page
    await w.goto("/me/plans")
    await pg.wait_for_selector("#my-plans .empty")
    await pg.wait_for_selector(f"#invitations [data-plan-id='{targeted_id}']")
    await w.check("my-plans-invited")
    await pg.click(f"#invitations [data-plan-id='{targeted_id}'] button:has-text('Decline')")
    await pg.wait_for_selector("#invitations .empty")

    await w.goto("/marketplace")
    card = f".plan-card[data-plan-id='{open_id}']"
    await pg.wait_for_selector(card)
    assert "15.00 %" in await pg.inner_text(card)  # the best rate in the plan
    await pg.fill("#market-min", "50")
    await pg.click("#market-go")
    await pg.wait_for_selector("#market .empty")
    await pg.fill("#market-min", "12")
    await pg.click("#market-go")
    await pg.wait_for_selector(card)
    await pg.fill("#market-q", "no such thing")
    await pg.wait_for_selector("#market .empty")
    await pg.fill("#market-q", "bowl")  # a product's title finds its plan
    await pg.wait_for_selector(card)
    await w.check("marketplace")
    await pg.click(f"{card} button[data-join]")
    await pg.wait_for_selector(f"{card} .badge:has-text('enrolled')")
    await w.goto("/me/plans")
    await pg.wait_for_selector(f"#my-plans [data-plan-id='{open_id}']")
    await w.check("my-plans")


async def creator_links(w: Walker, creator: Api, tmp: Path, product_id: int) -> str:
    """A video with an anchor on a plan product (through the API: the studio has its own tests);
    the links page: the link, and QR codes in PNG and SVG at the chosen size. The link."""
    pg = w.page
    await w.goto("/links")
    await pg.wait_for_selector("#links .empty")
    await w.check("links-empty")
    clip = make_webm(tmp / f"walk-{creator.account_id}.webm", scenes=2)
    video = await upload_video(creator, clip, "Walk haul")
    made = await creator.post(f"/api/v1/videos/{video['id']}/anchors",
                              {"product_id": product_id, "start_s": 0.0, "end_s": 2.0})
    assert made.status == 201, made.body
    await pg.reload()
    row = f"#link-table tr[data-code='{made.body['code']}']"
    await pg.wait_for_selector(row)
    await pg.select_option("#qr-size", "16")
    png = await pg.get_attribute(f"{row} a[data-qr=png]", "href")
    svg = await pg.get_attribute(f"{row} a[data-qr=svg]", "href")
    assert png and png.endswith("qr.png?scale=16") and svg and svg.endswith("qr.svg?scale=16")
    for href, kind in ((png, "image/png"), (svg, "image/svg+xml")):
        got = await pg.request.get(w.base + href)
        assert got.status == 200 and got.headers["content-type"] == kind
    await w.check("links")
    return str(made.body["link"])


async def viewer_clicks(browser: Browser, link: str) -> str:
    """A viewer opens the link and lands on the product page: the click id the shop receives."""
    from .conftest import human_user_agent
    ctx = await browser.new_context(user_agent=human_user_agent(browser))
    try:
        pg = await ctx.new_page()
        await pg.goto(link)
        params = parse_qs(urlsplit(pg.url).query)
        assert "/demo/shop/products/" in pg.url, pg.url
        return params["sl_click"][0]
    finally:
        await ctx.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_a_whole_business_in_the_browser(webapp: WebApp, browser: Browser, tmp_path: Path,
                                               size: str) -> None:
    seller = await webapp.account("seller", name=f"Walk Seller {size}")
    creator = await webapp.account("creator", name=f"Walk Creator {size}")
    async with walker(browser, webapp.base, size) as sw, walker(browser, webapp.base, size) as cw:
        await sign_in_as(sw, seller.token or "", "/shops")
        assert creator.account_id is not None
        shop_id, _ = await seller_builds_shop(sw, tmp_path, f"{size}-{seller.account_id}")
        open_id, targeted_id = await seller_opens_plans(sw, creator.account_id)

        await sign_in_as(cw, creator.token or "", "/earnings")
        await cw.page.wait_for_selector("#earnings .empty")
        await cw.check("earnings-empty")
        await creator_joins(cw, open_id, targeted_id)
        products = (await seller.get(f"/api/v1/shops/{shop_id}/products?q=Bowl")).body["items"]
        link = await creator_links(cw, creator, tmp_path, products[0]["id"])

        click_id = await viewer_clicks(browser, link)

        async def attributed() -> bool:
            reply = await seller.get(f"/api/v1/reports/affiliates?group_by=plan&plan_id={open_id}")
            return bool(reply.body["items"]) and reply.body["items"][0]["clicks"]["total"] >= 1
        await until(attributed, timeout=30, interval=0.2, what="the count worker attributes the click")
        sale = await seller.post("/api/v1/conversions", {
            "shop_id": shop_id, "order_id": f"WALK-{size}", "amount": "100.00", "currency": "USD",
            "click_id": click_id})
        assert sale.status == 201 and sale.body["attributed"], sale.body

        await cw.goto("/earnings")
        row = f"#earnings-table tr[data-id='{open_id}']"
        await cw.page.wait_for_selector(row)
        text = await cw.page.inner_text(row)
        assert "Walk Spring" in text and "USD 15.00" in text  # the bowl's own rate: 15 % of 100.00
        await cw.page.wait_for_selector("[data-kpi='commission-USD']:has-text('USD 15.00')")
        assert await cw.page.get_attribute("#settlement-link a", "href") == "/statement"
        await cw.check("earnings")

        await sw.goto("/earnings")
        await sw.page.wait_for_selector(f"#earnings-table tr[data-id='{open_id}']:has-text('USD 100.00')")
        assert await sw.page.get_attribute("#settlement-link a", "href") == "/payouts"
        await sw.check("sales")
        await sw.page.select_option("#earnings-group", "creator")
        await sw.page.wait_for_selector(
            f"#earnings-table tr[data-id='{creator.account_id}']:has-text('Walk Creator {size}')")

        # Dashboards: things by name, ranked by clicks; the columns are the stats API's measures.
        async def counted() -> bool:  # the click counters (another consumer group than attribution)
            reply = await seller.get(f"/api/v1/stats/products/{products[0]['id']}")
            return bool(reply.status == 200 and reply.body["totals"]["clicks"] >= 1)
        await until(counted, timeout=30, interval=0.2, what="the count worker counts the click")
        await cw.goto("/dashboard")
        await cw.page.wait_for_selector("#overview[data-loaded]")
        video_row = "#videos-table tbody tr:has-text('Walk haul')"
        assert await cw.page.inner_text(f"{video_row} td[data-col=clicks]") == "1"
        await cw.page.wait_for_selector("#anchors-table tbody tr:has-text('Walk Bowl')")
        await cw.page.wait_for_selector("#sec-live .empty")  # says what to do next
        await cw.page.select_option("#period", "30d")  # refreshes in place, no reload
        await cw.page.wait_for_selector("#overview[data-loaded='2']")
        await cw.check("dashboard-creator")
        await sw.goto("/dashboard")
        await sw.page.wait_for_selector("#overview[data-loaded]")
        bowl = "#products-table tbody tr:has-text('Walk Bowl')"
        assert await sw.page.inner_text(f"{bowl} td[data-col=clicks]") == "1"
        # The funnel's measures are columns because the stats API sends them: the sale is there.
        assert await sw.page.inner_text(f"{bowl} td[data-col=orders]") == "1"
        assert await sw.page.inner_text(f"{bowl} td[data-col=gmv]") == "USD 100.00"
        assert await sw.page.eval_on_selector_all(
            "#products-table tbody tr", "els => els[0].textContent.includes('Walk Bowl')")  # most clicked first
        await sw.page.wait_for_selector(f"#plans-table tbody tr[data-id='{open_id}']:has-text('Walk Spring')")
        assert await sw.page.inner_text(f"#plans-table tr[data-id='{open_id}'] td[data-col=clicks]") == "1"
        await sw.page.wait_for_selector(f"#shops-table tr[data-id='{shop_id}']:has-text('Walk Shop & Co')")
        await sw.check("dashboard-seller")
        await sw.page.click(f"{bowl} a")
        await sw.page.wait_for_selector("#dash-title:has-text('Product: Walk Bowl')")
        await sw.page.wait_for_selector("#kpis [data-kpi=clicks]:has-text('1')")
        await sw.page.wait_for_selector("#funnel-kpis [data-kpi=gmv]:has-text('USD 100.00')")
        await sw.page.wait_for_selector("#funnel-kpis [data-kpi=commission]:has-text('USD 15.00')")
        await sw.check("dashboard-product")
