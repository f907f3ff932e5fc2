"""The plan-limited throughput benchmark at a tiny size (`make bench` runs it at 1000
images): several `imggo-fn serve` processes sharing one store and one ImgGo key, more
work than the plan's limit lets through at once, and the shared budget keeping every
call inside it - real processes, the simulator's own per-key limit, results by webhook."""

from __future__ import annotations

from bench import throughput


def test_workers_sharing_a_store_share_the_plan_and_lose_nothing() -> None:
    run = throughput.run_once(
        "shared budget",
        images=8,
        workers=2,
        limit=40,  # slots 1.54 s apart
        latency="0.05-0.1",
        budget=True,
        give_up_s=90,
    )
    assert (run.succeeded, run.lost, run.duplicated) == (8, 0, 0), run
    assert run.rate_limited == 0, run  # every call inside the plan, across processes
    # ...and paced: 8 calls at 39 a minute take at least 7 intervals.
    assert run.wall_s >= 7 * 60 / 39 * 0.9, run
    lines = throughput.table([run])
    assert lines[1].startswith("shared budget")
