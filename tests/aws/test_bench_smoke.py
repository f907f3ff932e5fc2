"""The AWS benchmarks run at a tiny size and print their figures (`make bench` times
them; this only proves they work): the cold start, one fresh process a side, from the
source tree (the test has no built artifact), and the warm overhead, a few calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench import cold_start_aws, warm_aws
from bench.cold_start import table
from imggo_simulator import SimulatorConfig, SimulatorServer


@pytest.fixture
def imggo() -> Iterator[str]:
    with SimulatorServer(SimulatorConfig(processing_s=60)) as sim:
        yield sim.url


def test_the_cold_start_makes_the_same_calls_on_both_sides(moto_url: str, imggo: str) -> None:
    comparison = cold_start_aws.run(
        1,
        layout=cold_start_aws.source_layout(),
        moto_url=moto_url,
        imggo_url=imggo,
        warm_up=False,
        count_instructions=False,  # valgrind's run is the bench's, not a test's
    )
    assert comparison.function_calls == {
        "POST /api/patterns/image-facts/ingest": 1,
        # The job's three writes; the rate budget's slot and, on its first answer, the
        # plan's limit learnt: a read and a write each.
        "dynamodb GetItem": 2,
        "dynamodb PutItem": 5,
        "ssm GetParameters": 1,
    }
    assert comparison.same_calls
    assert all(s.tls_contexts >= 1 for s in [*comparison.function, *comparison.floor])
    lines = table([comparison])
    assert any(line.startswith("aws ") and line.rstrip().endswith("yes") for line in lines)


def test_the_warm_overhead_compares_the_same_answer() -> None:
    rows = dict(warm_aws.run(calls=20, rounds=1))
    ratio = next(v for k, v in rows.items() if k.startswith("ratio function / floor"))
    assert ratio.endswith("the goal)")
    assert any("the same" in k and "JSON body" in k for k in rows)
