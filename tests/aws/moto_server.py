"""moto's real server on loopback, with DynamoDB's conditional writes made atomic.

moto's DynamoDB checks a write's condition and then makes the write, with nothing held
between the two (moto 5.2, `moto/dynamodb/models/table.py`, `Table.put_item`: it
reads the current item, evaluates the condition, then stores). Its server is threaded,
so two conditional writes of one item can both pass their check: two winners for one
version of the shared rate budget, two claims of one idempotency key. Real DynamoDB
makes every conditional write atomic, and the store relies on that, so here DynamoDB
requests are served one at a time (moto never waits inside one); every other service
is served concurrently, as before, so SQS long polls still overlap. The store
contract's racing tests (tests.contract.racing) show the difference: 2 or 3 of them
failed in every run against moto's own server, none against this one.

The server itself is what moto's `ThreadedMotoServer` runs (werkzeug's threaded
server over moto's dispatcher and request handler), with that one lock in front.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class OneDynamoDbRequestAtATime:
    """WSGI middleware: DynamoDB requests (JSON protocol: `X-Amz-Target:
    DynamoDB_20120810.<Action>`) run under one lock, their whole response made inside
    it; the rest pass straight through."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            result = self._app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()


class MotoServer:
    """`start()` serves on 127.0.0.1 and a free port; `url` then says where."""

    def __init__(self) -> None:
        app = OneDynamoDbRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="moto-server", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


__all__ = ["MotoServer", "OneDynamoDbRequestAtATime"]
