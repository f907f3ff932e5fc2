"""Servers in their own processes, so their CPU does not share our GIL (as a real,
remote ImgGo or another instance would not): the simulator, or `imggo-fn serve`."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager


@contextmanager
def listening_process(
    argv: Sequence[str], env: Mapping[str, str] | None = None, *, quiet: bool = False
) -> Iterator[str]:
    """Start `argv`, yield the URL from its "listening on http://..." line, and stop it
    on leaving. Its later output is read on, so a full pipe never blocks it; `quiet`
    drops its log lines (stderr) too."""
    proc = subprocess.Popen(
        list(argv),
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL if quiet else None,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                threading.Thread(target=proc.stdout.read, daemon=True).start()
                yield found.group(1)
                break
        else:
            raise RuntimeError(f"{argv[2] if len(argv) > 2 else argv[0]} did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@contextmanager
def simulator_process(*args: str) -> Iterator[str]:
    with listening_process([sys.executable, "-m", "imggo_simulator", "--port", "0", *args]) as url:
        yield url
