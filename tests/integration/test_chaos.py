"""Faults on: 30 % of ImgGo calls answer 429/5xx or stall past our timeout. Every job we
accepted must end up stored and succeeded, and ImgGo must hold exactly one job for each."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from core.domain.job import JobStatus
from core.service.reconcile import reconcile
from imggo_simulator import SimulatorConfig
from tests.integration.conftest import auth, close_stack, make_stack
from tests.support.images import png

JOBS = 40


def test_every_accepted_job_is_stored_once_under_chaos(tmp_path):
    chaos = SimulatorConfig(
        processing_s=0.05,
        error_rate=0.10,
        rate_limited_rate=0.10,
        timeout_rate=0.10,
        timeout_sleep_s=0.6,
        accepted_then_error_rate=0.05,
        webhook_drop_rate=0.3,
        seed=1234,
    )
    stack = make_stack(
        tmp_path,
        chaos,
        imggo_timeout_s=0.3,
        submit_deadline_s=2.0,
        reconcile_age_s=0,
        poll_after_s=0,
    )
    try:

        def submit(i: int) -> tuple[int, str | None]:
            # A client that retries our 5xx with the same Idempotency-Key, as it should.
            for _ in range(5):
                r = stack.client.post(
                    "/v1/jobs",
                    headers={**auth(), "Idempotency-Key": f"chaos-{i}"},
                    data={"pattern_id": "image-facts"},
                    files={"image": (f"{i}.png", png(100 + i), "image/png")},
                )
                if r.status_code in (200, 202):
                    return r.status_code, r.json()["id"]
                assert r.status_code >= 500, r.text
            return r.status_code, None

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(submit, range(JOBS)))
        accepted = [job_id for _, job_id in answers if job_id]
        assert len(accepted) == JOBS and len(set(accepted)) == JOBS

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            reconcile(stack.services)
            jobs = [stack.services.store.get(j) for j in accepted]
            if all(j is not None and j.status is JobStatus.SUCCEEDED for j in jobs):
                break
            time.sleep(0.2)
        jobs = [stack.services.store.get(j) for j in accepted]
        assert all(j is not None for j in jobs)
        assert sorted(j.status.value for j in jobs) == ["succeeded"] * JOBS
        # exactly one ImgGo job per accepted job, whatever was retried
        assert stack.simulator.ingest_count() == JOBS
        assert len({j.imggo_job_id for j in jobs}) == JOBS
        assert stack.simulator.ingest_calls() > JOBS  # the chaos really happened
    finally:
        close_stack(stack)
