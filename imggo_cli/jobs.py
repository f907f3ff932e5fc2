"""`imggo-fn jobs list|show`: the stored jobs, read straight from the job store.

Tables show job ids cut to their first 8 characters, like git's short hashes, so
`jobs show` takes any prefix that names exactly one of the tenant's jobs.
"""

from __future__ import annotations

import json

from core.domain.job import Job, JobStatus
from core.ports import JobStore
from imggo_cli.errors import UserError
from imggo_cli.output import table

SHORT_ID = 8
_PAGE = 200
_SHOWN_MATCHES = 3


def find_job(store: JobStore, tenant: str, wanted: str) -> Job:
    """The tenant's job whose id is `wanted` or starts with it; UserError when none or
    more than one does."""
    job = store.get(wanted)
    if job is not None and job.tenant == tenant:
        return job
    matches: list[Job] = []
    cursor: str | None = None
    while True:
        page = store.list_jobs(tenant, limit=_PAGE, cursor=cursor)
        matches += [j for j in page.items if j.id.startswith(wanted)]
        cursor = page.next_cursor
        if cursor is None or len(matches) > _SHOWN_MATCHES:
            break
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise UserError(f"no job {wanted} (of tenant {tenant})")
    shown = ", ".join(j.id for j in matches[:_SHOWN_MATCHES])
    more = " and more" if len(matches) > _SHOWN_MATCHES else ""
    raise UserError(f"{wanted} names more than one job ({shown}{more}); give more of the id")


def show(store: JobStore, tenant: str, wanted: str) -> None:
    from core.api.views import job_view

    print(json.dumps(job_view(find_job(store, tenant, wanted)), indent=2))


def parse_status(raw: str | None) -> JobStatus | None:
    if raw is None:
        return None
    try:
        return JobStatus(raw)
    except ValueError:
        raise UserError(
            f"--status must be one of {', '.join(s.value for s in JobStatus)}"
        ) from None


def list_jobs(store: JobStore, tenant: str, status: JobStatus | None, limit: int) -> None:
    from core.api.views import iso

    if not 1 <= limit <= _PAGE:
        raise UserError(f"--limit must be between 1 and {_PAGE}")
    page = store.list_jobs(tenant, status=status, limit=limit)
    rows = [
        (
            j.id[:SHORT_ID],
            j.status.value,
            (iso(j.created_at) or "")[:19].replace("T", " "),
            j.pattern_id,
            j.source.filename or j.source.url or "",
        )
        for j in page.items
    ]
    table(
        ("job", "status", "created (UTC)", "pattern", "source"),
        rows,
        title=f"jobs of tenant {tenant}, newest first",
        shrink=("pattern", "source"),
    )
