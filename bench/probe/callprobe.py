"""What a cold-start child process sent to its backends, counted on the wire, and how
long its work took: the one instrument every cold-start benchmark child runs under.

A child calls `start()` first and `done(status)` last; `done` prints one JSON line
(`ms`, `cpu_ms`, `calls`, `tls_contexts`, `modules`, `startup_ms`) that the parent
reads. Counted, in the child itself and the same way for a function and for its floor:

- every HTTP request urllib3 sends (botocore and the Azure SDK ride on it), named by
  its AWS operation (`X-Amz-Target`) or by method and path, entity keys left out;
- every HTTP request httpx sends (the ImgGo clients), by method and path;
- every gRPC call (the Firestore client), by method;
- every TLS context built (`ssl.SSLContext`): the proof that both sides paid for an
  HTTPS-ready client, as the real ImgGo needs.

The counting is installed by post-import hooks, so nothing is imported before the
measured code imports it: the instrument costs both sides a dictionary update per call
and a few microseconds per import, and changes no import order. It lives alone in this
directory, which is put on a child's path by itself (the AWS child must see nothing of
the source tree but this), and so imports nothing of ours.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

SPAWNED_AT_ENV = "BENCH_SPAWNED_AT"  # the parent's time.time() when it spawned us

_calls: Counter[str] = Counter()
_tls = [0]
_lock = threading.Lock()
_started = [0.0, 0.0, 0.0]  # perf_counter, time.time() and process_time() at start()
_preloaded: set[str] = set()  # modules of the interpreter's start-up, before start()
# Azure Tables addresses an entity as table(PartitionKey='..',RowKey='..'): one name
# for every entity of a table.
_ENTITY = re.compile(r"\([^)]*\)")


def _count(name: str) -> None:
    with _lock:
        _calls[name] += 1


def _http_name(method: str, url: str, headers: Any) -> str:
    target = None
    if headers is not None:
        target = headers.get("X-Amz-Target") or headers.get("x-amz-target")
    if target:
        if isinstance(target, bytes):
            target = target.decode()
        service, _, operation = str(target).rpartition(".")
        service = "dynamodb" if service.startswith("DynamoDB") else service.removeprefix("Amazon")
        return f"{service.lower()} {operation}"
    path = url.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    return f"{method.upper()} {_ENTITY.sub('(key)', path)}"


def _patch_urllib3(module: ModuleType) -> None:
    pool = module.HTTPConnectionPool
    original = pool.urlopen

    def urlopen(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        # urllib3 calls urlopen again for its own retries and redirects: each is a send.
        headers = kwargs.get("headers") if "headers" in kwargs else (args[1:2] or [None])[0]
        _count(_http_name(method, url, headers))
        return original(self, method, url, *args, **kwargs)

    pool.urlopen = urlopen


def _patch_httpx(module: ModuleType) -> None:
    sync_send = module.Client.send
    async_send = module.AsyncClient.send

    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        _count(_http_name(request.method, str(request.url), request.headers))
        return sync_send(self, request, **kwargs)

    async def asend(self: Any, request: Any, **kwargs: Any) -> Any:
        _count(_http_name(request.method, str(request.url), request.headers))
        return await async_send(self, request, **kwargs)

    module.Client.send = send
    module.AsyncClient.send = asend


def _patch_grpc(module: ModuleType) -> None:
    for cls_name in ("_UnaryUnaryMultiCallable", "_UnaryStreamMultiCallable"):
        cls = getattr(module, cls_name)
        for attr in ("__call__", "with_call", "future"):
            original = getattr(cls, attr, None)
            if original is not None:
                setattr(cls, attr, _grpc_counting(original))


def _grpc_counting(original: Callable[..., Any]) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        method = self._method.decode() if isinstance(self._method, bytes) else str(self._method)
        service, _, name = method.rpartition("/")
        _count(f"{service.rsplit('.', 1)[-1].lower()} {name}")
        return original(self, *args, **kwargs)

    return call


def _patch_ssl(module: ModuleType) -> None:
    context = module.SSLContext
    original = context.__new__

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        with _lock:
            _tls[0] += 1
        return original(cls, *args, **kwargs)

    context.__new__ = staticmethod(new)


_PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "ssl": _patch_ssl,
    "urllib3.connectionpool": _patch_urllib3,
    "httpx": _patch_httpx,
    "grpc._channel": _patch_grpc,
}


class _PostImportHooks(importlib.abc.MetaPathFinder):
    """Patch a module right after it first executes, whoever imports it."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = _PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        # A source loader belongs to this one module: wrapping its method changes no other.
        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def start() -> None:
    """Start the clock and the counting (call first: only what follows is measured)."""
    for name, patch in _PATCHES.items():
        if name in sys.modules:
            patch(sys.modules[name])
    sys.meta_path.insert(0, _PostImportHooks())
    _preloaded.update(sys.modules)
    _started[:] = [time.perf_counter(), time.time(), time.process_time()]


def done(status: int, **extra: Any) -> None:
    """Stop the clock; print this child's one result line."""
    ms = (time.perf_counter() - _started[0]) * 1000
    # CPU time of every thread of the process: what a busy machine inflates least.
    cpu_ms = (time.process_time() - _started[2]) * 1000
    spawned = os.environ.get(SPAWNED_AT_ENV)
    startup_ms = (_started[1] - float(spawned)) * 1000 if spawned else None
    with _lock:
        calls = dict(sorted(_calls.items()))
        tls = _tls[0]
    result = {
        "status": status,
        "ms": ms,
        "cpu_ms": cpu_ms,
        "startup_ms": startup_ms,
        "calls": calls,
        "tls_contexts": tls,
        # What the measured code imported: where a side's time goes, in a word.
        "modules": sorted(set(sys.modules) - _preloaded),
        **extra,
    }
    print(json.dumps(result), flush=True)
