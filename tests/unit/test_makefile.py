"""`make demo` installs only what the demo needs; `make test` installs the rest.

Read from `make -n -B` (print every command, run none), so this checks the real
recipes, not a copy of them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is not installed")
    result = subprocess.run(
        ["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout


def installs(commands: str) -> list[str]:
    return [line for line in commands.splitlines() if "pip install" in line]


def test_demo_installs_the_local_extra_only():
    commands = dry_run("demo")
    assert installs(commands) == [
        ".venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[local]'"
    ]
    assert "imggo-fn ingest examples/" in commands


def test_test_installs_the_development_extra():
    assert any("-e '.[dev]'" in line for line in installs(dry_run("test")))


def test_test_builds_the_azure_worker_venv_on_python_313():
    commands = dry_run("test")
    assert "deploy/find-python.sh 3.13 AZURE_PY313" in commands
    assert any(
        line.startswith(".venv-azure-worker/bin/python -m pip install")
        and "-r deploy/tools/azure-worker-requirements.txt" in line
        for line in installs(commands)
    )
