"""SQL of the click resolver: a read-only join of anchors with their product, shop (and the states
of its domains) and surface."""

from __future__ import annotations

import asyncpg

from shoplink.catalog.urls import DomainRule
from shoplink.clicks.models import AnchorTarget
from shoplink.db import Conn

_TARGETS = """
SELECT a.id AS anchor_id, a.code, a.surface, a.status AS anchor_status, a.video_id,
       a.live_session_id, a.product_id, a.publisher_id, a.plan_id,
       p.url AS product_url, p.status AS product_status, p.shop_id, s.fallback_url,
       ARRAY(SELECT d.domain FROM shop_domains d WHERE d.shop_id = s.id ORDER BY d.domain) AS domains,
       ARRAY(SELECT d.include_subdomains FROM shop_domains d WHERE d.shop_id = s.id
              ORDER BY d.domain) AS subdomains,
       ARRAY(SELECT CASE WHEN d.failure_reason = 'revoked' THEN 'revoked' ELSE d.state END
               FROM shop_domains d WHERE d.shop_id = s.id ORDER BY d.domain) AS domain_states,
       v.duration_s AS video_duration_s, v.status AS video_status,
       l.status AS live_status, l.started_at AS live_started_at
  FROM anchors a
  JOIN products p ON p.id = a.product_id
  JOIN shops s ON s.id = p.shop_id
  LEFT JOIN videos v ON v.id = a.video_id
  LEFT JOIN live_sessions l ON l.id = a.live_session_id
 WHERE a.code = ANY($1::text[])
"""


def _target(row: asyncpg.Record) -> AnchorTarget:
    claims = list(zip(row["domains"], row["subdomains"], row["domain_states"], strict=True))
    domains = tuple(DomainRule(d, s) for d, s, state in claims if state == "verified")
    unverified = tuple((DomainRule(d, s), state) for d, s, state in claims if state != "verified")
    return AnchorTarget(
        anchor_id=row["anchor_id"], code=row["code"], surface=row["surface"],
        anchor_status=row["anchor_status"], video_id=row["video_id"],
        live_session_id=row["live_session_id"], product_id=row["product_id"],
        publisher_id=row["publisher_id"], plan_id=row["plan_id"], product_url=row["product_url"],
        product_status=row["product_status"], shop_id=row["shop_id"],
        fallback_url=row["fallback_url"], domains=domains, unverified=unverified,
        video_duration_s=row["video_duration_s"], video_status=row["video_status"],
        live_status=row["live_status"], live_started_at=row["live_started_at"])


async def targets_by_codes(con: Conn, codes: list[str]) -> list[AnchorTarget]:
    """The anchors among `codes` (any status); unknown codes are simply absent."""
    return [_target(r) for r in await con.fetch(_TARGETS, codes)]
