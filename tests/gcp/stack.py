"""The whole Google Cloud flavour on loopback, assembled for the end-to-end tests:

    functions-framework servers (gunicorn, one per entry point, from main.py)
      http_api, pubsub_work, storage_finalized, pubsub_reconcile
    Firestore emulator (the job store)      Pub/Sub emulator (the work topic)
    GCS stand-in (signed PUT/GET verified)  Secret Manager stand-in (the ImgGo API key)
    the ImgGo simulator (webhooks registered at http_api)

Configuration reaches the functions only through environment variables, as on Cloud
Functions; google-auth is kept off the network (see emulators.offline_google_env).
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from google.cloud import pubsub_v1

from core.adapters.clock import SystemClock
from core.adapters.stores.firestore import FirestoreJobStore
from core.api.auth import hash_key
from core.domain.job import Job
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from tests.gcp.emulators import PROJECT
from tests.gcp.ffserver import FunctionServer
from tests.gcp.gcs_standin import GcsStandIn
from tests.gcp.sa_key import throwaway_key
from tests.gcp.secret_standin import SecretManagerStandIn
from tests.support.images import ImageHost

API_KEY = "gcp-test-key-tenant-a"
BUCKET = "imggo-e2e-bucket"
TARGETS = ("http_api", "pubsub_work", "storage_finalized", "pubsub_reconcile")
MAX_DELIVERY_ATTEMPTS = 5  # the work subscription's dead-letter bound (Pub/Sub's least)


def auth(key: str = API_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class GcpStack:
    servers: dict[str, FunctionServer]
    simulator: SimulatorServer
    gcs: GcsStandIn
    secret_manager: SecretManagerStandIn
    images: ImageHost
    store: FirestoreJobStore
    publisher: Any
    subscriber: Any
    topic: str
    subscription: str
    client: httpx.Client
    env: dict[str, str]  # what the functions were started with

    def url(self, target: str) -> str:
        return self.servers[target].url

    def wait_for_job(self, job_id: str, *, timeout: float = 15.0) -> Job:
        """Poll Firestore itself (not the API) until the job is terminal."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.store.get(job_id)
            if job is not None and job.terminal:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job and job.status} in Firestore")
            time.sleep(0.05)

    def drain(self) -> None:
        """Acknowledge whatever waits in the subscription (tests start from empty)."""
        while True:
            response = self.subscriber.pull(
                subscription=self.subscription, max_messages=100, timeout=2
            )
            if not response.received_messages:
                return
            self.subscriber.acknowledge(
                subscription=self.subscription,
                ack_ids=[r.ack_id for r in response.received_messages],
            )


@contextmanager
def gcp_stack(
    repo_root: Path, work_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[GcpStack]:
    """Needs FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST and the offline env set."""
    key = throwaway_key(work_dir)
    gcs = GcsStandIn(key.public_key)
    secret_manager = SecretManagerStandIn()
    secret_manager.secrets[(PROJECT, "imggo-api-key")] = DEMO_API_KEY
    images = ImageHost()
    simulator = SimulatorServer(SimulatorConfig(processing_s=0.05)).start()
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    name = f"imggo-work-{uuid.uuid4().hex[:8]}"
    topic = publisher.topic_path(PROJECT, name)
    subscription = subscriber.subscription_path(PROJECT, name + "-eventarc")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=30)
    prefix = "e2e" + uuid.uuid4().hex[:10]
    webhook_secret = secrets.token_urlsafe(24)
    env = {
        **os.environ,
        "IMGGO_FN_STORE_URL": f"firestore://{prefix}",
        "IMGGO_FN_BLOB_URL": f"gs://{BUCKET}/fn",
        "IMGGO_FN_QUEUE_URL": f"pubsub://{topic}",
        "IMGGO_BASE_URL": simulator.url,
        # The API key by reference (Secret Manager), the webhook secret and the API-key
        # hashes as plain variables (what `--set-secrets` injection looks like).
        "IMGGO_API_KEY_SECRET_REF": "imggo-api-key",
        "IMGGO_FN_SECRET_MANAGER_ENDPOINT": secret_manager.url,
        "IMGGO_WEBHOOK_SECRET": webhook_secret,
        "IMGGO_FN_API_KEYS": f"tenant-a={hash_key(API_KEY)}",
        "IMGGO_FN_SSRF_ALLOW": "127.0.0.1",
        "IMGGO_FN_POLL_AFTER_S": "3600",  # only webhooks (and reconcile) move jobs
        "IMGGO_FN_SUBMIT_DEADLINE_S": "1.5",
        "IMGGO_TIMEOUT_S": "2",
        "IMGGO_FN_RECONCILE_AGE_S": "0",
        "IMGGO_FN_MAX_DELIVERY_ATTEMPTS": str(MAX_DELIVERY_ATTEMPTS),  # as deploy/gcp.sh sets
        "STORAGE_EMULATOR_HOST": gcs.url,
        "GOOGLE_APPLICATION_CREDENTIALS": str(key.path),
        **(extra_env or {}),
    }
    # Start all four at once: each boots in about a second, mostly imports.
    with ThreadPoolExecutor(len(TARGETS)) as pool:
        servers = dict(
            zip(
                TARGETS,
                pool.map(lambda t: FunctionServer(t, env, repo_root).wait(), TARGETS),
                strict=True,
            )
        )
    httpx.post(
        f"{simulator.url}/api/webhooks",
        headers=auth(DEMO_API_KEY),
        json={
            "url": f"{servers['http_api'].url}/v1/webhooks/imggo",
            "events": ["job.succeeded", "job.failed"],
            "secret": webhook_secret,
        },
    ).raise_for_status()
    store = FirestoreJobStore(prefix, clock=SystemClock())
    client = httpx.Client(base_url=servers["http_api"].url, timeout=30)
    try:
        yield GcpStack(
            servers,
            simulator,
            gcs,
            secret_manager,
            images,
            store,
            publisher,
            subscriber,
            topic,
            subscription,
            client,
            env,
        )
    finally:
        client.close()
        for server in servers.values():
            server.stop()
        store.close()
        subscriber.close()
        publisher.stop()
        simulator.stop()
        images.close()
        secret_manager.close()
        gcs.close()
