"""Cold start of the Google Cloud HTTP function, against a hand-written floor.

Each sample is a fresh Python process that, from its first line, imports what it needs
and makes the first `POST /v1/jobs` (a JSON image_url submission):

- ours:  functions-framework's `create_app("http_api", "main.py").test_client()` (the
  Flask app gunicorn serves on Cloud Functions), through our handler, the core, the
  Firestore store and the ImgGo client: a 202 with the job stored;
- floor: the least a function could do for the same request: import the Firestore
  client and httpx, one Firestore `create()` of the job document, one ImgGo ingest.

Both talk to the same Firestore emulator and the same simulator (its own process), in
the same run, alternating, several times; the medians are compared. The time is
measured inside the child from its first line, so interpreter start-up (the same for
both) is left out. Goal: ours <= 1.25 x floor.

    python -m bench.cold_start_gcp [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.simproc import simulator_process
from tests.gcp.emulators import PROJECT, firestore_emulator, offline_google_env, running

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.25

OURS = r"""
import time
t0 = time.perf_counter()
import json, os, uuid
from functions_framework import create_app
t_framework = time.perf_counter()
client = create_app("http_api", "main.py").test_client()
r = client.post(
    "/v1/jobs",
    json={"pattern_id": "invoice", "image_url": os.environ["BENCH_IMAGE_URL"]},
    headers={"Authorization": "Bearer bench-key", "Idempotency-Key": uuid.uuid4().hex},
)
assert r.status_code == 202, r.get_data()
end = time.perf_counter()
print(json.dumps({"ms": (end - t0) * 1000, "framework_ms": (t_framework - t0) * 1000}))
"""

FLOOR = r"""
import time
t0 = time.perf_counter()
import json, os, uuid
import httpx
from google.cloud import firestore
job_id = str(uuid.uuid4())
now = time.time()
db = firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])
db.collection("floor_jobs").document(job_id).create({
    "id": job_id, "tenant": "bench", "status": "accepted", "pending": True,
    "version": 1, "created_at": now, "updated_at": now,
    "doc": json.dumps({"id": job_id, "image_url": os.environ["BENCH_IMAGE_URL"]}),
})
r = httpx.post(
    os.environ["IMGGO_BASE_URL"] + "/api/patterns/invoice/ingest",
    json={"image_url": os.environ["BENCH_IMAGE_URL"], "idempotency_key": job_id},
    headers={"Authorization": "Bearer " + os.environ["IMGGO_API_KEY"]},
)
assert r.status_code in (200, 202), r.text
print(json.dumps({"ms": (time.perf_counter() - t0) * 1000}))
"""


def _sample(code: str, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"a cold-start sample failed:\n{done.stderr[-3000:]}")
    # The last stdout line is ours; the function's own JSON log lines come before it.
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(runs: int = 7) -> list[tuple[str, str]]:
    from core.api.auth import hash_key
    from imggo_simulator import DEMO_API_KEY

    with (
        tempfile.TemporaryDirectory() as config_dir,
        running(firestore_emulator()) as (firestore,),
        simulator_process() as sim_url,
    ):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **offline_google_env(config_dir),
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "IMGGO_FN_STORE_URL": "firestore://bench",
            "IMGGO_BASE_URL": sim_url,
            "IMGGO_API_KEY": DEMO_API_KEY,
            "IMGGO_FN_API_KEYS": f"bench={hash_key('bench-key')}",
            "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
            # Nothing listens there: the simulator's later fetch fails, after the 202.
            "BENCH_IMAGE_URL": "http://127.0.0.1:9/bench.png",
        }
        _sample(OURS, env)  # warm the OS file cache and the emulator, not the process
        _sample(FLOOR, env)
        ours: list[dict[str, float]] = []
        floor: list[dict[str, float]] = []
        for i in range(runs):
            pair = [(OURS, ours), (FLOOR, floor)]
            for code, samples in pair if i % 2 == 0 else reversed(pair):
                samples.append(_sample(code, env))
    ours_ms = statistics.median(s["ms"] for s in ours)
    floor_ms = statistics.median(s["ms"] for s in floor)
    framework_ms = statistics.median(s["framework_ms"] for s in ours)
    ratio = ours_ms / floor_ms
    verdict = "meets" if ratio <= GOAL else "misses"
    return [
        (
            f"GCP cold start, ours: import + first POST /v1/jobs (median of {runs})",
            f"{ours_ms:.0f} ms",
        ),
        ("  of which importing functions-framework + Flask", f"{framework_ms:.0f} ms"),
        (
            f"GCP cold start, floor: Firestore create + httpx ingest (median of {runs})",
            f"{floor_ms:.0f} ms",
        ),
        ("GCP cold start ratio ours / floor", f"{ratio:.2f}x ({verdict} the goal <= {GOAL}x)"),
        ("GCP cold start samples, ours (ms)", " ".join(f"{s['ms']:.0f}" for s in ours)),
        ("GCP cold start samples, floor (ms)", " ".join(f"{s['ms']:.0f}" for s in floor)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="GCP HTTP function cold start vs a floor")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    rows = run(args.runs)
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
