"""Metrics as structured log lines: what a platform without a metrics client of its own
uses (Google Cloud's log-based metrics, Azure Monitor's log queries). One line per count
or timing: `{"message": "metric ColdStart", "metric": "ColdStart", "value": 1, ...}`."""

from __future__ import annotations

import logging

log = logging.getLogger("imggo.metrics")


class LogMetrics:
    def count(self, name: str, value: int = 1) -> None:
        if value:
            log.info("metric %s", name, extra={"metric": name, "value": value, "unit": "Count"})

    def timing(self, name: str, milliseconds: float) -> None:
        log.info(
            "metric %s",
            name,
            extra={"metric": name, "value": round(milliseconds, 3), "unit": "Milliseconds"},
        )
