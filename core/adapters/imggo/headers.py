"""Reading ImgGo's response headers: rate-limit state and Retry-After.

Pure functions over a header mapping (no httpx import) so they are cheap to test and
to import from anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, slots=True)
class RateLimit:
    """ImgGo's view of our request budget, from the last response that carried it.

    Any field is None when its header was missing or unreadable; `reset_at` is unix
    seconds (wall clock), as ImgGo sends it.
    """

    limit: int | None
    remaining: int | None
    reset_at: float | None


def _int_or_none(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        # Some proxies send "60.0"; accept a whole float rather than drop the header.
        value = _float_or_none(raw)
        return int(value) if value is not None and value.is_integer() else None


def _float_or_none(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimit | None:
    """The X-RateLimit-* headers, or None when the response carried none of them."""
    limit = headers.get("x-ratelimit-limit")
    remaining = headers.get("x-ratelimit-remaining")
    reset = headers.get("x-ratelimit-reset")
    if limit is None and remaining is None and reset is None:
        return None
    return RateLimit(
        limit=_int_or_none(limit),
        remaining=_int_or_none(remaining),
        reset_at=_float_or_none(reset),
    )


def parse_retry_after(raw: str | None, *, wall_now: Callable[[], float]) -> float | None:
    """Seconds to wait from a Retry-After value: delta-seconds or an HTTP-date.

    None when absent or unreadable (the caller then falls back to its own backoff);
    never negative (a date in the past means "now").
    """
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    seconds = _float_or_none(text)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; a naive result means the zone was "-0000".
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - wall_now())
