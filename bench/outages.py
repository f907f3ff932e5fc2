"""How long each cloud adapter takes to answer `store_unavailable` with the production
CallLimits, against a loopback port nobody listens on and against a tarpit (a server
that accepts and never answers), next to the bound the limits promise.

    python -m bench.outages

Offline: fake AWS credentials, no Google credentials, every endpoint on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

from core.adapters.outages import DEFAULT_LIMITS
from core.ports import WorkItem
from tests.support.outage import dead_port, tarpit, timed

OFFLINE_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",  # signs requests to 127.0.0.1 only
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "GOOGLE_CLOUD_PROJECT": "bench-project",
    "NO_GCE_CHECK": "True",
    "GCE_METADATA_HOST": "127.0.0.1:9",
}


def _calls(port: int) -> Iterator[tuple[str, Callable[[], object]]]:
    from core.adapters.aws.s3_blobs import S3BlobStore
    from core.adapters.aws.secrets import AwsSecrets
    from core.adapters.aws.sqs_queue import SqsQueue
    from core.adapters.gcp.gcs_blobs import GcsBlobStore
    from core.adapters.gcp.pubsub_queue import PubSubQueue
    from core.adapters.gcp.secret_manager import SecretManagerSecrets

    url = f"http://127.0.0.1:{port}"
    yield "S3 get", lambda: S3BlobStore("b", endpoint_url=url).get("uploads/t/a")
    yield "S3 put (1 kB)", lambda: S3BlobStore("b", endpoint_url=url).put("k", b"x" * 1000, "a/b")
    yield "SQS send", lambda: SqsQueue("w", account="1", endpoint_url=url).send([WorkItem("j")])
    yield "SSM read", lambda: AwsSecrets(endpoint_url=url).get("/imggo/api-key")
    # The Google clients read their emulator variables when they are built.
    os.environ["STORAGE_EMULATOR_HOST"] = url
    yield "GCS get", lambda: GcsBlobStore("b", "fn").get("uploads/t/a")
    yield "Secret Manager read", lambda: SecretManagerSecrets("p", endpoint=url).get("k")
    os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"
    yield (
        "Pub/Sub send",
        lambda: PubSubQueue("projects/bench-project/topics/w").send([WorkItem("j")]),
    )


def main() -> None:
    os.environ.update(OFFLINE_ENV)
    print(f"bound per call (CallLimits.worst_case_s): {DEFAULT_LIMITS.worst_case_s:.1f} s")
    print(f"{'call':22s} {'outage':8s} {'seconds':>8s}  answer")
    for outage in ("refused", "tarpit"):
        place = tarpit() if outage == "tarpit" else contextlib.nullcontext(dead_port())
        with place as port:
            for name, call in _calls(port):
                elapsed, outcome = timed(call)
                code = getattr(outcome, "code", type(outcome).__name__)
                print(f"{name:22s} {outage:8s} {elapsed:8.2f}  {code}")


if __name__ == "__main__":
    main()
