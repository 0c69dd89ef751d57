"""Names the contract makes stay within what AWS accepts, for the longest names a pipeline file allows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relay.contract import (
    EXECUTION_NAME_LIMIT,
    arrival_run_id,
    manual_run_id,
    pipeline_of_run,
    resume_execution_name,
    run_id_of_execution,
    schedule_run_id,
)
from relay.models import LandedObject

LONGEST = "p" * 24  # PIPELINE_NAME_PATTERN allows 24 characters
NOW = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    "run_id",
    [
        arrival_run_id(LONGEST, [LandedObject(bucket="b", key="k", etag="e", version_id="v")]),
        manual_run_id(LONGEST, NOW, "abcdef"),
        schedule_run_id(LONGEST, NOW, 99),
    ],
)
def test_every_run_id_and_its_thousandth_resume_fit_in_an_execution_name(run_id: str) -> None:
    resumed = resume_execution_name(run_id, 1000)
    assert len(resumed) <= EXECUTION_NAME_LIMIT
    assert run_id_of_execution(resumed) == run_id
    assert pipeline_of_run(run_id) == LONGEST


def test_a_resume_name_past_the_limit_is_refused_naming_the_limit() -> None:
    with pytest.raises(ValueError, match="longer than Step Functions' 80"):
        resume_execution_name("r" * 72, 1)  # 81 characters
