"""A backfill's id and input: what makes asking twice the same backfill, and what one may hold."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError
from relay.contract import (
    BACKFILL_ID_PATTERN,
    MAX_BACKFILL_CONCURRENCY,
    MAX_BACKFILL_RUNS,
    BackfillInput,
    backfill_id,
    rerun_execution_name,
    run_id_of_execution,
)


def test_a_backfill_is_named_by_its_pipeline_step_and_runs_in_any_order() -> None:
    first = backfill_id("customers", "cleanse", ["customers-s3-b", "customers-s3-a"])
    assert first == backfill_id("customers", "cleanse", ["customers-s3-a", "customers-s3-b"])
    assert re.fullmatch(BACKFILL_ID_PATTERN, first)
    assert first != backfill_id("customers", "extract", ["customers-s3-a", "customers-s3-b"])
    assert first != backfill_id("customers", None, ["customers-s3-a", "customers-s3-b"])
    assert first != backfill_id("customers", "cleanse", ["customers-s3-a"])


def test_a_rerun_execution_belongs_to_its_run() -> None:
    name = rerun_execution_name("customers-s3-abc", 3)
    assert name == "customers-s3-abc-rerun-3"
    assert run_id_of_execution(name) == "customers-s3-abc"
    assert run_id_of_execution("customers-s3-abc-resume-2") == "customers-s3-abc"
    assert run_id_of_execution("customers-manual-rerun-x") == "customers-manual-rerun-x"
    with pytest.raises(ValueError, match="longer than Step Functions' 80"):
        rerun_execution_name("c" * 74, 1)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_concurrent": MAX_BACKFILL_CONCURRENCY + 1}, "max_concurrent"),
        ({"runs": []}, "runs"),
        ({"runs": ["r"] * (MAX_BACKFILL_RUNS + 1)}, "runs"),
        ({"backfill_id": "customers-bf-xyz"}, "backfill_id"),
    ],
)
def test_a_backfill_input_out_of_bounds_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    given = {
        "backfill_id": backfill_id("customers", None, ["r"]),
        "pipeline": "customers",
        "from_step": None,
        "max_concurrent": 4,
        "runs": ["r"],
        **change,
    }
    with pytest.raises(ValidationError, match=field):
        BackfillInput.model_validate(given)
