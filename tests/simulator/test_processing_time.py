"""Processing latency as a range: `--latency 0.5-2` makes each job take a uniform random
time in [0.5, 2] s, drawn from the RNG `--seed` seeds."""

from __future__ import annotations

import httpx
import pytest

from imggo_cli.main import main as imggo_fn
from imggo_simulator import DEMO_API_KEY, SimulatorConfig, SimulatorServer
from imggo_simulator.__main__ import build_parser, config_from_args
from imggo_simulator.processing_time import ProcessingTime
from tests.simulator.helpers import upload, wait_for_job


def _config(*argv: str) -> SimulatorConfig:
    return config_from_args(build_parser().parse_args(list(argv)))


def test_latency_takes_a_range_or_one_value() -> None:
    ranged = _config("--latency", "0.5-2")
    assert (ranged.processing_s, ranged.processing_max_s) == (0.5, 2.0)
    fixed = _config("--processing-s", "0.2")
    assert (fixed.processing_s, fixed.processing_max_s) == (0.2, None)
    assert _config("--latency", "1e-3").processing_s == 0.001
    default = _config()
    assert (default.processing_s, default.processing_max_s) == (0.05, None)


@pytest.mark.parametrize("bad", ["2-0.5", "fast", "-1", "0.5-", "0.5-nan", "inf", "1-2-3"])
def test_a_bad_latency_is_a_usage_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([f"--latency={bad}"])
    assert exited.value.code == 2
    assert "--latency" in capsys.readouterr().err
    # imggo-fn simulator shares the parser: one line, exit 2, before anything listens.
    assert imggo_fn(["simulator", f"--latency={bad}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: argument --processing-s/--latency") and "\n" not in err


def test_durations_are_uniform_in_the_range_and_reproducible_by_seed() -> None:
    config = SimulatorConfig(processing_s=0.5, processing_max_s=2.0)
    draws = [ProcessingTime(seed=7).draw(config) for _ in range(2)]
    assert draws[0] == draws[1]  # same seed, same first job
    times = ProcessingTime(seed=7)
    many = [times.draw(config) for _ in range(2000)]
    assert all(0.5 <= t <= 2.0 for t in many)
    assert min(many) < 0.55 and max(many) > 1.95  # the whole range, not one point
    assert 1.2 < sum(many) / len(many) < 1.3  # uniform: mean 1.25
    assert ProcessingTime(seed=7).draw(SimulatorConfig(processing_s=0.3)) == 0.3


def test_jobs_over_http_take_their_drawn_time() -> None:
    config = SimulatorConfig(processing_s=0.1, processing_max_s=0.5, seed=11)
    expected = ProcessingTime(seed=11)
    planned = [expected.draw(config) for _ in range(5)]
    assert max(planned) - min(planned) > 0.2  # this seed spreads them (checked here)
    with (
        SimulatorServer(config) as sim,
        httpx.Client(
            base_url=sim.url,
            headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
            timeout=5.0,
            trust_env=False,
        ) as client,
    ):
        job_ids = [upload(client, "invoice.png").json()["data"]["job_id"] for _ in planned]
        jobs = [wait_for_job(client, job_id) for job_id in job_ids]
    for job, duration in zip(jobs, planned, strict=True):
        assert job["status"] == "succeeded", job
        # Never early; late only by the scheduler's (and a busy machine's) slack.
        assert duration * 1000 - 2 <= job["latency_ms"] <= duration * 1000 + 300, (job, duration)
