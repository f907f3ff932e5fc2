"""Warm overhead of the AWS HTTP function: `GET /v1/jobs/{id}` in-process, against a bare
Powertools `APIGatewayHttpResolver` route doing the same key check and store read.

- function: `handlers_aws.api.handler(event, context)`, warm (its services built by an
  earlier call): Powertools' logger and metrics wrapping, the event translated, the
  platform's request id and log correlation, the core's routing, auth, poll-through
  read and error envelope.
- floor: `APIGatewayHttpResolver().resolve(event, context)` with one route that checks
  the Bearer key (the core's Authenticator: SHA-256 and a constant-time compare against
  the same hashes), reads the job from the same store and renders it as the API does
  (`job_view`, compact JSON).

Same event (AWS's HTTP API 2.0 sample, as `sam local generate-event` makes it, with the
headers a real request carries), same Lambda context, same store instance, and the same
response body on both sides (checked byte for byte). The store is the in-memory one: its
read goes through the same decoding every store shares and costs microseconds, so what
the function adds is not hidden behind a network round trip (on DynamoDB the read alone
is a round trip of milliseconds). Rounds alternate between the sides; the median of the
rounds' per-call means is reported.

    python -m bench.warm_aws [--calls 2000] [--rounds 7] [--profile]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EVENT = ROOT / "tests" / "aws" / "events" / "apigw_http_v2.json"
GOAL = 1.5
API_KEY = "bench-key"
TENANT = "bench"
JOB_ID = "0b9a7c1e-5d2f-4c3a-9e8b-1f2d3c4b5a69"


class _Context:
    function_name = "imggo-http"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    aws_request_id = "bench"
    log_group_name = "g"
    log_stream_name = "s"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imggo-http"

    def get_remaining_time_in_millis(self) -> int:
        return 29000


def get_event(job_id: str = JOB_ID) -> dict[str, Any]:
    """AWS's HTTP API sample event, as a GET of the job with a real request's headers."""
    event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text())
    path = f"/v1/jobs/{job_id}"
    for name in ("cookies", "queryStringParameters", "pathParameters"):
        event.pop(name, None)
    event.update(rawPath=path, rawQueryString="", body=None, isBase64Encoded=False)
    event["headers"] = {
        "accept": "application/json",
        "accept-encoding": "gzip, deflate",
        "authorization": f"Bearer {API_KEY}",
        "content-length": "0",
        "host": "id.execute-api.us-east-1.amazonaws.com",
        "user-agent": "python-httpx/0.28.1",
        "x-amzn-trace-id": "Root=1-5e6722a7-cc56xmpl46db7ae02d4da47e",
        "x-forwarded-for": "192.168.0.1",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    event["requestContext"]["http"].update(method="GET", path=path)
    return event


@dataclass(frozen=True)
class Sides:
    function: Callable[[dict[str, Any], Any], dict[str, Any]]
    floor: Callable[[dict[str, Any], Any], dict[str, Any]]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def sides() -> Iterator[Sides]:
    """The warm function and the floor, over one in-memory store holding the job."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

    from core.api.auth import Authenticator, hash_key
    from core.api.views import job_view
    from core.domain.job import Job, JobSource, JobStatus
    from handlers_aws.api import handler
    from handlers_aws.runtime import host, reset_for_tests

    with (
        tempfile.TemporaryDirectory() as data_dir,
        _environment(
            {
                "IMGGO_FN_STORE_URL": "memory://",
                "IMGGO_FN_DATA_DIR": data_dir,
                "IMGGO_API_KEY": "unused",
                "IMGGO_FN_API_KEYS": f"{TENANT}={hash_key(API_KEY)}",
                "POWERTOOLS_METRICS_NAMESPACE": "Bench",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        ),
    ):
        reset_for_tests()
        services = host().services
        now = time.time()
        services.store.create(
            Job(
                id=JOB_ID,
                tenant=TENANT,
                pattern_id="invoice",
                source=JobSource("url", url="https://example.com/a.png"),
                created_at=now,
                updated_at=now,
                status=JobStatus.SUCCEEDED,
                manifest={"total": 12.5, "lines": [{"sku": "A", "qty": 2}] * 5},
            )
        )
        store = services.store
        keys = Authenticator(services.settings.api_key_hashes)
        app = APIGatewayHttpResolver()

        @app.get("/v1/jobs/<job_id>")
        def get_job(job_id: str) -> Response[str]:
            tenant = keys.tenant_for(app.current_event.headers.get("authorization"))
            job = store.get(job_id)
            if job is None or job.tenant != tenant:
                return Response(404, "application/json", '{"error":{}}')
            body = json.dumps(job_view(job), separators=(",", ":"), ensure_ascii=False)
            return Response(200, "application/json", body)

        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the first call's EMF line
                handler(get_event(), _Context())
            yield Sides(handler, app.resolve)
        finally:
            reset_for_tests()


def _per_call_us(
    call: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any], calls: int
) -> float:
    context = _Context()
    start = time.perf_counter()
    for _ in range(calls):
        call(event, context)
    return (time.perf_counter() - start) / calls * 1e6


def run(calls: int = 2000, rounds: int = 7) -> list[tuple[str, str]]:
    with sides() as both:
        event = get_event()
        ours, theirs = both.function(event, _Context()), both.floor(event, _Context())
        if ours["statusCode"] != 200 or theirs["statusCode"] != 200:
            raise RuntimeError(f"a side did not answer 200: {ours} / {theirs}")
        if ours["body"] != theirs["body"]:
            raise RuntimeError("the two sides answered different bodies: not the same work")
        function_us: list[float] = []
        floor_us: list[float] = []
        for i in range(rounds):
            pair = [(both.function, function_us), (both.floor, floor_us)]
            for call, samples in pair if i % 2 == 0 else reversed(pair):
                samples.append(_per_call_us(call, event, calls))
    function_median, floor_median = statistics.median(function_us), statistics.median(floor_us)
    ratio = function_median / floor_median
    return [
        (
            f"AWS warm GET /v1/jobs/{{id}}, handlers_aws.api.handler in-process "
            f"(median of {rounds} rounds of {calls})",
            f"{function_median:.1f} us",
        ),
        (
            "floor: a bare Powertools APIGatewayHttpResolver route, same event and store",
            f"{floor_median:.1f} us",
        ),
        (
            f"ratio function / floor (goal <= {GOAL}x)",
            f"{ratio:.2f}x ({'meets' if ratio <= GOAL else 'MISSES'} the goal)",
        ),
        (
            "  work, each side: the Bearer key checked, 1 store read (in-memory), "
            f"the same {len(ours['body'])}-byte JSON body",
            "",
        ),
    ]


def profile(calls: int = 5000) -> str:
    """pyinstrument's call trees of both sides, `calls` calls each."""
    from pyinstrument import Profiler

    out: list[str] = []
    with sides() as both:
        event = get_event()
        for name, call in (("function", both.function), ("floor", both.floor)):
            profiler = Profiler(interval=0.0001)
            profiler.start()
            _per_call_us(call, event, calls)
            profiler.stop()
            out.append(f"===== {name}: {calls} calls")
            out.append(profiler.output_text(unicode=False, color=False))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.warm_aws")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print pyinstrument's trees")
    args = parser.parse_args()
    if args.profile:
        print(profile(args.calls))
        return
    rows = run(args.calls, args.rounds)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
