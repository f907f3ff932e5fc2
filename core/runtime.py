"""What a warm function keeps between invocations.

Every platform handler holds one `Runtime`: it builds the services on the first
invocation that needs them (not at import time: a cold start that only answers
/health never opens a store) and hands the same instance to every invocation after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from core.api.app import HttpApp
from core.service.context import Services


class Runtime:
    def __init__(self, factory: Callable[[], Services]) -> None:
        self._factory = factory
        self._services: Services | None = None
        self._lock = threading.Lock()
        self.app = HttpApp(self.services_factory)

    def services_factory(self) -> Services:
        return self.services

    @property
    def services(self) -> Services:
        if self._services is None:
            with self._lock:  # two threads of one warm instance must not build twice
                if self._services is None:
                    self._services = self._factory()
        return self._services

    @property
    def built(self) -> bool:
        return self._services is not None

    def reset(self) -> None:
        """Drop the built services (tests; a rotated secret)."""
        with self._lock:
            if self._services is not None:
                self._services.close()
            self._services = None
            self.app = HttpApp(self.services_factory)
