"""Per-API-key fixed-window rate limiting, with the headers the real service sends."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

WINDOW_S = 60.0
# Reported as the limit when limiting is off: clients that pace themselves on
# X-RateLimit-Remaining must never be told to stop.
UNLIMITED_REPORTED = 1_000_000


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float  # unix seconds when the window ends

    def headers(self, now: float) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(math.ceil(self.reset_at)),
        }
        if not self.allowed:
            headers["Retry-After"] = str(max(1, math.ceil(self.reset_at - now)))
        return headers


class FixedWindowLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, count)

    def hit(self, key: str, limit_per_minute: int, now: float | None = None) -> Decision:
        """Count one request for `key` and say whether it may proceed."""
        now = time.time() if now is None else now
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= WINDOW_S:
                start, count = now, 0
            count += 1
            self._windows[key] = (start, count)
        reset_at = start + WINDOW_S
        if limit_per_minute <= 0:
            return Decision(True, UNLIMITED_REPORTED, max(0, UNLIMITED_REPORTED - count), reset_at)
        allowed = count <= limit_per_minute
        return Decision(allowed, limit_per_minute, max(0, limit_per_minute - count), reset_at)

    def peek(self, key: str | None, limit_per_minute: int, now: float | None = None) -> Decision:
        """The current state without counting (for answers that are not charged: 401, health)."""
        now = time.time() if now is None else now
        limit = limit_per_minute if limit_per_minute > 0 else UNLIMITED_REPORTED
        with self._lock:
            start, count = self._windows.get(key, (now, 0)) if key else (now, 0)
        if now - start >= WINDOW_S:
            start, count = now, 0
        return Decision(True, limit, max(0, limit - count), start + WINDOW_S)
