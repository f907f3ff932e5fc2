"""The calls `imggo-fn ingest` makes to ImgGo, in one paced order: submissions of the
jobs it accepted and polls of the jobs ImgGo has, on `concurrency` worker threads.

run_batch accepts the images and hands their jobs to the `Scheduler` as its Queue (the
CLI is its own worker tier): a job never sent is dispatched (core.service.submit), a
job ImgGo has is polled (core.service.query.refresh) until it is finished, the run's
deadline passes or Ctrl-C stops it. One dispatcher thread decides what goes next, and
when:

- A call starts only when a worker is free and the shared rate budget's next slot is
  near (pacing.SlotGate): the CLI waits for the budget, interruptibly, instead of
  piling reservations up in it.
- Submissions come first, and polls only for jobs that are due (polling.PollPlan: when
  ImgGo has probably finished them). While images wait to be sent, due polls get at
  most one call per submission (SENDS_PER_POLL), so polls never take more than half of
  this process's calls then. Fewer would not do: each job needs about one poll, and
  polls that fall behind the submissions pile up - results arrive only at the end of a
  long run, and ImgGo forgets a finished job after an hour.
- A submission that was deferred (the job is still accepted: the budget had no slot in
  time, ImgGo answered 429 or 5xx, or could not be reached) is sent again after a
  backoff, until it is sent or the deadline passes: a run never leaves a job accepted
  that it could still send. A job whose store record fails is tried again the same way
  while the others go on.
- After a Ctrl-C nothing new is sent; with `grace_s` (the embedded simulator, which
  dies with this process) the jobs already sent are still polled that long.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import Enum

from core.adapters.imggo.budget import RateBudget
from core.domain.errors import DomainError
from core.domain.job import Job, JobStatus
from core.ports import UnreadableRecordError, WorkItem
from core.service.context import Services
from core.service.query import refresh
from core.service.submit import dispatch
from imggo_cli.output import Progress, duration
from imggo_cli.pacing import CallSpacing, SlotGate, eta_s
from imggo_cli.polling import PollPlan

log = logging.getLogger("imggo.cli")

SENDS_PER_POLL = 1
# Backoff for a call that got nowhere (a deferred submission, a store failure).
RETRY_FIRST_S, RETRY_MAX_S = 1.0, 30.0
# How soon the dispatcher notices a Ctrl-C while it waits (for a call to fall due or a slot).
TICK_S = 0.1


def never_sent(job: Job) -> bool:
    """Accepted but not at ImgGo: polling cannot move it; sending it can."""
    return job.status is JobStatus.ACCEPTED and job.dedupe_of is None


class Call(Enum):
    SEND = "send"
    POLL = "poll"


@dataclass
class _Tracked:
    job: Job
    sent_at: float | None = None  # when ImgGo took it in this run (monotonic)
    polls: int = 0  # polls ImgGo answered
    misses: int = 0  # ... that found the job unfinished
    setbacks: int = 0  # calls that got nowhere: deferred submissions, store failures


class Scheduler:
    """A Queue for run_batch, and the ingest's workers. The dispatcher runs while the
    scheduler is entered as a context manager; leaving it waits for the run's end."""

    def __init__(
        self,
        services: Services,
        budget: RateBudget,
        progress: Progress,
        *,
        concurrency: int,
        deadline: float,
        stop: threading.Event,
        grace_s: float = 0.0,
        plan: PollPlan | None = None,
    ) -> None:
        self._services = services
        self._progress = progress
        self._concurrency = max(1, concurrency)
        self._deadline = deadline
        self._stop = stop
        self._grace_s = grace_s
        self._plan = plan or PollPlan()
        self._gate = SlotGate(budget)
        self._spacing = CallSpacing()
        # A poll may wait for its slot as long as a submission may (dispatch's deadline).
        self._call_wait_s = services.settings.submit_deadline_s
        self._rng = random.Random()  # noqa: S311 - jitter, not secrecy
        self._cond = threading.Condition()
        self._aborted = threading.Event()  # the caller failed: end at once
        self._seq = itertools.count()
        self._tracked: dict[str, _Tracked] = {}
        self._sends: list[tuple[float, int, str]] = []  # (due, seq, job id)
        self._first: deque[str] = deque()  # first polls, in the order the jobs were sent
        self._retries: list[tuple[float, int, str]] = []  # (due, seq, job id)
        # The latest due of any retry pushed: a retry is only taken once due, so while
        # one is queued this is the last one's due (for the ETA, without a scan).
        self._last_retry_due = 0.0
        self._sending = True
        self._stopping = False
        self._intake_open = True
        self._in_flight = 0
        self._sends_since_poll = 0
        self._settled = 0  # items that need no call: refused, or finished before this run
        self._finished = 0
        self._unsent = 0
        self._waiting = 0  # sent, not finished
        self._polls_of_finished = 0
        self._polled_finished = 0
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ingest-dispatch", daemon=True)

    # -- the Queue run_batch hands its jobs to --------------------------------------

    # A job handed over is sent when the budget has a slot for it: the scheduler paces
    # it itself, so it takes no delay of its own.
    max_delay_s = 0.0

    def send(self, items: Sequence[WorkItem], *, delay_s: float = 0.0) -> None:
        for item in items:
            try:
                job = self._services.store.get(item.job_id)
            except (DomainError, UnreadableRecordError) as exc:
                log.warning("job %s cannot be read, so it is not sent: %s", item.job_id, exc)
                continue
            if job is not None:
                with self._cond:
                    self._track(job)
        with self._cond:
            self._cond.notify_all()
        self._report()

    def settle(self, count: int) -> None:
        """`count` items that need no call (refused by us, or finished before this run)."""
        with self._cond:
            self._settled += count
        self._report()

    # -- running ----------------------------------------------------------------------

    def __enter__(self) -> Scheduler:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        """Wait until every job is finished, the deadline passed or a Ctrl-C stopped the
        run, and the calls in flight returned. If the caller failed, end at once."""
        with self._cond:
            self._intake_open = False
            if exc_type is not None:
                self._aborted.set()
            self._cond.notify_all()
        self._thread.join()
        self._progress.close()
        if exc_type is None and self._failure is not None:
            raise self._failure

    def jobs(self) -> dict[str, Job]:
        """The latest copy of every job the run was handed."""
        with self._cond:
            return {job_id: tracked.job for job_id, tracked in self._tracked.items()}

    def _run(self) -> None:
        try:
            with ThreadPoolExecutor(self._concurrency, thread_name_prefix="ingest") as pool:
                while (call := self._next_call()) is not None:
                    pool.submit(self._execute, *call)
        except BaseException as exc:  # a bug: the run ends, and __exit__ raises it
            with self._cond:
                self._failure = self._failure or exc
        self._report()

    def _next_call(self) -> tuple[Call, str] | None:
        """Block until a call should start: a worker is free, a call is due and the budget
        has a slot for it. None when the run is over."""
        while True:
            with self._cond:
                while True:
                    if self._over():
                        return None
                    now = time.monotonic()
                    free = self._in_flight < self._concurrency
                    if free and self._ready(now) is not None:
                        break
                    # A worker finishing, or new jobs, notify; a call falling due does not.
                    due = self._next_due() if free else None
                    wait = TICK_S if due is None else min(TICK_S, max(0.0, due - now))
                    self._cond.wait(min(wait, max(0.0, self._deadline - now)))
            slot = self._gate.wait(deadline=self._deadline, pause=self._pause)
            self._report()
            if slot is None:
                continue  # stopped or out of time: _over() says which
            with self._cond:
                now = time.monotonic()
                call = self._take(now)
                if call is None:  # cannot happen: only this thread takes calls
                    continue
                self._spacing.record(slot, more_waiting=self._ready(now) is not None)
                self._in_flight += 1
                return call

    def _over(self) -> bool:
        """Under the lock: has the run ended? Enters the grace period on a Ctrl-C."""
        if self._stop.is_set() and not self._stopping:
            self._stopping = True
            self._sending = False
            if self._grace_s > 0:
                self._deadline = min(self._deadline, time.monotonic() + self._grace_s)
        if self._aborted.is_set() or self._failure is not None:
            return True
        if time.monotonic() >= self._deadline:
            return True
        if self._stopping and self._grace_s <= 0:
            return True
        queued = bool(self._first or self._retries or (self._sending and self._sends))
        return not (queued or self._in_flight or self._intake_open)

    def _pause(self, seconds: float) -> bool:
        """Sleep up to `seconds` (waiting for a slot); True when cut short: by a Ctrl-C
        not yet seen by _over() (in the grace period one is not), or the caller failing."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self._aborted.is_set() or (self._stop.is_set() and not self._stopping):
                return True
            self._aborted.wait(min(left, TICK_S))
        return False

    # -- what goes next (under the lock) --------------------------------------------------

    def _first_due(self) -> float | None:
        if not self._first:
            return None
        sent_at = self._tracked[self._first[0]].sent_at
        assert sent_at is not None
        return sent_at + self._plan.expected_s

    def _poll_due(self, now: float) -> bool:
        first, retry = self._first_due(), self._retries[0][0] if self._retries else None
        return any(d is not None and d <= now for d in (first, retry))

    def _next_due(self) -> float | None:
        dues = [self._first_due(), self._retries[0][0] if self._retries else None]
        if self._sending and self._sends:
            dues.append(self._sends[0][0])
        known = [d for d in dues if d is not None]
        return min(known) if known else None

    def _ready(self, now: float) -> Call | None:
        """The kind of call to make now, if any: SENDS_PER_POLL submissions, then a poll,
        while both are due."""
        send = self._sending and bool(self._sends) and self._sends[0][0] <= now
        if self._poll_due(now) and (not send or self._sends_since_poll >= SENDS_PER_POLL):
            return Call.POLL
        return Call.SEND if send else None

    def _take(self, now: float) -> tuple[Call, str] | None:
        call = self._ready(now)
        if call is Call.SEND:
            self._sends_since_poll += 1
            return call, heapq.heappop(self._sends)[2]
        if call is Call.POLL:
            self._sends_since_poll = 0
            first, retry = self._first_due(), self._retries[0][0] if self._retries else None
            if first is not None and first <= now and (retry is None or first <= retry):
                return call, self._first.popleft()
            return call, heapq.heappop(self._retries)[2]
        return None

    def _track(self, job: Job) -> None:
        if job.id in self._tracked:
            return  # the same job twice (run_batch hands each job once; be safe)
        self._tracked[job.id] = _Tracked(job)
        now = time.monotonic()
        if job.terminal:
            self._finished += 1
        elif never_sent(job):
            self._unsent += 1
            heapq.heappush(self._sends, (now, next(self._seq), job.id))
        else:  # sent by an earlier run: probably done by now
            self._waiting += 1
            self._retry(job.id, at=now)

    # -- the calls (on the workers) -----------------------------------------------------

    def _execute(self, call: Call, job_id: str) -> None:
        try:
            if call is Call.SEND:
                self._send(job_id)
            else:
                self._poll(job_id)
        except (DomainError, UnreadableRecordError) as exc:
            # The store failed this one job: the others go on, this one is tried later.
            log.warning("job %s: %s; trying it again later", job_id, exc)
            with self._cond:
                tracked = self._tracked[job_id]
                tracked.setbacks += 1
                again = time.monotonic() + self._backoff_s(tracked.setbacks)
                if call is Call.SEND:
                    heapq.heappush(self._sends, (again, next(self._seq), job_id))
                else:
                    self._retry(job_id, at=again)
        except BaseException as exc:
            with self._cond:
                self._failure = self._failure or exc
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()
        self._report()

    def _send(self, job_id: str) -> None:
        with self._cond:
            tracked = self._tracked[job_id]
        result = dispatch(self._services, tracked.job)
        now = time.monotonic()
        with self._cond:
            tracked.job = result
            if never_sent(result):  # deferred: the job is as it was
                tracked.setbacks += 1
                again = now + self._backoff_s(tracked.setbacks)
                heapq.heappush(self._sends, (again, next(self._seq), job_id))
                return
            self._unsent -= 1
            if result.terminal:  # refused by ImgGo
                self._finished += 1
            else:
                self._waiting += 1
                tracked.sent_at = now
                self._first.append(job_id)

    def _poll(self, job_id: str) -> None:
        with self._cond:
            tracked = self._tracked[job_id]
        before = tracked.job
        result = refresh(self._services, before, deadline=time.monotonic() + self._call_wait_s)
        now = time.monotonic()
        # refresh stores every answer from ImgGo (news, or when it was asked); a job it
        # did not write was not answered (no slot in time, 5xx, unreachable).
        answered = result.version != before.version
        with self._cond:
            tracked.job = result
            if answered:
                tracked.polls += 1
                if tracked.polls == 1 and tracked.sent_at is not None:
                    self._plan.learn(age_s=now - tracked.sent_at, finished=result.terminal)
            if result.terminal:
                self._waiting -= 1
                self._finished += 1
                if tracked.polls:
                    self._polls_of_finished += tracked.polls
                    self._polled_finished += 1
                return
            if answered:
                tracked.misses += 1
            self._retry(job_id, at=now + self._plan.retry_delay_s(max(1, tracked.misses)))

    def _retry(self, job_id: str, *, at: float) -> None:
        """Under the lock: poll the job again at `at`."""
        heapq.heappush(self._retries, (at, next(self._seq), job_id))
        self._last_retry_due = max(self._last_retry_due, at)

    def _backoff_s(self, setbacks: int) -> float:
        base = min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** max(0, setbacks - 1))
        return base * (0.75 + 0.5 * self._rng.random())

    # -- progress -------------------------------------------------------------------------

    def _report(self) -> None:
        with self._cond:
            done = self._settled + self._finished
            note = self._note(time.monotonic())
        self._progress.update(done, note)

    def _note(self, now: float) -> str:
        """Under the lock: `N to send; 120/min; ETA 1 min 05 s`."""
        parts = [f"{self._unsent} to send"] if self._unsent else []
        if limit := self._gate.limit_text():
            parts.append(limit)
        spacing = self._spacing.seconds(self._gate.interval_s())
        if spacing is not None and (self._unsent or self._waiting):
            per_job = 1.0
            if self._polled_finished:
                per_job = max(1.0, self._polls_of_finished / self._polled_finished)
            calls = self._unsent * (1 + per_job) + self._waiting * per_job
            dues = [self._last_retry_due, self._last_first_due() or now]
            eta = eta_s(
                calls=calls,
                # Up to one poll per submission goes between them (SENDS_PER_POLL).
                calls_to_last_send=min(calls, self._unsent * (1 + 1 / SENDS_PER_POLL)),
                spacing_s=spacing,
                processing_s=self._plan.expected_s,
                until_due_s=max(dues) - now,
            )
            late = eta > self._deadline - now  # say so while there is time to act
            bound = "" if self._spacing.measured else "at least "  # see imggo_cli.pacing
            late_text = ", more than --wait leaves" if late else ""
            parts.append(f"ETA {bound}{duration(eta)}{late_text}")
        return "; ".join(parts)

    def _last_first_due(self) -> float | None:
        if not self._first:
            return None
        sent_at = self._tracked[self._first[-1]].sent_at
        return None if sent_at is None else sent_at + self._plan.expected_s


__all__ = ["SENDS_PER_POLL", "Call", "Scheduler", "never_sent"]
