"""The one place that decides who may do what.

Views and services call these functions; none of them compares roles or owner ids itself.
Resources a principal may not see are reported as not found, so that existence never leaks.
"""

from __future__ import annotations

from shoplink.auth.models import Principal, Role
from shoplink.errors import Forbidden, NotFound

# Which roles may perform an action at all (ownership is checked separately).
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "accounts.manage": frozenset({Role.ADMIN}),
    "shops.create": frozenset({Role.SELLER, Role.ADMIN}),
    "catalog.manage": frozenset({Role.SELLER, Role.ADMIN}),
    "media.publish": frozenset({Role.SELLER, Role.CREATOR, Role.ADMIN}),
    "plans.manage": frozenset({Role.SELLER, Role.ADMIN}),
    "plans.join": frozenset({Role.CREATOR, Role.ADMIN}),
    "conversions.report": frozenset({Role.SELLER, Role.ADMIN}),
    "stats.read": frozenset({Role.SELLER, Role.CREATOR, Role.ANALYST, Role.ADMIN}),
    "stats.read_all": frozenset({Role.ANALYST, Role.ADMIN}),
}


def allowed(principal: Principal, action: str) -> bool:
    return bool(principal.roles & ACTION_ROLES[action])


def require(principal: Principal, action: str) -> None:
    """403 unless one of the principal's roles may perform `action`."""
    if not allowed(principal, action):
        needed = ", ".join(sorted(ACTION_ROLES[action]))
        raise Forbidden(f"this action needs one of the roles: {needed}", code="role_required")


def owns(principal: Principal, owner_id: int) -> bool:
    return principal.is_admin or principal.account_id == owner_id


def require_owner(principal: Principal, owner_id: int, what: str) -> None:
    """404 (not 403) when the resource belongs to someone else: existence must not leak."""
    if not owns(principal, owner_id):
        raise NotFound(f"{what} not found")


def can_read_all_stats(principal: Principal) -> bool:
    return allowed(principal, "stats.read_all")
