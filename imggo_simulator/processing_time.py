"""How long each job takes: a fixed `processing_s`, or a uniform random time in
[`processing_s`, `processing_max_s`] (`--latency 0.5-2`), like a real service whose
jobs do not all take the same time.

The draws come from their own RNG, seeded from `seed` apart from the chaos RNG, so a
latency range never shifts which requests chaos hits, and one seed replays both.
"""

from __future__ import annotations

import random

from .config import SimulatorConfig


class ProcessingTime:
    def __init__(self, seed: int | None) -> None:
        # A str seed is hashed (SHA-512) by random.seed: stable across runs and processes.
        # random.Random's methods are atomic under the GIL: request threads may share it.
        source = None if seed is None else f"processing-time:{seed}"
        self._rng = random.Random(source)  # noqa: S311 - reproducibility, not secrecy

    def draw(self, config: SimulatorConfig) -> float:
        """Seconds the next job spends queued + running (never negative)."""
        low = max(0.0, config.processing_s)
        high = config.processing_max_s
        if high is None or high <= low:
            return low
        return self._rng.uniform(low, high)
