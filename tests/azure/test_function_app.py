"""The Azure app as the host sees it: `function_app.py` imported from the repository root
in a fresh process and indexed (an import error or a forgotten Blueprint would leave the
host with no functions), and the real function objects invoked with real
azure.functions binding objects against Azurite and the ImgGo simulator - including a
small host loop that applies host.json's queue rules (base64, redelivery,
maxDequeueCount, then the poison queue)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest
from azure.storage.queue import QueueClient

from core.adapters.azure.blob_store import AzureBlobStore
from core.adapters.azure.storage_queue import StorageQueue
from core.adapters.azure.table_store import AzureTableJobStore
from core.adapters.clock import ManualClock
from core.api.auth import hash_key
from core.domain.job import JobStatus
from core.ports import WorkItem
from core.service.messages import encode_work_item
from handlers_azure import runtime
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.azure.conftest import unique
from tests.azure.functions_host import HOST_JSON, MAX_DEQUEUE, ROOT, QueueHost
from tests.azure.functions_host import call_http as http_function
from tests.azure.functions_host import functions as host_functions
from tests.contract.store_contract import StoreContract
from tests.support.images import png

API_KEY = "azure-test-key-tenant-a"
FUNCTIONS = {"http_api", "queue_work", "queue_poison", "upload_landed", "reconcile"}

INDEX = """
import json, function_app
fns = function_app.app.get_functions()
print(json.dumps({f.get_function_name(): json.loads(f.get_function_json()) for f in fns}))
"""


def test_the_host_indexes_every_function_from_a_fresh_process() -> None:
    done = subprocess.run(
        [sys.executable, "-c", INDEX], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    indexed = json.loads(done.stdout)
    assert set(indexed) == FUNCTIONS
    bindings = {name: spec["bindings"][0] for name, spec in indexed.items()}
    assert bindings["http_api"]["route"] == "{*path}"
    assert bindings["http_api"]["authLevel"] == "ANONYMOUS"  # our own Bearer auth
    assert bindings["queue_work"]["queueName"] == "%IMGGO_FN_QUEUE_NAME%"
    assert bindings["queue_poison"]["queueName"] == "%IMGGO_FN_QUEUE_NAME%-poison"
    assert bindings["upload_landed"]["source"] == "EventGrid"  # what Flex Consumption needs
    assert bindings["reconcile"]["useMonitor"] is True


def test_host_json_sets_the_rules_the_handlers_rely_on() -> None:
    assert HOST_JSON["version"] == "2.0"
    assert HOST_JSON["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    assert HOST_JSON["extensions"]["http"]["routePrefix"] == ""  # /v1/jobs, not /api/v1/jobs
    queues = HOST_JSON["extensions"]["queues"]
    assert queues["messageEncoding"] == "base64"  # what StorageQueue puts on the wire
    assert queues["maxDequeueCount"] >= 2


@pytest.fixture(scope="module")
def functions() -> dict[str, Any]:
    return host_functions()


@pytest.fixture
def azure_app(storage: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    simulator = SimulatorServer(SimulatorConfig(processing_s=0.05)).start()
    table, queue, container = unique("jobs"), unique("work"), unique("uploads")
    AzureBlobStore(container).create_container()
    store = AzureTableJobStore(table)
    store.create_table()
    StorageQueue(queue).create()
    env = {
        "IMGGO_FN_STORE_URL": f"azuretables://{table}",
        "IMGGO_FN_QUEUE_NAME": queue,
        "IMGGO_FN_UPLOAD_CONTAINER": container,
        "IMGGO_BASE_URL": simulator.url,
        "IMGGO_API_KEY": DEMO_API_KEY,
        "IMGGO_WEBHOOK_SECRET": "whsec-test",
        "IMGGO_FN_API_KEYS": f"tenant-a={hash_key(API_KEY)}",
        "IMGGO_FN_POLL_AFTER_S": "3600",
        "IMGGO_FN_SUBMIT_DEADLINE_S": "1.5",
        "IMGGO_TIMEOUT_S": "2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset_for_tests()
    yield {"store": store, "queue": queue, "simulator": simulator, "storage": storage}
    runtime.reset_for_tests()
    store.client.delete_table()
    store.close()
    simulator.stop()


def call_http(functions: dict[str, Any], method: str, path: str, **kw: Any) -> func.HttpResponse:
    headers = {"Authorization": f"Bearer {API_KEY}", **kw.pop("headers", {})}
    return http_function(method, f"http://localhost{path}", headers, kw.pop("body", b""))


def test_a_binary_upload_through_the_http_function_becomes_a_job(
    functions: dict[str, Any], azure_app: dict[str, Any]
) -> None:
    image = png(7)
    answer = call_http(
        functions,
        "POST",
        "/v1/jobs?pattern_id=image-facts",
        headers={"Content-Type": "image/png", "X-Request-Id": "req-azure-1"},
        body=image,
    )
    assert answer.status_code in (200, 201, 202), answer.get_body()
    assert answer.headers["X-Request-Id"] == "req-azure-1"
    job_id = json.loads(answer.get_body())["id"]
    stored = azure_app["store"].get(job_id)
    assert stored is not None and stored.tenant == "tenant-a"
    missing = call_http(functions, "GET", "/v1/jobs/nope")
    assert missing.status_code == 404
    assert json.loads(missing.get_body())["error"]["code"]
    assert call_http(functions, "GET", "/v1/jobs", headers={"Authorization": ""}).status_code == 401


def host_loop(connection: str, queue: str, *, rounds: int) -> list[str]:
    host = QueueHost(connection, queue)
    try:
        return host.run(rounds=rounds)
    finally:
        host.close()


def test_a_message_that_keeps_failing_ends_in_the_poison_queue_and_its_job_failed(
    functions: dict[str, Any], azure_app: dict[str, Any]
) -> None:
    store: AzureTableJobStore = azure_app["store"]
    clock = ManualClock(start=time.time())
    job, _ = store.create(StoreContract.make_job(clock, status=JobStatus.ACCEPTED))
    azure_app["simulator"].config.error_rate = 1.0  # ImgGo answers 5xx: transient
    StorageQueue(azure_app["queue"]).send([WorkItem(job.id)])
    events = host_loop(azure_app["storage"], azure_app["queue"], rounds=20)
    assert events == ["redelivered"] * (MAX_DEQUEUE - 1) + ["poisoned", "queue_poison: done"]
    failed = store.get(job.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert failed.error is not None and failed.error.code == "poison_message"


def test_a_message_we_did_not_write_is_acknowledged_at_once(
    functions: dict[str, Any], azure_app: dict[str, Any]
) -> None:
    client = QueueClient.from_connection_string(azure_app["storage"], azure_app["queue"])
    client.send_message(base64.b64encode(b"not ours").decode())
    client.close()
    assert host_loop(azure_app["storage"], azure_app["queue"], rounds=5) == ["queue_work: done"]
    assert encode_work_item(WorkItem("x"))  # the wire format the adapter writes
