"""Turning a queued job into an outcome: fetch the image if needed, read it with Pillow,
fill the pattern's schema. Runs on a few fixed worker threads, never on a request thread,
so the HTTP path stays cheap however heavy the images are.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .config import SimulatorConfig
from .fetch import FetchError, ImageFetcher
from .image_facts import ImageDecodeError, ImageFacts, analyze_image
from .manifests import build_manifest
from .patterns import PatternRegistry
from .store import JobStore, Outcome
from .workers import WorkerThreads

log = logging.getLogger(__name__)

_CACHE_SIZE = 256


class _LruCache:
    """Benchmarks send the same few images many times: analyse each only once."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)


def simulated_failure(digest: str, token: str, fail_rate: float) -> bool:
    """Deterministic per (image, request): retries of one request share one fate."""
    if fail_rate <= 0:
        return False
    point = int.from_bytes(hashlib.sha256(f"{digest}:{token}".encode()).digest()[:8], "big")
    return point / 2**64 < fail_rate


class JobProcessor:
    def __init__(
        self,
        store: JobStore,
        patterns: PatternRegistry,
        config: Callable[[], SimulatorConfig],
        on_outcome: Callable[[str, float], None],
        workers: int = 4,
    ) -> None:
        self._store = store
        self._patterns = patterns
        self._config = config
        self._on_outcome = on_outcome
        self._fetcher = ImageFetcher()
        self._facts: _LruCache = _LruCache(_CACHE_SIZE)
        self._manifests: _LruCache = _LruCache(_CACHE_SIZE)
        self._workers = WorkerThreads("imggo-sim-worker", workers, self._process_safely)

    def start(self) -> None:
        self._workers.start()

    def stop(self) -> None:
        self._workers.stop(timeout_s=5)
        self._fetcher.close()

    def submit(self, job_id: str) -> None:
        self._workers.put(job_id)

    def _process_safely(self, job_id: str) -> None:
        try:
            self.process(job_id)
        except Exception:  # a job that crashes processing fails; the worker lives on
            log.exception("processing job %s crashed", job_id)
            due = self._store.set_outcome(job_id, Outcome(error="internal simulator error"))
            if due is not None:
                self._on_outcome(job_id, due)

    def process(self, job_id: str) -> None:
        """Compute and record the job's outcome (safe to call twice: the first one wins)."""
        work = self._store.work_of(job_id)
        if work is None:
            return
        pattern_id, image_url, upload, idempotency_key = work
        outcome = self._compute(job_id, pattern_id, image_url, upload, idempotency_key)
        due = self._store.set_outcome(job_id, outcome)
        if due is not None:
            self._on_outcome(job_id, due)

    def _compute(
        self,
        job_id: str,
        pattern_id: str,
        image_url: str,
        upload: bytes | None,
        idempotency_key: str | None,
    ) -> Outcome:
        config = self._config()
        data = upload
        if data is None:
            try:
                data = self._fetcher.fetch(image_url, config.fetch_allow_hosts)
            except FetchError as exc:
                return Outcome(error=str(exc))
        digest = hashlib.sha256(data).hexdigest()
        facts = self._facts.get(digest)
        if facts is None:
            try:
                facts = analyze_image(data)
            except ImageDecodeError as exc:
                facts = exc  # remembered too: the same garbage fails the same way
            self._facts.put(digest, facts)
        if isinstance(facts, ImageDecodeError):
            return Outcome(error=str(facts))
        assert isinstance(facts, ImageFacts)
        if simulated_failure(digest, idempotency_key or job_id, config.fail_rate):
            return Outcome(error="simulated processing failure (fail_rate)")
        pattern = self._patterns.get_any(pattern_id)
        if pattern is None:
            return Outcome(error="pattern no longer exists")
        key = (digest, pattern.cache_key())
        manifest = self._manifests.get(key)
        if manifest is None:
            manifest = build_manifest(pattern, facts)
            self._manifests.put(key, manifest)
        return Outcome(manifest=manifest)
