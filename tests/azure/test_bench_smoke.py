"""The Azure cold-start benchmark runs at a tiny size (one fresh process a side, on the
package's Azurite) and prints its figures: `make bench` times it, this only proves it
works and that both sides make the same calls."""

from __future__ import annotations

from bench import cold_start_azure
from bench.cold_start import table
from imggo_simulator import SimulatorConfig, SimulatorServer
from tests.azure.azurite import Azurite


def test_the_cold_start_makes_the_same_calls_on_both_sides(azurite_server: Azurite) -> None:
    with SimulatorServer(SimulatorConfig(processing_s=60)) as sim:
        comparison = cold_start_azure.run(
            1,
            connection_string=azurite_server.connection_string,
            imggo_url=sim.url,
            warm_up=False,
            count_instructions=False,  # valgrind's run is the bench's, not a test's
        )
    assert comparison.function_calls == {
        "POST /api/patterns/image-facts/ingest": 1,
        "POST /devstoreaccount1/$batch": 2,
        # The job's writes; the rate budget's slot (read, create) and, on its first
        # answer, the plan's limit learnt (read, replace If-Match).
        f"GET /devstoreaccount1/{cold_start_azure.TABLE}(key)": 2,
        f"POST /devstoreaccount1/{cold_start_azure.TABLE}": 3,
        f"PUT /devstoreaccount1/{cold_start_azure.TABLE}(key)": 4,
    }
    assert comparison.same_calls
    lines = table([comparison])
    assert any(line.startswith("azure ") and line.rstrip().endswith("yes") for line in lines)
