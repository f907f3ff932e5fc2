"""The validators a reviewer would run, on every descriptor: `sam validate --lint` (SAM
CLI, offline, on the Lambda runtime's Python 3.12) and checkov on template.yaml and on
the CloudFormation osls generates from serverless.yml. A check checkov skips must say
why, next to the resource it skips. The tools live in their own venvs (`make tools`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.descriptors.cfn import ROOT

SAM = ROOT / ".venv-sam" / "bin" / "sam"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def tool(path: Path) -> str:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)
    return str(path)


def offline_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),  # no user config, no credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAM_CLI_TELEMETRY": "0",
        "LANG": "C.UTF-8",
    }


def test_sam_validate_lint(tmp_path: Path) -> None:
    done = subprocess.run(
        [tool(SAM), "validate", "--lint", "--template-file", str(ROOT / "template.yaml")],
        cwd=ROOT,
        env=offline_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


def checkov(path: Path, home: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            tool(CHECKOV),
            "--file",
            str(path),
            "--framework",
            "cloudformation",
            "--skip-download",  # nothing from any platform: offline, and the same every run
            "--output",
            "json",
        ],
        cwd=ROOT,
        env=offline_env(home),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("descriptor", ["template.yaml", "serverless.yml"])
def test_checkov_passes_and_every_skip_is_justified(
    descriptor: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if descriptor == "template.yaml":
        path = ROOT / "template.yaml"
    else:
        path = request.getfixturevalue("osls_template_path")
    report = checkov(path, tmp_path)
    results = report["results"]
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == [], f"{descriptor}: checkov fails {failed}"
    assert report["summary"]["passed"] > 20, "checkov checked next to nothing"
    for skipped in results["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment") or ""
        assert len(reason.strip()) > 20, f"{descriptor}: {skipped['check_id']} skipped without why"
