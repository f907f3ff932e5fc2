"""Stored job documents no reader can decode, and ways to plant them straight into a backend.

What a store may hold that its codec would never write: a document corrupted in place,
or written by buggy or newer code. Each kind is built from a well-formed record so that
exactly one thing is wrong with it. Planting bypasses the adapter entirely (raw SQL, the
memory store's dict), as such data would sit there; the cloud backends plant theirs in
their own test modules, through their own SDK clients.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from os import PathLike
from typing import Any

from core.domain.job import Job, JobSource, JobStatus

SECRET = "4111-1111-1111-1111"  # customer data inside a bad record: must never be logged


def job_record(
    job_id: str,
    tenant: str,
    *,
    created_at: float,
    updated_at: float,
    status: str = "running",
    expires_at: float | None = None,
) -> dict[str, Any]:
    """A well-formed job record, as the codec would write it (version 1)."""
    job = Job(
        id=job_id,
        tenant=tenant,
        pattern_id="pat_invoice",
        source=JobSource(kind="url", url="https://img.example/bad.png"),
        created_at=created_at,
        updated_at=updated_at,
        status=JobStatus(status),
        version=1,
        imggo_job_id="imggo-bad",
        extras={"card": SECRET},
        expires_at=expires_at,
    )
    return job.to_record()


def _without(record: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != name}


# Each: the well-formed record -> a document with one thing wrong. json.dumps (not the
# codec) writes NaN and lone surrogates without complaint, as buggy code would.
UNREADABLE_DOCS: dict[str, Callable[[dict[str, Any]], str]] = {
    "not_json": lambda r: json.dumps(r)[:-7],
    "lone_surrogate": lambda r: json.dumps({**r, "extras": {"card": SECRET, "n": "\ud800"}}),
    "nan_time": lambda r: json.dumps({**r, "updated_at": float("nan")}),
    "huge_int": lambda r: json.dumps({**r, "created_at": 10**400}),
    "unknown_status": lambda r: json.dumps({**r, "status": "paused"}),
    "missing_field": lambda r: json.dumps(_without(r, "tenant")),
    "ill_typed_time": lambda r: json.dumps({**r, "created_at": "yesterday"}),
    "ill_typed_source": lambda r: json.dumps({**r, "source": "https://img.example/x"}),
    "not_an_object": lambda r: json.dumps([r]),
}


def unreadable_doc(kind: str, record: dict[str, Any]) -> str:
    return UNREADABLE_DOCS[kind](record)


def plant_sqlite(
    path: str | PathLike[str],
    *,
    job_id: str,
    tenant: str,
    raw: str,
    created_at: float,
    updated_at: float,
    status: str = "running",
    expires_at: float | None = None,
    version: int = 1,
) -> None:
    """Insert (or overwrite) a jobs row of an SqliteJobStore file with `raw` as its doc."""
    terminal = status in ("succeeded", "failed", "rejected")
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(
                "INSERT OR REPLACE INTO jobs (id, tenant, status, pending, version, created_at,"
                " updated_at, expires_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    tenant,
                    status,
                    0 if terminal else 1,
                    version,
                    created_at,
                    updated_at,
                    expires_at,
                    raw,
                ),
            )
    finally:
        conn.close()
