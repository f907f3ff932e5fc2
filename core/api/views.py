"""How jobs and batches look on the wire. Internal fields (fingerprint, blob keys, the
tenant) stay inside."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from core.domain.job import Job, JobStatus
from core.ports import Batch

if TYPE_CHECKING:
    from core.service.batch import ItemOutcome


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_location(job_id: str) -> str:
    return f"/v1/jobs/{job_id}"


def job_view(job: Job) -> dict[str, Any]:
    source = job.source
    src: dict[str, Any] = {"kind": source.kind}
    if source.kind == "url":
        src["url"] = source.url
    else:
        src.update(filename=source.filename, content_type=source.content_type, size=source.size)
    return {
        "id": job.id,
        "status": job.status.value,
        "pattern_id": job.pattern_id,
        "source": src,
        "imggo_job_id": job.imggo_job_id,
        "manifest": job.manifest,
        "error": {"code": job.error.code, "message": job.error.message} if job.error else None,
        "attempts": job.attempts,
        "idempotency_key": job.idempotency_key,
        "content_sha256": job.content_sha256,
        "extras": job.extras,
        "batch_id": job.batch_id,
        "dedupe_of": job.dedupe_of,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "completed_at": iso(job.completed_at),
        "expires_at": iso(job.expires_at),
        "links": _job_links(job),
    }


def _job_links(job: Job) -> dict[str, str]:
    links = {"self": job_location(job.id)}
    if job.source.kind == "upload":  # the only source whose bytes we keep and serve
        links["image"] = f"{job_location(job.id)}/image"
    return links


def batch_view(batch: Batch, items: list[ItemOutcome]) -> dict[str, Any]:
    counts: dict[str, int] = {s.value: 0 for s in JobStatus}
    counts["invalid"] = 0
    views = []
    for item in items:
        if item.job is not None:
            counts[item.job.status.value] += 1
        else:
            counts["invalid"] += 1
        views.append(
            {
                "index": item.index,
                "job_id": item.job.id if item.job else None,
                "status": item.job.status.value if item.job else "invalid",
                "error": item.error
                or (
                    {"code": item.job.error.code, "message": item.job.error.message}
                    if item.job and item.job.error
                    else None
                ),
            }
        )
    done = sum(counts[s.value] for s in JobStatus if s.terminal) + counts["invalid"]
    return {
        "id": batch.id,
        "pattern_id": batch.pattern_id,
        "created_at": iso(batch.created_at),
        "total": len(items),
        "complete": done == len(items),
        "counts": counts,
        "items": views,
        "links": {"self": f"/v1/batches/{batch.id}"},
    }
