"""Landed objects → runs: deterministic run ids, each object in exactly one run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.logic.arrivals import ArrivalResult, run_id_for, start_run_for
from relay.models import LandedObject

from tests.fakes import FakeCloud

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORPHAN_AFTER = timedelta(minutes=15)


def landed(n: int) -> LandedObject:
    return LandedObject(bucket="data", key=f"landing/f{n}.csv", etag=f"etag{n}")


def arrive(cloud: FakeCloud, objects: list[LandedObject], at: datetime = T0) -> ArrivalResult:
    return start_run_for(
        objects,
        cloud.plane,
        at,
        ingest_date="2026-01-01",
        orphan_after=ORPHAN_AFTER,
    )


def test_the_run_id_depends_on_the_objects_not_their_order() -> None:
    assert run_id_for([landed(1), landed(2)]) == run_id_for([landed(2), landed(1)])
    assert run_id_for([landed(1)]) != run_id_for([landed(1), landed(2)])
    other_version = LandedObject(bucket="data", key="landing/f1.csv", etag="changed")
    assert run_id_for([landed(1)]) != run_id_for([other_version])


def test_a_batch_starts_one_run_with_a_manifest_of_its_objects() -> None:
    cloud = FakeCloud()
    result = arrive(cloud, [landed(1), landed(2), landed(1)])  # the same event twice in one batch
    assert result.started
    assert cloud.bucket.manifests[result.run_id or ""] == [
        "s3://data/landing/f1.csv",
        "s3://data/landing/f2.csv",
    ]
    run_input = cloud.workflow.executions[result.run_id or ""]
    assert run_input["extract_arguments"] == {
        "--source": "s3",
        "--manifest_uri": f"s3://bucket/manifests/{result.run_id}.json",
        "--ingest_date": "2026-01-01",
    }
    assert run_input["cleanse_arguments"] == {"--ingest_date": "2026-01-01"}


def test_a_duplicate_event_in_a_later_batch_starts_nothing() -> None:
    cloud = FakeCloud()
    first = arrive(cloud, [landed(1)])
    later = arrive(cloud, [landed(1), landed(2)], T0 + timedelta(minutes=1))
    assert later.duplicates == [landed(1)]
    assert cloud.bucket.manifests[later.run_id or ""] == ["s3://data/landing/f2.csv"]
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
    cloud.store.claim(landed(1), "s3-dead", T0)
    young = arrive(cloud, [landed(1)], T0 + timedelta(minutes=1))
    assert (young.started, young.retry) == (False, [landed(1)])
    old = arrive(cloud, [landed(1)], T0 + timedelta(minutes=20))
    assert old.started and old.objects == [landed(1)]
    assert cloud.store.claims[landed(1)][0] == old.run_id
