"""open_store: configuration picks the backend, and only that backend is imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.adapters.clock import ManualClock
from core.adapters.sqlite.database import path_from_url
from core.adapters.stores import SUPPORTED_SCHEMES, open_store
from core.adapters.stores.memory import MemoryJobStore
from core.adapters.stores.sqlite import SqliteJobStore

REPO = Path(__file__).resolve().parents[2]


def test_memory_url_gives_a_fresh_memory_store_each_time() -> None:
    first, second = open_store("memory://"), open_store("memory://")
    assert isinstance(first, MemoryJobStore)
    assert first is not second


def test_clock_is_passed_through() -> None:
    clock = ManualClock()
    store = open_store("memory://", clock=clock)
    assert store.claim_key("k", "j", expires_at=clock.now() + 1, now=clock.now()) == "j"
    assert isinstance(store, MemoryJobStore)


def test_absolute_sqlite_url_creates_parent_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "jobs.db"
    store = open_store(f"sqlite://{target}")
    assert isinstance(store, SqliteJobStore)
    try:
        assert Path(store.path) == target
        assert target.exists()
    finally:
        store.close()


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///./data/jobs.db")
    assert isinstance(store, SqliteJobStore)
    try:
        assert (tmp_path / "data" / "jobs.db").exists()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///abs/path.db", "/abs/path.db"),
        ("sqlite:///./relative.db", "./relative.db"),
        ("sqlite:///../up/relative.db", "../up/relative.db"),
        ("sqlite:///tmp/with%20space.db", "/tmp/with space.db"),
        ("sqlite:///C:/data/jobs.db", "C:/data/jobs.db"),
        ("SQLITE:///abs/path.db", "/abs/path.db"),
    ],
)
def test_sqlite_url_paths(url: str, path: str) -> None:
    assert path_from_url(url) == path


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://host/path.db",
        "sqlite://",
        "sqlite:///",
        "sqlite:///:memory:",
        "sqlite:///x.db?mode=ro",
        "memory://something",
    ],
)
def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        open_store(url)


@pytest.mark.parametrize("url", ["postgres://db/jobs", "jobs.db", "", "dynamodb-ish:table"])
def test_unknown_scheme_lists_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError) as info:
        open_store(url)
    for scheme in SUPPORTED_SCHEMES:
        assert scheme in str(info.value)


def test_error_message_does_not_echo_the_url() -> None:
    with pytest.raises(ValueError) as info:
        open_store("mongodb://user:s3cret@host/db")
    assert "s3cret" not in str(info.value)


def test_backends_are_imported_only_when_their_scheme_is_used() -> None:
    # A fresh interpreter: this one has long since imported everything.
    probe = textwrap.dedent(
        """
        import sys
        import core.adapters.stores as stores
        loaded = lambda: {m for m in sys.modules if m.startswith("core.adapters.stores.")}
        assert "sqlite3" not in sys.modules, "sqlite3 imported by the package"
        assert loaded() == set(), loaded()
        stores.open_store("memory://")
        assert "sqlite3" not in sys.modules, "sqlite3 imported for memory://"
        assert loaded() == {
            "core.adapters.stores.memory",
            "core.adapters.stores._base",
            "core.adapters.stores._common",
            "core.adapters.stores._manifests",
            "core.adapters.stores._records",
        }
        """
    )
    subprocess.run([sys.executable, "-c", probe], cwd=REPO, check=True, timeout=60)
