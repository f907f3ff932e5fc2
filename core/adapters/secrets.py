"""Secrets: from environment variables, and a TTL cache any secret store can sit behind.

The cache keeps a warm function from asking the secret store on every invocation, and
still picks up a rotated secret within `ttl_s`. Values are never logged.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping

from core.ports import Secrets


class EnvSecrets:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = os.environ if env is None else env

    def get(self, name: str) -> str | None:
        return self._env.get(name) or None


class CachedSecrets:
    def __init__(
        self, inner: Secrets, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._ttl = ttl_s
        self._clock = clock
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> str | None:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(name)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        value = self._inner.get(name)
        with self._lock:
            self._cache[name] = (now, value)
        return value

    def __repr__(self) -> str:  # never show cached values
        return f"CachedSecrets(ttl_s={self._ttl}, names={sorted(self._cache)})"
