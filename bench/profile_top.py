"""Summarise a py-spy raw profile (`--profile x.txt` in clicks.py): top self and inclusive frames."""

from __future__ import annotations

import collections
import sys


def main(path: str, top: int = 25) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            total += n
            frames = stack.split(";")
            own[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    print(f"{total} samples\n-- self")
    for frame, n in own.most_common(top):
        print(f"{n / total * 100:5.1f}%  {frame}")
    print("-- inclusive")
    for frame, n in inclusive.most_common(top + 8)[6:]:
        print(f"{n / total * 100:5.1f}%  {frame}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25)
