"""A run reads exactly the object versions that landed for it: keys with glob characters, spaces, `+`,
`%20` or unicode are one object each, and an object overwritten while its run waits is still read as the
version that landed (the new version is a run of its own). Counted from the raw rows' lineage, per version.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from relay.contract import Manifest

from gluerelay import datagen
from gluerelay.local.cloud import CloudOptions, LocalCloud
from gluerelay.local.runs import follow, landing_prefix, runs_taking
from tests.waiter import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Each awkward name beside the plain one a glob would expand it to: a reader that globs reads both.
AWKWARD = [
    "a-*.csv",
    "a-1.csv",
    "x[1].csv",
    "x1.csv",
    "q?.csv",
    "qz.csv",
    "{b,c}.csv",
    "b.csv",
    "a file.csv",
    "a+b.csv",
    "a%20b.csv",
    "ünïcødé-客户.csv",
    "back\\slash.csv",
]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A cloud of this module's own: the overwrite test holds job starts and moves the clock."""
    with LocalCloud(CloudOptions(work_dir=tmp_path_factory.mktemp("landed-objects"))) as running:
        yield running


def customers_csv(rows: int, seed: int, work: Path) -> bytes:
    path = work / f"sample-{seed}-{rows}.csv"
    datagen.write(path, datagen.generate_rows(rows, seed), "csv")
    return path.read_bytes()


def raw_rows_by_source(cloud: LocalCloud, run_ids: set[str]) -> Counter[str]:
    """Job 1's raw output of these runs, counted by each row's lineage_source."""
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    counted: Counter[str] = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="raw/"):
        for item in page.get("Contents", []):
            if not any(f"/run_id={run}/" in item["Key"] for run in run_ids) or not item["Key"].endswith(
                ".csv"
            ):
                continue
            text = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            counted.update(row["lineage_source"] for row in csv.DictReader(io.StringIO(text, newline="")))
    return counted


def test_keys_with_glob_characters_spaces_and_unicode_are_each_read_exactly_once(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    prefix = landing_prefix(cloud, "customers") + "awkward/"
    bodies = {
        f"{prefix}{name}": customers_csv(3 + n, seed=100 + n, work=tmp_path) for n, name in enumerate(AWKWARD)
    }
    versions = {
        key: s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"] for key, body in bodies.items()
    }

    runs = runs_taking(cloud, bodies)
    reports = follow(cloud, runs)

    assert [r.status for r in reports] == ["SUCCEEDED"] * len(reports), [r.error for r in reports]
    expected = {f"s3://{bucket}/{key}?versionId={versions[key]}": 3 + n for n, key in enumerate(bodies)}
    assert raw_rows_by_source(cloud, set(runs)) == expected
    assert sum(r.rows["rows_read"] for r in reports) == sum(expected.values())
    leftovers = s3.list_objects_v2(Bucket=bucket, Prefix="staging/").get("Contents", [])
    assert leftovers == []  # each job deleted its staged copies


def test_an_object_overwritten_while_its_run_waits_is_read_as_the_version_that_landed(
    cloud: LocalCloud, tmp_path: Path
) -> None:
    s3, bucket = cloud.client("s3"), cloud.output("DataBucketName")
    key = landing_prefix(cloud, "customers") + "overwritten/customers.csv"
    extract_job = cloud.template.physical_name("ExtractCustomersJob")
    started_before = sum(1 for r in cloud.glue.job_runs if r.job_name == extract_job)
    cloud.glue.timing.job_start_delay_seconds = 120  # Glue holds the first run's job start...
    try:
        first = s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(10, seed=1, work=tmp_path))[
            "VersionId"
        ]
        eventually(
            lambda: sum(1 for r in cloud.glue.job_runs if r.job_name == extract_job) > started_before,
            what="the first version's extract job run, waiting to start",
        )
        # ...while the key is overwritten: the second version lands, and is a run of its own.
        second = s3.put_object(Bucket=bucket, Key=key, Body=customers_csv(12, seed=2, work=tmp_path))[
            "VersionId"
        ]

        def both_versions_taken() -> dict[str, Manifest] | None:
            runs = runs_taking(cloud, [key])
            taken = {o.version_id for m in runs.values() for o in m.objects if o.key == key}
            return runs if {first, second} <= taken else None

        runs = eventually(both_versions_taken, what="a run for each version")
    finally:
        cloud.glue.timing.job_start_delay_seconds = 0
    cloud.clock.advance(120)  # Glue starts the held runs
    reports = follow(cloud, runs)

    assert [r.status for r in reports] == ["SUCCEEDED"] * len(reports), [r.error for r in reports]
    assert raw_rows_by_source(cloud, set(runs)) == {
        f"s3://{bucket}/{key}?versionId={first}": 10,
        f"s3://{bucket}/{key}?versionId={second}": 12,
    }
