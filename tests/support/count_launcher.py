"""`shoplink count` with a crash: `python count_launcher.py POINT AFTER [count arguments...]`.

It hands the count worker and the roll-up a checkpoint hook (their `checkpoint` parameter, which
`shoplink count` leaves empty) that ends the process with `os._exit(17)` - no cleanup, no
acknowledgement, like a kill - the AFTER-th time the worker reaches POINT, then runs the real
command (`shoplink.cli.main(["count", ...])`). POINT is one of the worker's checkpoints
(after_read, mid_batch, after_apply; after_move, after_move_commit for the roll-up) or mid_ack:
at after_apply, acknowledge the first half of the batch (as a crash in the middle of the XACK
would leave it), then exit. Run as a script (support/count.py does), so that it needs nothing of
the test suite: the settings come from the environment as for `shoplink count`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import redis

from shoplink import cli
from shoplink.analytics import command
from shoplink.analytics import keys as k
from shoplink.analytics.consumer import CountWorker
from shoplink.analytics.rollup import Rollup

EXIT_CODE = 17
POINTS = ("after_read", "mid_batch", "after_apply", "mid_ack", "after_move", "after_move_commit")

log = logging.getLogger("shoplink.count_launcher")


class Crasher:
    """The checkpoint: exits the AFTER-th time the worker reaches `point`."""

    def __init__(self, point: str, after: int, redis_url: str) -> None:
        if point not in POINTS:
            raise SystemExit(f"count_launcher: unknown point {point!r} (one of {', '.join(POINTS)})")
        self.point = point
        self.after = after
        self.redis_url = redis_url
        self.seen = 0

    def __call__(self, point: str, shard: int, ids: Sequence[bytes]) -> None:
        mid_ack = self.point == "mid_ack" and point == "after_apply" and len(ids) > 1
        if point != self.point and not mid_ack:
            return
        self.seen += 1
        if self.seen < self.after:
            return
        if mid_ack:  # a blocking client: the process ends here, nothing else may run meanwhile
            with redis.Redis.from_url(self.redis_url) as client:  # the ids are of one of the two
                client.xack(k.stream(shard), k.GROUP, *ids[: len(ids) // 2])
                client.xack(k.event_stream(shard), k.GROUP, *ids[: len(ids) // 2])
        log.warning("count_launcher: exiting", extra={"point": self.point, "shard": shard})
        logging.shutdown()
        os._exit(EXIT_CODE)


def install(checkpoint: Crasher) -> None:
    """Make `shoplink count` build its worker and its roll-up with `checkpoint`."""
    names = vars(command)  # the command module's globals: what its code looks the classes up in
    if names.get("CountWorker") is not CountWorker or names.get("Rollup") is not Rollup:
        raise SystemExit("count_launcher: shoplink.analytics.command no longer builds CountWorker and "
                         "Rollup itself; update install()")

    class CrashingWorker(CountWorker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, checkpoint=checkpoint, **kwargs)

    class CrashingRollup(Rollup):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, checkpoint=checkpoint, **kwargs)

    names["CountWorker"] = CrashingWorker
    names["Rollup"] = CrashingRollup


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[1].isdigit():
        raise SystemExit(__doc__)
    install(Crasher(argv[0], int(argv[1]), os.environ["SHOPLINK_REDIS_URL"]))
    return cli.main(["count", *argv[2:]])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
