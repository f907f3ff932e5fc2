"""The Google Cloud cold-start benchmark runs at a tiny size (one fresh process a side,
on the package's Firestore emulator) and prints its figures: `make bench` times it,
this only proves it works and that both sides make the same calls."""

from __future__ import annotations

from bench import cold_start_gcp
from bench.cold_start import table
from imggo_simulator import SimulatorConfig, SimulatorServer
from tests.gcp.conftest import DNS_GUARD_DIR


def test_the_cold_start_makes_the_same_calls_on_both_sides(firestore_host: str) -> None:
    with SimulatorServer(SimulatorConfig(processing_s=60)) as sim:
        comparison = cold_start_gcp.run(
            1,
            firestore_host=firestore_host,
            imggo_url=sim.url,
            warm_up=False,
            count_instructions=False,  # valgrind's run is the bench's, not a test's
            path_first=[DNS_GUARD_DIR],
        )
    assert comparison.function_calls == {
        "POST /api/patterns/image-facts/ingest": 1,
        # The job's three writes; the rate budget's slot and, on its first answer, the
        # plan's limit learnt: a read and a write each.
        "firestore BatchGetDocuments": 2,
        "firestore Commit": 5,
    }
    assert comparison.same_calls
    assert all(s.tls_contexts >= 1 for s in [*comparison.function, *comparison.floor])
    lines = table([comparison])
    assert any(line.startswith("gcp ") and line.rstrip().endswith("yes") for line in lines)
