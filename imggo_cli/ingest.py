"""`imggo-fn ingest`: files and URLs in, a results table (and file) out."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.domain.job import Job, JobStatus
from core.ports import ImageUpload
from core.service.batch import BatchItem, ItemOutcome, run_batch
from core.service.context import Services
from core.service.query import refresh
from imggo_cli.local import LOCAL_TENANT
from imggo_cli.output import Progress, table, write_results


class UsageError(Exception):
    """A user mistake: printed as one line, exit code 2."""


def read_inputs(inputs: list[str]) -> tuple[list[BatchItem], list[str]]:
    items: list[BatchItem] = []
    labels: list[str] = []
    for raw in inputs:
        if raw.startswith(("http://", "https://")):
            items.append(BatchItem(image_url=raw))
        else:
            path = Path(raw)
            if not path.exists():
                raise UsageError(f"no such file: {raw}")
            if not path.is_file():
                raise UsageError(f"not a file: {raw}")
            items.append(BatchItem(upload=ImageUpload(path.read_bytes(), path.name, "")))
        labels.append(raw)
    if not items:
        raise UsageError("give at least one image file or URL")
    return items, labels


def _wait_for(
    services: Services, jobs: list[Job], *, timeout_s: float, concurrency: int, interval_s: float
) -> dict[str, Job]:
    """Poll ImgGo (through our store) until every job is terminal or time runs out."""
    latest = {job.id: job for job in jobs}
    pending = [job for job in jobs if not job.terminal]
    if not pending:
        return latest
    progress = Progress(len(pending), "waiting for results")
    deadline = time.monotonic() + timeout_s
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        while pending and time.monotonic() < deadline:
            time.sleep(interval_s)
            still: list[Job] = []
            for job in pool.map(lambda j: refresh(services, j), pending):
                latest[job.id] = job
                if job.terminal:
                    progress.advance()
                else:
                    still.append(job)
            pending = still
    progress.close()
    return latest


@dataclass
class IngestSummary:
    records: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return sum(1 for r in self.records if r["status"] != JobStatus.SUCCEEDED.value)


def _describe(manifest: dict[str, Any] | None) -> str:
    if not manifest:
        return ""
    text = json.dumps({k: v for k, v in manifest.items() if not k.startswith("_")})
    return text if len(text) <= 70 else text[:67] + "..."


def ingest(
    services: Services,
    inputs: list[str],
    *,
    pattern: str,
    concurrency: int,
    wait_s: float,
    out: Path | None,
) -> IngestSummary:
    items, labels = read_inputs(inputs)
    progress = Progress(len(items), "submitting")
    result = run_batch(
        services,
        LOCAL_TENANT,
        pattern,
        items,
        concurrency=concurrency,
        on_item=lambda _: progress.advance(),
    )
    progress.close()
    outcomes: list[ItemOutcome] = result.items
    jobs = _wait_for(
        services,
        [o.job for o in outcomes if o.job is not None],
        timeout_s=wait_s,
        concurrency=concurrency,
        interval_s=0.2,
    )
    records: list[dict[str, Any]] = []
    for outcome, label in zip(outcomes, labels, strict=True):
        job = jobs.get(outcome.job.id) if outcome.job else None
        error = outcome.error
        if job is not None and job.error is not None:
            error = {"code": job.error.code, "message": job.error.message}
        records.append(
            {
                "input": label,
                "job_id": job.id if job else None,
                "status": job.status.value if job else "invalid",
                "error": error,
                "manifest": job.manifest if job else None,
                "dedupe_of": job.dedupe_of if job else None,
            }
        )
    rows = [
        (
            r["input"],
            r["status"],
            (r["job_id"] or "")[:8],
            _describe(r["manifest"]) or (r["error"] or {}).get("message", ""),
        )
        for r in records
    ]
    table(
        ("input", "status", "job", "result"),
        rows,
        title=f"{len(records)} images, pattern {pattern}",
    )
    if out is not None:
        write_results(out, records)
    return IngestSummary(records)
