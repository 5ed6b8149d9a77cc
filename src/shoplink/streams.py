"""Names of the click streams: the one place every producer and consumer takes them from.

The contract with analytics jobs (schemas/click_event.schema.json): each click is one entry on
`shoplink:clicks:{n}`; the braces are a Redis Cluster hash tag, so a shard's stream and every key
derived from it live in one slot.
"""

from __future__ import annotations


def stream_key(shard: int) -> str:
    """`shoplink:clicks:{n}`."""
    return f"shoplink:clicks:{{{shard}}}"


def event_stream_key(shard: int) -> str:
    """`shoplink:events:{n}`: the player's events (view, impression, progress), batched
    (schemas/events/stream_batch.schema.json). A family of its own, so that consumers of the
    click streams see only clicks, as before."""
    return f"shoplink:events:{{{shard}}}"
