"""Reading the generated CloudFormation of both AWS descriptors the same way: the SAM
template after the real SAM transform, and serverless.yml after `osls package`.

Both are plain CloudFormation by then. `resolve` evaluates the condition functions for
one choice of conditions and replaces parameter references with their defaults, so two
templates that only spell things differently (a parameter here, a literal there) read
the same."""

from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import subprocess
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ("HttpFunction", "WorkerFunction", "UploadFunction", "ReconcileFunction")
# osls names a function `<name>` HttpLambdaFunction, its log group HttpLogGroup.
OSLS_NAMES = {"http": "Http", "worker": "Worker", "upload": "Upload", "reconcile": "Reconcile"}
NO_VALUE = object()


class ToolMissingError(RuntimeError):
    pass


def of_type(resources: Mapping[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


@functools.cache
def _sam_transformed() -> str:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    class NoManagedPolicies:  # the template names no managed policy to look up
        def load(self) -> dict[str, str]:
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template = yaml_parse((ROOT / "template.yaml").read_text())
    # What `sam package` does before CloudFormation runs the transform.
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts-bucket/imggo-aws.zip"
    return json.dumps(transform(template, {}, NoManagedPolicies()))


def sam_template() -> dict[str, Any]:
    """template.yaml after the SAM transform (computed once per session; a fresh copy)."""
    loaded: dict[str, Any] = json.loads(_sam_transformed())
    return loaded


def sam_source() -> dict[str, Any]:
    """template.yaml as written (intrinsic tags as Fn:: mappings), before the transform."""
    from samtranslator.yaml_helper import yaml_parse

    parsed: dict[str, Any] = yaml_parse((ROOT / "template.yaml").read_text())
    return parsed


def _stand_in_artifact(directory: Path) -> Path:
    built = ROOT / "build" / "aws.zip"
    if built.exists():
        return built
    # `make package-aws` needs the package index; packaging only needs a zip to point at.
    stand_in = directory / "aws.zip"
    with zipfile.ZipFile(stand_in, "w") as archive:
        for package in ("core", "handlers_aws"):
            for file in (ROOT / package).rglob("*.py"):
                archive.write(file, file.relative_to(ROOT))
    return stand_in


def osls_package(directory: Path) -> Path:
    """Run `osls package` for serverless.yml (offline, fake credentials) into directory;
    the generated template's path."""
    osls = ROOT / "node_modules" / ".bin" / "osls"
    if not osls.exists():
        raise ToolMissingError("node_modules/.bin/osls is missing: run `npm ci` (make test does)")
    if not shutil.which("node"):
        raise ToolMissingError("node is not on PATH")
    out = directory / "out"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(directory / "home"),  # no user config, no credentials
        "IMGGO_AWS_ARTIFACT": str(_stand_in_artifact(directory)),
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
    if done.returncode != 0:
        raise AssertionError(f"osls package failed:\n{done.stdout}\n{done.stderr}")
    return out / "cloudformation-template-update-stack.json"


def resolve(node: Any, template: Mapping[str, Any], conditions: Mapping[str, bool]) -> Any:
    """`node` with Fn::If decided by `conditions`, AWS::NoValue dropped, and Refs to
    parameters replaced by the parameters' defaults."""
    parameters = template.get("Parameters", {})
    if isinstance(node, list):
        items = [resolve(item, template, conditions) for item in node]
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"}:
        name, then, otherwise = node["Fn::If"]
        return resolve(then if conditions[name] else otherwise, template, conditions)
    if set(node) == {"Ref"}:
        target = node["Ref"]
        if target == "AWS::NoValue":
            return NO_VALUE
        if target in parameters and "Default" in parameters[target]:
            default = parameters[target]["Default"]
            return default.split(",") if parameters[target]["Type"].startswith("Comma") else default
        return node
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        text = node["Fn::Sub"]
        for name, parameter in parameters.items():
            if isinstance(parameter.get("Default"), str):
                text = text.replace("${" + name + "}", parameter["Default"])
        return {"Fn::Sub": text}
    resolved = {key: resolve(value, template, conditions) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not NO_VALUE}


def live_resources(template: Mapping[str, Any], conditions: Mapping[str, bool]) -> dict[str, Any]:
    """The template's resources for one choice of conditions, resolved (see resolve)."""
    kept = {
        name: resource
        for name, resource in template["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    resolved: dict[str, Any] = resolve(kept, template, conditions)
    return resolved


def renamed(node: Any, names: Mapping[str, str]) -> Any:
    """`node` with logical ids renamed (in Ref, Fn::GetAtt and ${...} of Fn::Sub)."""
    text = json.dumps(node)
    for old, new in sorted(names.items(), key=lambda item: -len(item[0])):
        text = text.replace(f'"{old}"', f'"{new}"').replace("${" + old, "${" + new)
        text = text.replace(f'"{old}.', f'"{new}.')
    return json.loads(text)


def statements(role: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every statement of every inline policy of an (already resolved) IAM role."""
    found: list[dict[str, Any]] = []
    for policy in role["Properties"].get("Policies", []):
        body = policy["PolicyDocument"]["Statement"]
        found += [copy.deepcopy(s) for s in (body if isinstance(body, list) else [body])]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
