"""Cold start of the AWS HTTP function against a hand-written floor, in fresh processes,
from the built artifact as Lambda loads it (bench.cold_start has the method).

The artifact (`make package-aws`: build/aws.zip, bytecode compiled by Python 3.12) is
unzipped into a read-only directory, as Lambda unpacks it into /var/task, and run by the
Lambda runtime's Python (3.12, found by deploy/find-python312.sh) with only that
directory and a stand-in of the runtime's own packages (boto3, in build/lambda-runtime)
on its path: the bytecode shipped is used, nothing can be compiled and kept, nothing
comes from the repository's source tree (the child checks where the handler came from).

- function: `import handlers_aws.api` and call `handler` with an HTTP API (2.0) event,
  as the Lambda runtime does: the three secrets from SSM (one GetParameters), the
  services built, the job's DynamoDB writes, the ImgGo ingest, the Powertools metrics.
- floor: a Lambda handler written by hand with boto3 and httpx that makes the same
  calls: one GetParameters for the same three secrets, the key check, the job's
  conditional PutItem, the rate budget's GetItem and conditional PutItem, the ingest,
  the conditional PutItem of ImgGo's id, the job's conditional PutItem with its new
  status.

The function gets template.yaml's settings (an s3:// upload bucket and an sqs:// work
queue besides the table, built though this request uses neither). Both run against the
same moto server (DynamoDB, SSM) and the same ImgGo simulator (its own process).

    make package-aws && python -m bench.cold_start_aws [--runs 7]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.cold_start import RUNS, Child, Comparison, child_path, compare, table
from imggo_simulator import DEMO_API_KEY

ROOT = Path(__file__).resolve().parents[1]
ARTIFACT = ROOT / "build" / "aws.zip"
# What the Lambda Python runtime provides besides the artifact (its /var/runtime).
RUNTIME_PACKAGES = ROOT / "build" / "lambda-runtime"
TABLE = "bench-jobs"
REGION = "us-east-1"
API_KEY = "bench-key"
SECRETS = {
    "/bench/api-key": DEMO_API_KEY,
    "/bench/webhook-secret": "bench-webhook-secret-0123456789",
}

_CONTEXT = """
class Context:
    function_name = "imggo-http"; function_version = "$LATEST"; memory_limit_in_mb = 1024
    aws_request_id = "bench"; log_group_name = "g"; log_stream_name = "s"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imggo-http"
    def get_remaining_time_in_millis(self): return 29000
"""

FUNCTION = (
    """import callprobe; callprobe.start()
import json, os
import handlers_aws.api
"""
    + _CONTEXT
    + """
answer = handlers_aws.api.handler(json.loads(os.environ["BENCH_EVENT"]), Context())
callprobe.done(answer["statusCode"], loaded_from=handlers_aws.api.__file__)
"""
)

# The same calls, by hand. The items carry what the store's do (document, version,
# tenant, status, order and expiry keys, the pending index's), so each write is the
# same size of work; the conditions are the store's.
FLOOR = (
    """import callprobe; callprobe.start()
import hashlib, hmac, json, os, time, uuid
import boto3, httpx

NOT_PRESENT = "attribute_not_exists(pk) OR exp <= :now"

def item(doc, version):
    shard = "P#0"
    return {
        "pk": {"S": "J#" + doc["id"]}, "v": {"N": str(version)},
        "doc": {"S": json.dumps(doc, separators=(",", ":"))},
        "tn": {"S": doc["tenant"]}, "ts": {"S": doc["status"] + "#" + doc["tenant"]},
        "ck": {"S": "%.6f|%s" % (doc["created_at"], doc["id"])},
        "exp": {"N": repr(doc["expires_at"])}, "ttl": {"N": str(int(doc["expires_at"]))},
        "pq": {"S": shard}, "uk": {"S": "%.6f|%s" % (doc["updated_at"], doc["id"])},
    }

def handler(event, context):
    env = os.environ
    ssm, ddb = boto3.client("ssm"), boto3.client("dynamodb")
    refs = [env["IMGGO_API_KEY_SECRET_REF"], env["IMGGO_WEBHOOK_SECRET_SECRET_REF"],
            env["IMGGO_FN_API_KEYS_SECRET_REF"]]
    found = ssm.get_parameters(Names=refs, WithDecryption=True)["Parameters"]
    secrets = {p["Name"]: p["Value"] for p in found}
    hashes = {d: t for t, _, d in (e.partition("=") for e in secrets[refs[2]].split(","))}
    token = event["headers"]["authorization"].partition(" ")[2]
    presented = hashlib.sha256(token.encode()).hexdigest()
    tenant = None
    for digest, owner in hashes.items():
        if hmac.compare_digest(presented, digest):
            tenant = owner
    if tenant is None:
        return {"statusCode": 401, "body": ""}
    body = json.loads(event["body"])
    now = time.time()
    doc = {"id": str(uuid.uuid4()), "tenant": tenant, "pattern_id": body["pattern_id"],
           "source": {"kind": "url", "url": body["image_url"]}, "status": "accepted",
           "created_at": now, "updated_at": now, "expires_at": now + 30 * 86400,
           "attempts": 0, "extras": {}}
    table = env["IMGGO_FN_STORE_URL"].removeprefix("dynamodb://")
    ddb.put_item(TableName=table, Item=item(doc, 1), ConditionExpression=NOT_PRESENT,
                 ExpressionAttributeValues={":now": {"N": repr(now)}},
                 ReturnValuesOnConditionCheckFailure="ALL_OLD")
    # The ImgGo rate budget's slot: a consistent read, a write conditional on its version.
    budget = {"S": "R#bench-budget"}
    got = ddb.get_item(TableName=table, Key={"pk": budget}, ConsistentRead=True).get("Item")
    v = int(got["v"]["N"]) if got else 0
    slot = {"pk": budget, "v": {"N": str(v + 1)}, "doc": {"S": json.dumps({"next_at": now})}}
    if v:
        ddb.put_item(TableName=table, Item=slot, ConditionExpression="v = :v",
                     ExpressionAttributeValues={":v": {"N": str(v)}})
    else:
        ddb.put_item(TableName=table, Item=slot, ConditionExpression="attribute_not_exists(pk)")
    # verify=True (the default): the TLS context an HTTPS ImgGo needs, built now.
    with httpx.Client(timeout=10.0) as imggo:
        answer = imggo.post(
            env["IMGGO_BASE_URL"] + "/api/patterns/" + doc["pattern_id"] + "/ingest",
            json={"image_url": body["image_url"], "extras": {}, "idempotency_key": doc["id"]},
            headers={"Authorization": "Bearer " + secrets[refs[0]],
                     "Idempotency-Key": doc["id"]},
        )
    remote = answer.json()["data"]
    if not v:  # the budget's first answer: the plan's limit learnt, read and written again
        got = ddb.get_item(TableName=table, Key={"pk": budget}, ConsistentRead=True)["Item"]
        ddb.put_item(TableName=table, Item={**slot, "v": {"N": "2"}},
                     ConditionExpression="v = :v", ExpressionAttributeValues={":v": got["v"]})
    now = time.time()
    ddb.put_item(TableName=table, Item={"pk": {"S": "K#imggo:" + remote["job_id"]},
                 "job": {"S": doc["id"]}, "exp": {"N": repr(doc["expires_at"])}},
                 ConditionExpression=NOT_PRESENT,
                 ExpressionAttributeValues={":now": {"N": repr(now)}},
                 ReturnValuesOnConditionCheckFailure="ALL_OLD")
    doc.update(status="queued", imggo_job_id=remote["job_id"], updated_at=now, attempts=1)
    ddb.put_item(TableName=table, Item=item(doc, 2),
                 ConditionExpression="v = :expected AND (attribute_not_exists(exp) OR exp > :now)",
                 ExpressionAttributeValues={":expected": {"N": "1"}, ":now": {"N": repr(now)}})
    return {"statusCode": 202, "headers": {"Content-Type": "application/json",
            "Location": "/v1/jobs/" + doc["id"]}, "body": json.dumps(doc)}
"""
    + _CONTEXT
    + """
answer = handler(json.loads(os.environ["BENCH_EVENT"]), Context())
callprobe.done(answer["statusCode"])
"""
)


@dataclass(frozen=True)
class Layout:
    """Where a child loads its code from, with which interpreter."""

    interpreter: Sequence[str]
    path: Sequence[Path]  # PYTHONPATH (the probe's directory is added last)
    cwd: Path
    description: str


def lambda_python() -> str:
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


def _read_only(top: Path, writable: bool = False) -> None:
    for path in [top, *top.rglob("*")]:
        if writable:
            path.chmod(0o755 if path.is_dir() else 0o644)
        else:
            path.chmod(0o555 if path.is_dir() else 0o444)


@contextlib.contextmanager
def artifact_layout(artifact: Path = ARTIFACT) -> Iterator[Layout]:
    """The artifact as Lambda lays it out and loads it: unzipped, read-only, run by the
    runtime's Python 3.12 with the task and the runtime's packages on its path. `-S`:
    no site directory and none of its .pth files (an interpreter's own may import
    packages before the clock starts); Lambda's path is the task and the runtime."""
    if not artifact.exists():
        raise SystemExit(f"{artifact} is missing: run `make package-aws` first")
    python = lambda_python()
    runtime = _runtime_packages(python)
    with tempfile.TemporaryDirectory() as unpacked:
        task = Path(unpacked) / "task"
        with zipfile.ZipFile(artifact) as archive:
            archive.extractall(task)
        _read_only(task)
        try:
            files = [f for f in task.rglob("*") if f.is_file()]
            modules = sum(f.suffix == ".py" for f in files)
            compiled = sum(f.name.endswith(".cpython-312.pyc") for f in files)
            yield Layout(
                interpreter=[python, "-S"],
                path=[task, runtime],
                cwd=task,
                description=(
                    f"{artifact.name} unzipped read-only, Python 3.12, "
                    f"{compiled}/{modules} modules with bytecode"
                ),
            )
        finally:
            _read_only(task, writable=True)  # so the directory can be removed


def source_layout() -> Layout:
    """The repository's sources on this interpreter (the smoke test: no artifact)."""
    return Layout([sys.executable, "-s"], [ROOT], ROOT, "the source tree (not the artifact)")


def _event() -> dict[str, object]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/v1/jobs",
        "rawQueryString": "",
        "isBase64Encoded": False,
        # ImgGo would fetch it later (and fail), not the function.
        "body": json.dumps({"pattern_id": "image-facts", "image_url": "http://127.0.0.1:9/a.png"}),
        "headers": {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"},
        "requestContext": {
            "http": {"method": "POST", "path": "/v1/jobs"},
            "requestId": "bench",
            "stage": "$default",
        },
    }


def _prepare(moto_url: str) -> None:
    import boto3

    from core.adapters.stores.dynamodb import DynamoDbJobStore
    from core.api.auth import hash_key

    session = boto3.Session("bench", "bench", region_name=REGION)
    ddb = session.client("dynamodb", endpoint_url=moto_url)
    if TABLE not in ddb.list_tables()["TableNames"]:
        DynamoDbJobStore(TABLE, client=ddb).create_table()
    ssm = session.client("ssm", endpoint_url=moto_url)
    secrets = {**SECRETS, "/bench/api-key-hashes": f"bench={hash_key(API_KEY)}"}
    for name, value in secrets.items():
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def _env(layout: Layout, moto_url: str, imggo_url: str, data_dir: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": child_path(*layout.path),
        "PYTHONDONTWRITEBYTECODE": "1",  # as on a read-only /var/task
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_LAMBDA_FUNCTION_NAME": "imggo-http",
        "IMGGO_FN_STORE_URL": f"dynamodb://{TABLE}",
        "IMGGO_FN_BLOB_URL": "s3://bench-uploads",
        "IMGGO_FN_QUEUE_URL": "sqs://123456789012/bench-work",
        "IMGGO_FN_DATA_DIR": data_dir,
        "IMGGO_BASE_URL": imggo_url,
        "IMGGO_API_KEY_SECRET_REF": "/bench/api-key",
        "IMGGO_WEBHOOK_SECRET_SECRET_REF": "/bench/webhook-secret",
        "IMGGO_FN_API_KEYS_SECRET_REF": "/bench/api-key-hashes",
        "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
        "POWERTOOLS_METRICS_NAMESPACE": "Bench",
        "BENCH_EVENT": json.dumps(_event()),
    }


@contextlib.contextmanager
def _moto() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request log lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def run(
    runs: int = RUNS,
    *,
    layout: Layout,
    moto_url: str | None = None,
    imggo_url: str | None = None,
    warm_up: bool = True,
    count_instructions: bool = True,
) -> Comparison:
    """Both sides, `runs` times, against the given moto server and ImgGo (each started
    here when not given)."""
    from bench.simproc import simulator_process

    with contextlib.ExitStack() as stack:
        moto_url = moto_url or stack.enter_context(_moto())
        imggo_url = imggo_url or stack.enter_context(simulator_process("--processing-s", "60"))
        data_dir = stack.enter_context(tempfile.TemporaryDirectory())
        _prepare(moto_url)
        env = _env(layout, moto_url, imggo_url, data_dir)
        function = Child(FUNCTION, layout.interpreter, env, layout.cwd)
        floor = Child(FLOOR, layout.interpreter, env, layout.cwd)
        comparison = compare(
            "aws",
            function,
            floor,
            runs=runs,
            warm_up=warm_up,
            count_instructions=count_instructions,
            function_work=f"handlers_aws.api.handler, from {layout.description}",
            floor_work="a handler by hand: boto3 (SSM, DynamoDB) + httpx.Client, same paths",
        )
    for sample in comparison.function:
        loaded = Path(sample.extra["loaded_from"])
        if not loaded.is_relative_to(layout.path[0]):
            raise RuntimeError(f"the handler was not loaded from {layout.description}: {loaded}")
    return comparison


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start_aws")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--artifact", type=Path, default=ARTIFACT, help="the zip Lambda runs")
    args = parser.parse_args()
    with artifact_layout(args.artifact.resolve()) as layout:
        comparison = run(args.runs, layout=layout)
    print("\n".join(table([comparison])))


if __name__ == "__main__":
    main()
