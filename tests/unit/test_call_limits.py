"""The limits every SDK client of the adapters is built with fit well inside the
shortest function timeout we deploy: an outage answers 503, not a platform timeout."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.adapters.outages import DEFAULT_LIMITS, CallLimits

ROOT = Path(__file__).resolve().parents[2]


def deployed_timeouts_s() -> dict[str, int]:
    """Every function timeout in the deploy descriptors, by where it was found."""
    found: dict[str, int] = {}
    patterns = {
        "template.yaml": r"^\s*Timeout:\s*(\d+)",
        "serverless.yml": r"^\s*timeout:\s*(\d+)",
        "deploy/gcp.sh": r"--timeout=(\d+)s",
    }
    for name, pattern in patterns.items():
        text = (ROOT / name).read_text()
        for i, match in enumerate(re.finditer(pattern, text, re.MULTILINE)):
            found[f"{name}#{i}"] = int(match.group(1))
    return found


def test_the_default_limits_are_well_inside_every_function_timeout() -> None:
    timeouts = deployed_timeouts_s()
    assert len(timeouts) >= 10, timeouts  # the descriptors were actually read
    shortest = min(timeouts.values())
    assert shortest == 29  # API Gateway's integration limit: the HTTP functions
    # One call's worst case leaves a quarter of the shortest timeout for the rest of
    # the request (the answer itself, the store's own call).
    assert DEFAULT_LIMITS.worst_case_s * 1.25 <= shortest, DEFAULT_LIMITS.worst_case_s


def test_the_worst_case_counts_every_try_and_the_backoff() -> None:
    limits = CallLimits(connect_s=1, read_s=2, attempts=3, retry_s=4)
    # botocore: 3 tries of at most 1 + 2 s, sleeps of at most 1 and 2 s between them.
    assert limits.worst_case_s == 3 * 3 + 1 + 2
    # Google: new tries start until 20 s, and the last may run its full 3 s.
    assert CallLimits(connect_s=1, read_s=2, attempts=1, retry_s=20).worst_case_s == 23


@pytest.mark.parametrize(
    "bad",
    [{"connect_s": 0}, {"read_s": -1}, {"attempts": 0}, {"retry_s": 0}],
)
def test_nonsense_limits_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CallLimits(**bad)
