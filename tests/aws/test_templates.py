"""template.yaml through cfn-lint and the real SAM transform; serverless.yml through osls
(`package`, the open-source Serverless Framework v3 fork) and cfn-lint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from core.adapters.stores.dynamodb import TTL_ATTRIBUTE, table_definition

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


def sam_transform(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:  # the template names no managed policy to look up
        def load(self) -> dict[str, str]:
            return {}

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse((ROOT / "template.yaml").read_text())
    # What `sam package` does before CloudFormation runs the transform.
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-bucket/imggo-aws.zip"
    transformed: dict[str, Any] = transform(template, {}, NoManagedPolicies())
    return transformed


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


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


def test_template_passes_the_sam_transform(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    out = sam_transform(monkeypatch)
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
    # Least privilege: the worker may read images but not write them, nor send to SQS.
    worker_policies = json.dumps(resources["WorkerFunctionRole"]["Properties"]["Policies"])
    assert "s3:PutObject" not in worker_policies and "sqs:SendMessage" not in worker_policies
    # ...and the transformed template is valid CloudFormation (it also finds dependency
    # cycles the untransformed template hides). W1031: linting evaluates the Secrets
    # Manager branch of each policy !If with the parameters' SSM-path defaults. W2001:
    # SAM inlines DeploymentType into the deployment groups, leaving it "unused".
    path = tmp_path / "transformed.json"
    path.write_text(json.dumps(out))
    cfn_lint(path, "W1031", "W2001")


def _artifact(tmp_path: Path) -> Path:
    built = ROOT / "build" / "aws.zip"
    if built.exists():
        return built
    # `make package-aws` needs the package index; packaging only needs a zip to point at.
    stand_in = tmp_path / "aws.zip"
    with zipfile.ZipFile(stand_in, "w") as archive:
        for package in ("core", "handlers_aws"):
            for file in (ROOT / package).rglob("*.py"):
                archive.write(file, file.relative_to(ROOT))
    return stand_in


def test_serverless_yml_packages_with_osls_and_passes_cfn_lint(tmp_path: Path) -> None:
    osls = ROOT / "node_modules" / ".bin" / "osls"
    if not osls.exists():
        pytest.fail("node_modules/.bin/osls is missing: run `npm ci` in the repository root")
    node = shutil.which("node")
    assert node, "node is not on PATH"
    out = tmp_path / "out"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),  # no user config, no credentials
        "IMGGO_AWS_ARTIFACT": str(_artifact(tmp_path)),
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # packaging signs nothing; fake on purpose
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [str(osls), "package", "--stage", "prod", "--region", "us-east-1", "--package", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    template_path = out / "cloudformation-template-update-stack.json"
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
