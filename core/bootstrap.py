"""The composition root: settings in, wired services out.

Nothing here runs at import time. A handler calls `build_services()` once, on its first
invocation, and keeps the result for every warm invocation after it (the store's
connections and ImgGo's HTTP pool are reused).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from core.adapters.registry import open_adapter
from core.config import Settings
from core.ports import BlobStore, Clock, ImageApi, JobStore, Queue, Resolver
from core.service.context import Metrics, NoMetrics, Services
from core.service.ssrf import UrlGuard, no_resolver, system_resolver


def open_blobs(settings: Settings) -> BlobStore:
    """The blob store IMGGO_FN_BLOB_URL names; without one, `blobs.db` (SQLite) in the
    data dir."""
    if not settings.blob_url:
        from core.adapters.sqlite.blobs import SqliteBlobStore

        return SqliteBlobStore(os.path.join(settings.data_dir, "blobs.db"))
    blobs: BlobStore = open_adapter("blobs", settings.blob_url)
    return blobs


def open_queue(settings: Settings) -> Queue | None:
    """None (inline dispatch) unless IMGGO_FN_QUEUE_URL names one; `local://` is the
    in-process pool `with_local_queue` wires."""
    if settings.queue_url in ("", "local://"):
        return None
    queue: Queue = open_adapter("queue", settings.queue_url)
    return queue


def open_imggo(settings: Settings, store: JobStore | None = None) -> ImageApi:
    """The ImgGo client; with `store` (and IMGGO_FN_RATE_BUDGET on), every call takes
    its slot from the rate budget kept there, shared by everyone using that store."""
    from core.adapters.imggo.budget import NO_BUDGET, SharedRateBudget, bucket_for
    from core.adapters.imggo.client import ImggoClient, normalise_base_url

    if not settings.imggo_api_key:
        raise ValueError("IMGGO_API_KEY is not set (use `imggo-fn serve` for the simulator)")
    budget = NO_BUDGET
    if store is not None and settings.rate_budget:
        bucket = bucket_for(settings.imggo_api_key, normalise_base_url(settings.imggo_base_url))
        budget = SharedRateBudget(store, bucket, start_limit=settings.rate_limit_start)
    return ImggoClient(
        settings.imggo_base_url,
        settings.imggo_api_key,
        timeout_s=settings.imggo_timeout_s,
        # A connection for each call a batch keeps in flight.
        max_connections=settings.batch_concurrency,
        budget=budget,
    )


@dataclass(eq=False)
class Overrides:
    """Parts a caller (a test, a cloud handler) supplies instead of building from settings."""

    store: JobStore | None = None
    imggo: ImageApi | None = None
    blobs: BlobStore | None = None
    clock: Clock | None = None
    resolver: Resolver | None = None
    queue: Queue | None = None
    metrics: Metrics | None = None


def build_services(
    settings: Settings | None = None, overrides: Overrides | None = None
) -> Services:
    from core.adapters.clock import SystemClock
    from core.adapters.stores import open_store

    settings = settings or Settings.from_env()
    given = overrides or Overrides()
    clock = given.clock or SystemClock()
    blobs = given.blobs or open_blobs(settings)
    # The store keeps manifests too large for its items in the blob store.
    store = given.store or open_store(settings.store_url, clock=clock, blobs=blobs)
    return Services(
        settings=settings,
        store=store,
        imggo=given.imggo or open_imggo(settings, store),
        blobs=blobs,
        clock=clock,
        url_guard=UrlGuard(
            given.resolver or (system_resolver if settings.resolve_names else no_resolver),
            settings.ssrf_allow,
        ),
        queue=given.queue or open_queue(settings),
        metrics=given.metrics or NoMetrics(),
    )


def with_local_queue(services: Services) -> Services:
    """Give `services` an in-process worker pool as its Queue (the laptop's SQS)."""
    from core.adapters.local_queue import ThreadPoolQueue
    from core.service.batch import process_item

    queue = ThreadPoolQueue(services.settings.batch_concurrency)
    services.queue = queue
    queue.bind(lambda item: process_item(services, item))
    return services
