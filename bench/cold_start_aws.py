"""Cold start of the AWS HTTP handler against a hand-written floor, in fresh processes,
from the built artifact as Lambda loads it.

The artifact (`make package-aws`: build/aws.zip) is unzipped into a read-only directory,
as Lambda unpacks it into /var/task, and run by the Lambda runtime's Python (3.12, found
by deploy/find-python312.sh) with only that directory and a stand-in of the runtime's
own packages (boto3, in build/lambda-runtime) on its path: the bytecode shipped is used,
nothing can be compiled and kept, and nothing comes from the repository's source tree.

Each sample is a new Python process (as a new Lambda container is) that runs ONE
`POST /v1/jobs` (JSON, image_url) and exits:

- handler: `import handlers_aws.api` and call it with an HTTP API (2.0) event. That
  includes reading the three secrets from SSM (one GetParameters), building the
  services, the DynamoDB writes of the job's life (create, ImgGo-id key, update) and
  the ImgGo ingest call.
- floor: what a minimal hand-written function must do for the same request, with boto3
  and httpx directly: read the same secrets (one GetParameters), one conditional
  DynamoDB PutItem, one ImgGo ingest call.

Both run against the same moto server (DynamoDB, SSM) and ImgGo simulator (its own
process), alternately, several times; the median of each is reported. Time is measured
inside the child: from interpreter start (the parent's clock at spawn, handed over in
the environment; same machine, same clock) to the answer, and from the first line of
the script (imports and work, without interpreter start-up).

    make package-aws && python -m bench.cold_start_aws [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "build" / "aws.zip"
# What the Lambda Python runtime provides besides the artifact (its /var/runtime).
RUNTIME_PACKAGES = ROOT / "build" / "lambda-runtime"
REPEATS = 7
GOAL_RATIO = 1.25

_CONTEXT = """
class Ctx:
    function_name = "imggo-http"; function_version = "$LATEST"; memory_limit_in_mb = 1024
    aws_request_id = "bench"; log_group_name = "g"; log_stream_name = "s"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imggo-http"
    def get_remaining_time_in_millis(self): return 29000
"""

HANDLER_CHILD = (
    "import time; _t0 = time.perf_counter()\n"
    "import json, os\n"
    "from handlers_aws.api import handler\n"
    "import handlers_aws.api as _api\n"
    + _CONTEXT
    + "answer = handler(json.loads(os.environ['BENCH_EVENT']), Ctx())\n"
    "_t1 = time.perf_counter(); _wall = time.time()\n"
    "print(json.dumps({'status': answer['statusCode'], 'script_ms': (_t1 - _t0) * 1000,"
    " 'total_ms': (_wall - float(os.environ['BENCH_SPAWNED_AT'])) * 1000,"
    " 'from': _api.__file__}))\n"
)

FLOOR_CHILD = """import time; _t0 = time.perf_counter()
import json, os, uuid
import boto3, httpx
event = json.loads(os.environ["BENCH_EVENT"])
env = os.environ
ssm, ddb = boto3.client("ssm"), boto3.client("dynamodb")
refs = [env["IMGGO_API_KEY_SECRET_REF"], env["IMGGO_WEBHOOK_SECRET_SECRET_REF"],
        env["IMGGO_FN_API_KEYS_SECRET_REF"]]
found = ssm.get_parameters(Names=refs, WithDecryption=True)["Parameters"]
api_key = {p["Name"]: p["Value"] for p in found}[refs[0]]
body = json.loads(event["body"])
job_id = str(uuid.uuid4())
now = time.time()
ddb.put_item(
    TableName=env["IMGGO_FN_STORE_URL"].removeprefix("dynamodb://"),
    Item={"pk": {"S": "J#" + job_id}, "v": {"N": "1"},
          "doc": {"S": json.dumps({"id": job_id, "created_at": now, **body})}},
    ConditionExpression="attribute_not_exists(pk)",
)
answer = httpx.post(
    env["IMGGO_BASE_URL"] + "/api/patterns/" + body["pattern_id"] + "/ingest",
    json={"image_url": body["image_url"], "idempotency_key": job_id},
    headers={"Authorization": "Bearer " + api_key, "Idempotency-Key": job_id},
)
_t1 = time.perf_counter(); _wall = time.time()
print(json.dumps({"status": answer.status_code, "script_ms": (_t1 - _t0) * 1000,
                  "total_ms": (_wall - float(env["BENCH_SPAWNED_AT"])) * 1000}))
"""


def _lambda_python() -> str:
    found = subprocess.run(
        ["bash", str(ROOT / "deploy" / "find-python312.sh")], capture_output=True, text=True
    )
    if found.returncode != 0:
        raise SystemExit(found.stderr.strip())
    return found.stdout.strip()


def _runtime_packages(python: str) -> Path:
    """boto3 for the runtime's Python, installed once (the runtime ships its own)."""
    if not (RUNTIME_PACKAGES / "boto3").is_dir():
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
                str(RUNTIME_PACKAGES),
                "boto3",
            ],
            check=True,
        )
    return RUNTIME_PACKAGES


def _unpack(artifact: Path, into: Path) -> Path:
    """The artifact as Lambda lays it out: unzipped, read-only."""
    if not artifact.exists():
        raise SystemExit(f"{artifact} is missing: run `make package-aws` first")
    task = into / "task"
    with zipfile.ZipFile(artifact) as archive:
        archive.extractall(task)
    for path in [task, *task.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    return task


def _run_child(code: str, env: dict[str, str], python: str, task: Path) -> dict[str, Any]:
    env = {**env, "BENCH_SPAWNED_AT": repr(time.time())}
    done = subprocess.run(
        [python, "-s", "-c", code], env=env, cwd=task, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"child failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] not in (200, 202):
        raise RuntimeError(f"child answered {result['status']}: {done.stdout[-1000:]}")
    if "from" in result and not str(result["from"]).startswith(str(task)):
        raise RuntimeError(f"the handler was not loaded from the artifact: {result['from']}")
    return result


def _artifact_rows(artifact: Path, task: Path) -> list[tuple[str, str]]:
    files = [f for f in task.rglob("*") if f.is_file()]
    sources = [f for f in files if f.suffix == ".py"]
    compiled = [f for f in files if f.name.endswith(".cpython-312.pyc")]
    size = sum(f.stat().st_size for f in files)
    return [
        (f"deployment artifact, zip ({artifact.name})", f"{artifact.stat().st_size / 1e6:.1f} MB"),
        ("deployment artifact, unpacked", f"{size / 1e6:.1f} MB"),
        ("  modules / with python3.12 bytecode", f"{len(sources)} / {len(compiled)}"),
    ]


def run(repeats: int = REPEATS, artifact: Path = ARTIFACT) -> list[tuple[str, str]]:
    from moto.server import ThreadedMotoServer

    from bench.simproc import simulator_process
    from core.api.auth import hash_key

    fake = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    saved = {k: os.environ.get(k) for k in [*fake, "AWS_ENDPOINT_URL"]}
    os.environ.update(fake)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = moto_url
    python = _lambda_python()
    runtime_packages = _runtime_packages(python)
    unpacked = tempfile.TemporaryDirectory()
    task = _unpack(artifact, Path(unpacked.name))
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            simulator_process("--processing-s", "0.01") as sim,
        ):
            import boto3

            from core.adapters.stores.dynamodb import DynamoDbJobStore

            table = "bench-jobs"
            store = DynamoDbJobStore(table)
            store.create_table()
            store.close()
            ssm = boto3.client("ssm", endpoint_url=moto_url)
            secrets = {
                "/bench/api-key": "imggo_test_simulator",
                "/bench/webhook-secret": "bench-webhook-secret-0123456789",
                "/bench/api-key-hashes": f"bench={hash_key('bench-key')}",
            }
            for name, value in secrets.items():
                ssm.put_parameter(Name=name, Value=value, Type="SecureString")
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("IMGGO_")},
                # /var/task, then the runtime's packages: nothing from the source tree.
                "PYTHONPATH": f"{task}:{runtime_packages}",
                "PYTHONDONTWRITEBYTECODE": "1",
                "IMGGO_FN_STORE_URL": f"dynamodb://{table}",
                "IMGGO_FN_BLOB_URL": "s3://bench-uploads",
                "IMGGO_FN_QUEUE_URL": "sqs://123456789012/bench-work",
                "IMGGO_FN_DATA_DIR": tmp,
                "IMGGO_BASE_URL": sim,
                "IMGGO_API_KEY_SECRET_REF": "/bench/api-key",
                "IMGGO_WEBHOOK_SECRET_SECRET_REF": "/bench/webhook-secret",
                "IMGGO_FN_API_KEYS_SECRET_REF": "/bench/api-key-hashes",
                "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
                "POWERTOOLS_METRICS_NAMESPACE": "Bench",
            }
            image_url = f"{sim}/no-such-image.png"  # ImgGo fetches it later, not the function
            body = json.dumps({"pattern_id": "image-facts", "image_url": image_url})
            event = {
                "version": "2.0",
                "routeKey": "$default",
                "rawPath": "/v1/jobs",
                "rawQueryString": "",
                "isBase64Encoded": False,
                "body": body,
                "headers": {
                    "authorization": "Bearer bench-key",
                    "content-type": "application/json",
                },
                "requestContext": {
                    "http": {"method": "POST", "path": "/v1/jobs"},
                    "requestId": "bench",
                    "stage": "$default",
                },
            }
            env["BENCH_EVENT"] = json.dumps(event)
            _run_child(FLOOR_CHILD, env, python, task)  # warm the OS file cache for both
            _run_child(HANDLER_CHILD, env, python, task)
            handler, floor = [], []
            for _ in range(repeats):
                handler.append(_run_child(HANDLER_CHILD, env, python, task))
                floor.append(_run_child(FLOOR_CHILD, env, python, task))
            jobs = boto3.client("dynamodb", endpoint_url=moto_url).scan(
                TableName=table, Select="COUNT"
            )["Count"]
            if os.environ.get("BENCH_VERBOSE"):
                print("handler", handler, "floor", floor, "items", jobs, file=sys.stderr)
    finally:
        moto.stop()
        rows_artifact = _artifact_rows(artifact, task)
        for path in [task, *task.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # so the directory can be removed
        unpacked.cleanup()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def median(samples: list[dict[str, Any]], key: str) -> float:
        return statistics.median(s[key] for s in samples)

    h_total, f_total = median(handler, "total_ms"), median(floor, "total_ms")
    h_script, f_script = median(handler, "script_ms"), median(floor, "script_ms")
    ratio = h_total / f_total
    rows = [
        (
            f"AWS HTTP handler cold POST /v1/jobs, from process start (median of {repeats})",
            f"{h_total:.0f} ms",
        ),
        ("  of which imports + work after interpreter start-up", f"{h_script:.0f} ms"),
        ("floor: boto3 + httpx by hand (GetParameters, PutItem, ingest)", f"{f_total:.0f} ms"),
        ("  of which imports + work after interpreter start-up", f"{f_script:.0f} ms"),
        (
            f"ratio handler / floor (goal <= {GOAL_RATIO}x)",
            f"{ratio:.2f} x {'(ok)' if ratio <= GOAL_RATIO else '(over the goal)'}",
        ),
    ]
    return rows + rows_artifact


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start_aws")
    parser.add_argument("--runs", type=int, default=REPEATS)
    parser.add_argument("--artifact", type=Path, default=ARTIFACT, help="the zip Lambda runs")
    args = parser.parse_args()
    rows = run(args.runs, args.artifact.resolve())
    width = max(len(label) for label, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
