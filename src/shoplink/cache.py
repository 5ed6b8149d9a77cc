"""InvalidatingCache: a bounded in-process map that change-bus invalidations keep correct.

The click resolver, the viewer timeline and the affiliate terms each keep one; each keeps its
own policy on top (what a key is, when an entry expires, how concurrent misses are shared).
This holds the entries, the tags that say which changes drop an entry (`(kind, id)` of a
`Change`, e.g. `("product", 42)`), the size bound, and the race guard every such cache needs:

A load reads the database and then stores what it read. An invalidation that arrives while
the load is in flight may be about data the load has already read, the old state: stored, that
old state would be served until the entry expires. So a load opens `loading()` before it reads,
and its `store` refuses an answer that an invalidation since then would have dropped (one of
the answer's tags, or everything). The answer still goes to whoever waits for it; it is only
not kept.

Eviction: in insertion order, the oldest stored first, once there are more than `max_entries`.
A store moves its key to the end; a lookup does not (entries are re-read at least every TTL, so
hot ones stay young without a write on every hit).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from types import TracebackType
from typing import Generic, TypeVar

from shoplink.changes import Change

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Tags = Callable[[K, V], Iterable[Hashable]]


class InvalidatingCache(Generic[K, V]):
    def __init__(self, max_entries: int, tags: Tags[K, V]) -> None:
        # Read it freely (a hot path may look up `entries` directly); change it only through
        # the methods, which keep the order and the tag index in step. A plain dict: a lookup in
        # an OrderedDict costs ~225 more instructions (callgrind), and clicks look up on each.
        self.entries: dict[K, V] = {}
        self._order: OrderedDict[K, None] = OrderedDict()  # eviction order, O(1) at both ends
        self._max = max_entries
        self._tags = tags
        self._index: dict[Hashable, set[K]] = {}
        self._loads: set[Load[K, V]] = set()  # open loads, told of every invalidation

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: K) -> V | None:
        return self.entries.get(key)

    def loading(self) -> Load[K, V]:
        """Open a load (before it reads anything): `with cache.loading() as load: ...`."""
        load = Load(self)
        self._loads.add(load)
        return load

    def store(self, key: K, value: V) -> None:
        """Keep `value` whatever happened meanwhile (a load stores through `Load.store`)."""
        entries = self.entries
        if key in entries and entries[key] is value:  # renewed in place: now the youngest
            self._order.move_to_end(key)
            return
        self.discard(key)
        entries[key] = value
        self._order[key] = None
        index = self._index
        for tag in self._tags(key, value):
            index.setdefault(tag, set()).add(key)
        while len(entries) > self._max:
            self.discard(next(iter(self._order)))

    def discard(self, key: K) -> None:
        if key not in self.entries:
            return
        value = self.entries.pop(key)
        del self._order[key]
        for tag in self._tags(key, value):
            keys = self._index.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._index[tag]

    def invalidate(self, tag: Hashable) -> None:
        """Drop every entry carrying `tag`; loads in flight will not store answers that carry it."""
        for load in self._loads:
            load.changed.add(tag)
        keys = self._index.get(tag)
        if keys:
            for key in list(keys):
                self.discard(key)

    def invalidate_all(self) -> None:
        """Drop everything; loads in flight will store nothing."""
        for load in self._loads:
            load.everything = True
        self.entries.clear()
        self._order.clear()
        self._index.clear()

    def on_change(self, change: Change) -> None:
        """A change-bus listener: `Change(kind, id)` invalidates the tag `(kind, id)`."""
        if change.is_everything:
            self.invalidate_all()
        else:
            self.invalidate((change.kind, change.id))


class Load(Generic[K, V]):
    """One load in flight: the invalidations since it began decide what it may store."""

    __slots__ = ("_cache", "changed", "everything")

    def __init__(self, cache: InvalidatingCache[K, V]) -> None:
        self._cache = cache
        self.changed: set[Hashable] = set()
        self.everything = False

    def fresh(self, key: K, value: V) -> bool:
        """No invalidation since the load began would have dropped `value`."""
        if self.everything:
            return False
        return not self.changed or self.changed.isdisjoint(self._cache._tags(key, value))

    def store(self, key: K, value: V) -> bool:
        """Store `value` unless it may be stale (`fresh`); True when stored."""
        if self not in self._cache._loads:
            raise RuntimeError("store after the load was closed: invalidations are no longer seen")
        if not self.fresh(key, value):
            return False
        self._cache.store(key, value)
        return True

    def close(self) -> None:
        self._cache._loads.discard(self)

    def __enter__(self) -> Load[K, V]:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
