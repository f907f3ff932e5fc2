"""Reconcile bounded by the time its invocation has left: it stops before a job it could
not finish, reports the rest as deferred, and the next pass takes them."""

from __future__ import annotations

from core.domain.job import JobStatus
from core.ports import ImageApiError
from core.service.reconcile import STORE_MARGIN_S, reconcile
from core.service.submit import NewJob, submit
from tests.fakes import FakeImggo, make_services


def _stuck_jobs(count: int):
    down = [ImageApiError("down", status=503, retryable=True) for _ in range(count)]
    imggo = FakeImggo(fail_next=down)
    services = make_services(imggo=imggo, reconcile_age_s=0, submit_deadline_s=5.0)
    for i in range(count):
        submit(
            services,
            NewJob(
                tenant="acme", pattern_id="invoice", image_url=f"https://images.example/{i}.png"
            ),
        )
    services.clock.advance(1)
    return services, imggo


def test_a_pass_stops_when_the_next_job_would_not_fit():
    services, imggo = _stuck_jobs(5)
    per_job = services.settings.submit_deadline_s + STORE_MARGIN_S
    # Each job takes its whole worst case here: room for two, then not for a third.
    readings = iter([2.5 * per_job, 1.5 * per_job, 0.5 * per_job, 0.4 * per_job])

    def time_left() -> float:
        return next(readings)

    report = reconcile(services, time_left=time_left)
    assert report.dispatched == 2 and report.deferred == 3, report
    assert report.checked == 2
    statuses = [j.status for j in services.store.list_jobs("acme", status=None, limit=10).items]
    assert statuses.count(JobStatus.QUEUED) == 2 and statuses.count(JobStatus.ACCEPTED) == 3
    again = reconcile(services, time_left=lambda: 3600.0)  # the next pass takes the rest
    assert again.dispatched == 3 and again.deferred == 0
    assert len(imggo.jobs) == 5


def test_no_time_at_all_touches_nothing_and_skips_the_sweep():
    services, imggo = _stuck_jobs(2)
    report = reconcile(services, time_left=lambda: 0.5)
    assert report.deferred == 2 and report.checked == 0 and report.expired_removed == 0
    assert imggo.jobs == {}
