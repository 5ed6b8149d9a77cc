"""What the click resolver reads about an anchor, and the commission hook's types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shoplink.catalog.urls import DomainRule


@dataclass(frozen=True)
class AnchorTarget:
    """One anchor with everything a redirect needs (read-only join of anchors and their owners)."""

    anchor_id: int
    code: str
    surface: str  # video | live
    anchor_status: str  # active | archived
    video_id: int | None
    live_session_id: int | None
    product_id: int
    publisher_id: int
    plan_id: int | None
    product_url: str
    product_status: str  # active | delisted
    shop_id: int
    fallback_url: str | None
    domains: tuple[DomainRule, ...]  # the shop's verified domains: the only redirect targets
    video_duration_s: float | None
    video_status: str | None
    live_status: str | None
    live_started_at: datetime | None
    # The shop's other domains with their state (pending, failed, lapsed, or revoked).
    unverified: tuple[tuple[DomainRule, str], ...] = ()


class Terms(Protocol):
    """Commission terms as the affiliate program reports them (any object with these fields)."""

    @property
    def rate_bp(self) -> int | None: ...
    @property
    def source(self) -> str: ...
    @property
    def valid_until_ms(self) -> int | None: ...


@dataclass(frozen=True)
class CommissionTerms:
    rate_bp: int | None  # basis points; None when no commission is attributed
    source: str  # plan_rate, product_override, or why none applies (plan_ended, not_enrolled, ...)
    valid_until_ms: int | None  # the answer may be cached until then (None: until invalidated)


# (plan_id, product_id, at_ms) -> terms; may be a coroutine function. Called when an anchor is
# (re)loaded into the resolver cache, never per click.
# (plan id, product id, click time ms, creator id) -> the commission terms in force
TermsLookup = Callable[[int, int, int, int], "Awaitable[Terms] | Terms"]
