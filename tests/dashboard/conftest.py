"""The dashboard under test: the real `imggo-fn serve` (embedded simulator, SQLite in a
temp dir) as a subprocess on a free loopback port, and one headless Chromium."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from tests.dashboard.browser import INSTALL_HINT, Watch, launch

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "out" / "dashboard"
START_DEADLINE_S = 20.0


@dataclass
class Served:
    url: str
    key: str
    data_dir: Path


def _read_banner(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """URL and dev key from what `serve` prints, within a deadline. A thread reads the
    pipe (a buffered readline cannot be bounded); the rest of the output is drained."""
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def pump(stream: IO[str]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, args=(proc.stdout,), daemon=True).start()
    deadline = time.monotonic() + START_DEADLINE_S
    url = key = None
    seen: list[str] = []
    while url is None or key is None:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if found := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
            url = found.group(1)
        if found := re.search(r"dev API key .*: (\S+)", line):
            key = found.group(1)
    if url is None or key is None:
        raise RuntimeError(f"imggo-fn serve did not start: {''.join(seen)!r}")
    return url, key


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("serve")
    # Nothing of the caller's ImgGo or key configuration: the simulator and a dev key.
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGGO")}
    env.update(
        IMGGO_FN_DATA_DIR=str(data),
        IMGGO_FN_STORE_URL=f"sqlite:///{data}/jobs.db",
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggo_cli.main", "serve", "--port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url, key = _read_banner(proc)
        yield Served(url, key, data)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed: {INSTALL_HINT}", pytrace=False)
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@dataclass
class Tab:
    page: object
    watch: Watch
    context: object


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    """A fresh browser session (its own sessionStorage) whose every request is watched."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    watch = Watch()
    context.route("**/*", watch.guard)
    page = context.new_page()
    page.set_default_timeout(8000)
    watch.attach(page)
    yield Tab(page, watch, context)
    context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
