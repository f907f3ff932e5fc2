"""Azurite (Microsoft's storage emulator, npm, pinned in package.json) as a child process.

Started with node directly, not npx (killing npx leaves its child running), in its own
process group, on free loopback ports, in memory; stopped with killpg. A missing
node_modules/azurite is an error that says how to get it (`npm ci`, which `make test`
runs), never a silent skip. Used by tests/azure (fixtures) and bench/cold_start_azure.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "node_modules" / "azurite" / "dist" / "src" / "azurite.js"
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (documented by Microsoft; not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
READY_S = 20.0


class AzuriteMissingError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Azurite:
    blob_port: int
    queue_port: int
    table_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        base = f"http://127.0.0.1:{{}}/{ACCOUNT}"
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
            f"BlobEndpoint={base.format(self.blob_port)};"
            f"QueueEndpoint={base.format(self.queue_port)};"
            f"TableEndpoint={base.format(self.table_port)};"
        )

    def start(self) -> Azurite:
        node = shutil.which("node")
        if node is None or not ENTRY.is_file():
            raise AzuriteMissingError(
                f"Azurite is not installed ({ENTRY} missing or no node on PATH): run "
                "`npm ci` in the repository root (make test does), which installs the "
                "version pinned in package.json"
            )
        args = [node, str(ENTRY), "--inMemoryPersistence", "--skipApiVersionCheck"]
        args += ["--disableTelemetry", "--silent"]
        for service, port in (
            ("blob", self.blob_port),
            ("queue", self.queue_port),
            ("table", self.table_port),
        ):
            args += [f"--{service}Host", "127.0.0.1", f"--{service}Port", str(port)]
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        return self

    def wait(self) -> Azurite:
        """Until every port answers: the SDKs' retry backoff against a port not yet open
        looks like a hang."""
        assert self.process is not None
        deadline = time.monotonic() + READY_S
        pending = [self.blob_port, self.queue_port, self.table_port]
        while pending:
            if self.process.poll() is not None:
                err = (
                    self.process.stderr.read().decode(errors="replace")
                    if self.process.stderr
                    else ""
                )
                raise RuntimeError(f"Azurite exited with {self.process.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Azurite did not open its ports within {READY_S} s")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", pending[0]), timeout=0.2),
            ):
                pending.pop(0)
                continue
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None


def azurite() -> Azurite:
    return Azurite(_free_port(), _free_port(), _free_port())
