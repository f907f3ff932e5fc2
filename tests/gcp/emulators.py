"""Google's own Firestore and Pub/Sub emulators as child processes, on loopback.

Each runs in its own process group (a shell script starts a JVM: killing the script alone
would orphan the JVM), is waited for until its port answers, and is stopped with killpg.
They ship with the Google Cloud SDK and cannot be installed from a package registry, so
a missing one is an error with instructions, never a silent skip.

Used by tests/gcp (fixtures) and bench/cold_start_gcp.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

PROJECT = "demo-imggo"  # the emulators accept any project id; "demo-" marks it fake

FIRESTORE_REL = "platform/cloud-firestore-emulator/cloud_firestore_emulator"
PUBSUB_REL = "platform/pubsub-emulator/bin/cloud-pubsub-emulator"


class EmulatorMissingError(RuntimeError):
    pass


def sdk_root() -> Path | None:
    """The Cloud SDK's root: $IMGGO_GCLOUD_SDK_ROOT, else where the `gcloud` on PATH lives
    (bin/gcloud under the root; found without running gcloud, which is slow), else what
    `gcloud info` says."""
    given = os.environ.get("IMGGO_GCLOUD_SDK_ROOT")
    if given:
        return Path(given)
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    root = Path(gcloud).resolve().parent.parent
    if (root / "platform").is_dir():
        return root
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            [gcloud, "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"},
        ).stdout.strip()
        if out:
            return Path(out)
    return None


def _binary(rel: str, what: str) -> Path:
    root = sdk_root()
    path = root / rel if root is not None else None
    if path is None or not path.exists():
        raise EmulatorMissingError(
            f"the {what} is not installed (looked for $SDK/{rel}, SDK="
            f"{root or 'not found: no gcloud on PATH'}). It ships with the Google Cloud "
            "SDK and needs Java 11+; install the SDK component "
            f"({'cloud-firestore-emulator' if 'firestore' in rel else 'pubsub-emulator'}) "
            "or set IMGGO_GCLOUD_SDK_ROOT. The GCP tests need it and do not skip."
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Emulator:
    """One emulator process. `host` is what FIRESTORE_/PUBSUB_EMULATOR_HOST take."""

    def __init__(self, name: str, argv: list[str], port: int) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as we do
            prefix=f"{name}-", suffix=".log", delete=False
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Emulator:
        self.proc = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, for killpg
        )
        return self

    def wait(self, timeout: float = 60.0) -> Emulator:
        try:
            wait_for_port(self.port, timeout, self.proc)
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = Path(self._log.name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


def firestore_emulator(port: int | None = None) -> Emulator:
    port = port or free_port()
    binary = _binary(FIRESTORE_REL, "Firestore emulator")
    return Emulator(
        "firestore-emulator",
        [str(binary), "start", "--host=127.0.0.1", f"--port={port}"],
        port,
    )


def pubsub_emulator(port: int | None = None) -> Emulator:
    port = port or free_port()
    binary = _binary(PUBSUB_REL, "Pub/Sub emulator")
    return Emulator(
        "pubsub-emulator",
        [str(binary), "--host=127.0.0.1", f"--port={port}"],
        port,
    )


@contextlib.contextmanager
def running(*emulators: Emulator, timeout: float = 60.0) -> Iterator[tuple[Emulator, ...]]:
    """Start all, then wait for all (they boot in parallel), and stop all at the end."""
    try:
        for emulator in emulators:
            emulator.start()
        for emulator in emulators:
            emulator.wait(timeout)
        yield emulators
    finally:
        for emulator in emulators:
            emulator.stop()


def offline_google_env(config_dir: str) -> dict[str, str]:
    """Variables that keep google-auth and the SDKs on this machine: no metadata server
    probe (and its DNS lookup), no gcloud user credentials, a fixed fake project."""
    return {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "NO_GCE_CHECK": "True",
        # If anything still asked the metadata server, it would get a refused connection on
        # loopback instead of a lookup of metadata.google.internal.
        "GCE_METADATA_HOST": "127.0.0.1:9",
        "GCE_METADATA_IP": "127.0.0.1:9",
        "CLOUDSDK_CONFIG": config_dir,
    }
