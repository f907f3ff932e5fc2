"""What Application Insights receives from the Azure functions: every record the Python
worker ships during an invocation (tests/azure/functions_host.WorkerLogChannel: the
formatted message, category, level, invocation id - never `extra` fields) is one JSON
object carrying the invocation id, the operation id (the trace id of the invocation's
traceparent, which Application Insights records as operation_Id), the request id, and
the same metric lines (ColdStart, Http5xx, PoisonMessages) the other clouds emit, so a
log query can `parse_json(message)`. A traceback stays inside the object."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import azure.functions.queue
import pytest

from core.adapters.azure.blob_store import AzureBlobStore
from core.adapters.azure.table_store import AzureTableJobStore
from core.api.auth import hash_key
from handlers_azure import monitor, runtime
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.azure.conftest import unique
from tests.azure.functions_host import Context, RpcLog, call_http, invoke, worker_log_channel
from tests.support.images import png

API_KEY = "azure-log-shape-key-tenant-a"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
def azure_app(storage: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimulatorServer]:
    simulator = SimulatorServer(SimulatorConfig(processing_s=0.05)).start()
    table, container = unique("jobs"), unique("uploads")
    store = AzureTableJobStore(table)
    store.create_table()
    AzureBlobStore(container).create_container()
    env = {
        "IMGGO_FN_STORE_URL": f"azuretables://{table}",
        "IMGGO_FN_QUEUE_NAME": unique("work"),
        "IMGGO_FN_UPLOAD_CONTAINER": container,
        "IMGGO_BASE_URL": simulator.url,
        "IMGGO_API_KEY": DEMO_API_KEY,
        "IMGGO_WEBHOOK_SECRET": "whsec-log-shape",
        "IMGGO_FN_API_KEYS": f"tenant-a={hash_key(API_KEY)}",
        "IMGGO_FN_POLL_AFTER_S": "3600",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    runtime.reset_for_tests()
    yield simulator
    runtime.reset_for_tests()
    store.client.delete_table()
    store.close()
    simulator.stop()


def documents(shipped: list[RpcLog]) -> list[dict[str, Any]]:
    """Each shipped message as the JSON object a log query reads; the test fails on one
    that is not."""
    docs = []
    for log in shipped:
        try:
            doc = json.loads(log.message)
        except ValueError:
            pytest.fail(f"not one JSON object: {log.category}: {log.message!r}")
        assert isinstance(doc, dict), log.message
        assert (doc["logger"], doc["level"]) == (log.category, log.level)
        docs.append(doc)
    return docs


def metrics(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {d["metric"]: (d["value"], d["unit"]) for d in docs if "metric" in d}


def get_jobs(context: Context, headers: dict[str, str] | None = None) -> func.HttpResponse:
    auth = {"Authorization": f"Bearer {API_KEY}", **(headers or {})}
    return call_http("GET", "http://localhost/v1/jobs", auth, context=context)


def test_every_line_of_an_http_invocation_is_json_with_its_ids_and_metrics(
    azure_app: SimulatorServer,
) -> None:
    context = Context(TRACEPARENT)
    with worker_log_channel() as channel:
        answer = call_http(
            "POST",
            "http://localhost/v1/jobs?pattern_id=image-facts",
            {
                "Authorization": f"Bearer {API_KEY}",
                "Content-Type": "image/png",
                "X-Request-Id": "req-log-shape-1",
            },
            png(301),
            context=context,
        )
    assert answer.status_code == 202, answer.get_body()
    docs = documents(channel.of(context.invocation_id))
    assert any(d["logger"].startswith("imggo.") for d in docs), docs
    for doc in docs:
        assert doc["platform"] == "azure"
        assert doc["invocation_id"] == context.invocation_id
        assert doc["operation_id"] == TRACE_ID
    assert metrics(docs)["ColdStart"] == (1, "Count")  # the container's first invocation
    assert any(d.get("request_id") == "req-log-shape-1" for d in docs)


def test_the_operation_id_is_the_hosts_even_when_the_callers_traceparent_is_bad(
    azure_app: SimulatorServer,
) -> None:
    context = Context(TRACEPARENT)
    with worker_log_channel() as channel:
        get_jobs(context, {"traceparent": "not-a-traceparent"})
    docs = documents(channel.of(context.invocation_id))
    assert docs and {d["operation_id"] for d in docs} == {TRACE_ID}


def test_a_5xx_and_a_poison_message_are_counted_as_on_the_other_clouds(
    azure_app: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMGGO_FN_STORE_URL", f"azuretables://{unique('missing')}")
    runtime.reset_for_tests()  # a container whose table was never created
    http, queue = Context(TRACEPARENT), Context(TRACEPARENT)
    with worker_log_channel() as channel:
        assert get_jobs(http).status_code >= 500
        message = azure.functions.queue.QueueMessage(
            id="m-1", body=b"not a work item", dequeue_count=1
        )
        invoke("queue_work", message, queue)  # returns: poison is acknowledged
    assert metrics(documents(channel.of(http.invocation_id)))["Http5xx"] == (1, "Count")
    poisoned = documents(channel.of(queue.invocation_id))
    assert metrics(poisoned)["PoisonMessages"] == (1, "Count")
    [line] = [d for d in poisoned if d.get("outcome") == "poison"]
    assert (line["message_id"], line["level"]) == ("m-1", "ERROR")


def test_a_traceback_stays_inside_the_json_object() -> None:
    monitor.install()
    with worker_log_channel() as channel, monitor.invocation("inv-1", TRACEPARENT):
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("imggo.test").exception("failed %s", "here", extra={"job_id": "j"})
    [doc] = documents(channel.shipped)
    assert (doc["message"], doc["job_id"], doc["invocation_id"]) == ("failed here", "j", "inv-1")
    assert "ValueError: boom" in doc["exception"] and "Traceback" in doc["exception"]


def test_lines_outside_an_invocation_are_left_as_they_are() -> None:
    monitor.install()
    with worker_log_channel() as channel:
        logging.getLogger("imggo.test").info("plain %s", "text")
    assert [log.message for log in channel.shipped] == ["plain text"]
