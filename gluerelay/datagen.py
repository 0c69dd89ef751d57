"""Realistic dirty customer exports, reproducible from a seed.

What a CRM export really looks like: stray spaces, mixed-case and invalid emails, phones in national and
international formats, dates in several formats (and some garbage), missing and malformed ids, exact
duplicates, and later updates of the same customer. The same (rows, seed) always gives the same data.
"""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

COLUMNS = [
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "date_of_birth",
    "country",
    "updated_at",
]
OutputFormat = Literal["csv", "jsonl", "sqlite"]
FORMATS: tuple[OutputFormat, ...] = ("csv", "jsonl", "sqlite")

FIRST_NAMES = [
    "Alice",
    "Bob",
    "Carla",
    "Dmitri",
    "Emma",
    "François",
    "Grace",
    "Hiro",
    "Ines",
    "Jamal",
    "Katrin",
    "Liam",
    "María",
    "Noah",
    "Olivia",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Victor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoë",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "O'Brien",
    "Müller",
    "García",
    "Rossi",
    "Nguyen",
    "Kowalski",
    "Dubois",
    "van der Berg",
    "Tanaka",
    "Okafor",
    "Silva",
    "Murphy",
    "Schmidt",
    "Lefèvre",
    "Patel",
    "Cohen",
]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "post.example.de"]
# (country, weight, national phone shapes with # for a digit, international prefix)
COUNTRIES = [
    ("US", 40, ["(###) ###-####", "###-###-####", "###.###.####", "##########", "1-###-###-####"], "+1"),
    ("CA", 8, ["(###) ###-####", "###-###-####"], "+1"),
    ("GB", 14, ["020 #### ####", "07### ######"], "+44"),
    ("DE", 12, ["030 ########", "0151 ########"], "+49"),
    ("FR", 10, ["01 ## ## ## ##", "06 ## ## ## ##"], "+33"),
    ("IE", 4, ["01 ### ####", "087 ### ####"], "+353"),
    ("NL", 4, ["020 ### ####", "06 ########"], "+31"),
    ("ES", 4, ["91 ### ## ##", "6## ### ###"], "+34"),
    ("AU", 4, ["02 #### ####", "04## ### ###"], "+61"),
]
GARBAGE_DATES = ["unknown", "1986-13-45", "31/31/1990", "0000-00-00", "N/A", "yesterday", "19860203x"]
GARBAGE_TIMESTAMPS = ["not a timestamp", "2024-13-01 00:00:00", "01/02/2024 10:00", "2024-02-30T10:00:00Z"]
GARBAGE_IDS = ["abc", "-5", "0", "12.0", "1e3", "#42"]
INVALID_EMAILS = ["{f}.{l}@", "{f}{l}.example.com", "{f}@{l}", "@example.com", "{f} {l}@example.com"]
INVALID_PHONES = ["n/a", "12345", "555-CALL-NOW", "+0 000", "0000000000000000000"]
INVALID_COUNTRIES = ["USA", "United States", "U.K.", "Deutschland", "1"]


@dataclass(frozen=True)
class DirtProfile:
    """Share of rows with each kind of dirt (independent draws)."""

    stray_spaces: float = 0.10
    mixed_case_email: float = 0.25
    invalid_email: float = 0.03
    missing_email: float = 0.03
    invalid_phone: float = 0.02
    missing_phone: float = 0.05
    international_phone: float = 0.25
    garbage_date: float = 0.02
    missing_date: float = 0.03
    invalid_country: float = 0.01
    lower_case_country: float = 0.15
    missing_id: float = 0.01
    garbage_id: float = 0.01
    garbage_updated_at: float = 0.01
    missing_updated_at: float = 0.005
    exact_duplicate: float = 0.05
    later_update: float = 0.15


def _fill(rng: random.Random, shape: str) -> str:
    return "".join(str(rng.randint(0, 9)) if ch == "#" else ch for ch in shape)


class _Generator:
    def __init__(self, seed: int, profile: DirtProfile) -> None:
        self.rng = random.Random(seed)
        self.p = profile
        self.country_names = [c[0] for c in COUNTRIES]
        self.country_weights = [c[1] for c in COUNTRIES]
        self.by_country = {c[0]: c for c in COUNTRIES}
        self.epoch = datetime(2024, 1, 1)

    def chance(self, share: float) -> bool:
        return self.rng.random() < share

    def spaced(self, value: str) -> str:
        if value and self.chance(self.p.stray_spaces):
            return self.rng.choice([" ", "  ", ""]) + value + self.rng.choice([" ", "  ", "\t"])
        return value

    def phone(self, country: str) -> str:
        if self.chance(self.p.missing_phone):
            return ""
        if self.chance(self.p.invalid_phone):
            return self.rng.choice(INVALID_PHONES)
        _, _, shapes, prefix = self.by_country[country]
        national = _fill(self.rng, self.rng.choice(shapes))
        if self.chance(self.p.international_phone):
            digits = "".join(ch for ch in national if ch.isdigit())
            digits = digits[-10:] if country in {"US", "CA"} else digits.removeprefix("0")
            style = self.rng.random()
            if style < 0.5:
                return f"{prefix} {digits[:3]} {digits[3:6]} {digits[6:]}"
            if style < 0.8:
                return f"{prefix}{digits}"
            return f"00{prefix[1:]}-{digits}"
        return national

    def email(self, first: str, last: str) -> str:
        if self.chance(self.p.missing_email):
            return ""
        f = first.lower().replace("ç", "c").replace("é", "e").replace("ë", "e").replace("í", "i")
        l_ = (
            last.lower()
            .replace("'", "")
            .replace(" ", "")
            .replace("ü", "u")
            .replace("í", "i")
            .replace("è", "e")
        )
        if self.chance(self.p.invalid_email):
            return self.rng.choice(INVALID_EMAILS).format(f=f, l=l_)
        address = f"{f}.{l_}{self.rng.randint(1, 999)}@{self.rng.choice(DOMAINS)}"
        if self.chance(self.p.mixed_case_email):
            address = "".join(ch.upper() if self.rng.random() < 0.3 else ch for ch in address)
        return address

    def birth_date(self) -> str:
        if self.chance(self.p.missing_date):
            return ""
        if self.chance(self.p.garbage_date):
            return self.rng.choice(GARBAGE_DATES)
        day = datetime(1940, 1, 1) + timedelta(days=self.rng.randint(0, 365 * 65))
        style = self.rng.random()
        if style < 0.55:
            return day.strftime("%Y-%m-%d")
        if style < 0.80:
            return day.strftime("%m/%d/%Y")
        if style < 0.92:
            return day.strftime("%d.%m.%Y")
        return f"{day.year}-{day.month}-{day.day}"  # not zero-padded

    def updated_at(self, at: datetime) -> str:
        if self.chance(self.p.missing_updated_at):
            return ""
        if self.chance(self.p.garbage_updated_at):
            return self.rng.choice(GARBAGE_TIMESTAMPS)
        if self.rng.random() < 0.3:
            return at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return at.strftime("%Y-%m-%d %H:%M:%S")

    def customer_id(self, number: int) -> str:
        if self.chance(self.p.missing_id):
            return ""
        if self.chance(self.p.garbage_id):
            return self.rng.choice(GARBAGE_IDS)
        return self.spaced(str(number))

    def country(self, code: str) -> str:
        if self.chance(self.p.invalid_country):
            return self.rng.choice(INVALID_COUNTRIES)
        if self.chance(self.p.lower_case_country):
            return code.lower()
        return self.spaced(code)

    def new_customer(self, number: int) -> dict[str, str]:
        code = self.rng.choices(self.country_names, self.country_weights)[0]
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        at = self.epoch + timedelta(seconds=self.rng.randint(0, 300 * 86400))
        return {
            "customer_id": self.customer_id(number),
            "first_name": self.spaced(first),
            "last_name": self.spaced(last),
            "email": self.spaced(self.email(first, last)),
            "phone": self.spaced(self.phone(code)),
            "date_of_birth": self.birth_date(),
            "country": self.country(code),
            "updated_at": self.updated_at(at),
        }

    def later_update(self, row: dict[str, str]) -> dict[str, str]:
        """The same customer, edited later: a new email or phone and a later updated_at."""
        update = dict(row)
        code = row["country"].strip().upper()
        if code in self.by_country and self.rng.random() < 0.5:
            update["phone"] = self.phone(code)
        else:
            update["email"] = self.email(row["first_name"].strip() or "x", row["last_name"].strip() or "y")
        at = self.epoch + timedelta(seconds=self.rng.randint(300 * 86400, 330 * 86400))
        update["updated_at"] = self.updated_at(at)
        return update

    def rows(self, count: int) -> Iterator[dict[str, str]]:
        emitted: list[dict[str, str]] = []
        next_id = 1
        for _ in range(count):
            if emitted and self.chance(self.p.exact_duplicate):
                row = dict(self.rng.choice(emitted[-1000:]))
            elif emitted and self.chance(self.p.later_update):
                row = self.later_update(self.rng.choice(emitted[-1000:]))
            else:
                row = self.new_customer(next_id)
                next_id += 1
            emitted.append(row)
            if len(emitted) > 5000:
                del emitted[:1000]
            yield row


def generate_rows(count: int, seed: int = 7, profile: DirtProfile | None = None) -> Iterator[dict[str, str]]:
    """``count`` export rows (every value a string, as exports are), reproducible from ``seed``."""
    if count < 0:
        raise ValueError(f"row count must be >= 0, not {count}")
    return _Generator(seed, profile or DirtProfile()).rows(count)


def write(path: Path, rows: Iterator[dict[str, str]], fmt: OutputFormat, table: str = "customers") -> int:
    """Write rows as CSV (with header), JSON Lines or a SQLite table of TEXT columns; returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1
    elif fmt == "jsonl":
        with path.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(
                    json.dumps({k: (v if v != "" else None) for k, v in row.items()}, ensure_ascii=False)
                )
                handle.write("\n")
                count += 1
    elif fmt == "sqlite":
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as db:
            columns = ", ".join(f'"{c}" TEXT' for c in COLUMNS)
            db.execute(f'CREATE TABLE "{table}" ({columns})')
            placeholders = ", ".join("?" for _ in COLUMNS)
            batch: list[tuple[str | None, ...]] = []
            for row in rows:
                batch.append(tuple(row[c] if row[c] != "" else None for c in COLUMNS))
                count += 1
                if len(batch) >= 10_000:
                    db.executemany(f'INSERT INTO "{table}" VALUES ({placeholders})', batch)
                    batch.clear()
            db.executemany(f'INSERT INTO "{table}" VALUES ({placeholders})', batch)
        db.close()
    else:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return count
