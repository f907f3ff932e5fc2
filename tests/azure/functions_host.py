"""The parts of the Functions host a test needs, around the real function objects.

No Functions host runs on these machines (/work/shared/AZURE.md), so the tests stand in
for the little of it the app relies on:

- `indexed()` / `functions()`: the functions `function_app.py` registers, indexed once (a
  second `get_functions()` raises "does not have a unique function name").
- `Context`: the attributes of azure.functions.Context the functions read, with the
  invocation's W3C trace context as the host passes it (`trace_context.trace_parent`).
- `WorkerLogChannel`: what the Python worker ships to the host for each `logging`
  record (azure-functions-python-worker, dispatcher.py: a handler on the root logger
  with no formatter of its own, `on_logging` -> RpcLog): the formatted message, the
  logger's name as category, the level, the invocation id - and nothing else. The
  record's `extra` fields are not shipped (RpcLog's `properties` is never filled);
  Application Insights adds operation_Id and InvocationId from the host's side.
- `QueueHost`: host.json's queue rules against Azurite - base64 text decoded; a function
  that raises leaves the message to reappear (the visibility timeout, here at once);
  once it has been dequeued `maxDequeueCount` times it is moved to `<queue>-poison`,
  which is delivered to the poison function.
- `HttpTriggerShim`: a loopback HTTP server translating real requests to
  func.HttpRequest for the HTTP function (ImgGo's webhooks reach the app this way).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal

import azure.functions as func
import azure.functions.queue
from azure.storage.queue import QueueClient, QueueMessage

from tests.support.loopback import base_url, serve_on_loopback, stop

ROOT = Path(__file__).resolve().parents[2]
HOST_JSON: dict[str, Any] = json.loads((ROOT / "host.json").read_text())
MAX_DEQUEUE: int = HOST_JSON["extensions"]["queues"]["maxDequeueCount"]


_invocation = threading.local()  # the worker's thread-local invocation id


@dataclass(frozen=True)
class TraceContext:
    """The worker's bindings.TraceContext: the host's activity for the invocation."""

    trace_parent: str
    trace_state: str = ""


class Context:
    """The attributes of azure.functions.Context the functions read."""

    def __init__(self, trace_parent: str | None = None) -> None:
        self.invocation_id = uuid.uuid4().hex
        self.function_name = "test"
        self.trace_context = TraceContext(trace_parent) if trace_parent else None


def invoke(name: str, binding: Any, context: Context | None = None) -> Any:
    """One invocation of function `name`, as the worker runs it: on this thread, whose
    invocation id it records first (what its log channel ships each record with)."""
    context = context or Context()
    _invocation.id = context.invocation_id
    try:
        return functions()[name](binding, context)
    finally:
        _invocation.id = None


@dataclass(frozen=True)
class RpcLog:
    """The fields of one shipped record (FunctionRpc.proto's RpcLog that the worker fills)."""

    invocation_id: str | None
    category: str
    level: str
    message: str


class WorkerLogChannel(logging.Handler):
    """The worker's logging handler: every record, formatted by logging's default (the
    worker sets no formatter: the message, and a traceback after it if there is one)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)  # the worker sets the root logger to INFO
        self.shipped: list[RpcLog] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        invocation_id = getattr(_invocation, "id", None)
        self.shipped.append(RpcLog(invocation_id, record.name, record.levelname, message))

    def of(self, invocation_id: str) -> list[RpcLog]:
        return [log for log in self.shipped if log.invocation_id == invocation_id]


@contextmanager
def worker_log_channel() -> Iterator[WorkerLogChannel]:
    """The worker's channel on the root logger, at the worker's level, for a block. The
    "imggo" loggers are as in a worker process, where nothing but the worker configures
    logging: propagating to the root, no handler or level of their own. (The AWS
    handler's Powertools set-up, run by other tests in this process, stops their
    propagation.)"""
    channel = WorkerLogChannel()
    root, ours = logging.getLogger(), logging.getLogger("imggo")
    saved = (root.level, ours.level, ours.propagate, list(ours.handlers))
    root.addHandler(channel)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.NOTSET)
    ours.propagate = True
    for handler in saved[3]:
        ours.removeHandler(handler)
    try:
        yield channel
    finally:
        root.removeHandler(channel)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        ours.propagate = saved[2]
        for handler in saved[3]:
            ours.addHandler(handler)


@functools.cache
def indexed() -> dict[str, Any]:
    """Function name -> the registered function (its binding JSON, its user function),
    from `function_app.py` in this process."""
    import function_app

    return {f.get_function_name(): f for f in function_app.app.get_functions()}


def functions() -> dict[str, Any]:
    """Function name -> the user function."""
    return {name: f.get_user_function() for name, f in indexed().items()}


Handling = Literal["done", "redelivered", "poisoned"]


@dataclass(frozen=True)
class Handled:
    function: str
    body: bytes
    outcome: Handling

    @property
    def event(self) -> str:
        return f"{self.function}: done" if self.outcome == "done" else self.outcome


class QueueHost:
    """The host's queue trigger for the work queue and its poison queue."""

    def __init__(self, connection: str, queue: str) -> None:
        self.work = QueueClient.from_connection_string(connection, queue)
        self.poison = QueueClient.from_connection_string(connection, f"{queue}-poison")

    def receive(self, client: QueueClient, limit: int) -> list[QueueMessage]:
        got: list[QueueMessage] = []
        for _ in range(3):  # a receive may return fewer than are waiting
            want = min(32, limit - len(got))
            if want <= 0:
                break
            got += list(client.receive_messages(max_messages=want, visibility_timeout=30))
        return got

    def handle(self, client: QueueClient, name: str, message: QueueMessage) -> Handled:
        body = base64.b64decode(message.content)
        binding = azure.functions.queue.QueueMessage(
            id=message.id, body=body, dequeue_count=message.dequeue_count
        )
        try:
            invoke(name, binding)
        except Exception:
            if message.dequeue_count >= MAX_DEQUEUE:
                self.poison.send_message(message.content)  # already base64, as the host
                client.delete_message(message)
                return Handled(name, body, "poisoned")
            client.update_message(message, visibility_timeout=0)
            return Handled(name, body, "redelivered")
        client.delete_message(message)
        return Handled(name, body, "done")

    def deliver_work(self, limit: int) -> list[Handled]:
        """One pull of up to `limit` work messages, each handed to the worker."""
        return [self.handle(self.work, "queue_work", m) for m in self.receive(self.work, limit)]

    def run(self, *, rounds: int) -> list[str]:
        """Both queues until they are empty (at most `rounds` pulls); what happened."""
        events: list[str] = []
        for _ in range(rounds):
            delivered = False
            for client, name in ((self.work, "queue_work"), (self.poison, "queue_poison")):
                for message in client.receive_messages(max_messages=16, visibility_timeout=30):
                    delivered = True
                    events.append(self.handle(client, name, message).event)
            if not delivered:
                break
        return events

    def close(self) -> None:
        self.work.close()
        self.poison.close()


def call_http(
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes = b"",
    *,
    context: Context | None = None,
) -> func.HttpResponse:
    """One invocation of the HTTP function, as the host makes it."""
    request = func.HttpRequest(method, url, headers=headers, params={}, route_params={}, body=body)
    response: func.HttpResponse = invoke("http_api", request, context)
    return response


class HttpTriggerShim:
    """The host's HTTP front on loopback: real requests in, func.HttpRequest through the
    HTTP function, its func.HttpResponse back out."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                host = self.headers.get("Host", "127.0.0.1")
                answer = call_http(
                    self.command, f"http://{host}{self.path}", dict(self.headers.items()), body
                )
                data = answer.get_body() or b""
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = serve_on_loopback(Handler)
        self.url = base_url(self.httpd)

    def close(self) -> None:
        stop(self.httpd)
