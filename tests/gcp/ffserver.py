"""functions-framework's real server (gunicorn, as on Cloud Functions) in a child process,
one per target, on a free loopback port. Stdout (our Cloud Logging JSON) goes to a file
the tests read."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.gcp.emulators import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]


def deployed_api_threads() -> str:
    """The API's THREADS as deploy/gcp.sh deploys it (its concurrency), so the tests run
    the deployed setting rather than a number of their own."""
    match = re.search(r"^API_CONCURRENCY=(\d+)$", (ROOT / "deploy" / "gcp.sh").read_text(), re.M)
    assert match, "deploy/gcp.sh has no API_CONCURRENCY default"
    return match.group(1)


class FunctionServer:
    def __init__(self, target: str, env: Mapping[str, str], cwd: Path) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        threads = deployed_api_threads() if target == "http_api" else "8"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept for the server's life
            prefix=f"ff-{target}-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                target,
                "--source",
                str(cwd / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            cwd=cwd,
            # Event functions get one request at a time on Cloud Functions; 8 threads here
            # only let the tests deliver in parallel.
            env={**env, "PYTHONUNBUFFERED": "1", "THREADS": threads},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def wait(self, timeout: float = 30.0) -> FunctionServer:
        try:
            wait_for_port(self.port, timeout, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{self.target} did not start: {exc}\n{self.output()}") from exc
        return self

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def log_entries(self) -> list[dict[str, Any]]:
        entries = []
        for line in self.output().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict):
                    entries.append(entry)
        return entries

    def wait_for_log(self, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for entry in self.log_entries():
                if predicate(entry):
                    return entry
            if time.monotonic() > deadline:
                raise AssertionError(f"no such log entry from {self.target}:\n{self.output()}")
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)  # gunicorn: quick shutdown
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)
