"""Cold start of the Azure HTTP function against a hand-written floor, in fresh
processes (bench.cold_start has the method).

No Functions host runs here (/work/shared/AZURE.md); each child does what the Python
worker does with a v2-model app: import `function_app`, index it (`get_functions()`),
and call the HTTP function with an `azure.functions.HttpRequest`:

- function: the repository's `function_app.py` (handlers_azure.app: five functions, the
  core, the Table Storage store, the ImgGo client); a 202 with the job stored.
- floor: a `function_app.py` of its own, written by hand: a FunctionApp with one HTTP
  route that imports azure.functions, azure-data-tables and httpx and makes the same
  calls: the key check; the job's index rows (one transaction for the tenant's two, one
  upsert for the pending one) and its `create_entity`; the rate budget's read and its
  write If-Match; the ingest; the `create_entity`
  of ImgGo's id; the index rows of the new status, and the job's replace If-Match.

The function runs with handlers_azure.runtime's defaults, which infra/main.bicep sets
(an azureblob:// upload container and an azurequeue:// work queue, built though this
request uses neither). Secrets are plain app settings on both sides (Key Vault
references, resolved by the platform): no secret reads. Both talk to the same Azurite
and the same ImgGo simulator (its own process).

    python -m bench.cold_start_azure [--runs 7]
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench.cold_start import RUNS, Child, Comparison, child_path, compare, main_for

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "bench-key"
TABLE = "benchjobs"

# The worker's part: index the app, build the binding objects, call the function.
CHILD = """import callprobe; callprobe.start()
import os, uuid
import azure.functions as func
import function_app
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}

class Context:
    invocation_id = uuid.uuid4().hex
    function_name = "http_api"
    trace_context = None

request = func.HttpRequest(
    "POST",
    "http://localhost/v1/jobs",
    headers={"Authorization": "Bearer " + os.environ["BENCH_API_KEY"],
             "Content-Type": "application/json"},
    params={},
    route_params={"path": "v1/jobs"},
    body=b'{"pattern_id": "image-facts", "image_url": "http://127.0.0.1:9/a.png"}',
)
answer = functions[os.environ["BENCH_FUNCTION"]].get_user_function()(request, Context())
callprobe.done(answer.status_code)
"""

# The same calls, by hand; the entities carry the properties the store's do.
FLOOR_APP = """import hashlib, hmac, json, os, time, uuid

import azure.functions as func
import httpx
from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def order(value, job_id):
    return "%016x%s" % (int(value * 1e6), job_id.encode().hex())


def index(table, doc, version):
    common = {"kind": "ix", "job": doc["id"], "v": version, "exp": doc["expires_at"]}
    tenant = "t|" + doc["tenant"]
    newest = order(doc["created_at"], doc["id"])
    table.submit_transaction([
        ("upsert", {"PartitionKey": tenant, "RowKey": "a|" + newest,
                    "ca": doc["created_at"], **common}, {"mode": UpdateMode.REPLACE}),
        ("upsert", {"PartitionKey": tenant, "RowKey": "s|" + doc["status"] + "|" + newest,
                    "ca": doc["created_at"], "st": doc["status"], **common},
         {"mode": UpdateMode.REPLACE}),
    ])
    table.upsert_entity({"PartitionKey": "p|0", "RowKey": order(doc["updated_at"], doc["id"]),
                         "ua": doc["updated_at"], **common}, mode=UpdateMode.REPLACE)


def entity(doc, version):
    return {"PartitionKey": "j|" + doc["id"], "RowKey": "", "kind": "job", "id": doc["id"],
            "v": version, "tenant": doc["tenant"], "st": doc["status"],
            "ca": doc["created_at"], "ua": doc["updated_at"], "exp": doc["expires_at"],
            "doc": json.dumps(doc, separators=(",", ":"))}


@app.function_name("floor")
@app.route(route="{*path}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def floor(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    env = os.environ
    hashes = {d: t for t, _, d in (e.partition("=") for e in env["IMGGO_FN_API_KEYS"].split(","))}
    presented = hashlib.sha256(
        (req.headers.get("Authorization") or "").partition(" ")[2].encode()
    ).hexdigest()
    tenant = None
    for digest, owner in hashes.items():
        if hmac.compare_digest(presented, digest):
            tenant = owner
    if tenant is None:
        return func.HttpResponse(status_code=401)
    body = req.get_json()
    now = time.time()
    doc = {"id": str(uuid.uuid4()), "tenant": tenant, "pattern_id": body["pattern_id"],
           "source": {"kind": "url", "url": body["image_url"]}, "status": "accepted",
           "created_at": now, "updated_at": now, "expires_at": now + 30 * 86400,
           "attempts": 0, "extras": {}}
    table = TableClient.from_connection_string(
        env["AZURE_STORAGE_CONNECTION_STRING"],
        env["IMGGO_FN_STORE_URL"].removeprefix("azuretables://"),
    )
    index(table, doc, 1)
    created = table.create_entity(entity(doc, 1))
    # The ImgGo rate budget's slot: a read, a write If-Match that read.
    slot = {"PartitionKey": "r|bench-budget", "RowKey": "", "kind": "budget",
            "doc": json.dumps({"next_at": now})}
    fresh = False
    try:
        got = table.get_entity("r|bench-budget", "")
    except ResourceNotFoundError:
        table.create_entity({**slot, "v": 1})
        fresh = True
    else:
        table.update_entity({**slot, "v": got["v"] + 1}, mode=UpdateMode.REPLACE,
                            etag=got.metadata["etag"],
                            match_condition=MatchConditions.IfNotModified)
    # verify=True (the default): the TLS context an HTTPS ImgGo needs, built now.
    with httpx.Client(timeout=10.0) as imggo:
        answer = imggo.post(
            env["IMGGO_BASE_URL"] + "/api/patterns/" + doc["pattern_id"] + "/ingest",
            json={"image_url": body["image_url"], "extras": {}, "idempotency_key": doc["id"]},
            headers={"Authorization": "Bearer " + env["IMGGO_API_KEY"],
                     "Idempotency-Key": doc["id"]},
        )
    remote = answer.json()["data"]
    if fresh:  # the budget's first answer: the plan's limit learnt
        learnt = table.get_entity("r|bench-budget", "")
        table.update_entity({**slot, "v": 2}, mode=UpdateMode.REPLACE,
                            etag=learnt.metadata["etag"],
                            match_condition=MatchConditions.IfNotModified)
    table.create_entity({"PartitionKey": "k|imggo:" + remote["job_id"], "RowKey": "",
                         "kind": "key", "job": doc["id"], "exp": doc["expires_at"]})
    doc.update(status="queued", imggo_job_id=remote["job_id"], updated_at=time.time(),
               attempts=1)
    index(table, doc, 2)
    table.update_entity(entity(doc, 2), mode=UpdateMode.REPLACE, etag=created["etag"],
                        match_condition=MatchConditions.IfNotModified)
    return func.HttpResponse(json.dumps(doc), status_code=202, mimetype="application/json",
                             headers={"Location": "/v1/jobs/" + doc["id"]})
"""


@contextlib.contextmanager
def _azurite() -> Iterator[str]:
    from tests.azure.azurite import azurite

    server = azurite().start().wait()
    try:
        yield server.connection_string
    finally:
        server.stop()


def run(
    runs: int = RUNS,
    *,
    connection_string: str | None = None,
    imggo_url: str | None = None,
    warm_up: bool = True,
    count_instructions: bool = True,
) -> Comparison:
    """Both sides, `runs` times, against the given Azurite and ImgGo (each started here
    when not given)."""
    from azure.data.tables import TableServiceClient

    from bench.simproc import simulator_process
    from core.api.auth import hash_key
    from imggo_simulator import DEMO_API_KEY

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        connection_string = connection_string or stack.enter_context(_azurite())
        imggo_url = imggo_url or stack.enter_context(simulator_process("--processing-s", "60"))
        service = TableServiceClient.from_connection_string(connection_string)
        service.create_table_if_not_exists(TABLE)
        service.close()
        floor_dir = work / "floor"
        floor_dir.mkdir()
        (floor_dir / "function_app.py").write_text(FLOOR_APP)
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": child_path(ROOT),
            "AZURE_STORAGE_CONNECTION_STRING": connection_string,
            "IMGGO_FN_STORE_URL": f"azuretables://{TABLE}",
            "IMGGO_FN_DATA_DIR": str(work / "data"),
            "IMGGO_BASE_URL": imggo_url,
            "IMGGO_API_KEY": DEMO_API_KEY,
            "IMGGO_FN_API_KEYS": f"bench={hash_key(API_KEY)}",
            "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
            "BENCH_API_KEY": API_KEY,
        }
        interpreter = [sys.executable, "-s"]
        # `-c` puts the working directory first on the path: each side's own function_app.
        return compare(
            "azure",
            Child(CHILD, interpreter, {**env, "BENCH_FUNCTION": "http_api"}, ROOT),
            Child(CHILD, interpreter, {**env, "BENCH_FUNCTION": "floor"}, floor_dir),
            runs=runs,
            warm_up=warm_up,
            count_instructions=count_instructions,
            function_work="function_app.py indexed (get_functions), http_api called",
            floor_work="a function_app.py by hand, indexed the same: azure-data-tables + httpx",
        )


if __name__ == "__main__":
    main_for("python -m bench.cold_start_azure", run)
