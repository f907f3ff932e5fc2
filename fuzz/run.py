"""`make fuzz`: Schemathesis against the OpenAPI document of a real `imggo-fn serve`.

Starts `imggo-fn serve` on a free loopback port (SQLite in a temporary folder, the
embedded simulator, a fuzzing API key, DNS look-ups off so no generated host name
leaves this machine), then runs Schemathesis with every check, positive and negative
data, at least `--max-examples` cases per operation. Exits with Schemathesis' status.

Not part of `make test`: it takes minutes. Run it before a release or after touching
the HTTP surface:  make fuzz  (or: make fuzz FUZZ_EXAMPLES=200 for a quick pass)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FUZZ_KEY = "fuzz_" + "0123456789abcdef" * 2  # local only: a throwaway server per run


def _start_server(bin_dir: Path, data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "IMGGO_FN_DATA_DIR": str(data_dir),
        "IMGGO_FN_STORE_URL": f"sqlite:///{data_dir}/jobs.db",
        "IMGGO_FN_API_KEYS": "local=" + hashlib.sha256(FUZZ_KEY.encode()).hexdigest(),
        "IMGGO_FN_RESOLVE_NAMES": "0",
        "IMGGO_FN_LOG_LEVEL": "WARNING",
    }
    env.pop("IMGGO_API_KEY", None)  # always the embedded simulator
    server = subprocess.Popen(  # noqa: S603 - our own argv
        [str(bin_dir / "imggo-fn"), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    deadline = time.monotonic() + 30
    for line in server.stdout:
        found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        if found:
            url = found.group(1)
            break
        if time.monotonic() > deadline:
            break
    else:
        server.kill()
        raise SystemExit("fuzz: imggo-fn serve did not print its URL")
    # Keep draining its output so the pipe never fills.
    threading.Thread(target=server.stdout.read, daemon=True).start()
    httpx.get(f"{url}/health", timeout=10).raise_for_status()
    return server, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=1000)
    parser.add_argument("--schemathesis", default=str(ROOT / ".venv-fuzz/bin/schemathesis"))
    parser.add_argument("--bin", default=str(Path(sys.executable).parent))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="imggo-fuzz-") as tmp:
        server, url = _start_server(Path(args.bin), Path(tmp))
        try:
            command = [
                args.schemathesis,
                "--config-file",
                str(ROOT / "fuzz/schemathesis.toml"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--mode",
                "all",
                "--max-examples",
                str(args.max_examples),
                "--header",
                f"Authorization: Bearer {FUZZ_KEY}",
                # One worker: Hypothesis's lambda-source parsing is not thread-safe on 3.11.
                "--workers",
                "1",
                "--seed",
                "20261201",
            ]
            print(
                "fuzz:", " ".join(c if FUZZ_KEY not in c else "Authorization: ..." for c in command)
            )
            return subprocess.call(command, cwd=ROOT)  # noqa: S603 - our own argv
        finally:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
