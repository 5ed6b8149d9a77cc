"""Redis key names of the click streams and of every counter.

Every key of shard n carries the Redis Cluster hash tag `{n}`, the same tag as the stream
`shoplink:clicks:{n}`, so that one Lua call (apply, move) touches keys of one slot only.

Layout (NS is "sla" for the live counters, another prefix for a rebuild):

    NS:{n}:c:<kind>:<id>          hash  "<minute_start_s>:<class><outcome>" -> clicks
                                  (hours and days are sums of minutes)
    NS:{n}:hm:<video_id>          hash  "<playback second>" -> human clicks (video heatmap)
    NS:{n}:t:<parent>:<id>        hash  "<child id>" -> human clicks (top anchors/products)
    NS:{n}:u:<kind>:<id>:<day_s>  HyperLogLog of human viewers for one day bucket
    NS:{n}:seen:<hour>            set of applied event ids (dedup), hour of the event time
    NS:{n}:dirty / :udirty        hashes / HyperLogLogs written since the last roll-up
    NS:{n}:mv:<rest of key>       a hash being moved into PostgreSQL (see rollup.py)
    NS:{n}:mvkeys :mvseq :moveseq the move in progress, its number, the last number used
    NS:{n}:applied                events applied (for rates)

Hashes hold only what has not yet been moved into PostgreSQL, so they stay small.
"""

from __future__ import annotations

from shoplink.streams import stream_key

LIVE_NS = "sla"
REBUILD_NS = "slarb"
GROUP = "counters"

# class and outcome codes used in hash fields
CLASSES = ("human", "bot", "link_preview")
OUTCOMES = ("redirected", "fallback", "gone", "not_found")
CLASS_CODE = {"human": "h", "bot": "b", "link_preview": "p"}
OUTCOME_CODE = {"redirected": "r", "fallback": "f", "gone": "g", "not_found": "n"}
# (class, outcome) in column order; the code is the two-letter suffix of a hash field
PAIRS: tuple[tuple[str, str], ...] = tuple((c, o) for c in CLASSES for o in OUTCOMES)
PAIR_CODES: tuple[str, ...] = tuple(CLASS_CODE[c] + OUTCOME_CODE[o] for c, o in PAIRS)
PAIR_INDEX: dict[str, int] = {code: i for i, code in enumerate(PAIR_CODES)}

ENTITY_KINDS = ("anchor", "video", "live", "product", "shop", "creator", "plan")
GRANULARITIES = ("minute", "hour", "day")
# parent kind -> child kind of the top-N hashes
TOP_CHILD = {"video": "anchor", "live": "anchor", "shop": "product", "creator": "product"}


stream = stream_key  # the click stream of a shard (shoplink.streams)


def dead_stream(shard: int) -> str:
    return f"shoplink:clicks:dead:{{{shard}}}"


def shard_prefix(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:"


def counts(shard: int, kind: str, entity_id: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:c:{kind}:{entity_id}"


def heatmap(shard: int, video_id: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:hm:{video_id}"


def top(shard: int, parent_kind: str, parent_id: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:t:{parent_kind}:{parent_id}"


def uniques(shard: int, kind: str, entity_id: int, day_s: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:u:{kind}:{entity_id}:{day_s}"


def seen(shard: int, hour: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:seen:{hour}"


def dirty(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:dirty"


def udirty(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:udirty"


def moving(key: str, shard: int, ns: str = LIVE_NS) -> str:
    """The name a hash takes while it is being moved into PostgreSQL."""
    prefix = shard_prefix(shard, ns)
    return prefix + "mv:" + key[len(prefix):]


def mvkeys(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:mvkeys"


def mvseq(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:mvseq"


def moveseq(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:moveseq"


def applied(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:applied"


def tmp(shard: int, token: str, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:tmp:{token}"


def parse_logical(key: str, shard: int, ns: str = LIVE_NS) -> list[str]:
    """`NS:{n}:c:video:42` (or its moving name) -> ["c", "video", "42"]."""
    rest = key[len(shard_prefix(shard, ns)):]
    if rest.startswith("mv:"):
        rest = rest[3:]
    return rest.split(":")
