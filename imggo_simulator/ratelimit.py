"""Per-API-key fixed-window rate limiting, with the headers the real service sends.

One window per key id (callers.key_id), shared by every client and connection that
presents the key: ImgGo's limits are per API key (CONTRACT.md), not per connection or
per account. A window opens at the key's first request and lasts WINDOW_S; every answer
carries X-RateLimit-Reset = its end, and a 429's Retry-After counts down to that end.
Requests no key is charged for (health, a missing or refused key) only peek.

How refused requests count - CONTRACT.md and openapi.yaml do not say, so: every request
that reaches the limiter is counted, a 429'd one too. That is what the usual
fixed-window counter does (increment, then compare with the limit: a Redis INCR, or
express-rate-limit's default in a Node service such as ImgGo), and in a fixed window it
is the only choice that costs a client nothing it can see: once over the limit, every
request until the window ends is refused either way, and a refused request never pushes
the end back, so knocking on through 429s does not delay the next window. It also keeps
the stats honest: a key's `requests` are exactly what its window was charged with.
"""

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
        """Count one request for `key` (a key id) and say whether it may proceed; counted
        even when refused (see the module docstring)."""
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
