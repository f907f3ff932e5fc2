"""In-memory fakes of the ports, for fast unit tests of the core. The integration tests
run the same use cases against the real simulator over HTTP and the real stores."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core.adapters.blobs import MemoryBlobStore
from core.adapters.clock import ManualClock
from core.adapters.stores.memory import MemoryJobStore
from core.config import Settings
from core.domain.job import JobStatus
from core.ports import ImageApiError, RemoteJob, Submission
from core.service.context import Services
from core.service.ssrf import UrlGuard

PUBLIC_IP = "93.184.216.34"


def public_resolver(host: str) -> list[str]:
    """Every name resolves to one public address; tests never ask real DNS."""
    if host.endswith(".invalid"):
        raise OSError("name does not resolve")
    return [PUBLIC_IP]


@dataclass
class FakeImggo:
    """ImgGo as a dict: honours Idempotency-Key, counts calls, fails on demand."""

    fail_next: list[ImageApiError] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_key: dict[str, str] = field(default_factory=dict)
    submit_calls: int = 0
    get_calls: int = 0
    on_submit: Callable[[Submission], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, submission: Submission, *, deadline: float | None = None) -> RemoteJob:
        if self.on_submit is not None:
            self.on_submit(submission)
        with self.lock:
            self.submit_calls += 1
            if self.fail_next:
                raise self.fail_next.pop(0)
            existing = self.by_key.get(submission.idempotency_key)
            if existing is not None:
                return RemoteJob(existing, JobStatus.QUEUED, replayed=True)
            job_id = str(uuid.uuid4())
            self.by_key[submission.idempotency_key] = job_id
            self.jobs[job_id] = {
                "status": JobStatus.QUEUED,
                "manifest": None,
                "error": None,
                "submission": submission,
            }
            return RemoteJob(job_id, JobStatus.QUEUED)

    def finish(
        self, job_id: str, manifest: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        with self.lock:
            job = self.jobs[job_id]
            job["status"] = JobStatus.FAILED if error else JobStatus.SUCCEEDED
            job["manifest"] = manifest if not error else None
            job["error"] = error

    def get_job(self, imggo_job_id: str, *, deadline: float | None = None) -> RemoteJob:
        with self.lock:
            self.get_calls += 1
            if self.fail_next:
                raise self.fail_next.pop(0)
            job = self.jobs.get(imggo_job_id)
            if job is None:
                raise ImageApiError("not found", status=404, code="NOT_FOUND")
            return RemoteJob(imggo_job_id, job["status"], job["manifest"], job["error"])

    def export(self, imggo_job_id: str, fmt: str) -> tuple[str, bytes]:
        return "text/csv", b"key,value\n"

    def list_patterns(self) -> list[dict[str, Any]]:
        return [{"id": "invoice", "name": "Invoice"}]

    def ping(self) -> None:
        pass


def make_services(
    *,
    imggo: FakeImggo | None = None,
    clock: ManualClock | None = None,
    settings: Settings | None = None,
    **settings_changes: Any,
) -> Services:
    clock = clock or ManualClock()
    base = settings or Settings(store_url="memory://", webhook_secrets=("whsec_test_0123456789",))
    if settings_changes:
        from dataclasses import replace

        base = replace(base, **settings_changes)
    return Services(
        settings=base,
        store=MemoryJobStore(clock=clock),
        imggo=imggo or FakeImggo(),
        blobs=MemoryBlobStore(),
        clock=clock,
        url_guard=UrlGuard(public_resolver, base.ssrf_allow),
    )
