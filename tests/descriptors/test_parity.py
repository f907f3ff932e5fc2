"""serverless.yml describes the same system as template.yaml: after `osls package` and
the SAM transform, the two CloudFormation templates have the same functions, alarms,
canaries, asynchronous-invocation settings and IAM statements, once osls's names are
mapped onto SAM's and parameters are read at their defaults."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.descriptors.cfn import FUNCTIONS, live_resources, of_type, renamed

# osls logical id -> the SAM one for the same thing.
OSLS_TO_SAM = {
    **{f"{f.removesuffix('Function')}LambdaFunction": f for f in FUNCTIONS},
    **{f"{f.removesuffix('Function')}LambdaFunctionAliaslive": f"{f}Aliaslive" for f in FUNCTIONS},
    **{f"{f.removesuffix('Function')}LogGroup": f"{f}LogGroup" for f in FUNCTIONS},
    "HttpApiLogGroup": "ApiAccessLogGroup",
    "S3BucketUploads": "UploadBucket",
    "UploadEventInvokeConfig": "UploadFunctionEventInvokeConfig",
    "ReconcileEventInvokeConfig": "ReconcileFunctionEventInvokeConfig",
}
OSLS_STACK = "imggo-functions-prod"
FUNCTION_PROPERTIES = (
    "Handler",
    "Runtime",
    "Architectures",
    "MemorySize",
    "Timeout",
    "ReservedConcurrentExecutions",
    "Environment",
    "LoggingConfig",
    "Role",
)


def normalised(template: dict[str, Any], use_ssm: bool, osls: bool) -> dict[str, Any]:
    conditions = {"UseSsm": use_ssm, "HasAlarmTopic": False, "CreateAlarmTopic": True}
    resources = live_resources(template, conditions)
    bucket_id = "S3BucketUploads" if osls else "UploadBucket"
    bucket = resources[bucket_id]["Properties"]["BucketName"]
    bucket = bucket["Fn::Sub"] if isinstance(bucket, dict) else bucket
    loaded = plain(json.loads(json.dumps(resources).replace(bucket, "<uploads bucket>")))
    named: dict[str, Any] = renamed(stack_named(loaded), OSLS_TO_SAM) if osls else loaded
    return named


def plain(node: Any) -> Any:
    """A Fn::Sub left with no variable (the bucket name was one) is its string."""
    if isinstance(node, list):
        return [plain(item) for item in node]
    if isinstance(node, dict):
        sub = node.get("Fn::Sub") if len(node) == 1 else None
        if isinstance(sub, str) and "${" not in sub:
            return sub
        return {key: plain(value) for key, value in node.items()}
    return node


def stack_named(node: Any) -> Any:
    """osls writes the stack's name where SAM asks CloudFormation for it (${AWS::StackName})."""
    if isinstance(node, list):
        return [stack_named(item) for item in node]
    if isinstance(node, dict):
        return {key: stack_named(value) for key, value in node.items()}
    if isinstance(node, str) and node.startswith(f"{OSLS_STACK}-"):
        return {"Fn::Sub": "${AWS::StackName}" + node.removeprefix(OSLS_STACK)}
    return node


@pytest.fixture(params=[True, False], ids=["ssm", "secretsmanager"])
def pair(request: pytest.FixtureRequest, sam_cfn: Any, osls_cfn: Any) -> tuple[Any, Any]:
    return normalised(sam_cfn, request.param, False), normalised(osls_cfn, request.param, True)


def test_the_same_functions(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    sam, osls = pair
    for function in FUNCTIONS:
        mine, theirs = sam[function]["Properties"], osls[function]["Properties"]
        for prop in FUNCTION_PROPERTIES:
            assert mine.get(prop) == theirs.get(prop), (function, prop)
    for kind in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
        assert settings(sam, kind) == settings(osls, kind), kind


def settings(resources: dict[str, Any], kind: str) -> list[str]:
    found = []
    for resource in of_type(resources, kind).values():
        props = dict(resource["Properties"])
        if props.get("Enabled") is True:  # CloudFormation's default, which osls spells out
            del props["Enabled"]
        if props.get("DestinationConfig") == {}:  # SAM spells out "none"
            del props["DestinationConfig"]
        found.append(json.dumps(props, sort_keys=True))
    return sorted(found)


def test_the_same_alarms_and_canaries(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    sam, osls = pair
    mine = of_type(sam, "AWS::CloudWatch::Alarm")
    theirs = of_type(osls, "AWS::CloudWatch::Alarm")
    assert sorted(mine) == sorted(theirs)
    for name, alarm in mine.items():
        assert alarm["Properties"] == theirs[name]["Properties"], name
    for function in FUNCTIONS:
        groups = [
            group["Properties"]["AlarmConfiguration"]
            for template in (sam, osls)
            for group in of_type(template, "AWS::CodeDeploy::DeploymentGroup").values()
            if function in json.dumps(group) or f"{function}DeploymentGroup" in json.dumps(group)
        ]
        alarms = {json.dumps(g["Alarms"], sort_keys=True) for g in groups}
        assert len(groups) >= 2 and len(alarms) == 1, (function, groups)


def test_the_same_permissions(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    sam, osls = pair
    for function in FUNCTIONS:
        [role_id, _] = sam[function]["Properties"]["Role"]["Fn::GetAtt"]
        assert sam[role_id]["Properties"] == osls[role_id]["Properties"], function
    # No other role may run code of ours (osls's default role is not made).
    assert {r for r in of_type(osls, "AWS::IAM::Role")} == {
        *(f"{f}Role" for f in FUNCTIONS),
        "CodeDeployServiceRole",
    }


def test_the_same_log_retention(pair: tuple[dict[str, Any], dict[str, Any]]) -> None:
    sam, osls = pair
    for name in (*(f"{f}LogGroup" for f in FUNCTIONS), "ApiAccessLogGroup"):
        retention = sam[name]["Properties"]["RetentionInDays"]
        assert retention == osls[name]["Properties"]["RetentionInDays"] == 30, name
