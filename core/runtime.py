"""What a warm function keeps between invocations.

Every platform handler holds one `Runtime`: it builds the services on the first
invocation that needs them (not at import time: a cold start that only answers
/health never opens a store) and hands the same instance to every invocation after.

Secrets rotate: with `recheck_s`, the settings (and so the secrets behind them, read
through the platform's TTL cache) are loaded again at most that often, and if they
changed the next invocation gets freshly built services. The old ones are dropped,
not closed, since a request on another thread may still be using them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from core.api.app import HttpApp
from core.config import Settings
from core.service.context import Services

log = logging.getLogger("imggo.runtime")


class Runtime:
    def __init__(
        self,
        load_settings: Callable[[], Settings],
        build: Callable[[Settings], Services],
        *,
        recheck_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load_settings = load_settings
        self._build = build
        self._recheck_s = recheck_s
        self._clock = clock
        self._services: Services | None = None
        self._built_with: Settings | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self.builds = 0  # how many times this container built its services
        self.app = HttpApp(lambda: self.services)

    @property
    def services(self) -> Services:
        services = self._services
        if services is None:
            with self._lock:  # two threads of one warm instance must not build twice
                if self._services is None:
                    settings = self._load_settings()
                    self._services = self._build(settings)
                    self._built_with, self._checked_at = settings, self._clock()
                    self.builds += 1
                services = self._services
        return services

    @property
    def built(self) -> bool:
        return self._services is not None

    def refresh_if_due(self) -> None:
        """Call at the start of an invocation: rebuild on the next use when the settings
        (a rotated secret) changed since the services were built. Checked at most once
        per `recheck_s`; a no-op without it."""
        if self._recheck_s <= 0 or self._services is None:
            return
        if self._clock() - self._checked_at < self._recheck_s:
            return
        with self._lock:
            if self._services is None or self._clock() - self._checked_at < self._recheck_s:
                return
            self._checked_at = self._clock()
            if self._load_settings() != self._built_with:
                log.info("settings changed (a rotated secret?): rebuilding the services")
                self._services = None
                self.app = HttpApp(lambda: self.services)

    def reset(self) -> None:
        """Close and forget the built services (tests; a clean shutdown)."""
        with self._lock:
            if self._services is not None:
                self._services.close()
            self._services = None
            self.app = HttpApp(lambda: self.services)
