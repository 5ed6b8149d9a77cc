"""A shop's claim on a domain, its state, and what a proof check found."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shoplink.domains.names import DomainRule, display

PENDING, VERIFIED, FAILED, LAPSED = "pending", "verified", "failed", "lapsed"
STATES = (PENDING, VERIFIED, FAILED, LAPSED)
# How a domain was verified. Operator approvals and development loopback hosts are not
# re-checked: the approval is the proof (it is revoked with `shoplink domains revoke`).
DNS_TXT, HTTPS_FILE, OPERATOR, DEV_LOOPBACK = "dns_txt", "https_file", "operator", "dev_loopback"
RECHECKED = frozenset({DNS_TXT, HTTPS_FILE})
TXT_PREFIX = "_shoplink-verify."
WELL_KNOWN_PATH = "/.well-known/shoplink-verify.txt"
REVOKED = "revoked"  # the failure reason of a domain an operator revoked


def proof_value(token: str) -> str:
    """What the TXT record and the HTTPS file must hold."""
    return f"shoplink-verify={token}"


def txt_name(domain: str) -> str:
    return TXT_PREFIX + domain


def https_url(domain: str, port: int = 443) -> str:
    return f"https://{domain}{'' if port == 443 else f':{port}'}{WELL_KNOWN_PATH}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class ShopDomain:
    shop_id: int
    domain: str  # canonical ASCII form
    include_subdomains: bool
    state: str
    token: str
    verified_at: datetime | None
    verified_by: str | None
    created_at: datetime
    state_changed_at: datetime
    pending_since: datetime
    last_checked_at: datetime | None
    next_check_at: datetime | None
    check_failures: int
    proof_missing_since: datetime | None
    failure_reason: str | None
    failure: dict[str, Any] | None
    https_port: int = 443  # where the HTTPS proof is fetched (SHOPLINK_DOMAIN_PROOF_HTTPS_PORT)

    @property
    def rule(self) -> DomainRule:
        return DomainRule(self.domain, self.include_subdomains)

    @property
    def verified(self) -> bool:
        return self.state == VERIFIED

    @property
    def revoked(self) -> bool:
        return self.state == FAILED and self.failure_reason == REVOKED

    def to_json(self) -> dict[str, Any]:
        value = proof_value(self.token)
        https = None if self.include_subdomains else {  # a file on one host proves no subdomain
            "url": https_url(self.domain, self.https_port), "content": value}
        return {
            "domain": self.domain, "display_name": display(self.domain),
            "include_subdomains": self.include_subdomains, "state": self.state,
            "verified_at": _iso(self.verified_at), "verified_by": self.verified_by,
            "created_at": _iso(self.created_at), "state_changed_at": _iso(self.state_changed_at),
            "last_checked_at": _iso(self.last_checked_at), "next_check_at": _iso(self.next_check_at),
            "proof_missing_since": _iso(self.proof_missing_since),
            "verification": {
                "token": self.token,
                "dns_txt": {"name": txt_name(self.domain), "type": "TXT", "value": value},
                "https_file": https,
            },
            "failure": self.failure,
        }


@dataclass(frozen=True)
class ProofAttempt:
    """One proof looked for: `reason` is None when it was found."""

    method: str  # dns_txt | https_file
    reason: str | None  # no_record, wrong_value, nxdomain, timeout, dns_error, https_* ...
    message: str

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "message": self.message}


@dataclass(frozen=True)
class CheckResult:
    attempts: tuple[ProofAttempt, ...]

    @property
    def proven_by(self) -> str | None:
        return next((a.method for a in self.attempts if a.ok), None)

    @property
    def reason(self) -> str:
        """The failure to report first: the DNS proof's (the one that also covers subdomains)."""
        return self.attempts[0].reason or "unknown"

    def failure_json(self, checked_at: datetime, *, reason: str | None = None,
                     message: str | None = None) -> dict[str, Any]:
        first = self.attempts[0]
        return {"reason": reason or self.reason, "message": message or first.message,
                "checked_at": checked_at.isoformat(),
                **{a.method: a.to_json() for a in self.attempts}}


@dataclass(frozen=True)
class AuditEntry:
    id: int
    shop_id: int
    domain: str
    action: str  # approve | revoke | auto_verify
    actor: str
    reason: str
    include_subdomains: bool
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "shop_id": self.shop_id, "domain": self.domain, "action": self.action,
                "actor": self.actor, "reason": self.reason,
                "include_subdomains": self.include_subdomains, "created_at": self.created_at.isoformat()}
