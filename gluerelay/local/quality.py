"""The local Glue Data Quality service: rulesets, ruleset evaluation runs evaluated on DuckDB, their results,
and the event Glue Data Quality sends when results are available.

moto has no Data Quality APIs: this module adds them to moto's Glue endpoint, so every caller (start_step's
worker, the sweeper, the CLI, tests) reaches them through boto3 as on AWS:
CreateDataQualityRuleset, UpdateDataQualityRuleset, GetDataQualityRuleset,
StartDataQualityRulesetEvaluationRun (ClientToken idempotent), GetDataQualityRulesetEvaluationRun and
GetDataQualityResult. An evaluation run reads the Glue table's partitions its push-down predicate selects
(`AdditionalOptions.pushDownPredicate`, equalities joined by AND), evaluates each rule of the DQDL subset
(gluerelay.quality.dqdl) and ends SUCCEEDED with one result per ruleset, then publishes "Data Quality
Evaluation Results Available" (source aws.glue-dataquality). A ruleset holding a rule outside the subset, or
a table that cannot be read, ends the run FAILED with its ErrorString, as Glue's own failures do.
"""

from __future__ import annotations

import json
import re
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from moto.glue import exceptions as glue_exceptions
from moto.glue import responses as glue_responses

from gluerelay.local.clock import Clock
from gluerelay.quality.dqdl import RuleError, evaluate, parse, rules_of

SOURCE = "aws.glue-dataquality"
DETAIL_TYPE = "Data Quality Evaluation Results Available"
OPERATIONS = (
    "create_data_quality_ruleset",
    "update_data_quality_ruleset",
    "get_data_quality_ruleset",
    "start_data_quality_ruleset_evaluation_run",
    "get_data_quality_ruleset_evaluation_run",
    "get_data_quality_result",
)
_EQUALITY = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'((?:[^']|'')*)'\s*$")


class EvaluationError(RuntimeError):
    """Why an evaluation run cannot evaluate (its ErrorString)."""


@dataclass
class LocalDataQuality:
    publish: Any  # (source, detail-type, detail)
    s3: Any  # an in-process boto3 S3 client
    glue: Any  # an in-process boto3 Glue client (the catalog)
    account: str
    clock: Clock = field(default_factory=Clock)
    min_evaluation_seconds: float = 0.0  # an evaluation run lasts at least this long on the clock
    rulesets: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def install(self) -> None:
        for operation in OPERATIONS:
            setattr(glue_responses.GlueResponse, operation, self._response(operation))

    def uninstall(self) -> None:
        for operation in OPERATIONS:
            if operation in vars(glue_responses.GlueResponse):
                delattr(glue_responses.GlueResponse, operation)

    def idle(self, timeout: float) -> bool:
        for thread in list(self._threads):
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _response(self, operation: str) -> Any:
        handler = getattr(self, "_" + operation)

        def respond(response: Any) -> str:
            return json.dumps(handler(response._get_param), default=_json)

        return respond

    # ------------------------------------------------------------------ rulesets

    def _create_data_quality_ruleset(self, param: Any) -> dict[str, Any]:
        name = param("Name")
        self._check_ruleset(param("Ruleset"))
        with self._lock:
            if name in self.rulesets:
                raise glue_exceptions.AlreadyExistsException(f"Ruleset {name} already exists")
            now = datetime.now(UTC)
            self.rulesets[name] = {
                "Name": name,
                "Ruleset": param("Ruleset"),
                "Description": param("Description") or "",
                **({"TargetTable": param("TargetTable")} if param("TargetTable") else {}),
                "CreatedOn": now,
                "LastModifiedOn": now,
            }
        return {"Name": name}

    def _update_data_quality_ruleset(self, param: Any) -> dict[str, Any]:
        name = param("Name")
        with self._lock:
            found = self._ruleset(name)
            if param("Ruleset") is not None:
                self._check_ruleset(param("Ruleset"))
                found["Ruleset"] = param("Ruleset")
            if param("Description") is not None:
                found["Description"] = param("Description")
            found["LastModifiedOn"] = datetime.now(UTC)
        return {"Name": name, "Ruleset": found["Ruleset"], "Description": found["Description"]}

    def _get_data_quality_ruleset(self, param: Any) -> dict[str, Any]:
        with self._lock:
            return dict(self._ruleset(param("Name")))

    def _ruleset(self, name: str) -> dict[str, Any]:
        if name not in self.rulesets:
            raise glue_exceptions.EntityNotFoundException(
                f"Cannot find Data Quality Ruleset with name {name}"
            )
        return self.rulesets[name]

    @staticmethod
    def _check_ruleset(document: str | None) -> None:
        # Glue parses the DQDL on create and update: a document that is not `Rules = [...]` is refused
        try:
            rules_of(document or "")
        except RuleError as e:
            raise glue_exceptions.InvalidInputException("UpdateDataQualityRuleset", str(e)) from e

    # ------------------------------------------------------------------ evaluation runs

    def _start_data_quality_ruleset_evaluation_run(self, param: Any) -> dict[str, Any]:
        names = list(param("RulesetNames") or [])
        source = (param("DataSource") or {}).get("GlueTable")
        if not names or not source or not param("Role"):
            raise glue_exceptions.InvalidInputException(
                "StartDataQualityRulesetEvaluationRun",
                "DataSource.GlueTable, Role and RulesetNames are required",
            )
        token = param("ClientToken")
        with self._lock:
            if token and token in self._tokens:
                return {"RunId": self._tokens[token]}  # the same request again: the same run
            for name in names:
                self._ruleset(name)
            run_id = "dqrun-" + uuid.uuid4().hex
            self.runs[run_id] = {
                "RunId": run_id,
                "DataSource": {"GlueTable": source},
                "Role": param("Role"),
                "RulesetNames": names,
                "Status": "RUNNING",
                "StartedOn": datetime.now(UTC),
                "LastModifiedOn": datetime.now(UTC),
                "NumberOfWorkers": param("NumberOfWorkers") or 5,
                "Timeout": param("Timeout") or 2880,
                **(
                    {"AdditionalRunOptions": param("AdditionalRunOptions")}
                    if param("AdditionalRunOptions")
                    else {}
                ),
            }
            if token:
                self._tokens[token] = run_id
        thread = threading.Thread(target=self._evaluate_run, args=(run_id,), daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()
        return {"RunId": run_id}

    def _get_data_quality_ruleset_evaluation_run(self, param: Any) -> dict[str, Any]:
        with self._lock:
            run = self.runs.get(param("RunId"))
            if run is None:
                raise glue_exceptions.EntityNotFoundException(f"Cannot find evaluation run {param('RunId')}")
            return dict(run)

    def _get_data_quality_result(self, param: Any) -> dict[str, Any]:
        with self._lock:
            result = self.results.get(param("ResultId"))
            if result is None:
                raise glue_exceptions.EntityNotFoundException(f"Cannot find result {param('ResultId')}")
            return dict(result)

    def _evaluate_run(self, run_id: str) -> None:
        started = self.clock.now()
        run = self.runs[run_id]
        source = run["DataSource"]["GlueTable"]
        results: list[dict[str, Any]] = []
        error: str | None = None
        try:
            with tempfile.TemporaryDirectory(prefix="gluerelay-dq-") as scratch:
                connection = duckdb.connect()
                try:
                    self._load(connection, source, Path(scratch))
                    for name in run["RulesetNames"]:
                        results.append(self._result(run_id, name, connection, source))
                finally:
                    connection.close()
        except (EvaluationError, RuleError, duckdb.Error) as e:
            error = str(e)
        self.clock.sleep(self.min_evaluation_seconds - (self.clock.now() - started))
        with self._lock:
            for result in results:
                self.results[result["ResultId"]] = result
            run.update(
                {
                    "Status": "FAILED" if error else "SUCCEEDED",
                    "CompletedOn": datetime.now(UTC),
                    "LastModifiedOn": datetime.now(UTC),
                    "ExecutionTime": max(1, round(self.clock.now() - started)),
                    "ResultIds": [r["ResultId"] for r in results],
                    **({"ErrorString": error} if error else {}),
                }
            )
        self._announce(run, results, error)

    def _load(self, connection: duckdb.DuckDBPyConnection, source: dict[str, Any], scratch: Path) -> None:
        """The rows the run evaluates (the partitions its push-down predicate selects), as view `data`."""
        database, table = source["DatabaseName"], source["TableName"]
        try:
            found = self.glue.get_table(DatabaseName=database, Name=table)["Table"]
        except self.glue.exceptions.EntityNotFoundException as e:
            raise EvaluationError(f"Table {database}.{table} not found") from e
        keys = [k["Name"] for k in found.get("PartitionKeys", [])]
        wanted = _predicate(source.get("AdditionalOptions", {}).get("pushDownPredicate", ""), keys)
        if keys:
            pages = self.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table)
            locations = [
                p["StorageDescriptor"]["Location"]
                for page in pages
                for p in page["Partitions"]
                if all(dict(zip(keys, p["Values"], strict=True)).get(k) == v for k, v in wanted.items())
            ]
        else:
            locations = [found["StorageDescriptor"]["Location"]]
        classification = found.get("Parameters", {}).get("classification", "parquet")
        files = [path for location in locations for path in self._download(location, scratch, classification)]
        if not files:
            selected = source.get("AdditionalOptions", {}).get("pushDownPredicate") or "the whole table"
            raise EvaluationError(f"No data in {database}.{table} for {selected}")
        listed = ", ".join(f"'{f}'" for f in files)
        reader = {
            "parquet": f"read_parquet([{listed}], union_by_name = true)",
            "csv": f"read_csv([{listed}], header = true, all_varchar = true, union_by_name = true)",
            "json": f"read_json_auto([{listed}], union_by_name = true)",
        }.get(classification)
        if reader is None:
            raise EvaluationError(
                f"{database}.{table}: classification {classification!r} is not read locally"
            )
        connection.execute(f"CREATE VIEW data AS SELECT * FROM {reader}")

    def _download(self, location: str, scratch: Path, classification: str) -> list[str]:
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        suffix = {"parquet": ".parquet", "csv": ".csv", "json": ".json"}.get(classification, "")
        files: list[str] = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                name = key.rsplit("/", 1)[-1]
                if obj["Size"] == 0 or name.startswith(("_", ".")) or not name.endswith(suffix):
                    continue
                target = scratch / f"{len(files)}{suffix}"
                target.write_bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                files.append(str(target))
        return files

    def _result(
        self, run_id: str, name: str, connection: duckdb.DuckDBPyConnection, source: dict[str, Any]
    ) -> dict[str, Any]:
        rules = rules_of(self.rulesets[name]["Ruleset"])
        judged = [evaluate(parse(rule), connection, "data") for rule in rules]
        passed = sum(1 for j in judged if j.passed)
        return {
            "ResultId": "dqresult-" + uuid.uuid4().hex,
            "Score": passed / len(judged) if judged else 1.0,
            "DataSource": {"GlueTable": source},
            "RulesetName": name,
            "RulesetEvaluationRunId": run_id,
            "StartedOn": self.runs[run_id]["StartedOn"],
            "CompletedOn": datetime.now(UTC),
            "RuleResults": [j.result(index) for index, j in enumerate(judged)],
        }

    def _announce(self, run: dict[str, Any], results: list[dict[str, Any]], error: str | None) -> None:
        source = run["DataSource"]["GlueTable"]
        rule_results = [r for result in results for r in result["RuleResults"]]
        failed = sum(1 for r in rule_results if r["Result"] == "FAIL")
        detail = {
            "context": {
                "contextType": "GLUE_DATA_CATALOG",
                "runId": run["RunId"],
                "databaseName": source["DatabaseName"],
                "tableName": source["TableName"],
                "catalogId": self.account,
            },
            "resultId": results[0]["ResultId"] if results else None,
            "rulesetNames": run["RulesetNames"],
            "state": "FAILED" if error or failed else "SUCCEEDED",
            "score": results[0]["Score"] if results else 0.0,
            "numRulesSucceeded": sum(1 for r in rule_results if r["Result"] == "PASS"),
            "numRulesFailed": failed,
            "numRulesSkipped": 0,
        }
        self.publish(SOURCE, DETAIL_TYPE, {k: v for k, v in detail.items() if v is not None})


def _predicate(text: str, keys: list[str]) -> dict[str, str]:
    """`key = 'value' AND ...` as {key: value}; EvaluationError for what the local service does not read."""
    wanted: dict[str, str] = {}
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE) if text.strip() else []:
        found = _EQUALITY.match(part)
        if not found or found.group(1) not in keys:
            raise EvaluationError(
                f"pushDownPredicate {text!r}: the local service reads equalities on partition keys "
                f"({', '.join(keys) or 'none'}) joined by AND"
            )
        wanted[found.group(1)] = found.group(2).replace("''", "'")
    return wanted


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON")
