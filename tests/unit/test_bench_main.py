"""`python -m bench` runs its warm and stress sections at a tiny size and prints them
(the cold-start section is proven per cloud: tests/*/test_bench_smoke.py)."""

from __future__ import annotations

import pytest

from bench.__main__ import bench_imports, main


def test_the_warm_and_stress_sections_print_their_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["--only", "warm", "--only", "stress", "--runs", "1", "--calls", "10", "--count", "3"])
    out = capsys.readouterr().out
    assert "== Warm: per-request overhead" in out
    assert "ratio function / floor (goal <= 1.5x)" in out
    assert "ratio HttpApp / floor" in out
    assert "== Unthrottled stress (secondary: no plan limit, not a throughput figure)" in out
    assert "speed-up vs sequential" in out
    assert "== Cold start" not in out


def test_the_core_import_row_names_its_reference_as_not_the_same_work() -> None:
    rows = dict(bench_imports(runs=1))
    assert rows["import the core HTTP surface + bootstrap (fresh process)"].endswith(" ms")
    assert "  for scale, not the same work: import httpx alone" in rows
