"""Headless Chromium for the dashboard tests: Debian's `chromium` driven by Playwright
for Python, talking to loopback only.

Playwright's own browser download is never used (it cannot work offline): the browser
is the system one, which `make test` installs. Where it is missing the tests fail and
say how to get it; they never skip.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

INSTALL_HINT = (
    "the dashboard tests need Debian's chromium and the Python package playwright: "
    "run `make test` (it installs both), or `apt-get install chromium` and "
    "`pip install -e '.[dev]'`"
)
LOOPBACK = "127.0.0.1"


def chromium_path() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found:
        pytest.fail(f"no chromium on PATH: {INSTALL_HINT}", pytrace=False)
    return found


def launch(playwright):
    return playwright.chromium.launch(
        executable_path=chromium_path(),
        # Chromium's sandbox cannot start as root (it says so and exits); anyone else
        # keeps it.
        chromium_sandbox=os.geteuid() != 0,
        # No name resolves: whatever tried to reach another host could not even look it up.
        args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
    )


@dataclass
class Watch:
    """What a page did that a test asserts on: console errors, uncaught exceptions,
    every URL requested, and the requests refused for leaving loopback."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    api_auth: list[str | None] = field(default_factory=list)  # Authorization of /v1 calls

    def guard(self, route) -> None:
        url = route.request.url
        self.requested.append(url)
        if urlsplit(url).path.startswith("/v1/"):
            self.api_auth.append(route.request.headers.get("authorization"))
        if urlsplit(url).hostname == LOOPBACK:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    def attach(self, page) -> None:
        page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
