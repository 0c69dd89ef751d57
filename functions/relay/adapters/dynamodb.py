"""The control-plane table (DynamoDB): runs, steps, crawler leases and landed-object claims.

Keys (one table, ``pk``/``sk``; built by ``relay.contract``):
  RUN#<run_id>            RUN             the run (the state machine writes it; close_run ends a failed one)
  RUN#<run_id>            STEP#<step>     a step: token, status, Glue run id, outcome
  CRAWLER#<name>          LEASE           a crawler's owners, waiters and version
  OBJECT#<bucket>/<key>#<etag>#<version>  OBJECT  the run that processes a landed object version (TTL)
Active (OPEN or COMPLETING) steps carry ``active_pk`` so the sparse index ``ActiveSteps`` lists them by
``opened_at`` for the sweeper.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from relay.contract import (
    ACTIVE,
    ACTIVE_INDEX,
    LEASE_PK_PREFIX,
    OBJECT_SK,
    PENDING_CRAWL,
    STEP_SK_PREFIX,
    RunAttempt,
    RunRecord,
    RunStatus,
    lease_key,
    quality_run_key,
    run_key,
    run_pk,
    step_key,
)
from relay.errors import ConditionFailedError
from relay.models import (
    Claim,
    LandedObject,
    Lease,
    LeaseState,
    Outcome,
    Step,
    StepKind,
    StepRef,
    StepRequest,
    StepStatus,
)


def _conditional(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


class ControlTable:
    """StepStore, RunStore, LeaseStore and ObjectLedger over one DynamoDB table (a boto3 ``Table``)."""

    def __init__(self, table: Any, claim_ttl: timedelta = timedelta(days=30)) -> None:
        self._table = table
        self._claim_ttl = claim_ttl

    # --- steps ---

    def open_step(self, request: StepRequest, now: datetime) -> Step:
        values: dict[str, Any] = {
            ":run": request.run_id,
            ":step": request.step,
            ":pipeline": request.pipeline,
            ":execution": request.execution_arn,
            ":kind": request.kind.value,
            ":resource": request.name,
            ":open": StepStatus.OPEN.value,
            ":token": request.token,
            ":now": _iso(now),
            ":active": ACTIVE,
            ":one": 1,
            ":succeeded": StepStatus.SUCCEEDED.value,
        }
        timeout = ""
        if request.timeout_seconds is not None:
            timeout, values[":timeout"] = ", timeout_seconds = :timeout", request.timeout_seconds
        try:
            item = self._table.update_item(
                Key=step_key(request.run_id, request.step),
                UpdateExpression=(
                    "SET run_id = :run, step = :step, pipeline = :pipeline, execution_arn = :execution, "
                    "kind = :kind, #resource = :resource, #status = :open, #token = :token, "
                    f"opened_at = :now, active_pk = :active{timeout} "
                    "REMOVE glue_run_id, outcome_json, closed_at, repaired_by, decided_at, #error, "
                    "crawler, drift_json, quality_json "
                    "ADD attempt :one"
                ),
                # A step that succeeded stays succeeded: a resumed run reuses it instead of running it again.
                ConditionExpression="attribute_not_exists(#status) OR #status <> :succeeded",
                ExpressionAttributeNames={
                    "#resource": "resource",
                    "#status": "status",
                    "#token": "token",
                    "#error": "error",
                },
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as e:
            if not _conditional(e):
                raise
            done = self.get_step(StepRef(run_id=request.run_id, step=request.step))
            if done is None:  # cannot be: the condition failed on an existing item
                raise
            return done
        return self._step(item)

    def get_step(self, ref: StepRef) -> Step | None:
        item = self._table.get_item(Key=step_key(ref.run_id, ref.step), ConsistentRead=True).get("Item")
        return self._step(item) if item else None

    def run_steps(self, run_id: str) -> list[Step]:
        items = self._query(
            KeyConditionExpression=Key("pk").eq(run_pk(run_id)) & Key("sk").begins_with(STEP_SK_PREFIX),
            ConsistentRead=True,
        )
        return [self._step(item) for item in items]

    def _query(self, **kwargs: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = self._table.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # --- runs ---

    def get_run(self, run_id: str) -> RunRecord | None:
        item = self._table.get_item(Key=run_key(run_id), ConsistentRead=True).get("Item")
        return RunRecord.from_item(item) if item else None

    def end_run(
        self,
        run_id: str,
        execution_arn: str,
        status: RunStatus,
        now: datetime,
        *,
        failed_step: str | None,
        error: str,
        cause: str,
    ) -> bool:
        values: dict[str, Any] = {
            ":status": status.value,
            ":running": RunStatus.RUNNING.value,
            ":execution": execution_arn,
            ":ended": _iso(now),
            ":error": error,
            ":cause": cause[:20_000],
        }
        update = "SET #status = :status, ended_at = :ended, #error = :error, cause = :cause"
        if failed_step:
            update += ", failed_step = :step"
            values[":step"] = failed_step
        try:
            self._table.update_item(
                Key=run_key(run_id),
                UpdateExpression=update,
                ConditionExpression="#status = :running AND execution_arn = :execution",
                ExpressionAttributeNames={"#status": "status", "#error": "error"},
                ExpressionAttributeValues=values,
            )
        except ClientError as e:
            if _conditional(e):
                return False
            raise
        return True

    def claim_rerun(self, run_id: str, attempt: RunAttempt, previous: int) -> None:
        try:
            self._table.update_item(
                Key=run_key(run_id),
                UpdateExpression=(
                    "SET reruns = :number, attempts = list_append(if_not_exists(attempts, :none), :attempt)"
                ),
                ConditionExpression=(
                    "attribute_exists(pk) AND (attribute_not_exists(reruns) OR reruns = :previous) "
                    "AND #status <> :running"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":number": attempt.number,
                    ":none": [],
                    ":attempt": [attempt.model_dump()],
                    ":previous": previous,
                    ":running": RunStatus.RUNNING.value,
                },
            )
        except ClientError as e:
            if _conditional(e):
                raise ConditionFailedError(f"run {run_id} was rerun or resumed meanwhile") from e
            raise

    def supersede_step(self, run_id: str, step: str, rerun: int, now: datetime) -> None:
        try:
            self._table.update_item(
                Key=step_key(run_id, step),
                UpdateExpression="SET #status = :superseded, superseded_by = :rerun, superseded_at = :now",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(active_pk)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":superseded": StepStatus.SUPERSEDED.value,
                    ":rerun": rerun,
                    ":now": _iso(now),
                },
            )
        except ClientError as e:
            if not _conditional(e):
                raise
            if self.get_step(StepRef(run_id=run_id, step=step)) is not None:
                raise ConditionFailedError(f"step {run_id}/{step} is still open") from e
            # the run never reached this step: nothing to supersede

    def record_glue_run(self, ref: StepRef, attempt: int, glue_run_id: str) -> None:
        self._update_attempt(ref, attempt, "SET glue_run_id = :id", {":id": glue_run_id})

    def record_fallback(self, ref: StepRef, attempt: int, crawler: str, drift: dict[str, Any]) -> None:
        self._update_attempt(
            ref,
            attempt,
            "SET crawler = :crawler, drift_json = :drift",
            {":crawler": crawler, ":drift": json.dumps(drift)},
        )

    def record_quality_run(
        self, ref: StepRef, attempt: int, evaluation_run_id: str, rules: list[dict[str, Any]]
    ) -> None:
        # The lookup first: an event that finds the step's run id recorded can always find its step too
        self._table.put_item(
            Item={
                **quality_run_key(evaluation_run_id),
                "run_id": ref.run_id,
                "step": ref.step,
                "attempt": attempt,
                "expires_at": int((datetime.now(UTC) + self._claim_ttl).timestamp()),
            }
        )
        self._update_attempt(
            ref,
            attempt,
            "SET glue_run_id = :id, quality_json = :rules",
            {":id": evaluation_run_id, ":rules": json.dumps(rules)},
        )

    def quality_run_step(self, evaluation_run_id: str) -> tuple[StepRef, int] | None:
        item = self._table.get_item(Key=quality_run_key(evaluation_run_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        return StepRef(run_id=item["run_id"], step=item["step"]), int(item["attempt"])

    def mark_start_failed(self, ref: StepRef, attempt: int, error: str, now: datetime) -> None:
        self._update_attempt(
            ref,
            attempt,
            "SET #status = :failed, #error = :error, closed_at = :now REMOVE active_pk",
            {":failed": StepStatus.START_FAILED.value, ":error": error[:2000], ":now": _iso(now)},
            {"#status": "status", "#error": "error"},
        )

    def begin_completion(
        self, step: Step, outcome: Outcome, now: datetime, repaired_by: str | None = None
    ) -> Step:
        values: dict[str, Any] = {
            ":completing": StepStatus.COMPLETING.value,
            ":open": StepStatus.OPEN.value,
            ":token": step.token,
            ":outcome": outcome.model_dump_json(),
            ":now": _iso(now),
        }
        update = "SET #status = :completing, outcome_json = :outcome, decided_at = :now"
        if repaired_by:
            update += ", repaired_by = :repaired_by"
            values[":repaired_by"] = repaired_by
        try:
            item = self._table.update_item(
                Key=step_key(step.run_id, step.step),
                UpdateExpression=update,
                ConditionExpression="#status = :open AND #token = :token",
                ExpressionAttributeNames={"#status": "status", "#token": "token"},
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as e:
            if _conditional(e):
                raise ConditionFailedError(f"step {step.run_id}/{step.step} is no longer open") from e
            raise
        return self._step(item)

    def finish_completion(self, step: Step, status: StepStatus, now: datetime) -> None:
        try:
            self._table.update_item(
                Key=step_key(step.run_id, step.step),
                UpdateExpression="SET #status = :status, closed_at = :now REMOVE active_pk",
                # The token fences the attempt: a completer holding an earlier attempt (a sweep that read
                # the index before the step was opened again) cannot close the current one.
                ConditionExpression="#status = :completing AND #token = :token",
                ExpressionAttributeNames={"#status": "status", "#token": "token"},
                ExpressionAttributeValues={
                    ":status": status.value,
                    ":now": _iso(now),
                    ":completing": StepStatus.COMPLETING.value,
                    ":token": step.token,
                },
            )
        except ClientError as e:
            if not _conditional(e):
                raise
            # Another completer (a racing sweep) closed it first, or the step was opened again: it stands.

    def pending_crawls(self) -> list[str]:
        items = self._query(IndexName=ACTIVE_INDEX, KeyConditionExpression=Key("active_pk").eq(PENDING_CRAWL))
        return [str(item["pk"]).removeprefix(LEASE_PK_PREFIX) for item in items]

    def active_steps(self, opened_before: datetime) -> list[Step]:
        items = self._query(
            IndexName=ACTIVE_INDEX,
            KeyConditionExpression=Key("active_pk").eq(ACTIVE) & Key("opened_at").lt(_iso(opened_before)),
        )
        return [self._step(item) for item in items]

    def _update_attempt(
        self,
        ref: StepRef,
        attempt: int,
        update: str,
        values: dict[str, Any],
        names: dict[str, str] | None = None,
    ) -> None:
        """Update the step only if it is still at ``attempt`` (a later retry owns it otherwise)."""
        try:
            self._table.update_item(
                Key=step_key(ref.run_id, ref.step),
                UpdateExpression=update,
                ConditionExpression="attempt = :attempt",
                ExpressionAttributeValues={**values, ":attempt": attempt},
                **({"ExpressionAttributeNames": names} if names else {}),
            )
        except ClientError as e:
            if _conditional(e):
                raise ConditionFailedError(
                    f"step {ref.run_id}/{ref.step} moved past attempt {attempt}"
                ) from e
            raise

    @staticmethod
    def _step(item: dict[str, Any]) -> Step:
        outcome = item.get("outcome_json")
        return Step(
            run_id=item["run_id"],
            step=item["step"],
            pipeline=item.get("pipeline"),
            execution_arn=item.get("execution_arn"),
            timeout_seconds=int(item["timeout_seconds"]) if "timeout_seconds" in item else None,
            kind=StepKind(item["kind"]),
            resource=item["resource"],
            status=StepStatus(item["status"]),
            token=item["token"],
            attempt=int(item.get("attempt", 1)),
            opened_at=datetime.fromisoformat(item["opened_at"]),
            glue_run_id=item.get("glue_run_id"),
            outcome=Outcome.model_validate(json.loads(outcome)) if outcome else None,
            closed_at=_time(item.get("closed_at")),
            repaired_by=item.get("repaired_by"),
            decided_at=_time(item.get("decided_at")),
            crawler=item.get("crawler"),
            drift=json.loads(item["drift_json"]) if item.get("drift_json") else None,
            quality_rules=json.loads(item["quality_json"]) if item.get("quality_json") else None,
        )

    # --- crawler leases ---

    def get_lease(self, crawler: str) -> Lease:
        item = self._table.get_item(Key=lease_key(crawler), ConsistentRead=True).get("Item")
        if not item:
            return Lease(crawler=crawler)
        return Lease(
            crawler=crawler,
            state=LeaseState(item["state"]),
            owners=[StepRef.decode(v) for v in item.get("owners", [])],
            waiters=[StepRef.decode(v) for v in item.get("waiters", [])],
            crawl_requested_at=_time(item.get("crawl_requested_at")),
            version=int(item["version"]),
        )

    def put_lease(self, lease: Lease, expected_version: int) -> None:
        item: dict[str, Any] = {
            **lease_key(lease.crawler),
            "state": lease.state.value,
            "owners": [ref.encode() for ref in lease.owners],
            "waiters": [ref.encode() for ref in lease.waiters],
            "version": lease.version,
        }
        if lease.crawl_requested_at:
            item["crawl_requested_at"] = _iso(lease.crawl_requested_at)
        if lease.state == LeaseState.PENDING_START:  # in the sparse index, for the sweeper to start it
            item["active_pk"] = PENDING_CRAWL
            item["opened_at"] = _iso(lease.crawl_requested_at or datetime.now(UTC))
        condition = "version = :expected"
        if expected_version == 0:
            condition = "attribute_not_exists(pk) OR version = :expected"
        try:
            self._table.put_item(
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeValues={":expected": expected_version},
            )
        except ClientError as e:
            if _conditional(e):
                raise ConditionFailedError(
                    f"lease of {lease.crawler} changed since version {expected_version}"
                ) from e
            raise

    # --- landed-object claims ---

    @staticmethod
    def _object_key(obj: LandedObject) -> dict[str, str]:
        return {"pk": obj.claim_pk, "sk": OBJECT_SK}

    def claim(self, obj: LandedObject, run_id: str, now: datetime) -> Claim | None:
        # Claims are made from several threads at once (arrivals.CLAIM_CONCURRENCY): through the Table's
        # client, which boto3 documents as thread-safe (a resource is not); that client still takes and
        # gives plain values (the resource registered its (de)serialisation on it).
        client, table = self._table.meta.client, self._table.name
        try:
            client.put_item(
                TableName=table,
                Item={
                    **self._object_key(obj),
                    "run_id": run_id,
                    "uri": obj.uri,
                    "claimed_at": _iso(now),
                    "expires_at": int((now + self._claim_ttl).timestamp()),
                },
                ConditionExpression="attribute_not_exists(pk) OR run_id = :run",
                ExpressionAttributeValues={":run": run_id},
            )
        except ClientError as e:
            if not _conditional(e):
                raise
            item = client.get_item(TableName=table, Key=self._object_key(obj), ConsistentRead=True).get(
                "Item"
            )
            if item is None:  # the holder's claim expired (TTL) between the two calls: claim again
                return self.claim(obj, run_id, now)
            return Claim(run_id=item["run_id"], claimed_at=datetime.fromisoformat(item["claimed_at"]))
        return None

    def take_over(self, obj: LandedObject, from_run: str, to_run: str, now: datetime) -> bool:
        try:
            self._table.update_item(
                Key=self._object_key(obj),
                UpdateExpression="SET run_id = :to, claimed_at = :now",
                ConditionExpression="run_id = :from",
                ExpressionAttributeValues={":to": to_run, ":from": from_run, ":now": _iso(now)},
            )
        except ClientError as e:
            if _conditional(e):
                return False
            raise
        return True
