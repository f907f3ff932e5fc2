"""Deployments that fail safe, as the generated CloudFormation of both descriptors says:
the canary watches the 5xx the HTTP surface answers (its exceptions become 500s, so
Lambda's Errors stays at zero), every alarm notifies someone, logs expire, and a failed
upload event lands in a queue instead of being dropped."""

from __future__ import annotations

from typing import Any

import pytest

from tests.descriptors.cfn import as_list, live_resources, of_type

BRANCHES = [
    {"UseSsm": True, "HasAlarmTopic": False, "CreateAlarmTopic": True},
    {"UseSsm": True, "HasAlarmTopic": True, "CreateAlarmTopic": False},
]
SAM_NAMES = {"http": "HttpFunction", "upload": "UploadFunction", "reconcile": "ReconcileFunction"}
OSLS_NAMES = {"http": "HttpLambdaFunction", "upload": "UploadLambdaFunction"}
OSLS_NAMES["reconcile"] = "ReconcileLambdaFunction"


@pytest.fixture(params=["template.yaml", "serverless.yml"])
def generated(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], dict[str, str]]:
    if request.param == "template.yaml":
        return request.param, request.getfixturevalue("sam_cfn"), SAM_NAMES
    return request.param, request.getfixturevalue("osls_cfn"), OSLS_NAMES


def canary_alarm_names(template: dict[str, Any], function_id: str) -> list[Any]:
    """The alarms of the CodeDeploy deployment group that shifts `function_id`'s alias."""
    resources = template["Resources"]
    groups = [
        group
        for group in of_type(resources, "AWS::CodeDeploy::DeploymentGroup").values()
        if function_id in str(group)
        or any(
            function_id in str(alias)
            for alias in of_type(resources, "AWS::Lambda::Alias").values()
            if str(alias.get("UpdatePolicy", "")).find(str(group)) >= 0
        )
    ]
    assert groups, f"no deployment group for {function_id}"
    props = groups[0]["Properties"]
    assert props["AlarmConfiguration"]["Enabled"] is True
    assert props["AutoRollbackConfiguration"]["Enabled"] is True
    assert "DEPLOYMENT_STOP_ON_ALARM" in props["AutoRollbackConfiguration"]["Events"]
    return [a["Name"] for a in props["AlarmConfiguration"]["Alarms"]]


def alarm_named(resources: dict[str, Any], name: Any) -> tuple[str, dict[str, Any]]:
    for logical_id, alarm in of_type(resources, "AWS::CloudWatch::Alarm").items():
        if name == {"Ref": logical_id} or alarm["Properties"].get("AlarmName") == name:
            return logical_id, alarm["Properties"]
    raise AssertionError(f"no alarm named {name}")


def metrics_of(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    if "MetricName" in alarm:
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        return [(alarm["Namespace"], alarm["MetricName"], dims)]
    found = []
    for query in alarm["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


def test_the_http_canary_rolls_back_on_5xx(generated: tuple[str, dict[str, Any], Any]) -> None:
    label, template, names = generated
    resources = template["Resources"]
    http = resources[names["http"]]["Properties"]
    env = http["Environment"]["Variables"]
    watched = [alarm_named(resources, n) for n in canary_alarm_names(template, names["http"])]
    measured = {(ns, metric) for _, alarm in watched for ns, metric, _ in metrics_of(alarm)}
    # Lambda errors, the core's own count of 5xx answers, and API Gateway's 5xx.
    assert ("AWS/Lambda", "Errors") in measured, label
    assert ("AWS/ApiGateway", "5xx") in measured, label
    [core] = [a for _, a in watched if metrics_of(a)[0][1] == "Http5xx"]
    [(namespace, _, dims)] = metrics_of(core)
    assert namespace == env["POWERTOOLS_METRICS_NAMESPACE"], label
    assert dims == {"service": env.get("POWERTOOLS_SERVICE_NAME")}, label
    [api_rate] = [
        a for _, a in watched if ("AWS/ApiGateway", "5xx") in {m[:2] for m in metrics_of(a)}
    ]
    assert any("Expression" in q for q in api_rate["Metrics"]), "a rate, not a count"


@pytest.mark.parametrize("branch", BRANCHES, ids=["own-topic", "given-topic"])
def test_every_alarm_notifies_when_it_fires_and_clears(
    generated: tuple[str, dict[str, Any], Any], branch: dict[str, bool]
) -> None:
    label, template, _ = generated
    resources = live_resources(template, branch)
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 9, sorted(alarms)
    actions = {
        (name, key): as_list(alarm["Properties"].get(key))
        for name, alarm in alarms.items()
        for key in ("AlarmActions", "OKActions")
    }
    # The topic the stack made, or the topic parameter's value (resolved: its default).
    wanted = [{"Ref": "AlarmTopic"}] if branch["CreateAlarmTopic"] else [""]
    for where, given in actions.items():
        assert given == wanted, (label, where)
    created = of_type(resources, "AWS::SNS::Topic")
    assert bool(created) is branch["CreateAlarmTopic"], label


def test_logs_expire(generated: tuple[str, dict[str, Any], Any]) -> None:
    label, template, _ = generated
    resources = live_resources(template, BRANCHES[0])
    groups = of_type(resources, "AWS::Logs::LogGroup")
    for name, function in of_type(resources, "AWS::Lambda::Function").items():
        target = function["Properties"]["LoggingConfig"]["LogGroup"]
        [group] = [
            g for n, g in groups.items() if target in ({"Ref": n}, g["Properties"]["LogGroupName"])
        ]
        assert group["Properties"]["RetentionInDays"] == 30, (label, name)
    [stage] = of_type(resources, "AWS::ApiGatewayV2::Stage").values()
    access = stage["Properties"]["AccessLogSettings"]
    [(group_id, _)] = [
        (n, g) for n, g in groups.items() if access["DestinationArn"] == {"Fn::GetAtt": [n, "Arn"]}
    ]
    assert groups[group_id]["Properties"]["RetentionInDays"] == 30
    assert "$context.status" in access["Format"] and "$context.requestId" in access["Format"]


def test_a_failed_upload_event_lands_in_a_queue(
    generated: tuple[str, dict[str, Any], Any],
) -> None:
    label, template, names = generated
    resources = live_resources(template, BRANCHES[0])
    configs = of_type(resources, "AWS::Lambda::EventInvokeConfig")
    [upload] = [c["Properties"] for c in configs.values() if names["upload"] in str(c)]
    destination = upload["DestinationConfig"]["OnFailure"]["Destination"]
    assert destination == {"Fn::GetAtt": ["UploadFailureQueue", "Arn"]}, label
    assert upload["MaximumRetryAttempts"] == 2
    assert resources["UploadFailureQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600
    depth = [
        a
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if {"Name": "QueueName", "Value": {"Fn::GetAtt": ["UploadFailureQueue", "QueueName"]}}
        in a["Properties"].get("Dimensions", [])
    ]
    assert depth, f"{label}: nobody hears of a failed upload"


def test_reconcile_ends_before_the_next_tick(generated: tuple[str, dict[str, Any], Any]) -> None:
    label, template, names = generated
    resources = live_resources(template, BRANCHES[0])
    function = resources[names["reconcile"]]["Properties"]
    assert function["ReservedConcurrentExecutions"] == 1
    [rule] = of_type(resources, "AWS::Events::Rule").values()
    expression = rule["Properties"]["ScheduleExpression"]
    assert expression.startswith("rate(") and expression.endswith(" minutes)"), expression
    minutes = int(expression.removeprefix("rate(").split()[0])
    assert function["Timeout"] < minutes * 60, label
    configs = of_type(resources, "AWS::Lambda::EventInvokeConfig")
    [own] = [c["Properties"] for c in configs.values() if names["reconcile"] in str(c)]
    assert own["MaximumRetryAttempts"] == 0, "the next tick is the retry"
