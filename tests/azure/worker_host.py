"""The Functions host's side of the worker protocol, driving the real Python worker code.

Run by tests/azure/test_worker_indexing.py with the Python 3.13 of `.venv-azure-worker`
(`make azure-worker`), never imported by the dev venv:

    python -I tests/azure/worker_host.py APP_DIR SPEC.json OUT.json

`azure-functions-runtime` is the library worker of Python 3.13+: the platform's proxy
worker receives the host's gRPC messages and hands each one to its `handle_event`
functions. This script does what that proxy does, without gRPC: it sends
worker_init_request (which imports APP_DIR/function_app.py and indexes it, as the real
worker does on Azure), functions_metadata_request, one function_load_request per
function, then one invocation_request per entry of SPEC's "invocations", and writes what
the worker answered to OUT as JSON. Only the answers are written; the test decides what
they must be.

The FunctionRpc protobuf messages are not in the runtime's wheel (the host supplies
them); `azure-functions-runtime-v1` ships them, generated, as a top-level `tests.protos`
package, which would collide with our own `tests`. They are loaded by path under another
name and without that package's `__init__` (it also imports the gRPC stubs, which a
worker driven in-process does not need).
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import importlib.metadata
import json
import os
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PROTOS_MODULE = "imggo_worker_protos"


def load_protos() -> types.ModuleType:
    located = importlib.metadata.distribution("azure-functions-runtime-v1").locate_file(
        "tests/protos"
    )
    directory = Path(str(located))
    package = types.ModuleType(PROTOS_MODULE)
    package.__path__ = [str(directory)]
    sys.modules[PROTOS_MODULE] = package
    for name in ("FunctionRpc_pb2", "shared.NullableTypes_pb2"):
        module = importlib.import_module(f"{PROTOS_MODULE}.{name}")
        package.__dict__.update({k: v for k, v in vars(module).items() if k[:1].isupper()})
    return package


protos = load_protos()

import azure_functions_runtime as worker  # noqa: E402 - after the messages it is handed


class HostRequest:
    """What the proxy worker passes to each handle_event function."""

    def __init__(self, **message: Any) -> None:
        self.request = protos.StreamingMessage(**message)
        self.properties = {"host": "127.0.0.1", "protos": protos}


def status(result: Any) -> dict[str, str]:
    return {
        "status": protos.StatusResult.Status.Name(result.status),
        "exception": result.exception.message,
    }


def typed_value(data: Any) -> Any:
    kind = data.WhichOneof("data")
    if kind is None:
        return None
    if kind == "bytes":
        return {"bytes": base64.b64encode(data.bytes).decode()}
    if kind == "http":
        body = data.http.body
        raw = body.bytes if body.WhichOneof("data") == "bytes" else body.string.encode()
        return {
            "http": {
                "status": int(data.http.status_code or 200),
                "headers": dict(data.http.headers),
                "body": base64.b64encode(raw).decode(),
            }
        }
    return {kind: str(getattr(data, kind))}


def http_binding(name: str, request: dict[str, Any]) -> Any:
    url = "http://localhost" + request["path"]
    parts = urlsplit(url)
    http = protos.RpcHttp(
        method=request["method"],
        url=url,
        headers=request.get("headers", {}),
        query=dict(parse_qsl(parts.query)),
        params={"path": parts.path.lstrip("/")},  # the route `{*path}`
        body=protos.TypedData(bytes=base64.b64decode(request.get("body", ""))),
    )
    return protos.ParameterBinding(name=name, data=protos.TypedData(http=http))


def queue_binding(name: str, message: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The message as the host passes it: its text already base64-decoded (host.json's
    messageEncoding), id and dequeue count as trigger metadata."""
    metadata = {
        "Id": protos.TypedData(string=message["id"]),
        "DequeueCount": protos.TypedData(json=str(message["dequeue_count"])),
        "PopReceipt": protos.TypedData(string="receipt"),
    }
    data = protos.TypedData(string=message["body"])
    return protos.ParameterBinding(name=name, data=data), metadata


async def run(app_dir: str, spec: dict[str, Any]) -> dict[str, Any]:
    capabilities = {"RpcHttpBodyOnly": "true", "TypedDataCollection": "true"}
    init = await worker.worker_init_request(
        HostRequest(
            worker_init_request=protos.WorkerInitRequest(
                host_version="4.0.0",
                capabilities=capabilities,
                function_app_directory=app_dir,
            )
        )
    )
    answer: dict[str, Any] = {"init": status(init.result), "functions": {}, "invocations": []}
    if init.result.status != protos.StatusResult.Success:
        return answer
    metadata = await worker.functions_metadata_request(
        HostRequest(
            functions_metadata_request=protos.FunctionsMetadataRequest(
                function_app_directory=app_dir
            )
        )
    )
    answer["metadata"] = status(metadata.result)
    triggers: dict[str, tuple[str, str]] = {}
    for function in metadata.function_metadata_results:
        loaded = await worker.function_load_request(
            HostRequest(
                function_load_request=protos.FunctionLoadRequest(
                    function_id=function.function_id, metadata=function
                )
            )
        )
        raw = [json.loads(b) for b in function.raw_bindings]
        answer["functions"][function.name] = {
            "load": status(loaded.result),
            "entry_point": function.entry_point,
            "script_file": function.script_file,
            "language": function.language,
            "properties": dict(function.properties),
            "raw_bindings": raw,
            "bindings": {
                name: {
                    "type": info.type,
                    "direction": protos.BindingInfo.Direction.Name(info.direction),
                }
                for name, info in function.bindings.items()
            },
        }
        trigger = next(b["name"] for b in raw if b["type"].endswith("Trigger"))
        triggers[function.name] = (function.function_id, trigger)

    for number, invocation in enumerate(spec.get("invocations", [])):
        function_id, trigger = triggers[invocation["function"]]
        trigger_metadata: dict[str, Any] = {}
        if "http" in invocation:
            binding = http_binding(trigger, invocation["http"])
        else:
            binding, trigger_metadata = queue_binding(trigger, invocation["queue"])
        response = await worker.invocation_request(
            HostRequest(
                invocation_request=protos.InvocationRequest(
                    invocation_id=f"invocation-{number}",
                    function_id=function_id,
                    input_data=[binding],
                    trigger_metadata=trigger_metadata,
                )
            )
        )
        answer["invocations"].append(
            {**status(response.result), "return": typed_value(response.return_value)}
        )
    return answer


def main() -> None:
    app_dir, spec_path, out_path = sys.argv[1:4]
    # The host starts the worker in the app's directory, which the worker imports from.
    os.chdir(app_dir)
    sys.path.insert(0, app_dir)
    spec = json.loads(Path(spec_path).read_text())
    worker.start_threadpool_executor()
    try:
        answer = asyncio.run(run(app_dir, spec))
    finally:
        worker.stop_threadpool_executor()
    answer["versions"] = {
        name: importlib.metadata.version(name)
        for name in ("azure-functions-runtime", "azure-functions")
    }
    answer["python"] = list(sys.version_info[:3])
    Path(out_path).write_text(json.dumps(answer))


if __name__ == "__main__":
    main()
