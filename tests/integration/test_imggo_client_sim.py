"""ImggoClient against the embedded ImgGo simulator on a real loopback port.

This is the end-to-end proof of the adapter: real sockets, real multipart, real
timeouts, and the simulator's chaos knobs to show that retries never create a
duplicate job (the Idempotency-Key does its job).
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from core.adapters.imggo.client import ImggoClient
from core.domain.job import JobStatus
from core.ports import ImageApiError, ImageUpload, RemoteJob, Submission
from imggo_simulator import SimulatorConfig, SimulatorServer

KEY = "imggo_test_simulator"  # the simulator's default accepted key


def png_bytes(
    color: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (64, 48)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(key: str, color: tuple[int, int, int] = (200, 30, 30)) -> Submission:
    return Submission(
        pattern_id="invoice",
        idempotency_key=key,
        upload=ImageUpload(png_bytes(color), f"{key}.png", "image/png"),
        extras={"test": "integration"},
    )


def wait_until_done(client: ImggoClient, job_id: str, timeout_s: float = 15.0) -> RemoteJob:
    give_up = time.monotonic() + timeout_s
    while True:
        job = client.get_job(job_id, deadline=time.monotonic() + 5.0)
        if job.status.terminal or time.monotonic() > give_up:
            return job
        time.sleep(0.02)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(SimulatorConfig(processing_s=0.05, rate_limit_per_minute=10_000))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[ImggoClient]:
    with ImggoClient(sim.url, KEY, timeout_s=5.0) as imggo:
        yield imggo


def test_multipart_submit_poll_replay_and_export(sim: SimulatorServer, client: ImggoClient) -> None:
    key = f"it-{uuid.uuid4().hex}"

    submitted = client.submit(upload(key))
    assert submitted.status is JobStatus.QUEUED and submitted.replayed is False

    done = wait_until_done(client, submitted.id)
    assert done.status is JobStatus.SUCCEEDED, done
    assert done.id == submitted.id
    assert isinstance(done.manifest, dict) and done.manifest

    again = client.submit(upload(key))
    assert again.id == submitted.id and again.replayed is True
    assert sim.ingest_count() == 1

    content_type, body = client.export(submitted.id, "csv")
    assert content_type.startswith("text/csv")
    assert body.strip()

    assert client.last_rate_limit is not None
    assert client.last_rate_limit.limit == 10_000


def test_patterns_and_health(client: ImggoClient) -> None:
    client.ping()
    patterns = client.list_patterns()
    assert patterns and all("id" in p for p in patterns)
    assert any(p.get("name") for p in patterns)


def test_unknown_job_is_a_non_retryable_404(sim: SimulatorServer, client: ImggoClient) -> None:
    with pytest.raises(ImageApiError) as caught:
        client.get_job(str(uuid.uuid4()))
    assert caught.value.status == 404 and caught.value.retryable is False


def test_wrong_key_is_refused_once_and_not_retried(sim: SimulatorServer) -> None:
    wrong = "imggo_test_not_a_real_key"
    with ImggoClient(sim.url, wrong, timeout_s=5.0) as imggo:
        before = sim.ingest_calls()
        with pytest.raises(ImageApiError) as caught:
            imggo.submit(upload("wrong-key"))
    error = caught.value
    assert error.status == 401 and error.retryable is False
    assert error.code == "INVALID_API_KEY"
    assert wrong not in error.message
    assert sim.ingest_calls() - before == 1
    assert sim.ingest_count() == 0


@pytest.mark.slow
def test_chaos_never_duplicates_and_every_submission_lands(
    sim: SimulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = sim.config
    config.seed = 1234
    config.error_rate = 0.1
    config.rate_limited_rate = 0.1
    config.timeout_rate = 0.1
    config.timeout_sleep_s = 0.6
    config.accepted_then_error_rate = 0.1
    keys = [f"chaos-{i:02d}-{uuid.uuid4().hex[:8]}" for i in range(30)]
    images = {key: upload(key, (i * 8 % 256, 100, 200)) for i, key in enumerate(keys)}

    # A short timeout turns the simulated stalls into client-side read timeouts; the
    # Retry-After cap keeps the simulator's "Retry-After: 1" from slowing the test.
    with ImggoClient(
        sim.url,
        KEY,
        timeout_s=0.25,
        max_attempts=12,
        backoff_base_s=0.01,
        backoff_cap_s=0.1,
        retry_after_cap_s=0.05,
    ) as imggo:
        with ThreadPoolExecutor(max_workers=4) as pool:
            submitted = dict(
                zip(keys, pool.map(lambda k: imggo.submit(images[k]), keys), strict=True)
            )
        assert len({job.id for job in submitted.values()}) == len(keys)
        assert sim.ingest_count() == len(keys)  # no duplicates, none lost
        assert sim.ingest_calls() > len(keys)  # chaos did force retries

        finished = [wait_until_done(imggo, job.id) for job in submitted.values()]
        assert all(job.status is JobStatus.SUCCEEDED for job in finished), finished

        # Resubmitting everything (still under chaos) changes nothing at ImgGo.
        for key in keys[:5]:
            assert imggo.submit(images[key]).id == submitted[key].id
        assert sim.ingest_count() == len(keys)

    assert any("retrying" in record.getMessage() for record in caplog.records)
    assert KEY not in caplog.text
