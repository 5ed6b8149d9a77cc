"""Public anchor codes: short, URL-safe, random (never sequential), unique, never reused.

Uniqueness is enforced by the database (anchors.code is UNIQUE and anchors are archived,
never deleted); callers retry on the rare collision.
"""

from __future__ import annotations

import secrets

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # no 0/O, 1/l/I
CODE_LENGTH = 8  # 57**8 ≈ 1.1e14 codes: unguessable at any realistic anchor count
MAX_ATTEMPTS = 5


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
