"""Landed objects → runs: routed by prefix to their pipelines, deterministic ids, each object in one run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.contract import (
    Catalog,
    CatalogPipeline,
    ParamSpec,
    S3Trigger,
    Trigger,
    arrival_run_id,
)
from relay.logic.arrivals import ArrivalResult, route, start_run_for, start_runs
from relay.models import LandedObject

from tests.fakes import FakeCloud

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORPHAN_AFTER = timedelta(minutes=15)
CUSTOMERS = CatalogPipeline(
    name="customers",
    s3=S3Trigger(prefix="landing/customers/", batch_size=2),
    params={"source": ParamSpec(default="s3"), "limit": ParamSpec(type="int", default=5)},
)
ORDERS = CatalogPipeline(name="orders", s3=S3Trigger(prefix="landing/orders/"))
CATALOG = Catalog(pipelines={"customers": CUSTOMERS, "orders": ORDERS})


def landed(n: int, folder: str = "customers") -> LandedObject:
    return LandedObject(bucket="data", key=f"landing/{folder}/f{n}.csv", etag=f"etag{n}")


def arrive(cloud: FakeCloud, objects: list[LandedObject], at: datetime = T0) -> ArrivalResult:
    return start_run_for(
        CUSTOMERS, objects, cloud.plane, at, ingest_date="2026-01-01", orphan_after=ORPHAN_AFTER
    )


def test_the_run_id_depends_on_the_pipeline_and_the_objects_not_their_order() -> None:
    assert arrival_run_id("customers", [landed(1), landed(2)]) == arrival_run_id(
        "customers", [landed(2), landed(1)]
    )
    assert arrival_run_id("customers", [landed(1)]) != arrival_run_id("customers", [landed(1), landed(2)])
    assert arrival_run_id("customers", [landed(1)]) != arrival_run_id("orders", [landed(1)])
    other_version = landed(1).model_copy(update={"version_id": "v2"})
    assert arrival_run_id("customers", [landed(1)]) != arrival_run_id("customers", [other_version])
    assert arrival_run_id("customers", [landed(1)]).startswith("customers-s3-")


def test_objects_go_to_the_pipeline_of_their_prefix_and_the_rest_is_left_alone() -> None:
    stray = LandedObject(bucket="data", key="landing/elsewhere/x.csv", etag="e")
    folder = LandedObject(
        bucket="data", key="landing/customers/new folder/", etag="d41d8cd98f00b204e9800998ecf8427e"
    )
    routed = route([landed(1), landed(2, "orders"), stray, folder, landed(1)], CATALOG)
    assert routed.by_pipeline == {"customers": [landed(1)], "orders": [landed(2, "orders")]}
    assert (routed.unrouted, routed.folders) == ([stray], [folder])


def test_a_pipelines_share_is_split_into_runs_of_its_batch_size() -> None:
    cloud = FakeCloud()
    results = start_runs(
        CUSTOMERS,
        [landed(n) for n in range(5)],
        cloud.plane,
        T0,
        ingest_date="2026-01-01",
        orphan_after=ORPHAN_AFTER,
    )
    assert [len(r.objects) for r in results] == [2, 2, 1]
    assert all(r.started for r in results) and len(cloud.workflow.executions) == 3


def test_a_batch_starts_one_run_with_a_manifest_and_the_pipelines_default_parameters() -> None:
    cloud = FakeCloud()
    result = arrive(cloud, [landed(1), landed(2), landed(1)])  # the same event twice in one batch
    assert result.started and result.run_id
    manifest = cloud.bucket.manifests[result.run_id]
    assert (manifest.pipeline, manifest.uris) == (
        "customers",
        ["s3://data/landing/customers/f1.csv", "s3://data/landing/customers/f2.csv"],
    )
    pipeline, execution_input = cloud.workflow.executions[result.run_id]
    assert pipeline == "customers"
    assert execution_input.model_dump() == {
        "run_id": result.run_id,
        "trigger": Trigger.S3,
        "ingest_date": "2026-01-01",
        "manifest_uri": f"s3://bucket/manifests/{result.run_id}.json",
        "params": {"source": "s3", "limit": 5},
    }


def test_a_duplicate_event_in_a_later_batch_starts_nothing() -> None:
    cloud = FakeCloud()
    first = arrive(cloud, [landed(1)])
    later = arrive(cloud, [landed(1), landed(2)], T0 + timedelta(minutes=1))
    assert later.duplicates == [landed(1)]
    assert cloud.bucket.manifests[later.run_id or ""].uris == ["s3://data/landing/customers/f2.csv"]
    # Alone, the duplicate names the first run again: that run exists, so nothing starts
    alone = arrive(cloud, [landed(1)], T0 + timedelta(minutes=2))
    assert (alone.run_id, alone.started) == (first.run_id, False)
    assert len(cloud.workflow.executions) == 2


def test_a_redelivered_batch_finds_its_run_started() -> None:
    cloud = FakeCloud()
    arrive(cloud, [landed(1)])
    again = arrive(cloud, [landed(1)], T0 + timedelta(minutes=1))
    assert (again.started, again.objects, again.retry) == (False, [landed(1)], [])
    assert len(cloud.workflow.executions) == 1


def test_a_claim_whose_run_never_started_is_taken_over_only_when_old() -> None:
    # Given an object claimed by a run that never started (its invocation died)
    cloud = FakeCloud()
    cloud.store.claim(landed(1), "customers-s3-dead", T0)
    young = arrive(cloud, [landed(1)], T0 + timedelta(minutes=1))
    assert (young.started, young.retry) == (False, [landed(1)])
    old = arrive(cloud, [landed(1)], T0 + timedelta(minutes=20))
    assert old.started and old.objects == [landed(1)]
    assert cloud.store.claims[landed(1)][0] == old.run_id
