"""The descriptors' generated CloudFormation, made once per session: the SAM transform of
template.yaml and `osls package` of serverless.yml (a few seconds each)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.descriptors.cfn import ToolMissingError, osls_package, sam_template


@pytest.fixture(scope="session")
def osls_template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return osls_package(tmp_path_factory.mktemp("osls"))
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def osls_cfn(osls_template_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(osls_template_path.read_text())
    return loaded


@pytest.fixture
def sam_cfn() -> dict[str, Any]:
    return sam_template()
