"""The local cloud reads template.yaml as CloudFormation does before it deploys anything."""

from __future__ import annotations

import pytest

from gluerelay.local.cloud import TEMPLATE
from gluerelay.local.events import sqs_mapping_problem
from gluerelay.local.template import Template, TemplateError


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"ArrivalBatchingWindowSeconds": "0"}, "ArrivalBatchingWindowSeconds=0 is below its MinValue 1"),
        ({"ArrivalBatchSize": "10001"}, "ArrivalBatchSize=10001 is above its MaxValue 10000"),
        ({"ArrivalBatchSize": "many"}, "ArrivalBatchSize='many' is not a number"),
    ],
)
def test_a_number_parameter_outside_its_bounds_is_refused_before_anything_deploys(
    overrides: dict[str, str], problem: str
) -> None:
    with pytest.raises(TemplateError, match=problem):
        Template.load(TEMPLATE, overrides=overrides)


@pytest.mark.parametrize(
    ("batch_size", "window", "problem"),
    [
        (10, 0, None),
        (100, 1, None),
        (10_000, 300, None),
        (11, 0, "BatchSize 11 (more than 10) needs MaximumBatchingWindowInSeconds of at least 1"),
        (10_001, 1, "BatchSize 10001 is outside 1 to 10000"),
        (10, 301, "MaximumBatchingWindowInSeconds 301 is outside 0 to 300"),
    ],
)
def test_the_local_cloud_refuses_the_sqs_mappings_lambda_refuses(
    batch_size: int, window: float, problem: str | None
) -> None:
    assert sqs_mapping_problem(batch_size, window) == problem
