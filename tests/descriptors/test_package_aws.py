"""`make package-aws` builds with the Lambda runtime's Python or not at all: without a
3.12 interpreter it stops, saying so, before anything is built (an artifact without
bytecode recompiles every module on every cold start: /var/task is read-only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.descriptors.cfn import ROOT

FINDER = ROOT / "deploy" / "find-python312.sh"


def test_the_finder_names_a_python_312() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AWS_PY312"}
    done = subprocess.run(["bash", str(FINDER)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # these machines have one (pyenv)
    interpreter = done.stdout.strip()
    version = subprocess.run(
        [interpreter, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
    )
    assert version.stdout.strip() == "(3, 12)"


def test_a_wrong_interpreter_is_refused() -> None:
    env = {**os.environ, "AWS_PY312": sys.executable}  # the dev venv's 3.11
    done = subprocess.run(["bash", str(FINDER)], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert "is not a Python 3.12 interpreter" in done.stderr


def test_package_aws_stops_before_building_without_312(tmp_path: Path) -> None:
    build = tmp_path / "aws"
    # No python3.12 or pyenv on PATH, and no AWS_PY312: nothing to compile with.
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("make", "bash", "sh", "env", "find", "rm", "mkdir", "cp", "cat", "grep", "sort"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        if found.stdout.strip():
            (bare / tool).symlink_to(found.stdout.strip())
    env = {"PATH": str(bare), "HOME": str(tmp_path)}
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "package-aws",
            f"AWS_BUILD={build}",
            f"AWS_ZIP={tmp_path / 'aws.zip'}",
            "AWS_PIP=false",  # would fail loudly if the recipe got as far as installing
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no Python 3.12 found" in done.stderr, done.stdout + done.stderr
    assert "AWS_PY312=" in done.stderr
    assert not build.exists() and not (tmp_path / "aws.zip").exists()
