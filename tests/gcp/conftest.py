"""Fixtures for the Google Cloud flavour: the emulators, an environment that can never
reach Google (no metadata server, no gcloud credentials, a fake project), and helpers.

The emulators are package-scoped (each boots a JVM: seconds; they stop, and the
environment is restored, once the last GCP test is done), started in their own process
group and killed with it. A missing emulator fails the tests that need it with
instructions; it does not skip them.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gcp.dnsguard.dns_guard import guarded_getaddrinfo
from tests.gcp.emulators import (
    PROJECT,
    Emulator,
    EmulatorMissingError,
    firestore_emulator,
    offline_google_env,
    pubsub_emulator,
)

DNS_GUARD_DIR = Path(__file__).resolve().parent / "dnsguard"


@pytest.fixture(scope="package", autouse=True)
def offline_google(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    config_dir = tmp_path_factory.mktemp("gcloud-config")
    env = offline_google_env(str(config_dir))
    # Child processes (the functions) load the DNS guard through sitecustomize; this
    # process gets the same guard directly.
    env["PYTHONPATH"] = str(DNS_GUARD_DIR)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
        for name, value in env.items():
            mp.setenv(name, value)
        for name in (
            "GOOGLE_APPLICATION_CREDENTIALS",
            "FIRESTORE_EMULATOR_HOST",
            "PUBSUB_EMULATOR_HOST",
            "STORAGE_EMULATOR_HOST",
        ):
            mp.delenv(name, raising=False)
        yield env


def _start(make: object) -> Emulator:
    try:
        emulator: Emulator = make()  # type: ignore[operator]
    except EmulatorMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    return emulator


@pytest.fixture(scope="package")
def firestore_host(offline_google: dict[str, str]) -> Iterator[str]:
    emulator = _start(firestore_emulator).start().wait()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
        try:
            yield emulator.host
        finally:
            emulator.stop()


@pytest.fixture(scope="package")
def pubsub_host(offline_google: dict[str, str]) -> Iterator[str]:
    emulator = _start(pubsub_emulator).start().wait()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PUBSUB_EMULATOR_HOST", emulator.host)
        try:
            yield emulator.host
        finally:
            emulator.stop()


@pytest.fixture
def collection_prefix() -> str:
    """A fresh store per test: its own collections in the shared emulator."""
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def project() -> str:
    return PROJECT


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
