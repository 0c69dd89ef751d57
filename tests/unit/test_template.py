"""The SAM template and every pipeline's state machine: wiring and least privilege, checked as data."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import relay.errors
from relay.contract import ACTIVE_INDEX, RUN_INDEX_FIELDS, RUNS_INDEX

from gluerelay.pipelines.asl import RECORD_STARTED
from gluerelay.pipelines.asl import SUBSTITUTIONS as NEEDED
from gluerelay.pipelines.backfill import SUBSTITUTIONS as BACKFILL_NEEDED
from gluerelay.pipelines.project import BLOCK_SUBSTITUTIONS
from tests.template import (
    ROOT,
    SUBSTITUTIONS,
    all_states,
    backfill_machine,
    definition,
    load_template,
    state_machines,
)

# Where IAM has nothing narrower than "*" (each has a comment in the template saying why).
STAR_RESOURCES_ALLOWED = {
    "logs:CreateLogDelivery",  # log delivery actions: no resource-level permissions
    "xray:PutTraceSegments",
    "cloudwatch:PutMetricData",  # scoped by the cloudwatch:namespace condition instead
    "ec2:DescribeSubnets",  # Glue's network interfaces for the JDBC source
    "ec2:CreateNetworkInterface",
}


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, res in template["Resources"].items():
        properties = res.get("Properties", {})
        documents = [
            *[p for p in properties.get("Policies", []) if isinstance(p, dict)],
            *([properties] if "PolicyDocument" in properties else []),
        ]
        for policy in documents:
            document = policy.get("PolicyDocument", policy)
            for statement in document.get("Statement", []) if isinstance(document, dict) else []:
                # A conditional statement (Fn::If) is checked as the statement it would be.
                found += [(name, s) for s in statement.get("Fn::If", [None, statement])[1:] if "Effect" in s]
    return found


def actions(statement: dict[str, Any]) -> list[str]:
    given = statement["Action"]
    return given if isinstance(given, list) else [given]


def test_no_policy_grants_wildcard_actions() -> None:
    for name, statement in statements(load_template()):
        if statement.get("Effect") == "Deny":
            continue
        assert all("*" not in action for action in actions(statement)), f"{name}: {actions(statement)}"


def test_resource_star_is_granted_only_where_iam_has_nothing_narrower() -> None:
    for name, statement in statements(load_template()):
        if statement.get("Effect") == "Allow" and statement.get("Resource") == "*":
            assert set(actions(statement)) & STAR_RESOURCES_ALLOWED, f"{name}: {actions(statement)} on *"


def test_policy_documents_of_managed_policies_are_checked_too() -> None:
    checked = {name for name, _ in statements(load_template())}
    assert {
        "SourceAccessPolicy",
        "GlueStepsReadPolicy",
        "GlueJobControlPolicy",
        "StartStepFunction",
    } <= checked


def test_every_stack_owned_glue_job_and_crawler_is_named_under_the_stack_prefix() -> None:
    # IAM and the Glue event rules cover "<stack>_*": a job named otherwise could be started by nothing.
    for name, res in load_template()["Resources"].items():
        if (
            res["Type"] in {"AWS::Glue::Job", "AWS::Glue::Crawler"}
            and res.get("Condition") != "HasJdbcSource"
        ):
            assert res["Properties"]["Name"]["Fn::Sub"].startswith("${AWS::StackName}_"), name


def test_glue_never_retries_a_stack_owned_job_by_itself() -> None:
    # A step's retries are the pipeline file's `retry:` (each a new attempt, visible in the run); Glue's own
    # MaxRetries would start a second run that no attempt records. (External jobs' retries are followed.)
    jobs = {n: r for n, r in load_template()["Resources"].items() if r["Type"] == "AWS::Glue::Job"}
    assert jobs
    assert {n: r["Properties"].get("MaxRetries") for n, r in jobs.items()} == dict.fromkeys(jobs, 0)


def test_the_jdbc_source_reads_its_credentials_from_secrets_manager_only() -> None:
    template = load_template()
    resources = template["Resources"]
    properties = resources["SourceConnection"]["Properties"]["ConnectionInput"]["ConnectionProperties"]
    assert properties["SECRET_ID"] == {"Ref": "SourceSecretArn"}
    assert not {"USERNAME", "PASSWORD"} & set(properties)
    for name in ("SourceConnection", "SourceAccessPolicy", "SourceCrawlerRole", "SourceCrawler"):
        assert resources[name]["Condition"] == "HasJdbcSource", name
    assert template["Parameters"]["SourceSecretArn"]["Default"] == ""
    required = template["Rules"]["JdbcSourceIsComplete"]["Assertions"]
    assert {a["Assert"]["Fn::Not"][0]["Fn::Equals"][0]["Ref"] for a in required} == {
        "SourceSecretArn",
        "SourceSubnetId",
        "SourceSecurityGroupId",
        "SourceAvailabilityZone",
    }


def test_a_source_secret_under_a_customer_managed_key_can_be_read_through_secrets_manager_only() -> None:
    """With SourceSecretKmsKeyArn set, the Glue roles may decrypt with that key, and only when Secrets
    Manager asks on their behalf; without it, no KMS statement at all."""
    template = load_template()
    assert template["Conditions"]["HasSourceSecretKey"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SourceSecretKmsKeyArn"}, ""]}]
    }
    statements = template["Resources"]["SourceAccessPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    [conditional] = [s["Fn::If"] for s in statements if "Fn::If" in s]
    condition, statement, otherwise = conditional
    assert (condition, otherwise) == ("HasSourceSecretKey", {"Ref": "AWS::NoValue"})
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == {"Ref": "SourceSecretKmsKeyArn"}
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}}
    }


def test_every_function_handler_exists() -> None:
    functions = {
        name: res["Properties"]
        for name, res in load_template()["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
    assert set(functions) == {
        "StartStepFunction",
        "OnGlueEventFunction",
        "OnArrivalFunction",
        "SweeperFunction",
        "CloseRunFunction",
        "PipelineClockFunction",
        "PrepareRerunFunction",
    }
    for name, properties in functions.items():
        module, _, attribute = properties["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_every_state_machine_is_a_pipeline_block_with_exactly_the_substitutions_its_definition_uses() -> None:
    machines = state_machines()
    assert {"CustomersPipeline", "OrdersPipeline"} <= set(machines)
    for name, properties in machines.items():
        assert set(properties["DefinitionSubstitutions"]) == set(NEEDED) == set(BLOCK_SUBSTITUTIONS), name
        definition(ROOT / properties["DefinitionUri"])  # every placeholder resolves and the result is JSON


def definitions() -> list[tuple[str, dict[str, Any]]]:
    return [(name, definition(ROOT / p["DefinitionUri"])) for name, p in state_machines().items()]


def ends_in_fail(states: dict[str, Any], start: str) -> bool:
    """Whether every way on from `start` ends in a Fail state (through Retry-free Next and Catch alike)."""
    state = states[start]
    if state["Type"] == "Fail":
        return True
    if state["Type"] == "Succeed" or state.get("End"):
        return False
    following = [state["Next"]] if "Next" in state else []
    following += [c["Next"] for c in state.get("Choices", [])] + (
        [state["Default"]] if "Default" in state else []
    )
    following += [c["Next"] for c in state.get("Catch", [])]
    return bool(following) and all(ends_in_fail(states, f) for f in following)


@pytest.mark.parametrize(("machine", "parsed"), definitions())
def test_every_step_in_every_branch_is_a_bounded_callback_whose_failure_fails_the_run(
    machine: str, parsed: dict[str, Any]
) -> None:
    tasks = [
        (name, state, scope)
        for name, state, scope in all_states(parsed["States"])
        if state.get("Resource", "").endswith("waitForTaskToken")
    ]
    assert tasks, machine
    for name, state, scope in tasks:
        payload = state["Parameters"]["Payload"]
        assert payload["step"] == name, f"{machine}: the state is named by its step id"
        assert isinstance(state["TimeoutSeconds"], int) and state["TimeoutSeconds"] > 0, name
        assert payload["token.$"] == "$$.Task.Token", name
        [catch] = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        assert catch["ResultPath"] == f"$.failed.{name}", f"{name}: the failure carries its step id"
        assert ends_in_fail(scope, catch["Next"]), f"{name}: a failure must end in a Fail state"
    for name, state, scope in all_states(parsed["States"]):
        if state["Type"] == "Parallel":
            [catch] = state["Catch"]
            assert (catch["ErrorEquals"], catch["ResultPath"]) == (["States.ALL"], "$.failed.branches"), name
            assert ends_in_fail(scope, catch["Next"]), name
        if state["Type"] == "Choice":
            assert "Default" in state, name
    assert parsed["States"][parsed["StartAt"]]["Resource"].endswith("dynamodb:updateItem")


@pytest.mark.parametrize(("machine", "parsed"), definitions())
def test_retried_error_names_are_the_lambda_error_types_we_raise(
    machine: str, parsed: dict[str, Any]
) -> None:
    # A Lambda error's type is the exception's class name: every retried name that is not a Step
    # Functions, Lambda, DynamoDB or Glue-outcome name must be one of our exceptions, or the Retry never
    # matches.
    ours = {
        name
        for _, state, _ in all_states(parsed["States"])
        for retry in state.get("Retry", [])
        for name in retry["ErrorEquals"]
        if not name.startswith(("States.", "Lambda.", "DynamoDB.", "Glue"))
    }
    assert ours == {"ConcurrentRunsExceededException", "ConditionFailedError"}, machine
    for name in ours:
        assert issubclass(getattr(relay.errors, name), relay.errors.RelayError), name


def test_the_test_substitutions_cover_what_a_definition_needs() -> None:
    assert set(SUBSTITUTIONS) == set(NEEDED) | set(BACKFILL_NEEDED)


def test_the_backfill_machine_bounds_its_reruns_and_never_fails_on_one() -> None:
    """Its block passes exactly what its definition uses; it is not named like a pipeline (so close_run's
    rule and `runs list` never take it for one); an iteration waits for its rerun (what bounds how many run
    at once) and every way out of an iteration ends it without failing the backfill."""
    properties = backfill_machine()
    assert set(properties["DefinitionSubstitutions"]) == set(BACKFILL_NEEDED)
    assert properties["Name"] == {"Fn::Sub": "${AWS::StackName}-backfill"}
    parsed = definition(ROOT / properties["DefinitionUri"])
    [(_, mapped, _)] = [s for s in all_states(parsed["States"]) if s[1]["Type"] == "Map"]
    assert mapped["MaxConcurrencyPath"] == "$.max_concurrent" and mapped["ResultPath"] is None
    iteration = mapped["ItemProcessor"]["States"]
    waits = [s for s in iteration.values() if s.get("Resource", "").endswith("states:startExecution.sync:2")]
    assert len(waits) == 1
    assert waits[0]["Parameters"]["StateMachineArn.$"].startswith(
        "States.Format('" + SUBSTITUTIONS["StateMachineArnPrefix"]
    )
    for name, state in iteration.items():
        assert state["Type"] != "Fail", name
        if state.get("End"):
            assert state["Type"] == "Pass", f"{name}: an iteration ends in a named outcome"
    retried = {n for s in iteration.values() for r in s.get("Retry", []) for n in r["ErrorEquals"]}
    ours = {n for n in retried if not n.startswith(("States.", "Lambda.", "DynamoDB."))}
    assert ours == {"ConditionFailedError"}
    role = load_template()["Resources"]["BackfillRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    starts = [s for s in role["Statement"] if "states:StartExecution" in str(s["Action"])]
    pipelines = (
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}_*"
    )
    assert [s["Resource"] for s in starts] == [{"Fn::Sub": pipelines}]


def test_every_queue_topic_and_bucket_policy_refuses_requests_without_tls() -> None:
    template = load_template()
    kinds = {"AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy", "AWS::S3::BucketPolicy"}
    policies = {n: r for n, r in template["Resources"].items() if r["Type"] in kinds}
    assert len(policies) == 4
    for name, res in policies.items():
        denies = [
            s
            for s in res["Properties"]["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        assert denies, f"{name} does not deny requests without TLS"


def test_only_this_stacks_glue_event_rules_may_dead_letter_into_its_queue() -> None:
    policy = load_template()["Resources"]["GlueEventsDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]
    [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    sources = allow["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sources == [
        {"Fn::GetAtt": ["OnGlueEventFunctionJobStateChange", "Arn"]},
        {"Fn::GetAtt": ["OnGlueEventFunctionCrawlerStateChange", "Arn"]},
    ]


def test_the_run_index_is_the_one_the_contract_and_the_state_machines_write() -> None:
    """The `Runs` index: its keys are what the run's first state writes, it projects exactly what a listing
    reads, and it is the only index this release adds (CloudFormation adds one per stack update)."""
    table = load_template()["Resources"]["ControlTable"]["Properties"]
    indexes = {i["IndexName"]: i for i in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {ACTIVE_INDEX, RUNS_INDEX}
    runs = indexes[RUNS_INDEX]
    assert [k["AttributeName"] for k in runs["KeySchema"]] == ["runs_pk", "run_sort"]
    assert runs["Projection"] == {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(RUN_INDEX_FIELDS)}
    for machine in state_machines().values():
        started = definition(ROOT / machine["DefinitionUri"])["States"][RECORD_STARTED]
        update = started["Parameters"]["UpdateExpression"]
        assert "runs_pk = :runs" in update and "run_sort = if_not_exists(run_sort, :sort)" in update


def test_catalog_steps_may_write_tables_of_the_stacks_database_only() -> None:
    catalog_actions = {
        "glue:CreateTable",
        "glue:UpdateTable",
        "glue:BatchCreatePartition",
        "glue:BatchUpdatePartition",
    }
    template = load_template()
    functions = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    granted = [
        (name, statement)
        for name, statement in statements(template)
        if name in functions
        and statement.get("Effect") == "Allow"
        and set(actions(statement)) & catalog_actions
    ]
    # Of the functions, start_step alone (crawlers write tables through their own roles)
    assert [name for name, _ in granted] == ["StartStepFunction"]
    [(_, statement)] = granted
    assert set(actions(statement)) == {
        "glue:GetTable",
        "glue:CreateTable",
        "glue:BatchCreatePartition",
        "glue:BatchUpdatePartition",
    }
    # Glue authorises a Data Catalog call on the catalog, the database and the table: the stack's only
    assert [r["Fn::Sub"].rsplit(":", 1)[1] for r in statement["Resource"]] == [
        "catalog",
        "database/${CatalogDatabase}",
        "table/${CatalogDatabase}/*",
    ]


def test_the_functions_that_read_job_summaries_may_read_them_and_nothing_else_of_the_bucket() -> None:
    template = load_template()
    readers = {
        name
        for name, statement in statements(template)
        if statement.get("Effect") == "Allow"
        and "s3:GetObject" in actions(statement)
        and statement.get("Resource") == {"Fn::Sub": "${DataBucket.Arn}/summaries/*"}
    }
    # on_glue_event and the sweeper complete job steps with their summaries; start_step's catalog steps
    # take their columns from one (columns_from)
    assert {"OnGlueEventFunction", "SweeperFunction", "StartStepFunction"} <= readers


def test_quality_steps_pass_only_the_data_quality_role_to_glue_and_touch_only_the_stacks_rulesets() -> None:
    template = load_template()
    passing = [
        (name, statement)
        for name, statement in statements(template)
        if statement.get("Effect") == "Allow" and "iam:PassRole" in actions(statement)
    ]
    role = ({"Fn::GetAtt": "DataQualityRole.Arn"}, {"Fn::GetAtt": ["DataQualityRole", "Arn"]})
    quality = [(n, s) for n, s in passing if s.get("Resource") in role]
    assert [name for name, _ in quality] == ["StartStepFunction"]
    assert quality[0][1]["Condition"] == {"StringEquals": {"iam:PassedToService": "glue.amazonaws.com"}}
    ruleset_arn = (
        "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:dataQualityRuleset/${AWS::StackName}_*"
    )
    for name, statement in statements(template):
        if any("DataQuality" in action for action in actions(statement)):
            assert statement["Resource"] == {"Fn::Sub": ruleset_arn}, name
    rule = template["Resources"]["OnGlueEventFunction"]["Properties"]["Events"]["QualityResultsAvailable"]
    assert rule["Properties"]["Pattern"]["source"] == ["aws.glue-dataquality"]
