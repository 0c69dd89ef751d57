"""Reruns on fakes: what is redone, what is refused, and how asking twice behaves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relay.contract import ExecutionInput, Manifest, RunRecord, RunStatus, Trigger, catalog
from relay.logic.reruns import RerunRefusedError, downstream, prepare, rerun
from relay.models import LandedObject, Step, StepKind, StepRef, StepStatus

from tests.fakes import FakeCloud

NOW = datetime(2026, 12, 2, 9, tzinfo=UTC)
RUN = "customers-s3-abc"
LANDED = LandedObject(bucket="data", key="landing/customers/a.csv", etag="e1", version_id="v1")


def steps_of(pipeline: str) -> dict[str, list[str]]:
    return {step: spec.needs for step, spec in catalog().pipelines[pipeline].steps.items()}


def test_downstream_is_the_step_and_everything_that_needs_it_in_an_order_they_can_run_in() -> None:
    customers = steps_of("customers")
    assert downstream(customers, "extract") == [
        "extract",
        "crawl_raw",
        "cleanse",
        "check_cleansed",
        "catalog_cleansed",
    ]
    assert downstream(customers, "cleanse") == ["cleanse", "check_cleansed", "catalog_cleansed"]
    assert downstream(customers, "catalog_cleansed") == ["catalog_cleansed"]
    orders = steps_of("orders")
    assert downstream(orders, "extract_lines") == ["extract_lines", "crawl_raw", "cleanse", "publish"]
    diamond = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
    assert downstream(diamond, "a") == ["a", "b", "c", "d"]
    assert downstream(diamond, "c") == ["c", "d"]
    with pytest.raises(ValueError, match="cycle"):
        downstream({"a": ["b"], "b": ["a"]}, "a")


def finished(cloud: FakeCloud, status: RunStatus = RunStatus.SUCCEEDED, manifest: bool = True) -> None:
    uri = "s3://data/manifests/customers-s3-abc.json" if manifest else ""
    given = ExecutionInput(run_id=RUN, trigger=Trigger.S3, ingest_date="2026-12-01", manifest_uri=uri)
    cloud.store.runs[RUN] = RunRecord(
        run_id=RUN, pipeline="customers", status=status, execution_arn="arn:1", input=given.to_json()
    )
    for n, step in enumerate(["extract", "crawl_raw", "cleanse", "check_cleansed", "catalog_cleansed"]):
        cloud.store.steps[StepRef(run_id=RUN, step=step)] = Step(
            run_id=RUN,
            step=step,
            pipeline="customers",
            execution_arn="arn:1",
            kind=StepKind.JOB if n % 2 == 0 else StepKind.CRAWLER,
            resource=step,
            status=StepStatus.SUCCEEDED,
            token=f"t{n}",
            attempt=1,
            opened_at=NOW,
        )
    cloud.bucket.manifests[RUN] = Manifest(run_id=RUN, pipeline="customers", objects=[LANDED])
    cloud.bucket.objects[(LANDED.bucket, LANDED.key)] = LANDED


def statuses(cloud: FakeCloud) -> dict[str, StepStatus]:
    return {ref.step: step.status for ref, step in cloud.store.steps.items()}


def test_a_rerun_supersedes_the_step_and_what_follows_and_starts_the_next_execution() -> None:
    cloud = FakeCloud()
    finished(cloud)
    done = rerun(cloud.plane, RUN, "cleanse", by="arn:aws:iam::1:user/ada", now=NOW)
    assert (done.steps, done.attempt, done.execution_name) == (
        ["cleanse", "check_cleansed", "catalog_cleansed"],
        1,
        f"{RUN}-rerun-1",
    )
    assert statuses(cloud) == {
        "extract": StepStatus.SUCCEEDED,
        "crawl_raw": StepStatus.SUCCEEDED,
        "cleanse": StepStatus.SUPERSEDED,
        "check_cleansed": StepStatus.SUPERSEDED,
        "catalog_cleansed": StepStatus.SUPERSEDED,
    }
    pipeline, started = cloud.workflow.executions[f"{RUN}-rerun-1"]
    assert pipeline == "customers" and started.run_id == RUN and started.ingest_date == "2026-12-01"
    [attempt] = cloud.store.runs[RUN].attempts
    assert (attempt.by, attempt.from_step, attempt.at) == (
        "arn:aws:iam::1:user/ada",
        "cleanse",
        NOW.isoformat(),
    )
    assert done.replaced == [] and cloud.store.claims == {}  # cleanse does not read the manifest
    # Once the rerun ended, a second one is number 2
    cloud.store.runs[RUN] = cloud.store.runs[RUN].model_copy(update={"status": RunStatus.FAILED})
    again = rerun(cloud.plane, RUN, "catalog_cleansed", by="me", now=NOW)
    assert (again.attempt, again.steps) == (2, ["catalog_cleansed"])


def test_a_rerun_from_a_step_that_reads_the_landed_objects_reads_each_at_its_current_version() -> None:
    cloud = FakeCloud()
    finished(cloud)
    corrected = LANDED.model_copy(update={"etag": "e2", "version_id": "v2"})
    cloud.bucket.objects[(LANDED.bucket, LANDED.key)] = corrected
    done = rerun(cloud.plane, RUN, "extract", by="me", now=NOW)
    assert done.replaced == [LANDED.key]
    assert cloud.bucket.manifests[RUN].objects == [corrected]
    assert cloud.store.claims[corrected][0] == RUN  # an arrival of the new version finds it taken


def test_same_versions_reads_what_the_run_read_first() -> None:
    cloud = FakeCloud()
    finished(cloud)
    cloud.bucket.objects[(LANDED.bucket, LANDED.key)] = LANDED.model_copy(update={"version_id": "v2"})
    done = rerun(cloud.plane, RUN, "extract", by="me", now=NOW, latest_versions=False)
    assert done.replaced == [] and cloud.bucket.manifests[RUN].objects == [LANDED]


def test_a_new_version_another_run_processed_is_refused_naming_that_run() -> None:
    cloud = FakeCloud()
    finished(cloud)
    corrected = LANDED.model_copy(update={"etag": "e2", "version_id": "v2"})
    cloud.bucket.objects[(LANDED.bucket, LANDED.key)] = corrected
    cloud.store.claims[corrected] = ("customers-s3-def", NOW)
    with pytest.raises(RerunRefusedError, match=r"processed by run customers-s3-def.*rerun customers-s3-def"):
        rerun(cloud.plane, RUN, "extract", by="me", now=NOW)
    assert cloud.workflow.executions == {} and statuses(cloud)["extract"] is StepStatus.SUCCEEDED


def test_a_deleted_landed_object_is_refused_naming_it() -> None:
    cloud = FakeCloud()
    finished(cloud)
    del cloud.bucket.objects[(LANDED.bucket, LANDED.key)]
    with pytest.raises(RerunRefusedError, match=r"s3://data/landing/customers/a\.csv no longer exists"):
        rerun(cloud.plane, RUN, "extract", by="me", now=NOW)
    assert rerun(cloud.plane, RUN, "cleanse", by="me", now=NOW).steps == [
        "cleanse",
        "check_cleansed",
        "catalog_cleansed",
    ]


@pytest.mark.parametrize(
    ("run_id", "step", "status", "message"),
    [
        ("customers-s3-nope", "cleanse", RunStatus.SUCCEEDED, "no run customers-s3-nope"),
        (RUN, "publish", RunStatus.SUCCEEDED, "has no step publish: rerun from one of"),
        (RUN, "cleanse", RunStatus.RUNNING, "is RUNNING: wait for it to end"),
    ],
)
def test_a_rerun_that_cannot_be_done_is_refused_and_changes_nothing(
    run_id: str, step: str, status: RunStatus, message: str
) -> None:
    cloud = FakeCloud()
    finished(cloud, status)
    with pytest.raises(RerunRefusedError, match=message):
        rerun(cloud.plane, run_id, step, by="me", now=NOW)
    assert cloud.workflow.executions == {} and cloud.store.runs[RUN].attempts == []
    assert set(statuses(cloud).values()) == {StepStatus.SUCCEEDED}


def test_two_reruns_at_once_claim_one_number_the_loser_is_refused() -> None:
    cloud = FakeCloud()
    finished(cloud)
    stale = cloud.store.runs[RUN]
    rerun(cloud.plane, RUN, "cleanse", by="first", now=NOW)
    cloud.store.runs[RUN] = cloud.store.runs[RUN].model_copy(update={"status": RunStatus.SUCCEEDED})
    cloud.store.get_run = lambda run_id: stale  # type: ignore[method-assign]  # read before the first claimed
    with pytest.raises(RerunRefusedError, match="being rerun or resumed by someone else"):
        rerun(cloud.plane, RUN, "cleanse", by="second", now=NOW)
    assert list(cloud.workflow.executions) == [f"{RUN}-rerun-1"]


def test_a_rerun_asked_again_with_its_key_starts_nothing_new() -> None:
    cloud = FakeCloud()
    finished(cloud)
    first = rerun(cloud.plane, RUN, "cleanse", by="backfill", now=NOW, key="bf-1")
    cloud.store.runs[RUN] = cloud.store.runs[RUN].model_copy(update={"status": RunStatus.RUNNING})
    again = rerun(cloud.plane, RUN, "cleanse", by="backfill", now=NOW, key="bf-1")
    assert (again.attempt, again.execution_name) == (first.attempt, first.execution_name)
    assert again.execution_arn is None  # the execution exists: nothing new started
    assert len(cloud.store.runs[RUN].attempts) == 1 and list(cloud.workflow.executions) == [
        first.execution_name
    ]


def test_a_claimed_rerun_asked_again_before_it_ran_finishes_marking_its_steps() -> None:
    """A prepare that stopped after claiming (a Lambda timeout) leaves steps unmarked: asked again with the
    same key, it marks them; once the rerun's execution has run, asking again changes no step."""
    cloud = FakeCloud()
    finished(cloud)
    real = cloud.store.supersede_step
    cloud.store.supersede_step = lambda *a, **k: None  # type: ignore[method-assign]  # lost before marking
    first = prepare(cloud.plane, RUN, "cleanse", by="backfill", now=NOW, key="bf-1")
    assert statuses(cloud)["cleanse"] is StepStatus.SUCCEEDED
    cloud.store.supersede_step = real  # type: ignore[method-assign]
    again = prepare(cloud.plane, RUN, "cleanse", by="backfill", now=NOW, key="bf-1")
    assert again.attempt == first.attempt
    assert statuses(cloud)["cleanse"] is StepStatus.SUPERSEDED
    # The rerun ran (its execution is the run's latest) and its steps succeeded: asked again, they stay so
    execution = f"arn:aws:states:us-east-1:123456789012:execution:stack_customers:{first.attempt.execution}"
    cloud.store.runs[RUN] = cloud.store.runs[RUN].model_copy(update={"execution_arn": execution})
    for ref, step in cloud.store.steps.items():
        cloud.store.steps[ref] = step.model_copy(update={"status": StepStatus.SUCCEEDED})
    prepare(cloud.plane, RUN, "cleanse", by="backfill", now=NOW, key="bf-1")
    assert set(statuses(cloud).values()) == {StepStatus.SUCCEEDED}
