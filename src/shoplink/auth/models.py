from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    SELLER = "seller"
    CREATOR = "creator"
    ANALYST = "analyst"


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    roles: tuple[Role, ...]
    created_at: datetime
    disabled: bool = False

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "roles": [str(r) for r in self.roles],
                "created_at": self.created_at.isoformat(), "disabled": self.disabled}


@dataclass(frozen=True)
class Principal:
    """Who is making the request: an account, seen through one API token."""

    account_id: int
    name: str
    roles: frozenset[Role]
    token_id: int | None = None

    def has(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles


@dataclass(frozen=True)
class IssuedToken:
    id: int
    account_id: int
    token: str  # shown once, never stored
    label: str
    created_at: datetime

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "account_id": self.account_id, "token": self.token,
                "label": self.label, "created_at": self.created_at.isoformat()}
