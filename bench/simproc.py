"""Run the simulator in its own process, so its CPU does not share our GIL (as a real,
remote ImgGo would not)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def simulator_process(*args: str) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "imggo_simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                yield found.group(1)
                break
        else:
            raise RuntimeError("the simulator did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
