"""Least privilege, both ways: each function's IAM statements (template.yaml after the
SAM transform, and serverless.yml after `osls package`) grant exactly the actions its
code calls, on the resources they are for.

The calls are read from the code (AST): every `client.<operation>(...)` and presigned
operation of each adapter method, following the method's own `self.` helpers, and the
client operations core/adapters/aws/secrets.py calls. deploy/aws_access.toml says which
function reaches which adapter method, and maps operations to IAM actions."""

from __future__ import annotations

import ast
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.descriptors.cfn import FUNCTIONS, ROOT, as_list, of_type, resolve, statements

ACCESS = tomllib.loads((ROOT / "deploy" / "aws_access.toml").read_text())
CLIENT_NAMES = {"client", "_client"}
# Helpers an adapter routes its SDK calls through, the operation named by a literal
# first argument: `self._call("put_item", ...)` (the outage mapping lives in them).
OPERATION_HELPERS = {"_call", "_conditional"}
NOT_OPERATIONS = {"close"}
ROLE_ENV = {"IMGGO_API_KEY", "IMGGO_WEBHOOK_SECRET", "IMGGO_FN_API_KEYS"}


def _class_methods(module: str, class_name: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse((ROOT / module).read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name]
    return {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)}


def adapter_operations(
    module: str, class_name: str, service: str, bases: list[list[str]] | None = None
) -> dict[str, set[str]]:
    """method name -> the boto3 operations it (and the self. members it uses) calls.
    Properties and _private helpers are left out: they are reached through methods.
    `bases`: [module, class] pairs the class inherits port methods from (a job store's
    BaseJobStore implements the port on the backend's primitives); the class's own
    methods override theirs, as Python resolves them."""
    methods: dict[str, ast.FunctionDef] = {}
    for base_module, base_class in bases or []:
        methods.update(_class_methods(base_module, base_class))
    methods.update(_class_methods(module, class_name))
    direct: dict[str, set[str]] = {}
    uses: dict[str, set[str]] = {}
    for name, method in methods.items():
        ops: set[str] = set()
        used: set[str] = set()
        for node in ast.walk(method):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and node.attr in methods
                and node.attr != name
            ):
                used.add(node.attr)
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver, operation = node.func.value, node.func.attr
            if (
                isinstance(receiver, ast.Name)
                and receiver.id == "self"
                and operation in OPERATION_HELPERS
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                ops.add(f"{service}.{node.args[0].value}")
                continue
            is_client = (isinstance(receiver, ast.Name) and receiver.id in CLIENT_NAMES) or (
                isinstance(receiver, ast.Attribute)
                and isinstance(receiver.value, ast.Name)
                and receiver.value.id == "self"
                and receiver.attr in CLIENT_NAMES
            )
            if not is_client or operation in NOT_OPERATIONS:
                continue
            if operation == "generate_presigned_url":
                [first, *_] = node.args
                assert isinstance(first, ast.Constant), f"{module}: presigned op must be literal"
                ops.add(f"{service}.presign.{first.value}")
            else:
                ops.add(f"{service}.{operation}")
        direct[name], uses[name] = ops, used

    def closure(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        found = set(direct[name])
        for other in uses[name] - seen:
            found |= closure(other, seen | {name})
        return found

    def is_helper(method: ast.FunctionDef) -> bool:
        decorated = {d.id for d in method.decorator_list if isinstance(d, ast.Name)}
        return method.name.startswith("_") or "property" in decorated

    return {name: closure(name) for name, method in methods.items() if not is_helper(method)}


def secret_calls(module: str) -> set[str]:
    """`service.operation` for each `self._client("service").operation(...)` call."""
    tree = ast.parse((ROOT / module).read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        receiver = node.func.value
        if (
            isinstance(receiver, ast.Call)
            and isinstance(receiver.func, ast.Attribute)
            and receiver.func.attr == "_client"
            and receiver.args
            and isinstance(receiver.args[0], ast.Constant)
        ):
            found.add(f"{receiver.args[0].value}.{node.func.attr}")
    return found


OPERATIONS = {
    port: adapter_operations(spec["module"], spec["class"], spec["service"], spec.get("bases"))
    for port, spec in ACCESS["adapters"].items()
}


def required(function: str, secret_store: str) -> set[tuple[str, str]]:
    """(IAM action, Sid) pairs the function's code and platform need."""
    spec = ACCESS["functions"][function]
    needed: set[tuple[str, str]] = set()
    for port, adapter in ACCESS["adapters"].items():
        for method in spec[port]:
            for operation in OPERATIONS[port][method]:
                if operation.split(".")[-1] in adapter.get("unreached", []):
                    continue
                assert operation in ACCESS["actions"], f"no IAM action mapped for {operation}"
                needed |= {(action, sid) for action, sid in ACCESS["actions"][operation]}
    for call in secret_calls(ACCESS["secrets"]["module"]):
        store, action = ACCESS["secrets"][call]
        if store == secret_store and spec["secrets"]:
            needed.add((action, "Secrets"))
    for sid in spec["platform"]:
        needed |= {(action, sid) for action in ACCESS["platform"][sid]["actions"]}
    return needed


class Descriptor:
    """One generated template, read through the names it gives things."""

    def __init__(
        self, label: str, template: dict[str, Any], names: Mapping[str, str], bucket: str
    ) -> None:
        self.label = label
        self.template = template
        self.names = names  # our function name -> its logical id in this template
        self.bucket = bucket  # the uploads bucket's logical id

    def resources(self, use_ssm: bool) -> dict[str, Any]:
        conditions = {"UseSsm": use_ssm, "HasAlarmTopic": False, "CreateAlarmTopic": True}
        resolved: dict[str, Any] = resolve(self.template["Resources"], self.template, conditions)
        return resolved

    def role_of(self, resources: Mapping[str, Any], function: str) -> dict[str, Any]:
        role = resources[self.names[function]]["Properties"]["Role"]
        assert set(role) == {"Fn::GetAtt"}, f"{self.label} {function}: role {role}"
        found: dict[str, Any] = resources[role["Fn::GetAtt"][0]]
        return found


def sam_descriptor(sam_cfn: dict[str, Any]) -> Descriptor:
    return Descriptor("template.yaml", sam_cfn, {f: f for f in FUNCTIONS}, "UploadBucket")


def osls_descriptor(osls_cfn: dict[str, Any]) -> Descriptor:
    names = {f: f.removesuffix("Function") + "LambdaFunction" for f in FUNCTIONS}
    return Descriptor("serverless.yml", osls_cfn, names, "S3BucketUploads")


@pytest.fixture(params=["template.yaml", "serverless.yml"])
def descriptor(request: pytest.FixtureRequest) -> Descriptor:
    if request.param == "template.yaml":
        return sam_descriptor(request.getfixturevalue("sam_cfn"))
    return osls_descriptor(request.getfixturevalue("osls_cfn"))


def test_the_mapping_names_real_methods_and_every_calling_method_is_placed() -> None:
    for port, adapter in ACCESS["adapters"].items():
        methods = OPERATIONS[port]
        placed = set(adapter["provisioning"])
        for function, spec in ACCESS["functions"].items():
            unknown = set(spec[port]) - set(methods)
            assert not unknown, f"{function}: {adapter['class']} has no method {unknown}"
            placed |= set(spec[port])
        # A method that calls AWS must be reached by a function or declared provisioning:
        # a new call cannot slip past the policy check by not being listed.
        calling = {name for name, ops in methods.items() if ops}
        assert calling <= placed, f"{adapter['class']}: place {calling - placed} in aws_access.toml"
    # A conditional put; a lost race reads the row once (BaseJobStore._lost).
    assert OPERATIONS["store"]["compare_and_set"] == {"dynamodb.put_item", "dynamodb.get_item"}
    assert OPERATIONS["queue"]["send"] == {"sqs.send_message_batch", "sqs.get_queue_url"}
    assert "s3.presign.put_object" in OPERATIONS["blobs"]["signed_put_url"]
    assert secret_calls(ACCESS["secrets"]["module"]) == {
        "ssm.get_parameters",
        "secretsmanager.get_secret_value",
    }


@pytest.mark.parametrize("secret_store", ["ssm", "secretsmanager"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_role_grants_exactly_what_its_code_calls(
    descriptor: Descriptor, function: str, secret_store: str
) -> None:
    resources = descriptor.resources(use_ssm=secret_store == "ssm")
    role = descriptor.role_of(resources, function)
    granted: set[tuple[str, str]] = set()
    for statement in statements(role):
        assert statement["Effect"] == "Allow" and "Sid" in statement, statement
        assert "NotAction" not in statement and "NotResource" not in statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{descriptor.label} {function}: wildcard {action}"
            granted.add((action, statement["Sid"]))
    # No managed policy can widen it either.
    assert not role["Properties"].get("ManagedPolicyArns"), role["Properties"]
    wanted = required(function, secret_store)
    assert granted - wanted == set(), f"{descriptor.label} {function} grants unused actions"
    assert wanted - granted == set(), f"{descriptor.label} {function} lacks actions its code calls"


@pytest.mark.parametrize("secret_store", ["ssm", "secretsmanager"])
@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_statement_is_scoped_to_its_own_resource(
    descriptor: Descriptor, function: str, secret_store: str
) -> None:
    resources = descriptor.resources(use_ssm=secret_store == "ssm")
    role = descriptor.role_of(resources, function)
    lambda_fn = resources[descriptor.names[function]]["Properties"]
    env = lambda_fn["Environment"]["Variables"]
    log_group = lambda_fn["LoggingConfig"]["LogGroup"]
    [log_group_id] = [
        name
        for name, r in of_type(resources, "AWS::Logs::LogGroup").items()
        if r["Properties"]["LogGroupName"] == log_group or {"Ref": name} == log_group
    ]
    bucket_name = resources[descriptor.bucket]["Properties"]["BucketName"]
    bucket_name = bucket_name["Fn::Sub"] if isinstance(bucket_name, dict) else bucket_name
    bucket_arn = "arn:${AWS::Partition}:s3:::" + bucket_name
    secrets = ACCESS["functions"][function]["secrets"]
    refs = [env[f"{name}_SECRET_REF"] for name in secrets]
    assert {n.removesuffix("_SECRET_REF") for n in env if n.endswith("_SECRET_REF")} == set(
        secrets
    ), f"{function} is given other secrets than it needs"
    assert not ROLE_ENV & set(env), "secret values never go into the environment"
    ssm_arn = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
    expected = {
        "Logs": [{"Fn::GetAtt": [log_group_id, "Arn"]}],
        "JobsTable": [{"Fn::GetAtt": ["JobsTable", "Arn"]}],
        "JobsTableIndexes": [{"Fn::Sub": "${JobsTable.Arn}/index/*"}],
        "UploadObjects": [{"Fn::Sub": bucket_arn + "/*"}],
        "UploadBucketList": [{"Fn::Sub": bucket_arn}],
        "WorkQueueSend": [{"Fn::GetAtt": ["WorkQueue", "Arn"]}],
        "WorkQueueConsume": [{"Fn::GetAtt": ["WorkQueue", "Arn"]}],
        "UploadFailuresSend": [{"Fn::GetAtt": ["UploadFailureQueue", "Arn"]}],
        "Secrets": [{"Fn::Sub": ssm_arn + ref} for ref in refs]
        if secret_store == "ssm"
        else [{"Fn::Sub": ref} for ref in refs],
    }
    for statement in statements(role):
        got = [r if isinstance(r, dict) else {"Fn::Sub": r} for r in as_list(statement["Resource"])]
        assert got == expected[statement["Sid"]], (descriptor.label, function, statement)


def test_the_queue_url_form_needs_no_lookup(descriptor: Descriptor) -> None:
    # aws_access.toml leaves sqs:GetQueueUrl out because of this form.
    resources = descriptor.resources(use_ssm=True)
    for function in FUNCTIONS:
        env = resources[descriptor.names[function]]["Properties"]["Environment"]["Variables"]
        if "IMGGO_FN_QUEUE_URL" in env:
            assert json.dumps(env["IMGGO_FN_QUEUE_URL"]).startswith(
                '{"Fn::Sub": "sqs://${AWS::AccountId}/'
            ), env["IMGGO_FN_QUEUE_URL"]
            assert ACCESS["functions"][function]["queue"] == ["send"]
        else:
            assert ACCESS["functions"][function]["queue"] == []


def test_reading_the_code_finds_a_new_call(tmp_path: Path) -> None:
    """The reader is not blind: an operation added to a method shows up."""
    source = (ROOT / ACCESS["adapters"]["blobs"]["module"]).read_text()
    patched = source.replace(
        "    def close(self) -> None:\n",
        "    def sweep(self) -> None:\n        self.client.delete_object(Bucket=self.bucket)\n\n"
        "    def close(self) -> None:\n",
    )
    module = tmp_path / "s3_blobs.py"
    module.write_text(patched)
    found = adapter_operations(str(module), "S3BlobStore", "s3")
    assert found["sweep"] == {"s3.delete_object"}
    assert found["describe"] == {"s3.head_object"}
