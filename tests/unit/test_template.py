"""The SAM template and the state machine: wiring and least privilege, checked as data."""

from __future__ import annotations

import importlib
from typing import Any

from tests.template import definition, load_template

SUBSTITUTIONS = {
    "Partition": "aws",
    "TableName": "control",
    "StartStepFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:start-step",
    "ExtractJobName": "extract_customers",
    "CleanseJobName": "cleanse_customers",
    "RawCrawlerName": "raw_customers",
    "CleansedCrawlerName": "cleansed_customers",
    "StepTimeoutSeconds": "7200",
}


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, res in template["Resources"].items():
        properties = res.get("Properties", {})
        documents = [
            *properties.get("Policies", []),
            *([properties] if "PolicyDocument" in properties else []),
        ]
        for policy in documents:
            document = policy.get("PolicyDocument", policy)
            for statement in document.get("Statement", []) if isinstance(document, dict) else []:
                found.append((name, statement))
    return found


def test_no_policy_grants_wildcard_actions() -> None:
    for name, statement in statements(load_template()):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement.get("Effect") == "Deny":
            continue
        assert all("*" not in action for action in actions), f"{name}: {actions}"


def test_policy_documents_of_managed_policies_are_checked_too() -> None:
    checked = {name for name, _ in statements(load_template())}
    assert {"SourceAccessPolicy", "StartStepFunction", "GlueJobRole"} <= checked


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
    }
    for name, properties in functions.items():
        module, _, attribute = properties["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)), name


def test_the_definition_uses_exactly_the_substitutions_the_template_provides() -> None:
    provided = load_template()["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    assert set(provided) == set(SUBSTITUTIONS)
    definition(SUBSTITUTIONS)  # every placeholder resolves and the result is JSON


def paths_to_the_end(states: dict[str, Any], start: str) -> set[tuple[str, ...]]:
    """Every path from `start` to a terminal state, as its last two states."""
    state = states[start]
    nexts = [c["Next"] for c in state.get("Choices", [])] + [
        state[k] for k in ("Next", "Default") if k in state
    ]
    if not nexts:
        return {("", start)}
    ends = set()
    for following in nexts:
        for path in paths_to_the_end(states, following):
            ends.add(path if path[0] else (start, path[1]))
    return ends


def test_every_step_is_a_bounded_callback_that_fails_the_run_on_error() -> None:
    states = definition(SUBSTITUTIONS)["States"]
    steps = {n: s for n, s in states.items() if s.get("Resource", "").endswith("waitForTaskToken")}
    assert list(steps) == [
        "Extract customers",
        "Catalog the raw customers",
        "Cleanse customers",
        "Catalog the cleansed customers",
    ]
    for name, state in steps.items():
        assert state["TimeoutSeconds"] == 7200, name
        assert state["Parameters"]["Payload"]["token.$"] == "$$.Task.Token", name
        catch = state["Catch"][0]
        assert catch["ErrorEquals"] == ["States.ALL"], name
        # the catch path notes which step failed; every way on from there records the run, then fails it
        noted = states[catch["Next"]]
        assert noted["Parameters"]["step"] == state["Parameters"]["Payload"]["step"], name
        assert paths_to_the_end(states, noted["Next"]) == {("Record the run as failed", "Run failed")}, name
    assert states["Run failed"]["Type"] == "Fail"
    retried = {
        n
        for n, s in steps.items()
        for r in s["Retry"]
        if "ConcurrentRunsExceededException" in r["ErrorEquals"]
    }
    assert retried == {"Extract customers", "Cleanse customers"}


def test_a_resumed_run_can_go_back_to_every_step_and_only_there() -> None:
    states = definition(SUBSTITUTIONS)["States"]
    steps = {
        s["Parameters"]["Payload"]["step"]: n
        for n, s in states.items()
        if s.get("Resource", "").endswith("waitForTaskToken")
    }
    start = states[definition(SUBSTITUTIONS)["StartAt"]]
    assert start["Choices"] == [
        {"Variable": "$.resume_from", "IsPresent": True, "Next": "Record the run as resumed"}
    ]
    assert start["Default"] == "Record the run as started"
    resume = states[states["Record the run as resumed"]["Next"]]
    assert {c["StringEquals"]: c["Next"] for c in resume["Choices"]} == steps
    assert states[resume["Default"]]["Type"] == "Fail"


def test_retried_error_names_are_the_lambda_error_types_we_raise() -> None:
    # A Lambda error's type is the exception's class name: every retried name that is not a Step
    # Functions or Lambda service error must be one of our exceptions, or the Retry never matches.
    import relay.errors

    states = definition(SUBSTITUTIONS)["States"]
    ours = {
        name
        for state in states.values()
        for retry in state.get("Retry", [])
        for name in retry["ErrorEquals"]
        if not name.startswith(("States.", "Lambda.", "DynamoDB."))
    }
    assert ours == {"ConcurrentRunsExceededException", "ConditionFailedError"}
    for name in ours:
        assert issubclass(getattr(relay.errors, name), relay.errors.RelayError), name
