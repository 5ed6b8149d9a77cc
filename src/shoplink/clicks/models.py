"""What the click resolver reads about an anchor, and what it asks the affiliate program."""

from __future__ import annotations

from collections.abc import Awaitable
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


class CommissionTermsSource(Protocol):
    """The affiliate program, as the click resolver needs it."""

    def terms_lookup(self, plan_id: int, product_id: int, at_ms: int,
                     creator_id: int) -> Awaitable[Terms] | Terms:
        """The commission terms in force for a click at `at_ms` on an anchor of `creator_id`
        (may be a coroutine function). Called when an anchor is (re)loaded into the resolver
        cache, never per click."""
