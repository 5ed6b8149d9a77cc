"""Redis key names of the click streams and of every counter.

Every key of shard n carries the Redis Cluster hash tag `{n}`, the same tag as the streams
`shoplink:clicks:{n}` and `shoplink:events:{n}`, so that one Lua call (apply, move) touches keys of one slot only.

Layout (NS is "sla" for the live counters, another prefix for a rebuild):

    NS:{n}:c:<combo>              hash  "<minute_start_s>:<class><outcome>" -> clicks, and
                                  "<minute_start_s>:<class><measure>" -> player events
                                  (hours and days are sums of minutes)
    NS:{n}:hm:<video_id>          hash  "<playback second>" -> human clicks (video heatmap)
    NS:{n}:u:<combo>:<day_s>      HyperLogLog of human viewers (clicks) for one day bucket
    NS:{n}:ui:<combo>:<day_s>     HyperLogLog of human viewers shown a card (impressions)
    NS:{n}:vm:<video_id>          hash  "<playback second>" -> human impressions (view map)
    NS:{n}:seen:<hour>            set of applied event ids (dedup), hour of the event time
    NS:{n}:dirty / :udirty        hashes / HyperLogLogs written since the last roll-up
    NS:{n}:mv:<rest of key>       a hash being moved into PostgreSQL (see rollup.py)
    NS:{n}:mvkeys :mvseq :moveseq the move in progress, its number, the last number used
    NS:{n}:applied                events applied (for rates)

The hot path counts per *combo*: the tuple of entity ids an event carries (anchor, video, live
session, product, shop, creator, plan), written `.a<id>.v<id>.l<id>.p<id>.s<id>.c<id>.n<id>.`
(an absent id leaves its letter alone: `.l.`). A combo is the event's own relations, so counts
derived from it are exact even when an anchor's plan changes between clicks. Per-entity numbers
are sums (counts, top-N) and unions (unique viewers) over the entity's combos: made by the
roll-up for PostgreSQL, and by the reader for what is still in Redis, which finds an entity's
combos with `SSCAN <dirty set> MATCH *.v42.*` (every live hash is in `dirty`, every moving one
in `mvkeys`, every HyperLogLog not yet unioned into PostgreSQL in `udirty` or its `:proc`).

Hashes hold only what has not yet been moved into PostgreSQL, so they stay small.
"""

from __future__ import annotations

from shoplink.streams import event_stream_key, stream_key

LIVE_NS = "sla"
REBUILD_NS = "slarb"
GROUP = "counters"

# class and outcome codes used in hash fields
CLASSES = ("human", "bot", "link_preview")
OUTCOMES = ("redirected", "fallback", "gone", "not_found")
# the player's events (funnel.py): what a field counts instead of a click outcome
MEASURES = ("impression", "view", "q25", "q50", "q75", "q100")
CLASS_CODE = {"human": "h", "bot": "b", "link_preview": "p"}
OUTCOME_CODE = {"redirected": "r", "fallback": "f", "gone": "g", "not_found": "n",
                "impression": "i", "view": "v", "q25": "1", "q50": "2", "q75": "3", "q100": "4"}
# (class, outcome or measure) in column order: the 12 click columns first (their order is the
# contract of earlier versions), then the player's 18; the code is the two-letter suffix of a
# hash field
CLICK_PAIRS: tuple[tuple[str, str], ...] = tuple((c, o) for c in CLASSES for o in OUTCOMES)
FUNNEL_PAIRS: tuple[tuple[str, str], ...] = tuple((c, m) for c in CLASSES for m in MEASURES)
PAIRS: tuple[tuple[str, str], ...] = CLICK_PAIRS + FUNNEL_PAIRS
PAIR_CODES: tuple[str, ...] = tuple(CLASS_CODE[c] + OUTCOME_CODE[o] for c, o in PAIRS)
PAIR_INDEX: dict[str, int] = {code: i for i, code in enumerate(PAIR_CODES)}

ENTITY_KINDS = ("anchor", "video", "live", "product", "shop", "creator", "plan")
GRANULARITIES = ("minute", "hour", "day")
# parent kind -> child kind of the top-N hashes
TOP_CHILD = {"video": "anchor", "live": "anchor", "shop": "product", "creator": "product"}


stream = stream_key  # the click stream of a shard (shoplink.streams)


event_stream = event_stream_key  # the player-event stream of a shard (shoplink.streams)


def dead_stream(shard: int) -> str:
    return f"shoplink:clicks:dead:{{{shard}}}"


def event_dead_stream(shard: int) -> str:
    return f"shoplink:events:dead:{{{shard}}}"


def shard_prefix(shard: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:"


# one letter per entity kind in a combo id, in ENTITY_KINDS order
COMBO_LETTERS = ("a", "v", "l", "p", "s", "c", "n")
KIND_LETTER: dict[str, str] = dict(zip(ENTITY_KINDS, COMBO_LETTERS, strict=True))
_LETTER_KIND: dict[str, str] = {v: k for k, v in KIND_LETTER.items()}


def combo_id(ids: tuple[int | None, ...]) -> str:
    """(anchor, video, live, product, shop, creator, plan) -> ".a1.v10.l.p100.s1000.c7.n."."""
    return "." + ".".join(f"{letter}{'' if i is None else i}"
                          for letter, i in zip(COMBO_LETTERS, ids, strict=True)) + "."


def combo_entities(cid: str) -> list[tuple[str, int]]:
    """The (kind, id) pairs of a combo id (absent ids left out)."""
    return [(_LETTER_KIND[part[0]], int(part[1:])) for part in cid.strip(".").split(".") if len(part) > 1]


def combo_ids(cid: str) -> tuple[int | None, ...]:
    """A combo id -> its 7 entity ids (None where absent), in ENTITY_KINDS order."""
    return tuple(int(part[1:]) if len(part) > 1 else None for part in cid.strip(".").split("."))


def combo_match(kind: str, entity_id: int) -> str:
    """A MATCH pattern for the combo ids that hold (kind, entity_id)."""
    return f"*.{KIND_LETTER[kind]}{int(entity_id)}.*"


def counts(shard: int, cid: str, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:c:{cid}"


def heatmap(shard: int, video_id: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:hm:{video_id}"


def viewmap(shard: int, video_id: int, ns: str = LIVE_NS) -> str:
    """Human impressions by playback second of a video (the heatmap's view map)."""
    return f"{ns}:{{{shard}}}:vm:{video_id}"


def uniques(shard: int, cid: str, day_s: int, ns: str = LIVE_NS) -> str:
    return f"{ns}:{{{shard}}}:u:{cid}:{day_s}"


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
    """`NS:{n}:c:.a1.v10...` (or its moving name) -> ["c", ".a1.v10..."]."""
    rest = key[len(shard_prefix(shard, ns)):]
    if rest.startswith("mv:"):
        rest = rest[3:]
    return rest.split(":")
