"""function_app.py through the real Python worker: `azure-functions-runtime`, the library
worker of Python 3.13+, on a Python 3.13 in its own venv (`make azure-worker`), driven
by tests/azure/worker_host.py as the host drives it. The app directory is what
`func azure functionapp publish` would upload (tests/azure/publish.py), with the app's
requirements.txt installed. The worker imports the app and indexes it itself; what it
reports to the host must be every one of our functions with the bindings we declare, and
the HTTP function (and a queue message) invoked through the worker's own conversion of
the host's messages must answer as the core does, on Azurite's Table, Queue and Blob
storage and the ImgGo simulator.

Without a Python 3.13 this tier fails, saying how to get one: it is never skipped."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.adapters.azure.blob_store import AzureBlobStore
from core.adapters.azure.storage_queue import StorageQueue
from core.adapters.azure.table_store import AzureTableJobStore
from core.api.auth import hash_key
from core.service.submit import job_id_for_key
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.azure.azurite import Azurite
from tests.azure.conftest import unique
from tests.azure.functions_host import ROOT
from tests.azure.publish import stage
from tests.support.images import png

WORKER_VENV = ROOT / ".venv-azure-worker"
WORKER_PYTHON = WORKER_VENV / "bin" / "python"
DRIVER = ROOT / "tests" / "azure" / "worker_host.py"
API_KEY = "azure-worker-key-tenant-a"
TENANT = "tenant-a"

# The bindings as handlers_azure.app declares them, spelled out: what the host must read.
DECLARED: dict[str, list[dict[str, Any]]] = {
    "http_api": [
        {
            "direction": "IN",
            "type": "httpTrigger",
            "name": "req",
            "methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            "authLevel": "ANONYMOUS",
            "route": "{*path}",
        },
        {"direction": "OUT", "type": "http", "name": "$return"},
    ],
    "queue_work": [
        {
            "direction": "IN",
            "type": "queueTrigger",
            "name": "msg",
            "queueName": "%IMGGO_FN_QUEUE_NAME%",
            "connection": "AzureWebJobsStorage",
        }
    ],
    "queue_poison": [
        {
            "direction": "IN",
            "type": "queueTrigger",
            "name": "msg",
            "queueName": "%IMGGO_FN_QUEUE_NAME%-poison",
            "connection": "AzureWebJobsStorage",
        }
    ],
    "upload_landed": [
        {
            "direction": "IN",
            "type": "blobTrigger",
            "name": "blob",
            "path": "%IMGGO_FN_UPLOAD_CONTAINER%/incoming/{name}",
            "connection": "AzureWebJobsStorage",
            "source": "EventGrid",
        }
    ],
    "reconcile": [
        {
            "direction": "IN",
            "type": "timerTrigger",
            "name": "timer",
            "schedule": "%IMGGO_FN_RECONCILE_SCHEDULE%",
            "runOnStartup": False,
            "useMonitor": True,
        }
    ],
}


def worker_python() -> str:
    if not WORKER_PYTHON.exists():
        pytest.fail(
            f"{WORKER_VENV.relative_to(ROOT)} is missing: this tier runs the real Azure "
            "Functions worker, which needs Python 3.13. Run `make azure-worker` (it finds "
            "a 3.13 on PATH or under pyenv; without one: `pyenv install 3.13`, or "
            "AZURE_PY313=/path/to/python3.13 make azure-worker)",
            pytrace=False,
        )
    return str(WORKER_PYTHON)


def http(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> dict[str, Any]:
    return {
        "function": "http_api",
        "http": {
            "method": method,
            "path": path,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
        },
    }


AUTH = {"authorization": f"Bearer {API_KEY}"}
IMAGE_KEY = "worker-tier-image-1"
INVOCATIONS = [
    http("GET", "/health", {}),
    http("GET", "/v1/jobs", {}),
    http(
        "POST",
        "/v1/jobs?pattern_id=image-facts",
        {**AUTH, "content-type": "image/png", "idempotency-key": IMAGE_KEY},
        png(5),
    ),
    http("GET", f"/v1/jobs/{job_id_for_key(TENANT, IMAGE_KEY)}", AUTH),
    http("GET", "/v1/jobs/nope", {**AUTH, "x-request-id": "req-worker-1"}),
    http("POST", "/v1/jobs", {**AUTH, "content-type": "application/json"}, b'{"pattern_id":'),
    {"function": "queue_work", "queue": {"id": "m-1", "dequeue_count": 1, "body": "not ours"}},
]


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorServer]:
    server = SimulatorServer(SimulatorConfig(processing_s=0.05)).start()
    yield server
    server.stop()


def run_worker(app_dir: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    spec, out = work / "spec.json", work / "answer.json"
    spec.write_text(json.dumps({"invocations": INVOCATIONS}))
    done = subprocess.run(
        [worker_python(), "-I", str(DRIVER), str(app_dir), str(spec), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(out.read_text())
    assert answer["python"][:2] == [3, 13], answer["python"]
    return answer


@pytest.fixture(scope="module")
def storage_names(azurite_server: Azurite) -> Iterator[dict[str, Any]]:
    """A table, queue and container of their own in Azurite, made as the template makes
    them in Azure."""
    names = {"table": unique("jobs"), "queue": unique("work"), "container": unique("uploads")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server.connection_string)
        AzureBlobStore(names["container"]).create_container()
        store = AzureTableJobStore(names["table"])
        store.create_table()
        StorageQueue(names["queue"]).create()
        yield {**names, "store": store}
        store.client.delete_table()
        store.close()


@pytest.fixture(scope="module")
def worker(
    simulator: SimulatorServer,
    azurite_server: Azurite,
    storage_names: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("worker")
    connection = azurite_server.connection_string
    env = {
        # Nothing of the developer's environment: the app settings the platform would set
        # (the adapters' URLs follow from the two names, as in Azure).
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "LANG": "C.UTF-8",
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": connection,
        "AZURE_STORAGE_CONNECTION_STRING": connection,
        "IMGGO_FN_STORE_URL": f"azuretables://{storage_names['table']}",
        "IMGGO_FN_QUEUE_NAME": storage_names["queue"],
        "IMGGO_FN_UPLOAD_CONTAINER": storage_names["container"],
        "IMGGO_FN_RECONCILE_SCHEDULE": "0 */5 * * * *",
        "IMGGO_FN_DATA_DIR": str(work / "data"),
        "IMGGO_BASE_URL": simulator.url,
        "IMGGO_API_KEY": DEMO_API_KEY,
        "IMGGO_WEBHOOK_SECRET": "whsec-worker-tier",
        "IMGGO_FN_API_KEYS": f"{TENANT}={hash_key(API_KEY)}",
        "IMGGO_FN_RESOLVE_NAMES": "0",
        "IMGGO_FN_SUBMIT_DEADLINE_S": "5",
        "IMGGO_TIMEOUT_S": "2",
    }
    return run_worker(stage(work / "wwwroot"), work, env)


def test_the_worker_indexes_every_function_with_the_bindings_we_declare(
    worker: dict[str, Any],
) -> None:
    init = worker["init"]
    assert init["status"] == "Success", f"{worker['versions']}: {init['exception']}"
    assert worker["metadata"]["status"] == "Success"
    functions = worker["functions"]
    assert set(functions) == set(DECLARED)
    for name, indexed in functions.items():
        assert indexed["load"]["status"] == "Success", (name, indexed["load"])
        assert indexed["entry_point"] == name
        assert indexed["script_file"] == "function_app.py"
        assert indexed["language"] == "python"
        assert indexed["properties"] == {"worker_indexed": "True"}  # indexed by the worker
        assert indexed["raw_bindings"] == DECLARED[name], name
        assert indexed["bindings"] == {
            b["name"]: {"type": b["type"], "direction": b["direction"].lower()}
            for b in DECLARED[name]
        }


def answers(worker: dict[str, Any]) -> list[dict[str, Any]]:
    """Each invocation's HTTP answer, body decoded (None for a function without one)."""
    out = []
    for number, invocation in enumerate(worker["invocations"]):
        assert invocation["status"] == "Success", (INVOCATIONS[number], invocation)
        answer = (invocation["return"] or {}).get("http")
        if answer is not None:
            answer = {**answer, "body": base64.b64decode(answer["body"])}
        out.append(answer)
    return out


def test_the_http_function_answers_through_the_workers_invocation_path(
    worker: dict[str, Any], storage_names: dict[str, Any]
) -> None:
    health, anonymous, posted, read, missing, malformed, queued = answers(worker)
    assert health["status"] == 200
    assert json.loads(health["body"])["status"] == "ok"
    # The worker's invocation id reaches the function as the context's: our request id.
    assert health["headers"]["X-Request-Id"] == "invocation-0"
    assert anonymous["status"] == 401
    assert json.loads(anonymous["body"])["error"]["code"]
    # The image bytes travel through the worker's body conversion to the core, to ImgGo.
    assert posted["status"] == 202, posted["body"]
    job = json.loads(posted["body"])
    assert job["id"] == job_id_for_key(TENANT, IMAGE_KEY)
    assert read["status"] == 200 and json.loads(read["body"])["id"] == job["id"]
    assert json.loads(read["body"])["imggo_job_id"]  # ImgGo (the simulator) took the image
    stored = storage_names["store"].get(job["id"])  # written by the worker's process
    assert stored is not None and stored.tenant == TENANT
    assert missing["status"] == 404
    assert missing["headers"]["X-Request-Id"] == "req-worker-1"
    assert set(json.loads(missing["body"])["error"]) == {"code", "message", "details"}
    assert malformed["status"] == 400
    assert json.loads(malformed["body"])["error"]["code"] == "invalid_json"
    # A message we did not write: acknowledged (a return, not a raise: no redelivery).
    assert queued is None


def test_without_python_313_the_tier_stops_saying_how_to_get_one(tmp_path: Path) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("make", "bash", "sh", "env", "grep", "sort", "cat", "test"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        if found.stdout.strip():
            (bare / tool).symlink_to(found.stdout.strip())
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "--no-print-directory", "azure-worker", f"AZURE_WORKER_VENV={venv}"],
        cwd=ROOT,
        env={"PATH": str(bare), "HOME": str(tmp_path)},  # no python3.13, no pyenv
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "no Python 3.13 found" in done.stderr, done.stdout + done.stderr
    assert "pyenv install 3.13" in done.stderr and "AZURE_PY313=" in done.stderr
    assert not venv.exists()
