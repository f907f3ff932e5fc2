"""Cold start of the Google Cloud HTTP function against a hand-written floor, in fresh
processes (bench.cold_start has the method).

Both sides are loaded as Cloud Functions loads a function: functions-framework's
`create_app(target, source)` (the Flask app gunicorn serves), then its first request
through Flask's test client:

- function: `create_app("http_api", "main.py")`: our handler, the core, the Firestore
  store and the ImgGo client; a 202 with the job stored.
- floor: `create_app("floor", <a file of its own>)`: a function written by hand with the
  Firestore client and httpx that makes the same calls: the key check, the job's
  `create()`, the rate budget's read and conditional write, the ingest, the `create()`
  of ImgGo's id, the job's update with its
  update-time precondition.

The function gets the settings deploy/gcp.sh gives it (a gs:// blob store and a
pubsub:// queue, which it builds though this request uses neither). Secrets are plain
variables on both sides (what `gcloud functions deploy --set-secrets` injects): no
secret reads. Both talk to the same Firestore emulator and the same ImgGo simulator
(its own process).

    python -m bench.cold_start_gcp [--runs 7]
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.cold_start import RUNS, Child, Comparison, child_path, compare, main_for

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
PREFIX = "bench"

_REQUEST = """
client = app.test_client()
answer = client.post(
    "/v1/jobs",
    json={"pattern_id": "image-facts", "image_url": "http://127.0.0.1:9/a.png"},
    headers={"Authorization": "Bearer " + os.environ["BENCH_API_KEY"]},
)
"""

FUNCTION = (
    """import callprobe; callprobe.start()
import os
from functions_framework import create_app
app = create_app("http_api", "main.py")
"""
    + _REQUEST
    + "callprobe.done(answer.status_code)\n"
)

# The same calls, by hand; the documents carry the fields the store's do.
FLOOR_SOURCE = """import hashlib, hmac, json, os, time, uuid
from datetime import datetime, timezone

import flask
import functions_framework
import httpx
from google.cloud import firestore


def fields(doc, version):
    return {"id": doc["id"], "tenant": doc["tenant"], "status": doc["status"],
            "pending": True, "version": version, "created_at": doc["created_at"],
            "updated_at": doc["updated_at"], "exp": doc["expires_at"],
            "expires_at": datetime.fromtimestamp(doc["expires_at"], timezone.utc),
            "doc": json.dumps(doc, separators=(",", ":"))}


@functions_framework.http
def floor(request):
    env = os.environ
    hashes = {d: t for t, _, d in (e.partition("=") for e in env["IMGGO_FN_API_KEYS"].split(","))}
    presented = hashlib.sha256(
        request.headers.get("Authorization", "").partition(" ")[2].encode()
    ).hexdigest()
    tenant = None
    for digest, owner in hashes.items():
        if hmac.compare_digest(presented, digest):
            tenant = owner
    if tenant is None:
        return flask.Response(status=401)
    body = request.get_json()
    now = time.time()
    doc = {"id": str(uuid.uuid4()), "tenant": tenant, "pattern_id": body["pattern_id"],
           "source": {"kind": "url", "url": body["image_url"]}, "status": "accepted",
           "created_at": now, "updated_at": now, "expires_at": now + 30 * 86400,
           "attempts": 0, "extras": {}}
    db = firestore.Client(project=env["GOOGLE_CLOUD_PROJECT"])
    prefix = env["IMGGO_FN_STORE_URL"].removeprefix("firestore://")
    job = db.collection(prefix + "_jobs").document(doc["id"])
    written = job.create(fields(doc, 1))
    # The ImgGo rate budget's slot: a read, a write conditional on that read.
    budget = db.collection(prefix + "_budgets").document("bench-budget")
    snap = budget.get()
    if snap.exists:
        budget.update({"v": snap.get("v") + 1, "doc": json.dumps({"next_at": now})},
                      option=db.write_option(last_update_time=snap.update_time))
    else:
        budget.create({"v": 1, "doc": json.dumps({"next_at": now})})
    # verify=True (the default): the TLS context an HTTPS ImgGo needs, built now.
    with httpx.Client(timeout=10.0) as imggo:
        answer = imggo.post(
            env["IMGGO_BASE_URL"] + "/api/patterns/" + doc["pattern_id"] + "/ingest",
            json={"image_url": body["image_url"], "extras": {}, "idempotency_key": doc["id"]},
            headers={"Authorization": "Bearer " + env["IMGGO_API_KEY"],
                     "Idempotency-Key": doc["id"]},
        )
    remote = answer.json()["data"]
    if not snap.exists:  # the budget's first answer: the plan's limit learnt
        learnt = budget.get()
        budget.update({"v": 2, "doc": json.dumps({"next_at": now, "limit": 60})},
                      option=db.write_option(last_update_time=learnt.update_time))
    key = "imggo:" + remote["job_id"]
    db.collection(prefix + "_keys").document(key.replace(":", "_")).create(
        {"key": key, "job_id": doc["id"], "exp": doc["expires_at"],
         "expires_at": datetime.fromtimestamp(doc["expires_at"], timezone.utc)}
    )
    doc.update(status="queued", imggo_job_id=remote["job_id"], updated_at=time.time(),
               attempts=1)
    job.update(fields(doc, 2), option=db.write_option(last_update_time=written.update_time))
    return flask.Response(json.dumps(doc), status=202, mimetype="application/json",
                          headers={"Location": "/v1/jobs/" + doc["id"]})
"""

FLOOR = (
    """import callprobe; callprobe.start()
import os
from functions_framework import create_app
app = create_app("floor", os.environ["BENCH_FLOOR_SOURCE"])
"""
    + _REQUEST
    + "callprobe.done(answer.status_code)\n"
)


@contextlib.contextmanager
def _firestore() -> Iterator[str]:
    from tests.gcp.emulators import firestore_emulator, running

    with running(firestore_emulator()) as (emulator,):
        yield emulator.host


def run(
    runs: int = RUNS,
    *,
    firestore_host: str | None = None,
    imggo_url: str | None = None,
    warm_up: bool = True,
    count_instructions: bool = True,
    path_first: Sequence[Path] = (),
) -> Comparison:
    """Both sides, `runs` times, against the given Firestore emulator and ImgGo (each
    started here when not given). `path_first`: directories put first on the children's
    path (the tests' DNS guard)."""
    from bench.simproc import simulator_process
    from core.api.auth import hash_key
    from imggo_simulator import DEMO_API_KEY
    from tests.gcp.emulators import PROJECT, offline_google_env

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        firestore_host = firestore_host or stack.enter_context(_firestore())
        imggo_url = imggo_url or stack.enter_context(simulator_process("--processing-s", "60"))
        floor_source = work / "floor" / "main.py"
        floor_source.parent.mkdir()
        floor_source.write_text(FLOOR_SOURCE)
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": child_path(*path_first, ROOT),
            **offline_google_env(str(work)),
            "FIRESTORE_EMULATOR_HOST": firestore_host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            # What deploy/gcp.sh sets: the function builds these adapters too.
            "IMGGO_FN_STORE_URL": f"firestore://{PREFIX}",
            "IMGGO_FN_BLOB_URL": "gs://bench-uploads",
            "IMGGO_FN_QUEUE_URL": f"pubsub://projects/{PROJECT}/topics/bench-work",
            "IMGGO_FN_GCS_SIGNER_EMAIL": f"bench@{PROJECT}.iam.gserviceaccount.com",
            "IMGGO_FN_DATA_DIR": str(work / "data"),
            "IMGGO_BASE_URL": imggo_url,
            "IMGGO_API_KEY": DEMO_API_KEY,
            "IMGGO_FN_API_KEYS": f"bench={hash_key(API_KEY)}",
            "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
            "BENCH_API_KEY": API_KEY,
            "BENCH_FLOOR_SOURCE": str(floor_source),
        }
        interpreter = [sys.executable, "-s"]
        return compare(
            "gcp",
            Child(FUNCTION, interpreter, env, ROOT),
            Child(FLOOR, interpreter, env, ROOT),
            runs=runs,
            warm_up=warm_up,
            count_instructions=count_instructions,
            function_work='functions-framework create_app("http_api", "main.py"), test client',
            floor_work="create_app of a function by hand: Firestore client + httpx.Client",
        )


if __name__ == "__main__":
    main_for("python -m bench.cold_start_gcp", run)
