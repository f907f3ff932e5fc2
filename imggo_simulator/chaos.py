"""Chaos decisions: which requests the simulator answers badly, from one seeded RNG."""

from __future__ import annotations

import random
import time

from .config import SimulatorConfig
from .http_types import ApiError

_SERVER_ERRORS = (
    (500, "INTERNAL_ERROR", "Internal server error (simulated)"),
    (502, "BAD_GATEWAY", "Bad gateway (simulated)"),
    (503, "SERVICE_UNAVAILABLE", "Service unavailable (simulated)"),
)


class Chaos:
    def __init__(self, seed: int | None) -> None:
        # random.Random's methods are atomic under the GIL: safe to share across threads.
        self.rng = random.Random(seed)  # noqa: S311 - chaos needs reproducibility, not secrecy

    def before_request(self, config: SimulatorConfig) -> None:
        """Maybe stall, then maybe fail, before the request touches any state."""
        if config.timeout_rate > 0 and self.rng.random() < config.timeout_rate:
            time.sleep(config.timeout_sleep_s)
        if config.error_rate > 0 and self.rng.random() < config.error_rate:
            status, code, message = self.rng.choice(_SERVER_ERRORS)
            raise ApiError(status, code, message, {"simulated": True})
        if config.rate_limited_rate > 0 and self.rng.random() < config.rate_limited_rate:
            raise ApiError(
                429,
                "RATE_LIMIT_EXCEEDED",
                "Rate limit exceeded (simulated)",
                {"simulated": True, "retry_after": 1},
                headers={"Retry-After": "1"},
            )

    def accepted_then_error(self, config: SimulatorConfig) -> ApiError | None:
        rate = config.accepted_then_error_rate
        if rate > 0 and self.rng.random() < rate:
            return ApiError(
                500,
                "INTERNAL_ERROR",
                "Internal server error after the job was accepted (simulated)",
                {"simulated": True},
            )
        return None
