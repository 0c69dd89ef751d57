"""template.yaml as the local cloud deploys it: SAM's own translator, then a resolver for the intrinsics.

aws-sam-translator turns the Serverless resources into plain CloudFormation (functions, roles, event
source mappings, rules, permissions, the state machine with its substitutions), exactly as on AWS. This
module then evaluates parameters, conditions and the intrinsic functions the template uses (Ref, GetAtt,
Sub, Join, If, Select, Split, Equals, Not, And, Or) against physical names chosen the way CloudFormation
chooses them (a given name, else stack-logical-suffix).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

LOCAL_ARTIFACTS = "gluerelay-local-artifacts"  # the stand-in bucket for local CodeUri / DefinitionUri paths
NO_VALUE = object()


class TemplateError(ValueError):
    """The template cannot be deployed locally; the message names the resource and the problem."""


@dataclass(frozen=True)
class Environment:
    region: str = "us-east-1"
    account: str = "123456789012"
    stack: str = "gluerelay-local"
    partition: str = "aws"


class _NoPolicies:
    """SAM resolves managed policy names through IAM; the template uses only inline policies and ARNs."""

    def load(self) -> dict[str, str]:
        return {}


# Where the physical name of a resource comes from, and what Ref and GetAtt return.
_NAME_PROPERTY = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Glue::Job": "Name",
    "AWS::Glue::Crawler": "Name",
    "AWS::Glue::SecurityConfiguration": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Lambda::LayerVersion": "LayerName",
}


@dataclass
class Template:
    """The translated template with parameters and conditions bound."""

    env: Environment
    root: Path
    resources: dict[str, dict[str, Any]]
    parameters: dict[str, str]
    conditions: dict[str, bool]
    outputs: dict[str, Any]
    local_paths: dict[str, Path] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(
        cls, path: Path, env: Environment | None = None, overrides: Mapping[str, str] | None = None
    ) -> Template:
        env = env or Environment()
        source = load_yaml(path)
        root = path.resolve().parent
        local_paths = _point_local_paths_at_artifacts(source, root)
        parameters = _bind_parameters(source.get("Parameters", {}), overrides or {})
        try:
            translated = _translate(source, parameters, env.region, root / ".gluerelay" / "cache" / "sam")
        except Exception as e:
            raise TemplateError(f"{path}: SAM could not translate the template: {e}") from e
        template = cls(env, root, translated["Resources"], parameters, {}, translated.get("Outputs", {}))
        template.local_paths = local_paths
        for name, expression in translated.get("Conditions", {}).items():
            template.conditions[name] = bool(template.resolve(expression))
        return template

    # ------------------------------------------------------------------ queries

    def active(self) -> dict[str, dict[str, Any]]:
        """The resources whose Condition holds."""
        return {
            name: res
            for name, res in self.resources.items()
            if "Condition" not in res or self.conditions[res["Condition"]]
        }

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.active().items() if res["Type"] in types}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's properties with every intrinsic resolved."""
        resolved = self.resolve(self.resources[logical_id].get("Properties", {}))
        return resolved if isinstance(resolved, dict) else {}

    def local_path(self, uri: str | Mapping[str, str]) -> Path:
        """The local file or folder behind a CodeUri / ContentUri / DefinitionUri SAM rewrote."""
        key = uri["Key"] if isinstance(uri, Mapping) else uri.split(f"{LOCAL_ARTIFACTS}/", 1)[-1]
        return self.root / key

    # ------------------------------------------------------------------ names

    def bind(self, logical_id: str, physical: str) -> None:
        """The name AWS gave a resource when it was created (a KMS key's id), for Ref from then on."""
        if self._names.get(logical_id, physical) != physical:
            raise TemplateError(f"{logical_id} was referred to before it was created")
        self._names[logical_id] = physical

    def physical_name(self, logical_id: str) -> str:
        if logical_id in self._names:
            return self._names[logical_id]
        res = self.resources.get(logical_id)
        if res is None:
            raise TemplateError(f"Ref to {logical_id}, which is neither a parameter nor a resource")
        kind = res["Type"]
        props = res.get("Properties", {})
        given: Any = None
        if kind in _NAME_PROPERTY:
            given = props.get(_NAME_PROPERTY[kind])
        elif kind == "AWS::Glue::Database":
            given = props.get("DatabaseInput", {}).get("Name")
        elif kind == "AWS::Glue::Connection":
            given = props.get("ConnectionInput", {}).get("Name")
        name = str(self.resolve(given)) if given is not None else self._generated_name(logical_id, kind)
        self._names[logical_id] = name
        return name

    def _generated_name(self, logical_id: str, kind: str) -> str:
        suffix = hashlib.sha256(f"{self.env.stack}/{logical_id}".encode()).hexdigest()[:12].upper()
        name = f"{self.env.stack}-{logical_id}-{suffix}"
        if kind == "AWS::S3::Bucket":
            return name.lower()[:63]
        if kind == "AWS::StepFunctions::StateMachine":
            return f"{logical_id}-{suffix}"
        return name[:64]

    def ref(self, logical_id: str) -> str:
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        if kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine", "AWS::IAM::ManagedPolicy"):
            return self.arn(logical_id)
        if kind == "AWS::Lambda::LayerVersion":
            return self.arn(logical_id)
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.env.region}.amazonaws.com/{self.env.account}/{name}"
        return name

    def arn(self, logical_id: str) -> str:
        e = self.env
        kind = self.resources[logical_id]["Type"]
        name = self.physical_name(logical_id)
        service_arn = {
            "AWS::Lambda::Function": f"lambda:{e.region}:{e.account}:function:{name}",
            "AWS::Lambda::LayerVersion": f"lambda:{e.region}:{e.account}:layer:{name}:1",
            "AWS::IAM::Role": f"iam::{e.account}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"iam::{e.account}:policy/{name}",
            "AWS::S3::Bucket": f"s3:::{name}",
            "AWS::DynamoDB::Table": f"dynamodb:{e.region}:{e.account}:table/{name}",
            "AWS::SQS::Queue": f"sqs:{e.region}:{e.account}:{name}",
            "AWS::SNS::Topic": f"sns:{e.region}:{e.account}:{name}",
            "AWS::StepFunctions::StateMachine": f"states:{e.region}:{e.account}:stateMachine:{name}",
            "AWS::Events::Rule": f"events:{e.region}:{e.account}:rule/{name}",
            "AWS::Logs::LogGroup": f"logs:{e.region}:{e.account}:log-group:{name}:*",
            "AWS::CloudWatch::Alarm": f"cloudwatch:{e.region}:{e.account}:alarm:{name}",
            "AWS::KMS::Key": f"kms:{e.region}:{e.account}:key/{name}",
        }.get(kind)
        if service_arn is None:
            raise TemplateError(f"GetAtt {logical_id}.Arn: no ARN for a {kind} locally")
        return f"arn:{e.partition}:{service_arn}"

    def get_att(self, logical_id: str, attribute: str) -> str:
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute in ("QueueName", "Name", "TopicName"):
            return self.physical_name(logical_id)
        if attribute == "QueueUrl":
            return self.ref(logical_id)
        raise TemplateError(f"GetAtt {logical_id}.{attribute} is not supported by the local cloud")

    # ------------------------------------------------------------------ intrinsics

    def pseudo(self, name: str) -> Any:
        e = self.env
        values: dict[str, Any] = {
            "AWS::Region": e.region,
            "AWS::AccountId": e.account,
            "AWS::StackName": e.stack,
            "AWS::Partition": e.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:{e.partition}:cloudformation:{e.region}:{e.account}:stack/{e.stack}/local",
            "AWS::NoValue": NO_VALUE,
        }
        return values[name]

    def resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic
        if isinstance(value, list):
            return [v for v in (self.resolve(item) for item in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attribute)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.conditions[name] else no)
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.conditions[arg]
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local cloud")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        return self.ref(name)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in variables:
                return str(variables[token])
            if "." in token and not token.startswith("AWS::"):
                logical, attribute = token.split(".", 1)
                return self.get_att(logical, attribute)
            return str(self._ref(token))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)


class _CloudFormationLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms: !Ref X is {"Ref": X}, !GetAtt A.B is {"Fn::GetAtt": [A, B]},
    !Condition C is {"Condition": C}, and every other !Name is {"Fn::Name": ...}."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise yaml.constructor.ConstructorError(
            None, None, f"!{suffix} on an unexpected node", node.start_mark
        )
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_form)


def load_yaml(path: Path) -> dict[str, Any]:
    """A CloudFormation template in YAML, as the JSON CloudFormation reads."""
    return parse_yaml(path.read_text(), str(path))


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """CloudFormation YAML (short forms included) as the JSON CloudFormation reads; `source` names it."""
    try:
        loaded = yaml.load(text, Loader=_CloudFormationLoader)  # a SafeLoader
    except yaml.YAMLError as e:
        raise TemplateError(f"{source} is not valid YAML: {e}") from e
    if not isinstance(loaded, dict):
        raise TemplateError(f"{source} is not a CloudFormation template (no mapping at the top)")
    return loaded


def _translate(
    source: dict[str, Any], parameters: dict[str, str], region: str, cache: Path
) -> dict[str, Any]:
    """SAM's translation, cached by everything it depends on (it takes a second, mostly to import)."""
    version = metadata.version("aws-sam-translator")
    key = hashlib.sha256(
        json.dumps([source, parameters, region, version], sort_keys=True, default=str).encode()
    ).hexdigest()
    cached = cache / f"{key}.json"
    if cached.is_file():
        try:
            found: dict[str, Any] = json.loads(cached.read_text())
        except ValueError:
            cached.unlink(missing_ok=True)  # a torn write: translate again
        else:
            return found
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]

    previous = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator reads the region from boto's session
    try:
        translated: dict[str, Any] = transform(
            json.loads(json.dumps(source)), dict(parameters), _NoPolicies()
        )
    finally:
        if previous is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = previous
    cache.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(translated))
    partial.replace(cached)
    return translated


def _point_local_paths_at_artifacts(source: dict[str, Any], root: Path) -> dict[str, Path]:
    """SAM expects S3 URIs for code and definitions; `sam build` uploads local paths. Do the same by name."""
    found: dict[str, Path] = {}

    def rewrite(props: dict[str, Any], key: str) -> None:
        value = props.get(key)
        if isinstance(value, str) and not value.startswith("s3://"):
            found[value] = root / value
            props[key] = f"s3://{LOCAL_ARTIFACTS}/{value}"

    globals_ = source.get("Globals", {}).get("Function", {})
    rewrite(globals_, "CodeUri")
    for res in source.get("Resources", {}).values():
        props = res.setdefault("Properties", {}) if isinstance(res, dict) else {}
        kind = res.get("Type")
        if kind == "AWS::Serverless::Function":
            rewrite(props, "CodeUri")
        elif kind == "AWS::Serverless::LayerVersion":
            rewrite(props, "ContentUri")
        elif kind == "AWS::Serverless::StateMachine":
            rewrite(props, "DefinitionUri")
    return found


def _bind_parameters(declared: dict[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"unknown parameters: {', '.join(sorted(unknown))}")
    bound: dict[str, str] = {}
    for name, spec in declared.items():
        if name in overrides:
            value = str(overrides[name])
        elif "Default" in spec:
            value = str(spec["Default"])
        else:
            raise TemplateError(f"parameter {name} has no default: pass a value")
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, value):
            raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
        allowed = spec.get("AllowedValues")
        if allowed and value not in [str(a) for a in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        if spec.get("Type") == "Number":
            _check_number(name, value, spec)
        bound[name] = value
    return bound


def _check_number(name: str, value: str, spec: dict[str, Any]) -> None:
    """A Number parameter's MinValue and MaxValue, as CloudFormation checks them before it deploys."""
    try:
        number = float(value)
    except ValueError:
        raise TemplateError(f"parameter {name}={value!r} is not a number") from None
    low, high = spec.get("MinValue"), spec.get("MaxValue")
    if low is not None and number < float(low):
        raise TemplateError(f"parameter {name}={value} is below its MinValue {low}")
    if high is not None and number > float(high):
        raise TemplateError(f"parameter {name}={value} is above its MaxValue {high}")


def state_machine_definition(template: Template, logical_id: str) -> str:
    """The state machine's definition with DefinitionSubstitutions applied, as CloudFormation does."""
    props = template.resources[logical_id]["Properties"]
    if "DefinitionString" in props:
        text = str(template.resolve(props["DefinitionString"]))
    else:
        text = template.local_path(props["DefinitionS3Location"]).read_text()
    return substitute_definition(text, template.resolve(props.get("DefinitionSubstitutions", {})), logical_id)


def substitute_definition(text: str, substitutions: dict[str, Any], name: str) -> str:
    """An ASL definition with ${Key} substitutions applied (DefinitionSubstitutions), checked to be JSON."""
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", str(value))
    try:
        json.loads(text)
    except json.JSONDecodeError as e:
        raise TemplateError(f"{name}: the definition is not JSON after substitution: {e}") from e
    return text
