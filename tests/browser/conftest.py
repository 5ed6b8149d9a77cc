"""Browser fixtures: one headless Debian Chromium per test session (driven by Playwright, never a
downloaded browser), and the real app served on a fixed free port so that its public_base_url (links,
QR codes, the widget's script URL) is the URL the browser really reaches."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from shoplink.app import create_app
from shoplink.auth.service import AuthService
from shoplink.config import Settings
from shoplink.keys import SETTINGS

from support.api import Api
from support.services import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@dataclass
class WebApp:
    """The app under test, reachable at `base` (also its public_base_url)."""
    base: str
    server: TestServer
    settings: Settings
    pool: asyncpg.Pool
    http: ClientSession

    async def account(self, *roles: str, name: str | None = None) -> Api:
        account, token = await AuthService(self.pool).create_account(
            name or f"{'-'.join(roles)}-{account_counter()}", list(roles))
        return Api(self.http, self.base, token.token, account.id)


_counter = iter(range(1, 1_000_000))


def account_counter() -> int:
    return next(_counter)


async def serve(settings: Settings, **overrides: Any) -> TestServer:
    port = free_port()
    app = create_app(settings.replace(public_base_url=f"http://127.0.0.1:{port}", **overrides))
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    return server


@pytest.fixture
async def webapp(pool: asyncpg.Pool, settings: Settings, http: ClientSession) -> AsyncIterator[WebApp]:
    server = await serve(settings, allow_http_urls=True)
    try:
        yield WebApp(str(server.make_url("")).rstrip("/"), server, server.app[SETTINGS], pool, http)
    finally:
        await server.close()


def human_user_agent(browser: Browser) -> str:
    """Headless Chromium says "HeadlessChrome", which the click classifier rightly counts as a bot;
    the tests play human viewers, so they present the ordinary desktop Chrome user agent."""
    return (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{browser.version} Safari/537.36")


_CSP_LISTENER = """document.addEventListener('securitypolicyviolation', (e) => {
  window.__shoplinkCspViolation(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} on ${e.documentURI}`);
}, true);"""


async def watch_csp(ctx: BrowserContext) -> list[str]:
    """Every Content-Security-Policy violation any page of `ctx` reports (the DOM event, on every
    document, across navigations), as "directive blocked what on which page"."""
    violations: list[str] = []
    await ctx.expose_binding("__shoplinkCspViolation", lambda _source, text: violations.append(text))
    await ctx.add_init_script(_CSP_LISTENER)
    return violations


@pytest.fixture
async def csp_violations(context: BrowserContext) -> list[str]:
    return context.csp_violations  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A browser context whose pages must never violate our CSP (checked when the test ends)."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 860}, user_agent=human_user_agent(browser))
    violations = await watch_csp(ctx)
    ctx.csp_violations = violations  # type: ignore[attr-defined]
    yield ctx
    await ctx.close()
    assert not violations, violations


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A page that fails the test on any uncaught script error or CSP violation in the console."""
    pg = await context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}")
          if msg.type == "error" and "Content Security Policy" in msg.text else None)
    yield pg
    assert not errors, errors


async def screenshot(pg: Page, name: str, *, docs: bool = False, full_page: bool = False) -> Path:
    """Save artifacts/screenshots/<name>.png; with `docs` and UPDATE_DOC_SCREENSHOTS=1 in the
    environment, also refresh the committed copy in docs/screenshots/ (a plain test run never
    changes tracked files)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await pg.screenshot(path=str(path), full_page=full_page, animations="disabled")
    if docs and os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / path.name)
    return path


async def sign_in(pg: Page, base: str, who: Api, next_path: str = "/studio") -> None:
    await pg.goto(f"{base}/signin?next={next_path}")
    await pg.fill("#token", who.token or "")
    async with pg.expect_navigation():
        await pg.click("button[type=submit]")


class HostSite:
    """A third-party site on another origin (another port) that embeds the widget, like a shop would."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[bytes, str]] = {}
        self.headers: dict[str, dict[str, str]] = {}
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)
        self.server = TestServer(app, host="127.0.0.1", port=free_port())

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        found = self.pages.get("/" + request.match_info["path"])
        if found is None:
            raise web.HTTPNotFound()
        body, content_type = found
        if content_type.startswith("video/"):  # range requests, so the browser can seek
            path = Path(body.decode())
            return web.FileResponse(path, headers={"Content-Type": content_type})
        return web.Response(body=body, content_type=content_type,
                            headers=self.headers.get("/" + request.match_info["path"]))

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    def add_html(self, path: str, html: str, *, csp: str | None = None) -> str:
        self.pages[path] = (html.encode(), "text/html")
        if csp is not None:
            self.headers[path] = {"Content-Security-Policy": csp}
        return self.base + path

    def add_video(self, path: str, file: Path) -> str:
        self.pages[path] = (str(file).encode(), "video/webm")
        return self.base + path


@pytest.fixture
async def host_site() -> AsyncIterator[HostSite]:
    site = HostSite()
    await site.server.start_server()
    yield site
    await site.server.close()


def embed_page(app_base: str, video_src: str | None, attr: str, entity_id: int, title: str = "A shop") -> str:
    """A host page with its own styles (which must not leak into the widget, nor the widget's out)."""
    src = f' src="{video_src}"' if video_src else ""
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body {{ font-family: serif; margin: 0; background: #fafafa; }} a {{ color: lime !important; }}
.card {{ display: none !important; }} h1 {{ font-size: 20px; margin: 8px; }}
.player {{ position: relative; width: min(100vw, 360px); margin: 0 auto; }}
video {{ width: 100%; aspect-ratio: 9 / 16; background: #000; display: block; }}</style>
<script src="{app_base}/v1/player.js" defer></script></head>
<body><h1 id="host-title">{title}</h1><div class="player">
<video id="v" controls playsinline muted preload="auto"{src} {attr}="{entity_id}"></video></div>
<p class="after">More of the shop's page.</p></body></html>"""
