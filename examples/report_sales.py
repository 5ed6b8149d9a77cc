"""Report a shop's sales to shoplink and print what the affiliates earned: a small external
integration built on the Python client generated from the contract (no shoplink code).

Generate the client once (openapi-python-client, from PyPI) from the bundled contract:

    pip install openapi-python-client
    openapi-python-client generate --path schemas/openapi.bundled.yaml --meta none \\
        --output-path build/shoplink_client
    # (scripts/generate-python-client does the same into build/)

then run it with the generated package on the path and the seller's API token:

    PYTHONPATH=build python examples/report_sales.py --base-url http://127.0.0.1:8080 \\
        --token "$SELLER_TOKEN" --shop 3 orders.csv

`orders.csv` is what a shop's order system exports: a header line with `order_id`, `amount`,
`currency` and `click_id` (the `sl_click` that the shoplink redirect appended to the product URL
and the shop kept with the order; orders without one are skipped). Each order is reported once: shoplink answers a
repeated order with the first result (200), so running the script again is safe. It prints one
line per order and, at the end, the seller's affiliate report per plan.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from shoplink_client import AuthenticatedClient  # the generated package
from shoplink_client.api.conversions import report_conversion
from shoplink_client.api.reports import get_affiliate_report
from shoplink_client.models import (
    AffiliateReport,
    Conversion,
    ConversionCreate,
    ConversionCreateCurrency,
    Error,
    ReportGroupBy,
)


def read_orders(lines: Iterable[str]) -> list[dict[str, str]]:
    rows = list(csv.DictReader(lines))
    for n, row in enumerate(rows, start=2):
        missing = [c for c in ("order_id", "amount", "currency") if not (row.get(c) or "").strip()]
        if missing:
            raise ValueError(f"line {n}: no {', '.join(missing)}")
    return rows


def report_orders(client: AuthenticatedClient, shop_id: int, orders: Sequence[dict[str, str]],
                  out: TextIO) -> list[Conversion]:
    """Report every order; the conversions shoplink recorded (raises on the first refusal)."""
    reported = []
    for order in orders:
        click_id = (order.get("click_id") or "").strip()
        if not click_id:  # not from a shoplink link: nothing to credit
            out.write(f"{order['order_id'].strip()}: skipped, no click id\n")
            continue
        body = ConversionCreate(shop_id=shop_id, order_id=order["order_id"].strip(),
                                amount=order["amount"].strip(),
                                currency=ConversionCreateCurrency(order["currency"].strip().upper()),
                                click_id=click_id)
        response = report_conversion.sync_detailed(client=client, body=body)
        parsed: Any = response.parsed
        if isinstance(parsed, Error):
            raise RuntimeError(f"order {body.order_id}: {response.status_code} {parsed.error.code}: "
                               f"{parsed.error.message}")
        if not isinstance(parsed, Conversion):
            raise RuntimeError(f"order {body.order_id}: unexpected answer {response.status_code}")
        again = " (already reported)" if response.status_code == 200 else ""
        credit = f"not credited ({parsed.reason})"
        if parsed.attributed:
            credit = (f"credited to creator {parsed.creator_id}, plan {parsed.plan_id}: commission "
                      f"{parsed.commission_amount} {parsed.currency}")
        out.write(f"{parsed.order_id}: {parsed.amount} {parsed.currency}, {credit}{again}\n")
        reported.append(parsed)
    return reported


def print_report(client: AuthenticatedClient, out: TextIO) -> AffiliateReport:
    report = get_affiliate_report.sync(client=client, group_by=ReportGroupBy.PLAN)
    if not isinstance(report, AffiliateReport):
        raise RuntimeError(f"the report could not be read: {report}")
    out.write(f"plans, {report.from_:%Y-%m-%d} to {report.to:%Y-%m-%d}:\n")
    for row in report.items:
        sales = ", ".join(f"{s.amount} {s.currency} (owed {s.commission_owed})" for s in row.sales) or "no sales"
        out.write(f"  plan {row.plan_id}: {row.clicks.human} human clicks, {row.conversions} sales: {sales}\n")
    return report


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--token", required=True, help="the seller's API token")
    parser.add_argument("--shop", type=int, required=True, help="the shop the orders belong to")
    parser.add_argument("orders", type=Path, help="CSV: order_id,amount,currency[,click_id]")
    args = parser.parse_args(argv)
    orders = read_orders(args.orders.read_text(encoding="utf-8").splitlines())
    with AuthenticatedClient(base_url=args.base_url, token=args.token) as client:
        report_orders(client, args.shop, orders, out)
        print_report(client, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
