"""Order exports for the orders example, reproducible from a seed: order headers (what the ERP exports) and
order lines (what the web shop exports), with the dirt both really have.

Lines: some reference an order no header describes, some have a missing sku, a zero, negative or
non-numeric quantity, or a malformed price. Headers: every referenced order but a few, with dates in the
shop's one format. The same (orders, seed) always gives the same files.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

HEADER_COLUMNS = ["order_id", "customer_id", "order_date", "currency"]
LINE_COLUMNS = ["order_id", "line_no", "sku", "quantity", "unit_price"]
HEADERS_FILE_PREFIX = "order-headers"  # erp_extract_order_headers reads landed files named like this
LINES_FILE_PREFIX = "order-lines"  # extract_order_lines reads these
CURRENCIES = ["EUR", "USD", "GBP"]
SKUS = [f"SKU-{n:04d}" for n in range(1, 200)]


@dataclass(frozen=True)
class Orders:
    headers: list[dict[str, str]]
    lines: list[dict[str, str]]

    @property
    def bad_lines(self) -> int:
        """Lines cleanse_orders must quarantine (what the generator made dirty)."""
        known = {h["order_id"] for h in self.headers}
        return sum(1 for line in self.lines if _is_bad(line, known))


def _is_bad(line: dict[str, str], known: set[str]) -> bool:
    quantity, price = line["quantity"].strip(), line["unit_price"].strip()
    return (
        not line["order_id"].strip()
        or not line["sku"].strip()
        or not quantity.isdigit()
        or int(quantity) == 0
        or not _price(price)
        or line["order_id"].strip() not in known
    )


def _price(text: str) -> bool:
    whole, _, cents = text.partition(".")
    return whole.isdigit() and (cents == "" or (cents.isdigit() and len(cents) <= 2))


def generate(orders: int, seed: int = 7) -> Orders:
    """`orders` orders of one to four lines each; about one line in ten is dirty."""
    rng = random.Random(seed)
    headers: list[dict[str, str]] = []
    lines: list[dict[str, str]] = []
    start = date(2026, 1, 1)
    for number in range(1, orders + 1):
        order_id = f"SO-{seed:03d}-{number:07d}"
        if rng.random() > 0.02:  # a few orders reach the shop before the ERP
            headers.append(
                {
                    "order_id": order_id,
                    "customer_id": str(rng.randint(1, 50_000)),
                    "order_date": (start + timedelta(days=rng.randint(0, 300))).isoformat(),
                    "currency": rng.choice(CURRENCIES),
                }
            )
        for line_no in range(1, rng.randint(1, 4) + 1):
            line = {
                "order_id": order_id,
                "line_no": str(line_no),
                "sku": rng.choice(SKUS),
                "quantity": str(rng.randint(1, 9)),
                "unit_price": f"{rng.randint(1, 500)}.{rng.randint(0, 99):02d}",
            }
            dirt = rng.random()
            if dirt < 0.02:
                line["quantity"] = rng.choice(["0", "-1", "two", ""])
            elif dirt < 0.04:
                line["unit_price"] = rng.choice(["12,50", "free", "1.999", ""])
            elif dirt < 0.05:
                line["sku"] = " "
            elif dirt < 0.06:
                line["order_id"] = ""
            lines.append(line)
    return Orders(headers, lines)


def write_files(orders: Orders, folder: Path, files: int, stamp: str) -> list[Path]:
    """The headers in one file and the lines split over `files` files, named as the extract jobs expect."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{HEADERS_FILE_PREFIX}-{stamp}.csv"]
    _write(paths[0], HEADER_COLUMNS, orders.headers)
    for index in range(files):
        path = folder / f"{LINES_FILE_PREFIX}-{stamp}-{index + 1:03d}.csv"
        _write(path, LINE_COLUMNS, orders.lines[index::files])
        paths.append(path)
    return paths


def _write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
