"""The local crawler's scan of its target: an object listed and gone before it is read is skipped."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from gluerelay.local import glue

pytestmark = pytest.mark.integration
HEADER = b"customer_id,first_name\n1,Ada\n"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="data")
        for run in ("r1", "r2"):
            client.put_object(Bucket="data", Key=f"raw/customers/run_id={run}/part-0.csv", Body=HEADER)
        yield client


def test_an_object_deleted_between_listing_and_reading_is_skipped_not_a_failed_crawl(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = s3.get_object

    def gone_meanwhile(**kwargs: Any) -> Any:
        if "run_id=r1" in kwargs["Key"]:
            s3.delete_object(Bucket=kwargs["Bucket"], Key=kwargs["Key"])  # a job overwrote its partition
        return real(**kwargs)

    monkeypatch.setattr(s3, "get_object", gone_meanwhile)
    found = glue._scan(s3, "data", "raw/customers/")
    assert found.files == ["raw/customers/run_id=r2/part-0.csv"]
    assert list(found.partitions) == [("r2",)]
    assert set(found.columns) == {"customer_id", "first_name"}
