"""Each cleansing rule of job 2 on small DataFrames, on the selected engine (and on PySpark for parity)."""

from __future__ import annotations

from datetime import date, datetime
from types import ModuleType
from typing import Any

import pytest

from gluerelay.pipelines.model import load
from tests.conftest import load_glue_script, raw_customer, raw_frame, repo_root

pytestmark = pytest.mark.spark
INGEST_DATE = "2026-11-24"


def validate_one(spark: Any, cleanse: ModuleType, **values: str | None) -> dict[str, Any]:
    rows = cleanse.validate(raw_frame(spark, [raw_customer(**values)]), INGEST_DATE).collect()
    assert len(rows) == 1
    return dict(rows[0].asDict())


def test_a_clean_row_passes_with_typed_values(spark: Any, cleanse: ModuleType) -> None:
    # Given a row with nothing wrong / When validated
    row = validate_one(spark, cleanse)
    # Then it has no quarantine reason and typed values
    assert row["quarantine_reason"] is None
    assert row["customer_id"] == 1
    assert row["date_of_birth"] == date(1985, 12, 10)
    assert row["updated_at"] == datetime(2024, 1, 2, 3, 4, 5)


def test_strings_are_trimmed_of_spaces_and_tabs_and_blank_means_missing(
    spark: Any, cleanse: ModuleType
) -> None:
    row = validate_one(
        spark, cleanse, customer_id="  42\t", first_name=" Ada  ", last_name="\t", country=" us "
    )
    assert row["quarantine_reason"] is None
    assert row["customer_id"] == 42
    assert row["first_name"] == "Ada"
    assert row["last_name"] is None
    assert row["country"] == "US"


def test_every_engine_trims_the_same_whitespace(spark: Any, cleanse: ModuleType) -> None:
    """Java's \\s (Spark) strips a vertical tab and DuckDB's does not: the class is spelled out, so a
    value edged with any of space, tab, CR, LF, form feed or vertical tab is trimmed alike, and one of
    only those is missing."""
    row = validate_one(spark, cleanse, first_name="\x0bAda\f", last_name="\r\n\x0b\f", country="\x0bus\t")
    assert (row["first_name"], row["last_name"], row["country"]) == ("Ada", None, "US")
    assert row["quarantine_reason"] is None
    orders = load_glue_script("cleanse_orders")  # the orders job trims with the same class
    frame = spark.createDataFrame([("\x0bA-1\f",), ("\r\n\x0b\f",)], "v STRING")
    assert [r["t"] for r in frame.select(orders.trimmed(frame["v"]).alias("t")).collect()] == ["A-1", None]


@pytest.mark.parametrize(
    ("customer_id", "reason"),
    [
        (None, "missing_customer_id"),
        ("   ", "missing_customer_id"),
        ("abc", "invalid_customer_id"),
        ("-5", "invalid_customer_id"),
        ("0", "invalid_customer_id"),
        ("12.0", "invalid_customer_id"),
        ("1e3", "invalid_customer_id"),
        ("1234567890123456789012", "invalid_customer_id"),
    ],
)
def test_customer_id_must_be_a_positive_integer(
    spark: Any, cleanse: ModuleType, customer_id: str | None, reason: str
) -> None:
    assert validate_one(spark, cleanse, customer_id=customer_id)["quarantine_reason"] == reason


@pytest.mark.parametrize(
    ("email", "expected", "reason"),
    [
        ("Ada.Lovelace@Example.COM ", "ada.lovelace@example.com", None),
        ("first.last+tag@mail.example.co.uk", "first.last+tag@mail.example.co.uk", None),
        (None, None, None),
        ("ada@", None, "invalid_email"),
        ("ada.example.com", None, "invalid_email"),
        ("ada lovelace@example.com", None, "invalid_email"),
        ("ada@example", None, "invalid_email"),
    ],
)
def test_emails_are_lower_cased_and_validated(
    spark: Any, cleanse: ModuleType, email: str | None, expected: str | None, reason: str | None
) -> None:
    row = validate_one(spark, cleanse, email=email)
    assert row["quarantine_reason"] == reason
    if reason is None:
        assert row["email"] == expected


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("(415) 555-0123", "US", "+14155550123"),
        ("415.555.0123", "us", "+14155550123"),
        ("1-415-555-0123", "US", "+14155550123"),
        ("+1 415 555 0123", "CA", "+14155550123"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 20 7946 0018", "US", "+442079460018"),
        ("0044-2079460018", "DE", "+442079460018"),
        ("030 12345678", "DE", "+493012345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_phones_are_normalised_to_e164(
    spark: Any, cleanse: ModuleType, phone: str, country: str, expected: str
) -> None:
    row = validate_one(spark, cleanse, phone=phone, country=country)
    assert row["quarantine_reason"] is None
    assert row["phone"] == expected


@pytest.mark.parametrize(
    ("phone", "country"),
    [
        ("12345", "US"),
        ("n/a", "US"),
        ("+1 415 555 012", "US"),
        ("415-555-0123", None),
        ("0000000000000000000", "DE"),
    ],
)
def test_phones_that_cannot_be_made_e164_are_quarantined(
    spark: Any, cleanse: ModuleType, phone: str, country: str | None
) -> None:
    assert validate_one(spark, cleanse, phone=phone, country=country)["quarantine_reason"] == "invalid_phone"


@pytest.mark.parametrize("value", ["1986-02-03", "1986-2-3", "02/03/1986", "2/3/1986", "03.02.1986"])
def test_dates_of_birth_parse_in_every_source_format(spark: Any, cleanse: ModuleType, value: str) -> None:
    row = validate_one(spark, cleanse, date_of_birth=value)
    assert row["quarantine_reason"] is None
    assert row["date_of_birth"] == date(1986, 2, 3)


@pytest.mark.parametrize(
    "value", ["1986-13-45", "unknown", "2021-02-30", "0000-00-00", "1899-12-31", "2030-01-01", "19860203x"]
)
def test_impossible_or_garbage_dates_of_birth_are_quarantined(
    spark: Any, cleanse: ModuleType, value: str
) -> None:
    assert validate_one(spark, cleanse, date_of_birth=value)["quarantine_reason"] == "invalid_date_of_birth"


@pytest.mark.parametrize("value", ["2024-01-02 03:04:05", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05"])
def test_updated_at_accepts_space_and_iso_formats(spark: Any, cleanse: ModuleType, value: str) -> None:
    row = validate_one(spark, cleanse, updated_at=value)
    assert row["quarantine_reason"] is None
    assert row["updated_at"] == datetime(2024, 1, 2, 3, 4, 5)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "missing_updated_at"),
        ("not a timestamp", "invalid_updated_at"),
        ("2024-02-30 10:00:00", "invalid_updated_at"),
        ("01/02/2024 10:00", "invalid_updated_at"),
    ],
)
def test_updated_at_is_required_and_must_parse(
    spark: Any, cleanse: ModuleType, value: str | None, reason: str
) -> None:
    assert validate_one(spark, cleanse, updated_at=value)["quarantine_reason"] == reason


@pytest.mark.parametrize(
    ("value", "reason"), [("gb", None), ("USA", "invalid_country"), ("U.K.", "invalid_country")]
)
def test_country_codes_are_upper_cased_alpha2(
    spark: Any, cleanse: ModuleType, value: str, reason: str | None
) -> None:
    row = validate_one(spark, cleanse, country=value, phone=None)
    assert row["quarantine_reason"] == reason


def test_the_first_failing_rule_names_the_reason(spark: Any, cleanse: ModuleType) -> None:
    row = validate_one(spark, cleanse, customer_id="", email="bad", phone="1", date_of_birth="x")
    assert row["quarantine_reason"] == "missing_customer_id"


def outcomes(
    spark: Any, cleanse: ModuleType, rows: list[dict[str, str | None]]
) -> list[tuple[str, str, str]]:
    """Each row's customer, update and outcome: its quarantine reason, or whether the dedup kept it."""
    validated = cleanse.validate(raw_frame(spark, rows), INGEST_DATE)
    quarantined = [
        (str(r["customer_id"]), f"{r['updated_at']:%Y-%m-%d %H:%M:%S}", r["quarantine_reason"])
        for r in validated.collect()
        if r["quarantine_reason"] is not None
    ]
    deduplicated = [
        (
            str(r["customer_id"]),
            f"{r['updated_at']:%Y-%m-%d %H:%M:%S}",
            "written" if r["latest"] else "duplicate",
        )
        for r in cleanse.deduplicate(validated).collect()
    ]
    return sorted(quarantined + deduplicated)


def test_dedup_keeps_the_latest_update_of_each_customer(spark: Any, cleanse: ModuleType) -> None:
    rows = [
        raw_customer(customer_id="7", updated_at="2024-01-01 00:00:00"),
        raw_customer(customer_id="7", updated_at="2024-03-01T00:00:00Z", email="new@example.com"),
        raw_customer(customer_id="8", updated_at="2024-02-01 00:00:00"),
    ]
    assert outcomes(spark, cleanse, rows) == [
        ("7", "2024-01-01 00:00:00", "duplicate"),
        ("7", "2024-03-01 00:00:00", "written"),
        ("8", "2024-02-01 00:00:00", "written"),
    ]


def test_dedup_tie_break_is_deterministic(spark: Any, cleanse: ModuleType) -> None:
    # Given two versions of a customer with the same updated_at, in either order
    a = raw_customer(customer_id="9", email="b@example.com")
    b = raw_customer(customer_id="9", email="a@example.com")
    for rows in ([a, b], [b, a]):
        # When deduplicated
        validated = cleanse.validate(raw_frame(spark, rows), INGEST_DATE)
        kept = [r["email"] for r in cleanse.cleansed_rows(cleanse.deduplicate(validated)).collect()]
        # Then the same one is kept
        assert kept == ["a@example.com"]


def test_exact_duplicates_leave_one_row(spark: Any, cleanse: ModuleType) -> None:
    rows = [raw_customer(customer_id="5")] * 3
    assert [o for _, _, o in outcomes(spark, cleanse, rows)] == ["duplicate", "duplicate", "written"]


def test_invalid_rows_do_not_compete_with_valid_ones(spark: Any, cleanse: ModuleType) -> None:
    # Given a newer version of customer 3 that fails validation
    rows = [
        raw_customer(customer_id="3", updated_at="2024-01-01 00:00:00"),
        raw_customer(customer_id="3", updated_at="2024-06-01 00:00:00", email="broken@"),
    ]
    # Then the older valid row is written and the newer one quarantined, not counted as a duplicate
    assert outcomes(spark, cleanse, rows) == [
        ("3", "2024-01-01 00:00:00", "written"),
        ("3", "2024-06-01 00:00:00", "invalid_email"),
    ]


def test_only_quarantined_rows_keep_their_raw_values(spark: Any, cleanse: ModuleType) -> None:
    # Given a valid row and a row with a bad email, both with padded names
    rows = [
        raw_customer(customer_id="4", first_name=" Ada "),
        raw_customer(customer_id="5", first_name=" Bob ", email="not-an-email"),
    ]
    # When validated
    validated = cleanse.validate(raw_frame(spark, rows), INGEST_DATE)
    raw_names = {r["customer_id"]: (r["raw_first_name"], r["quarantine_reason"]) for r in validated.collect()}
    # Then the quarantined row carries its raw value and the valid one does not need to
    assert raw_names == {4: (None, None), 5: (" Bob ", "invalid_email")}
    assert [r["first_name"] for r in cleanse.quarantined_rows(validated).collect()] == [" Bob "]


def test_summary_reconciles_and_refuses_counts_that_do_not(cleanse: ModuleType) -> None:
    # Given 10 rows by quarantine reason (None: valid) and the 7 valid ones by whether the dedup kept them
    by_reason = {None: 7, "invalid_email": 2, "missing_customer_id": 1}
    figures = cleanse.summarise(by_reason, {True: 6, False: 1})
    assert figures == {
        "rows_read": 10,
        "rows_written": 6,
        "rows_quarantined": 3,
        "quarantined_by_reason": {"missing_customer_id": 1, "invalid_email": 2},
        "duplicates_removed": 1,
    }
    # A dedup that lost or doubled a valid row is refused, naming the figures
    with pytest.raises(cleanse.CleanseError, match="7 valid rows != written 6 \\+ duplicates removed 2"):
        cleanse.summarise(by_reason, {True: 6, False: 2})
    with pytest.raises(cleanse.CleanseError, match="unexpected quarantine reasons"):
        cleanse.summarise({None: 1, "made_up": 1}, {True: 1})


def test_missing_required_columns_are_named(spark: Any, cleanse: ModuleType) -> None:
    frame = spark.createDataFrame([("1", "a@example.com")], "customer_id STRING, email STRING")
    with pytest.raises(cleanse.CleanseError) as error:
        cleanse.check_columns(frame, "s3://bucket/raw/x/")
    message = str(error.value)
    assert "s3://bucket/raw/x/" in message
    for column in ("first_name", "phone", "updated_at", "lineage_run_id"):
        assert column in message
    assert "email" not in message.split("columns:")[1]


def test_the_customers_pipeline_has_extract_require_the_columns_cleanse_needs(cleanse: ModuleType) -> None:
    """Glue scripts are uploaded alone and cannot import each other: the pipeline file hands job 1 the
    column list job 2 checks, and this keeps the two the same."""
    pipeline = load(repo_root() / "pipelines" / "customers.yaml")
    required = pipeline.steps["extract"].args["--required_columns"].split(",")
    assert required == cleanse.REQUIRED_COLUMNS
