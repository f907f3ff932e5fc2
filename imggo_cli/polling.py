"""When `imggo-fn ingest` asks ImgGo about a job it sent: once ImgGo has probably
finished it, then backing off, with jitter.

Why it polls: the CLI runs where ImgGo's webhooks cannot reach it (no public URL;
`serve` registers a webhook where it can), so it asks. Every poll is a call against
the plan's limit, like a submission, so a poll is only worth its slot when it will
probably find the job finished; the aim is one poll a job.

- A job's first poll comes `expected_s` after ImgGo took it: an estimate of the time
  within which most jobs (QUANTILE: nine in ten) are done, learnt from this run's first
  polls by quantile tracking on a log scale. A first poll that finds its job done
  lowers the estimate a little; one that finds it unfinished raises the estimate past
  the job's age. The steps are sized so that they balance when about one job in ten
  needs a second poll. A first poll made late (queued behind other calls) that finds
  its job done says nothing about the estimate and moves nothing. Later polls teach
  nothing either: they ask about the slow tail the estimate leaves out on purpose.
  The first guess is FIRST_POLL_S.
- First polls wait in the order their jobs were sent and are due at `sent + expected_s`
  with the estimate of the moment, so what the first answers teach moves every first
  poll still waiting, not only those planned after it.
- A job still unfinished is asked again after a backoff that starts at half the
  estimate and doubles up to RETRY_MAX_S, each delay drawn within +-JITTER of it so
  the stragglers of jobs sent together (by several processes, too) come apart.
"""

from __future__ import annotations

import math
import random
import threading

# Before any answer: the time of the job in ImgGo's OpenAPI example (latency_ms 1250).
FIRST_POLL_S = 1.25
QUANTILE = 0.9
# Log-scale steps: up by STEP * QUANTILE, down by STEP * (1 - QUANTILE); they balance
# when a share 1 - QUANTILE of on-time polls finds the job unfinished.
STEP = 0.25
MIN_EXPECTED_S, MAX_EXPECTED_S = 0.05, 300.0
# A poll made more than this many times the estimate after its job was sent is late.
LATE_FACTOR = 1.5
RETRY_MIN_S, RETRY_GROWTH, RETRY_MAX_S = 0.2, 2.0, 30.0
JITTER = 0.25


class PollPlan:
    """The estimate and the delays; thread-safe (the ingest's workers report to it)."""

    def __init__(self, *, first_s: float = FIRST_POLL_S, rng: random.Random | None = None) -> None:
        self._expected = first_s
        # Jitter only spreads polls out: it need not be unpredictable.
        self._rng = rng or random.Random()  # noqa: S311
        self._lock = threading.Lock()

    @property
    def expected_s(self) -> float:
        """How long after its submission a job is probably done (QUANTILE of them)."""
        return self._expected

    def learn(self, *, age_s: float, finished: bool) -> None:
        """ImgGo's answer to a job's first poll, made `age_s` after the job was sent."""
        with self._lock:
            if not finished:
                # Never below the estimate: many polls planned at one estimate that all
                # come back unfinished raise it once, not once each.
                raised = age_s * math.exp(STEP * QUANTILE)
                self._expected = min(MAX_EXPECTED_S, max(self._expected, raised))
            elif age_s <= self._expected * LATE_FACTOR:
                lowered = self._expected * math.exp(-STEP * (1 - QUANTILE))
                self._expected = max(MIN_EXPECTED_S, lowered)

    def retry_delay_s(self, misses: int) -> float:
        """The wait before asking again about a job found unfinished `misses` times."""
        base = max(RETRY_MIN_S, self._expected / 2) * RETRY_GROWTH ** max(0, misses - 1)
        return min(RETRY_MAX_S, base) * (1 + JITTER * (2 * self._rng.random() - 1))
