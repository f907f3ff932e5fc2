"""The seam every cloud plugs into.

A cloud supplies a `Platform`: where its settings come from (its environment, with its
defaults under it), its secret store for `NAME_SECRET_REF` references, its metrics sink
and how it tags log lines with a correlation id. Everything else is decided here, once,
in `FunctionHost`, which owns the container's lazily built `Runtime` and offers the
neutral operations every trigger maps onto:

    HTTP request        -> response              FunctionHost.http
    queue message       -> Outcome (a verdict)   FunctionHost.queue_message
    object landed       -> Outcome (a verdict)   FunctionHost.object_landed
    timer tick          -> ReconcileReport       FunctionHost.timer

A handler translates the native event into one of these calls and acts on the verdict
through a small table of its own (for SQS: DONE -> delete, RETRY -> report the item
failed, POISON -> delete), keyed on `Outcome.acknowledge`. What a verdict means is
decided here:

- DONE: the message did its work, or there was nothing left to do (a repeat, an object
  that is not one of our uploads). Acknowledge.
- RETRY: transient (ImgGo or a store unavailable, an unexpected error): the platform
  should deliver it again later. Do not acknowledge; the platform's retry policy and
  dead-letter bound apply.
- DEFER: ImgGo's rate budget (core.domain.rate_budget) has no call free for it within
  the submit deadline. Not a failure, and never counted as one: nothing was sent. The
  message is sent again to the queue, held back until the budget expects a call free
  (`Queue.max_delay_s` permitting: SQS, Azure Queue, the local pool), and the delivery
  acknowledged - so its receive count, which walks a message to the dead-letter queue,
  starts afresh. SQS's own way, a visibility change, would keep counting. Where the
  queue cannot hold a message back (Pub/Sub), it is not acknowledged and the
  subscription's retry backoff carries it - until its delivery count (`delivery_attempt`)
  is within one of the queue's dead-letter bound (IMGGO_FN_MAX_DELIVERY_ATTEMPTS; one
  early, as Pub/Sub counts on a best-effort basis): then it is sent again at once and
  acknowledged instead, so its count starts afresh too. Deferrals are counted
  (`Deferrals`) apart from failures either way.
- POISON: it will fail every time (not a message we wrote, its job gone, refused by
  the domain). It is logged with its id, counted (`PoisonMessages`), and its job - when
  there is one still pending - is recorded `failed` with the reason, so nothing is lost
  silently. Acknowledge: redelivering it would only spend the queue's budget.

Also decided once: the correlation id of an HTTP request (the caller's X-Request-Id if
it is safe, else the platform's request id, else a fresh one), secret rotation (the
settings are rechecked once per `IMGGO_FN_SECRETS_TTL_S` when any secret is a reference),
the cold-start and 5xx metrics, and how a reconcile report is logged and counted.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from core.api.app import safe_request_id
from core.api.http import Request, Response
from core.config import Settings, secret_refs
from core.domain.errors import DomainError, UnavailableError
from core.domain.job import Job, JobError, JobStatus, advance
from core.ports import Secrets
from core.runtime import Runtime
from core.service.context import Metrics, Services, update_job
from core.service.work import Verdict, WorkResult, handle_work_message, send_later

if TYPE_CHECKING:
    from core.service.reconcile import ReconcileReport

log = logging.getLogger("imggo.platform")


class Platform(Protocol):
    """What a cloud supplies. Small on purpose: everything else is decided in core."""

    name: str  # "aws", "gcp", "azure", "local": the `platform` field of log lines

    def environment(self) -> Mapping[str, str]:
        """The settings' source: the process environment with the platform's defaults
        under it (e.g. GCP's Firestore store and /tmp data dir)."""
        ...

    def secret_store(self, env: Mapping[str, str]) -> Secrets:
        """The platform's secret store, read for `NAME_SECRET_REF` references (SSM and
        Secrets Manager, Secret Manager, Key Vault). Built only when a reference exists."""
        ...

    def metrics(self) -> Metrics:
        """Where counts and timings go (EMF on AWS; structured log lines elsewhere)."""
        ...

    def correlate(self, correlation_id: str) -> None:
        """Tag this invocation's log lines with the id (Powertools' correlation id,
        Cloud Logging's trace, Application Insights' operation id)."""
        ...


@dataclass(frozen=True, eq=False)
class Outcome:
    """What became of one message or object event, and what the platform should do."""

    verdict: Verdict
    job: Job | None = None
    job_id: str | None = None
    code: str = ""  # why, for logs and metrics: a domain error code, or "skipped"
    reason: str = ""
    delay_s: float = 0.0  # DEFER: held back this long
    requeued: bool = False  # DEFER: sent again, delayed, so this delivery is done

    @property
    def acknowledge(self) -> bool:
        if self.verdict is Verdict.DEFER:
            return self.requeued
        return self.verdict is not Verdict.RETRY


def _near_dead_letter(settings: Settings, delivery_attempt: int | None) -> bool:
    """Whether not acknowledging this delivery could dead-letter the message: the bound's
    own delivery, or the one before it. Unknown (no count, no bound) is not near."""
    bound = settings.max_delivery_attempts
    return bound > 0 and delivery_attempt is not None and delivery_attempt >= bound - 1


POISONED = "poison_message"


def secret_settings(
    env: Mapping[str, str],
    reader: Callable[[], Secrets],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[Callable[[], Settings], float]:
    """How to load Settings from `env` and, for NAME_SECRET_REF names, the platform's
    secret store behind the one caching policy; and how often to recheck them (0: no
    references, nothing can rotate, and the secret store is never even built)."""
    from core.adapters.secrets import secret_refs_in, secret_store

    if not secret_refs_in(env):
        return (lambda: Settings.from_env(env)), 0.0
    cached = secret_store(reader(), env, clock=clock)
    source = secret_refs(env, cached.get)
    return (lambda: Settings.from_env(env, secret_source=source)), cached.ttl_s


class FunctionHost:
    """One per container: the Runtime (built on first need, rebuilt when a referenced
    secret rotated) and the neutral operations of the module docstring."""

    def __init__(
        self,
        platform: Platform,
        *,
        build: Callable[[Settings, Metrics], Services] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.platform = platform
        env = platform.environment()
        load, recheck_s = secret_settings(env, lambda: platform.secret_store(env), clock=clock)
        self.load_settings = load  # what a build reads (and a rotation check re-reads)
        self._metrics = platform.metrics()
        make = build or _build_services
        self.runtime = Runtime(
            load, lambda settings: make(settings, self._metrics), recheck_s=recheck_s, clock=clock
        )
        self._cold = True
        self._cold_lock = threading.Lock()

    # -- shared by every trigger -------------------------------------------------------

    def _begin(self) -> None:
        with self._cold_lock:
            cold, self._cold = self._cold, False
        if cold:
            self._metrics.count("ColdStart")
        self.runtime.refresh_if_due()

    def _invocation(self) -> Services:
        self._begin()
        return self.runtime.services

    @property
    def services(self) -> Services:
        return self.runtime.services

    # -- HTTP --------------------------------------------------------------------------

    def http(self, request: Request, *, platform_request_id: str | None = None) -> Response:
        self._begin()  # /health must not build the services: the app builds them lazily
        request_id = (
            safe_request_id(request.headers.get("x-request-id"))
            or safe_request_id(platform_request_id)
            or uuid.uuid4().hex
        )
        request.headers["X-Request-Id"] = request_id
        self.platform.correlate(request_id)
        response = self.runtime.app.handle(request)
        if response.status >= 500:
            # What the deployment canaries watch: every 5xx the API answers, including
            # the ones no exception reached the platform for (a bad secret, a lost table).
            self._metrics.count("Http5xx")
        return response

    # -- queue messages ----------------------------------------------------------------

    def queue_message(
        self,
        body: str | bytes,
        *,
        message_id: str = "",
        time_left: Callable[[], float] | None = None,
        delivery_attempt: int | None = None,
    ) -> Outcome:
        """`time_left()`: seconds the invocation has left. A message is not started
        without room for its worst case (one ImgGo submission plus the store writes):
        it is handed back for redelivery instead of being cut off by the timeout,
        which would lose the whole batch's report. `delivery_attempt`: the platform's count
        of this message's deliveries, this one included, where it keeps one (see DEFER)."""
        from core.service.reconcile import STORE_MARGIN_S  # the HTTP path never loads it

        services = self._invocation()
        needed = services.settings.submit_deadline_s + STORE_MARGIN_S
        if time_left is not None and time_left() < needed:
            return Outcome(Verdict.RETRY, code="no_time_left", reason="not started: no time left")
        try:
            result = handle_work_message(services, body)
        except Exception:
            log.exception("work message %s: unexpected error; it will be retried", message_id)
            return Outcome(Verdict.RETRY, code="internal_error", reason="unexpected error")
        outcome = _outcome(result)
        if outcome.verdict is Verdict.DEFER:
            near_bound = _near_dead_letter(services.settings, delivery_attempt)
            return self._deferred(services, outcome, message_id, near_bound=near_bound)
        if outcome.verdict is Verdict.POISON:
            self._poisoned(services, outcome, message_id)
        elif outcome.verdict is Verdict.RETRY:
            log.info(
                "job %s not dispatched yet (%s); the message will be redelivered",
                outcome.job_id,
                outcome.code,
                extra={"message_id": message_id, "code": outcome.code},
            )
        return outcome

    def _deferred(
        self, services: Services, outcome: Outcome, message_id: str, *, near_bound: bool
    ) -> Outcome:
        self._metrics.count("Deferrals")
        job_id = outcome.job_id
        requeued = job_id is not None and send_later(services, job_id, outcome.delay_s)
        if not requeued and near_bound and job_id is not None:
            # Not acknowledging it would dead-letter it: a fresh message starts the
            # platform's count afresh. It comes back at once, not after the backoff,
            # and defers again until the budget has a call free.
            requeued = send_later(services, job_id, 0.0)
        log.info(
            "job %s deferred %.1f s: no ImgGo call free in the rate budget",
            outcome.job_id,
            outcome.delay_s,
            extra={"message_id": message_id, "code": outcome.code, "requeued": requeued},
        )
        return replace(outcome, requeued=requeued)

    def dead_lettered(self, body: str | bytes, *, message_id: str = "") -> Outcome:
        """A message the platform gave up redelivering (Azure's `<queue>-poison` after
        maxDequeueCount): handled as a POISON verdict, so its job, when still pending,
        is recorded failed and nothing is lost silently. Always acknowledged."""
        from core.service.messages import decode_work_item

        services = self._invocation()
        try:
            job_id: str | None = decode_work_item(body).job_id
        except DomainError:
            job_id = None
        outcome = Outcome(
            Verdict.POISON, job_id=job_id, code="retries_exhausted", reason="redeliveries exhausted"
        )
        self._poisoned(services, outcome, message_id)
        return outcome

    def _poisoned(self, services: Services, outcome: Outcome, message_id: str) -> None:
        self._metrics.count("PoisonMessages")
        log.error(
            "poison message %s acknowledged: %s",
            message_id,
            outcome.reason,
            extra={
                "outcome": "poison",
                "message_id": message_id,
                "code": outcome.code,
                "job_id": outcome.job_id,
            },
        )
        if outcome.job_id is None:
            return
        error = JobError(POISONED, f"its work message could not be processed ({outcome.code})")
        now = services.clock.now()
        try:
            if services.store.get(outcome.job_id) is None:
                return
            update_job(
                services.store,
                outcome.job_id,
                lambda cur: advance(cur, JobStatus.FAILED, now=now, error=error),
            )
        except Exception:
            log.exception("could not record job %s as failed", outcome.job_id)

    # -- objects landing in the blob store ---------------------------------------------

    def object_landed(
        self,
        container: str,
        name: str,
        *,
        size: int | None = None,
        content_type: str | None = None,
    ) -> Outcome:
        """An object was written to `container` (a bucket) as `name`: if it is one of our
        direct uploads, check it against its declaration and dispatch its job. What the
        event does not say (S3's has no content type) is read from the blob store."""
        from core.service.uploads import parse_upload_key, upload_landed

        services = self._invocation()
        key = services.blobs.key_for_object(container, name)
        if key is None or parse_upload_key(key) is None:
            log.info("ignoring %s/%s: not an upload", container, name)
            return Outcome(Verdict.DONE, code="skipped", reason="not an upload")
        try:
            if size is None or content_type is None:
                info = services.blobs.describe(key)
                if info is None:
                    return Outcome(Verdict.DONE, code="skipped", reason="the object is gone")
                size, content_type = info.size, info.content_type
            job = upload_landed(services, key, size=size, content_type=content_type)
        except UnavailableError as exc:
            log.warning("upload %s: %s; the event will be redelivered", key, exc.message)
            return Outcome(Verdict.RETRY, code=exc.code, reason=exc.message)
        except DomainError as exc:
            log.error("upload %s refused: %s", key, exc.message, extra={"code": exc.code})
            return Outcome(Verdict.POISON, code=exc.code, reason=exc.message)
        except Exception:
            log.exception("upload %s: unexpected error; the event will be redelivered", key)
            return Outcome(Verdict.RETRY, code="internal_error", reason="unexpected error")
        if job is None:
            return Outcome(Verdict.DONE, code="skipped", reason="no matching upload job")
        log.info("upload %s: job %s is %s", key, job.id, job.status.value)
        return Outcome(Verdict.DONE, job=job, job_id=job.id)

    # -- the schedule ------------------------------------------------------------------

    def timer(
        self, *, limit: int | None = None, time_left: Callable[[], float] | None = None
    ) -> ReconcileReport:
        from core.service.reconcile import reconcile

        services = self._invocation()
        report = reconcile(services, limit=limit, time_left=time_left)
        for name, value in report.as_dict().items():
            self._metrics.count("Reconcile" + name.title().replace("_", ""), value)
        log.info("reconcile finished", extra={"report": report.as_dict()})
        return report


def _outcome(result: WorkResult) -> Outcome:
    return Outcome(
        result.verdict, result.job, result.job_id, result.code, result.reason, result.delay_s
    )


def _build_services(settings: Settings, metrics: Metrics) -> Services:
    from core.bootstrap import Overrides, build_services

    return build_services(settings, Overrides(metrics=metrics))


class ContainerHost:
    """The container's one FunctionHost, built on the first call (never at import: a
    cold start pays for nothing until an event arrives). Each cloud's runtime module
    holds one: `host = ContainerHost(AwsPlatform)`, and its handlers call `host()`."""

    def __init__(self, platform: Callable[[], Platform]) -> None:
        self._platform = platform
        self._clock: Callable[[], float] = time.monotonic
        self._host: FunctionHost | None = None
        self._lock = threading.Lock()

    def __call__(self) -> FunctionHost:
        built = self._host
        if built is None:
            with self._lock:
                if self._host is None:
                    self._host = FunctionHost(self._platform(), clock=self._clock)
                built = self._host
        return built

    @property
    def started(self) -> bool:
        return self._host is not None

    def reset(self, *, clock: Callable[[], float] | None = None) -> None:
        """Forget the host (a test starting a new 'container'); built services close.
        `clock`: the new container's monotonic clock, for a test that moves time past
        the secrets TTL instead of sleeping through it (else time.monotonic)."""
        with self._lock:
            if self._host is not None and self._host.runtime.built:
                self._host.runtime.reset()
            self._host = None
            self._clock = clock or time.monotonic
