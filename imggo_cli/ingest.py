"""`imggo-fn ingest`: files and URLs in, a results table (and file) out. Resumable.

Every image gets an Idempotency-Key derived from the pattern and its content (the
bytes' SHA-256; a URL by its text), and the tenant is part of the job id made from
it. So the same inputs always map to the same jobs: re-running a stopped ingest
reports the jobs that finished, sends at once those that were never sent, and waits
for the rest, and ImgGo - which sees our job id as its Idempotency-Key - never gets a
second job for the same image.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from core.adapters.imggo.budget import NO_BUDGET, RateBudget
from core.adapters.imggo.client import ImggoClient
from core.domain.job import Job, JobStatus
from core.ports import ImageApi, ImageUpload
from core.service.batch import BatchItem, ItemOutcome, run_batch
from core.service.context import Services
from imggo_cli.errors import UserError
from imggo_cli.jobs import SHORT_ID
from imggo_cli.local import LOCAL_TENANT, SIMULATOR_PROCESSING_S
from imggo_cli.output import Progress, table
from imggo_cli.patterns import PatternInfo
from imggo_cli.polling import PollPlan
from imggo_cli.schedule import Scheduler

# After a Ctrl-C, the embedded simulator still gets this long to finish the jobs it
# took: it lives only as long as this process, and a resumed run could not ask it.
SIMULATOR_GRACE_S = 2.0


@dataclass(frozen=True)
class Input:
    label: str  # as the user typed it
    item: BatchItem


def read_inputs(inputs: Sequence[str]) -> list[Input]:
    read: list[Input] = []
    for raw in inputs:
        if raw.startswith(("http://", "https://")):
            read.append(Input(raw, BatchItem(image_url=raw)))
            continue
        path = Path(raw)
        if not path.exists():
            raise UserError(f"no such file: {raw}")
        if not path.is_file():
            raise UserError(f"not a file: {raw}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise UserError(f"cannot read {raw}: {exc.strerror}") from exc
        read.append(Input(raw, BatchItem(upload=ImageUpload(data, path.name, ""))))
    if not read:
        raise UserError("give at least one image file or URL")
    return read


def ingest_key(pattern_id: str, item: BatchItem) -> str:
    """The Idempotency-Key of one image under one pattern (the tenant is added by the
    job id derived from it)."""
    if item.upload is not None:
        what = "sha256:" + hashlib.sha256(item.upload.data).hexdigest()
    else:
        what = f"url:{item.image_url}"
    return "ingest-" + hashlib.sha256(f"{pattern_id}\x00{what}".encode()).hexdigest()


def rate_budget(imggo: ImageApi) -> RateBudget:
    """The budget ImgGo's client takes its slots from (none for another ImageApi)."""
    return imggo.budget if isinstance(imggo, ImggoClient) else NO_BUDGET


@dataclass
class IngestSummary:
    records: list[dict[str, Any]]
    stopped: bool  # Ctrl-C ended the run early

    def count(self, *statuses: str) -> int:
        return sum(1 for r in self.records if r["status"] in statuses)

    @property
    def succeeded(self) -> int:
        return self.count(JobStatus.SUCCEEDED.value)

    @property
    def failed(self) -> int:
        return self.count(JobStatus.FAILED.value, JobStatus.REJECTED.value, INVALID)

    @property
    def sent(self) -> int:
        """Images ImgGo has (or answered about): neither unsent nor refused by us."""
        return len(self.records) - self.unsent - self.count(INVALID)

    @property
    def unsent(self) -> int:
        """Images we took but ImgGo does not have: a re-run sends them."""
        return sum(1 for r in self.records if _shown_status(r) == NOT_SENT)

    @property
    def unfinished(self) -> int:
        return len(self.records) - self.succeeded - self.failed


def _accept(
    services: Services,
    scheduler: Scheduler,
    pattern_id: str,
    items: Sequence[BatchItem],
    *,
    stop: threading.Event,
) -> list[ItemOutcome]:
    """run_batch over `items`, a batch at most `batch_max_items` long at a time, with the
    scheduler as its queue: it only accepts the jobs, and the scheduler makes the calls."""
    accepting = replace(services, queue=scheduler)
    size = services.settings.batch_max_items
    outcomes: list[ItemOutcome] = []
    for start in range(0, len(items), size):
        result = run_batch(
            accepting, LOCAL_TENANT, pattern_id, items[start : start + size], stop=stop
        )
        # Refused items, and jobs finished before this run, need no call.
        scheduler.settle(sum(1 for o in result.items if o.job is None or o.job.terminal))
        outcomes += result.items
    return outcomes


# Statuses of items without a job: refused before one was made, or never reached.
INVALID, STOPPED = "invalid", "stopped"
NOT_SENT = "not sent"  # as the table shows an accepted job ImgGo does not have


def _status(outcome: ItemOutcome, job: Job | None) -> str:
    if job is not None:
        return job.status.value
    return STOPPED if (outcome.error or {}).get("code") == STOPPED else INVALID


def _record(label: str, outcome: ItemOutcome, job: Job | None, simulated: bool) -> dict[str, Any]:
    error = outcome.error
    if job is not None and job.error is not None:
        error = {"code": job.error.code, "message": job.error.message}
    manifest = job.manifest if job else None
    marked = isinstance(manifest, dict) and manifest.get("_simulated") is True
    return {
        "input": label,
        "job_id": job.id if job else None,
        "status": _status(outcome, job),
        "simulated": simulated or marked,
        "error": error,
        "manifest": manifest,
        "dedupe_of": job.dedupe_of if job else None,
    }


def _describe(record: dict[str, Any]) -> str:
    manifest = record["manifest"]
    if manifest:
        return json.dumps({k: v for k, v in manifest.items() if not k.startswith("_")})
    if record["status"] in (JobStatus.ACCEPTED.value, STOPPED):
        return "not sent to ImgGo yet"
    return str((record["error"] or {}).get("message", ""))


def _shown_status(record: dict[str, Any]) -> str:
    unsent = record["status"] == JobStatus.ACCEPTED.value and record["dedupe_of"] is None
    return NOT_SENT if unsent or record["status"] == STOPPED else str(record["status"])


def _print_table(records: Sequence[dict[str, Any]], pattern: PatternInfo) -> None:
    simulated = any(r["simulated"] for r in records)
    headers = ["input", "status", *(["simulated"] if simulated else []), "job", "result"]
    rows = [
        [
            r["input"],
            _shown_status(r),
            *((["yes" if r["simulated"] else "no"]) if simulated else []),
            (r["job_id"] or "")[:SHORT_ID],
            _describe(r),
        ]
        for r in records
    ]
    title = f"{len(records)} images, pattern {pattern.short_name}"
    table(headers, rows, title=title, shrink=("input", "result"))


def ingest(
    services: Services,
    inputs: Sequence[Input],
    *,
    pattern: PatternInfo,
    concurrency: int,
    wait_s: float,
    simulated: bool,
    stop: threading.Event,
    progress_stream: TextIO | None = None,
) -> IngestSummary:
    """Accept every image, then send and poll them (imggo_cli.schedule) until all are
    finished, `wait_s` has passed or `stop` is set; print the table. The progress line
    goes to `progress_stream` (stderr by default)."""
    deadline = time.monotonic() + wait_s
    keys = [ingest_key(pattern.id, i.item) for i in inputs]
    # The same image given twice is one job: its key is the same.
    unique = {k: replace(i.item, idempotency_key=k) for k, i in zip(keys, inputs, strict=True)}
    scheduler = Scheduler(
        services,
        rate_budget(services.imggo),
        Progress(len(unique), "ingest", stream=progress_stream),
        concurrency=concurrency,
        deadline=deadline,
        stop=stop,
        grace_s=SIMULATOR_GRACE_S if simulated else 0.0,
        # The built-in simulator's processing time is no guess: its first polls need none.
        plan=PollPlan(first_s=SIMULATOR_PROCESSING_S) if simulated else None,
    )
    with scheduler:
        accepted = _accept(services, scheduler, pattern.id, list(unique.values()), stop=stop)
    outcomes = dict(zip(unique, accepted, strict=True))
    jobs = {o.job.id: o.job for o in accepted if o.job is not None} | scheduler.jobs()
    records = []
    for key, given in zip(keys, inputs, strict=True):
        outcome = outcomes[key]
        job = jobs.get(outcome.job.id) if outcome.job is not None else None
        records.append(_record(given.label, outcome, job, simulated))
    _print_table(records, pattern)
    return IngestSummary(records, stopped=stop.is_set())
