"""template.yaml through cfn-lint and the real SAM transform; serverless.yml through osls
(`package`, the open-source Serverless Framework v3 fork) and cfn-lint. The generated
templates come from this folder's conftest (made once per session)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from core.adapters.stores.dynamodb import TTL_ATTRIBUTE, table_definition
from tests.descriptors.cfn import of_type

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = ("IMGGO_API_KEY", "IMGGO_WEBHOOK_SECRET", "IMGGO_FN_API_KEYS")


def cfn_lint(path: Path, *ignore: str) -> None:
    exe = Path(sys.executable).with_name("cfn-lint")  # the venv's console script
    assert exe.exists(), "cfn-lint is not installed in this environment"
    args = [str(exe), str(path)]
    if ignore:
        args += ["--ignore-checks", *ignore]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def env_of(function: dict[str, Any]) -> dict[str, Any]:
    return function["Properties"].get("Environment", {}).get("Variables", {})


def check_table(table: dict[str, Any]) -> None:
    props = table["Properties"]
    wanted = table_definition("x")
    assert props["KeySchema"] == wanted["KeySchema"]
    assert sorted(props["AttributeDefinitions"], key=str) == sorted(
        wanted["AttributeDefinitions"], key=str
    )
    assert props["GlobalSecondaryIndexes"] == wanted["GlobalSecondaryIndexes"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_template_passes_cfn_lint() -> None:
    cfn_lint(ROOT / "template.yaml")


def test_template_passes_the_sam_transform(sam_cfn: dict[str, Any], tmp_path: Path) -> None:
    out = sam_cfn
    resources = out["Resources"]
    functions = of_type(resources, "AWS::Lambda::Function")
    assert set(functions) == {
        "HttpFunction",
        "WorkerFunction",
        "UploadFunction",
        "ReconcileFunction",
    }
    for name, function in functions.items():
        props = function["Properties"]
        assert (props["Runtime"], props["Architectures"]) == ("python3.12", ["arm64"]), name
        assert props["Handler"].startswith("handlers_aws."), name
        env = env_of(function)
        for secret in SECRET_NAMES:  # secrets only by reference, never by value
            assert secret not in env, (name, secret)
        assert "IMGGO_API_KEY_SECRET_REF" in env
        assert f"{name}Aliaslive" in resources and f"{name}DeploymentGroup" in resources
    assert "IMGGO_WEBHOOK_SECRET_SECRET_REF" in env_of(functions["HttpFunction"])
    assert "IMGGO_WEBHOOK_SECRET_SECRET_REF" not in env_of(functions["WorkerFunction"])
    group = resources["HttpFunctionDeploymentGroup"]["Properties"]
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert group["AutoRollbackConfiguration"]["Enabled"] is True

    [mapping] = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["Properties"]["FunctionName"] == {"Ref": "WorkerFunctionAliaslive"}
    queue = resources["WorkQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["DeadLetterQueue", "Arn"]
    }

    bucket = resources["UploadBucket"]["Properties"]
    [notification] = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Function"] == {"Ref": "UploadFunctionAliaslive"}
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]
    assert any(r["Prefix"] == "incoming/" for r in bucket["LifecycleConfiguration"]["Rules"])
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    check_table(resources["JobsTable"])

    stage = resources["HttpApiApiGatewayDefaultStage"]["Properties"]
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    cors = resources["HttpApi"]["Properties"]["Body"]["x-amazon-apigateway-cors"]
    assert "idempotency-key" in cors["allowHeaders"]
    assert {
        "DeadLetterQueueDepthAlarm",
        "FunctionThrottlesAlarm",
        "HttpFunctionErrorsAlarm",
    } <= set(of_type(resources, "AWS::CloudWatch::Alarm"))
    assert out["Outputs"]["WebhookUrl"]["Value"]["Fn::Sub"].endswith("/v1/webhooks/imggo")
    # Least privilege: the worker may read images but not write them; it sends only to
    # its own queue (a deferral is the item sent again, delayed).
    worker_policies = resources["WorkerFunctionRole"]["Properties"]["Policies"]
    assert "s3:PutObject" not in json.dumps(worker_policies)
    sends = [
        s
        for policy in worker_policies
        for s in policy["PolicyDocument"]["Statement"]
        if "sqs:SendMessage" in json.dumps(s)
    ]
    assert [s["Resource"] for s in sends] == [{"Fn::GetAtt": ["WorkQueue", "Arn"]}]
    # ...and the transformed template is valid CloudFormation (it also finds dependency
    # cycles the untransformed template hides). W1031: linting evaluates the Secrets
    # Manager branch of each policy !If with the parameters' SSM-path defaults. W2001:
    # SAM inlines DeploymentType into the deployment groups, leaving it "unused".
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(out))
    cfn_lint(path, "W1031", "W2001")


def test_serverless_yml_packages_with_osls_and_passes_cfn_lint(osls_template_path: Path) -> None:
    template_path = osls_template_path
    resources = json.loads(template_path.read_text())["Resources"]
    functions = of_type(resources, "AWS::Lambda::Function")
    assert len(functions) == 4
    for function in functions.values():
        assert function["Properties"]["Runtime"] == "python3.12"
        assert function["Properties"]["Architectures"] == ["arm64"]
        for secret in SECRET_NAMES:
            assert secret not in env_of(function)
    [mapping] = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    check_table(resources["JobsTable"])
    # W3005: a DependsOn osls itself writes next to a Ref, harmless and not ours to change.
    cfn_lint(template_path, "W3005")
