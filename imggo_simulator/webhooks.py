"""Webhooks: registration per API key, and signed deliveries from a background worker.

Delivery mirrors the real service: the body is the payload as JavaScript's JSON.stringify
writes it (js_json.py: compact, `1` for 1.0, JS exponents), signed with HMAC-SHA256 over
those exact bytes, sent once, never retried. Receivers must therefore verify over the raw
bytes they got.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import SimulatorConfig
from .fetch import host_allowed, host_of, new_client
from .http_types import bad_request
from .js_json import dumps as js_dumps
from .store import SUCCEEDED, JobRecord
from .timestamps import iso_ms, iso_ms_or_none
from .workers import WorkerThreads

log = logging.getLogger(__name__)

EVENTS = ("job.succeeded", "job.failed")
MIN_SECRET_LENGTH = 16
DELIVERY_TIMEOUT_S = 2.0
USER_AGENT = "ImgGo-Webhook/1.0"


@dataclass(slots=True)
class Webhook:
    id: str
    user_id: str
    url: str
    events: list[str]
    secret: str
    created_at: float
    is_active: bool = True
    last_triggered_at: float | None = None

    def to_public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "url": self.url,
            "events": list(self.events),
            "secret": self.secret,
            "is_active": self.is_active,
            "created_at": iso_ms(self.created_at),
            "updated_at": iso_ms(self.created_at),
            "last_triggered_at": iso_ms_or_none(self.last_triggered_at),
        }


def signature(secret: str, body: bytes) -> str:
    """The X-ImgGo-Signature header value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def event_of(job: JobRecord) -> str:
    return "job.succeeded" if job.status == SUCCEEDED else "job.failed"


def payload_bytes(job: JobRecord, timestamp: float) -> bytes:
    """The delivery body: JSON.stringify's bytes (the signature is over exactly these);
    the key order is the documented one."""
    payload = {
        "event": event_of(job),
        "job_id": job.id,
        "pattern_id": job.pattern_id,
        "manifest": job.manifest,
        "error": job.error,
        "timestamp": iso_ms(timestamp),
    }
    return js_dumps(payload)


class WebhookRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[str, Webhook] = {}

    def create(self, body: Any, user_id: str) -> Webhook:
        if not isinstance(body, dict):
            raise bad_request("Request body must be a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or len(url) > 2048 or host_of(url) is None:
            raise bad_request("url is required: an absolute http(s) URL", field="url")
        events = body.get("events", list(EVENTS))
        if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
            raise bad_request(
                f"events must be a non-empty list of {', '.join(EVENTS)}", field="events"
            )
        secret = body.get("secret")
        if secret is None:  # optional in the spec: the service makes one up
            secret = "whsec_" + secrets.token_hex(24)
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            raise bad_request(
                f"secret must be a string of at least {MIN_SECRET_LENGTH} characters",
                field="secret",
            )
        hook = Webhook(
            id=str(uuid.uuid4()),
            user_id=user_id,
            url=url,
            events=list(dict.fromkeys(events)),
            secret=secret,
            created_at=time.time(),
        )
        with self._lock:
            self._hooks[hook.id] = hook
        return hook

    def for_user(self, user_id: str) -> list[Webhook]:
        with self._lock:
            return [h for h in self._hooks.values() if h.user_id == user_id]

    def delete(self, hook_id: str, user_id: str) -> bool:
        with self._lock:
            hook = self._hooks.get(hook_id)
            if hook is None or hook.user_id != user_id:
                return False
            del self._hooks[hook_id]
            return True

    def matching(self, user_id: str, event: str) -> list[Webhook]:
        with self._lock:
            return [
                h
                for h in self._hooks.values()
                if h.user_id == user_id and h.is_active and event in h.events
            ]

    def touch(self, hook_id: str, when: float) -> None:
        with self._lock:
            hook = self._hooks.get(hook_id)
            if hook is not None:
                hook.last_triggered_at = when


@dataclass(frozen=True, slots=True)
class _Delivery:
    hook_id: str
    url: str
    secret: str
    body: bytes


class WebhookDispatcher:
    """Queues deliveries on job completion; a couple of worker threads send them, so a
    slow receiver never holds up the job scheduler."""

    def __init__(
        self,
        registry: WebhookRegistry,
        config: Callable[[], SimulatorConfig],
        rng: random.Random,
        workers: int = 2,
    ) -> None:
        self._registry = registry
        self._config = config
        self._rng = rng
        self._client = new_client(DELIVERY_TIMEOUT_S)
        self._workers = WorkerThreads("imggo-sim-webhooks", workers, self._deliver_safely)
        self._stats_lock = threading.Lock()
        self.stats: dict[str, int] = {"sent": 0, "dropped": 0, "refused": 0, "failed": 0}

    def start(self) -> None:
        self._workers.start()

    def stop(self) -> None:
        self._workers.stop(timeout_s=DELIVERY_TIMEOUT_S + 1)
        self._client.close()

    def job_finished(self, job: JobRecord) -> None:
        hooks = self._registry.matching(job.user_id, event_of(job))
        if not hooks:
            return
        body = payload_bytes(job, time.time())  # one body: every hook gets the same bytes
        for hook in hooks:
            self._workers.put(_Delivery(hook.id, hook.url, hook.secret, body))

    def _count(self, what: str) -> None:
        with self._stats_lock:
            self.stats[what] += 1

    def _deliver_safely(self, delivery: _Delivery) -> None:
        try:
            self._deliver(delivery)
        except Exception:  # never let one delivery kill the worker
            log.exception("webhook delivery crashed")
            self._count("failed")

    def _deliver(self, delivery: _Delivery) -> None:
        config = self._config()
        if self._rng.random() < config.webhook_drop_rate:
            self._count("dropped")
            return
        if not host_allowed(delivery.url, config.fetch_allow_hosts):
            log.warning("webhook %s not delivered: host not allowed", delivery.hook_id)
            self._count("refused")
            return
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-ImgGo-Signature": signature(delivery.secret, delivery.body),
        }
        try:
            response = self._client.post(delivery.url, content=delivery.body, headers=headers)
        except Exception as exc:  # httpx errors and anything odd the receiver provokes
            log.warning("webhook %s delivery failed: %s", delivery.hook_id, type(exc).__name__)
            self._count("failed")
            return
        self._registry.touch(delivery.hook_id, time.time())
        if response.is_success:
            self._count("sent")
        else:
            log.warning("webhook %s answered HTTP %s", delivery.hook_id, response.status_code)
            self._count("failed")
