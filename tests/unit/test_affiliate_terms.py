"""The rate in force: raises at once, cuts after the notice period for creators already enrolled,
at once for creators who joined after the announcement; overrides; when terms expire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shoplink.affiliates.models import Enrolment, Plan, PlanDetail, PlanProduct, RateChange
from shoplink.affiliates.service import RateRules, parse_rate
from shoplink.affiliates.terms import terms_at
from shoplink.errors import ValidationFailed

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def _plan(**kw: object) -> Plan:
    values: dict[str, object] = {
        "id": 1, "seller_id": 1, "name": "p", "kind": "open", "status": "active", "starts_at": T0,
        "ends_at": None, "paused_at": None, "ended_at": None, "created_at": T0, "updated_at": T0}
    values.update(kw)
    return Plan(**values)  # type: ignore[arg-type]


def _change(n: int, rate: int | None, announced: datetime, effective: datetime,
            product_id: int | None = None) -> RateChange:
    return RateChange(n, 1, product_id, rate, announced, effective, 1)


def _detail(*changes: RateChange, plan: Plan | None = None) -> PlanDetail:
    return PlanDetail(plan or _plan(), (PlanProduct(10, 1, "a"), PlanProduct(11, 1, "b")), changes)


def _enrolled(joined: datetime) -> Enrolment:
    return Enrolment(1, 7, "enrolled", None, joined, None, joined)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def test_cut_waits_for_notice_for_enrolled_creators_but_not_for_new_ones() -> None:
    cut_at = T0 + 5 * DAY
    detail = _detail(_change(1, 2000, T0, T0), _change(2, 1000, cut_at, cut_at + 30 * DAY))
    early = _enrolled(T0 + DAY)
    late = _enrolled(cut_at + DAY)
    during = cut_at + 10 * DAY
    terms = terms_at(detail, 10, during, early, check_enrolment=True)
    assert (terms.rate_bp, terms.source) == (2000, "plan_rate")
    assert terms.valid_until_ms == _ms(cut_at + 30 * DAY)  # the resolver's cache refreshes then
    assert terms_at(detail, 10, during, late, check_enrolment=True).rate_bp == 1000
    assert terms_at(detail, 10, cut_at + 30 * DAY, early, check_enrolment=True).rate_bp == 1000
    # without a creator: the conservative, already-enrolled schedule
    assert terms_at(detail, 10, during, None, check_enrolment=False).rate_bp == 2000


def test_raise_applies_at_once_and_wins_over_an_older_pending_cut() -> None:
    detail = _detail(_change(1, 2000, T0, T0), _change(2, 1000, T0 + DAY, T0 + 31 * DAY),
                     _change(3, 2500, T0 + 2 * DAY, T0 + 2 * DAY))
    creator = _enrolled(T0)
    assert terms_at(detail, 10, T0 + 2 * DAY, creator, check_enrolment=True).rate_bp == 2500
    assert terms_at(detail, 10, T0 + 40 * DAY, creator, check_enrolment=True).rate_bp == 2500


def test_product_override_and_its_removal() -> None:
    detail = _detail(_change(1, 1000, T0, T0), _change(2, 3000, T0, T0, product_id=11),
                     _change(3, None, T0 + DAY, T0 + 31 * DAY, product_id=11))
    creator = _enrolled(T0)
    assert terms_at(detail, 10, T0 + 2 * DAY, creator, check_enrolment=True).source == "plan_rate"
    terms = terms_at(detail, 11, T0 + 2 * DAY, creator, check_enrolment=True)
    assert (terms.rate_bp, terms.source) == (3000, "product_override")
    after = terms_at(detail, 11, T0 + 32 * DAY, creator, check_enrolment=True)
    assert (after.rate_bp, after.source) == (1000, "plan_rate")


def test_reasons_when_no_commission_applies() -> None:
    base = (_change(1, 1000, T0, T0),)
    creator = _enrolled(T0)
    ended = _detail(*base, plan=_plan(ends_at=T0 + DAY))
    assert terms_at(ended, 10, T0 + 2 * DAY, creator, check_enrolment=True).source == "plan_ended"
    live = terms_at(ended, 10, T0 + DAY / 2, creator, check_enrolment=True)
    assert live.rate_bp == 1000 and live.valid_until_ms == _ms(T0 + DAY)
    paused = _detail(*base, plan=_plan(status="paused"))
    assert terms_at(paused, 10, T0 + DAY, creator, check_enrolment=True) .source == "plan_paused"
    left = Enrolment(1, 7, "left", None, T0, T0 + DAY, T0 + DAY)
    assert terms_at(_detail(*base), 10, T0 + 2 * DAY, left, check_enrolment=True).source == \
        "not_enrolled"
    assert terms_at(_detail(*base), 10, T0, None, check_enrolment=True).source == "not_enrolled"
    assert terms_at(_detail(*base), 99, T0, creator, check_enrolment=True).source == \
        "product_not_in_plan"
    assert terms_at(None, 10, T0, creator, check_enrolment=True).source == "plan_unknown"
    later = _detail(*base, plan=_plan(starts_at=T0 + DAY))
    assert terms_at(later, 10, T0, creator, check_enrolment=True).source == "plan_not_started"


def test_parse_rate_two_decimals_within_range() -> None:
    rules = RateRules(100, 8000, 30 * DAY)
    assert parse_rate("12.50", "rate", rules) == 1250
    assert parse_rate("1", "rate", rules) == 100
    assert parse_rate("80.00", "rate", rules) == 8000
    for bad in ("0.99", "80.01", "12.505", "abc", "NaN"):
        try:
            parse_rate(bad, "rate", rules)
        except ValidationFailed as exc:
            assert exc.details[0]["field"] == "rate"
        else:
            raise AssertionError(f"{bad} accepted")
