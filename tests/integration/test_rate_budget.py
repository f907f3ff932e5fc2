"""A small plan, met the way a user meets it: more images than the plan's minute allows
for, through the HTTP API, the local queue and the real ImgGo client, against the
simulator's own per-key limit. Every job must succeed without ImgGo answering a single
429: the shared budget paces the calls, and what it cannot fit in a submission's
deadline is deferred to the queue, never failed and never left with nobody to send it."""

from __future__ import annotations

import time

import httpx

from core.domain.job import JobStatus
from imggo_simulator import SimulatorConfig
from tests.integration.conftest import auth, close_stack, make_stack
from tests.support.images import png

JOBS = 5
PLAN = 30  # calls a minute: slots 2.07 s apart, longer than a submission may wait


def test_a_plan_smaller_than_the_work_is_paced_and_deferred_never_failed(tmp_path, caplog):
    caplog.set_level("INFO", logger="imggo.service")
    stack = make_stack(
        tmp_path,
        SimulatorConfig(processing_s=0.05, rate_limit_per_minute=PLAN),
        imggo_timeout_s=2.0,
        submit_deadline_s=1.2,  # waits at most 0.2 s for a slot, then defers
    )
    try:
        ids = []
        for i in range(JOBS):
            answer = stack.client.post(
                "/v1/jobs",
                headers={**auth(), "Idempotency-Key": f"plan-{i}"},
                data={"pattern_id": "image-facts"},
                files={"image": (f"{i}.png", png(300 + i), "image/png")},
            )
            assert answer.status_code == 202, answer.text
            ids.append(answer.json()["id"])
        # Deferred jobs are accepted, not failed, and nothing was counted against them.
        first = [stack.services.store.get(j) for j in ids]
        assert all(j is not None and j.status is not JobStatus.FAILED for j in first)
        deadline = time.monotonic() + 45
        jobs = first
        while time.monotonic() < deadline:
            jobs = [stack.services.store.get(j) for j in ids]
            if all(j is not None and j.status is JobStatus.SUCCEEDED for j in jobs):
                break
            time.sleep(0.2)
        assert [j.status.value for j in jobs if j] == ["succeeded"] * JOBS
        stats = httpx.get(f"{stack.simulator.url}/_sim/stats").json()["totals"]
        assert stats["rate_limited"] == 0, stats  # paced: ImgGo never had to refuse
        assert stats["jobs_created"] == JOBS
        deferred = [r for r in caplog.records if "deferred" in r.getMessage()]
        assert deferred, "the plan should have been too small to send them all at once"
    finally:
        close_stack(stack)
