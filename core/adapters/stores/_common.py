"""What every JobStore adapter must agree on, kept in one place so they cannot drift.

A cursor minted by one page of a listing must mean the same thing to every store, and
expiry must be judged by the same rule everywhere. (The stored form of a job, and what
counts as readable, is _records'.) Cloud adapters import from here too.
"""

from __future__ import annotations

import base64
import binascii
import json
import math

from core.domain import json_input
from core.domain.job import Job

_CURSOR_FORMAT = 1  # bump if the cursor's contents change, so old cursors fail loudly
_MAX_CURSOR_CHARS = 2048  # ours are ~100; a cap keeps hostile input cheap to refuse

SortKey = tuple[float, str]
"""(created_at, id): the total order of a tenant's listing. The id breaks created_at ties,
so keyset pagination never skips or repeats a job that shares a timestamp."""


def is_live(expires_at: float | None, now: float) -> bool:
    """Alive until the instant `expires_at` is reached; no expiry means forever.

    Every store filters with this exact rule so an item is never visible in one adapter
    and gone in another at the same `now`.
    """
    return expires_at is None or expires_at > now


def sort_key(job: Job) -> SortKey:
    return (job.created_at, job.id)


def encode_cursor(key: SortKey) -> str:
    """Opaque to callers (URL-safe, no padding) so the encoding may change behind
    `_CURSOR_FORMAT`; keyset rather than offset so inserts between pages cannot shift it."""
    raw = json.dumps([_CURSOR_FORMAT, key[0], key[1]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> SortKey:
    """The sort key a cursor resumes after. ValueError for anything we did not mint:
    the HTTP layer turns that into a 400 instead of a 500."""
    if len(cursor) > _MAX_CURSOR_CHARS:
        raise ValueError("malformed cursor")
    try:
        padded = cursor.encode("ascii") + b"=" * (-len(cursor) % 4)
        # Strict: a 400-digit created_at or a lone surrogate in the id is not ours either.
        decoded = json_input.loads(base64.urlsafe_b64decode(padded).decode("utf-8"))
    except (ValueError, binascii.Error, json_input.JsonInputError) as exc:
        raise ValueError("malformed cursor") from exc
    if not isinstance(decoded, list) or len(decoded) != 3 or decoded[0] != _CURSOR_FORMAT:
        raise ValueError("malformed cursor")
    _, created_at, job_id = decoded
    # bool is an int subclass; a float('nan') would compare false with everything.
    if (
        isinstance(created_at, bool)
        or not isinstance(created_at, int | float)
        or not math.isfinite(created_at)
        or not isinstance(job_id, str)
    ):
        raise ValueError("malformed cursor")
    return (created_at, job_id)


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
