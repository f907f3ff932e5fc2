"""Timestamps as the real (JavaScript) service writes them."""

from __future__ import annotations

import time


def iso_ms(t: float) -> str:
    """Unix seconds -> `Date.prototype.toISOString()` form: 2025-01-15T10:00:00.123Z."""
    millis = int(t * 1000)
    secs, ms = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"


def iso_ms_or_none(t: float | None) -> str | None:
    return None if t is None else iso_ms(t)
