"""Cold start of a cloud's HTTP function against a floor that does the same calls by
hand: what every cloud's benchmark shares (bench.cold_start_aws, _gcp, _azure).

A sample is a fresh Python process that runs ONE `POST /v1/jobs` (JSON, image_url) and
exits. The function side loads the real function the way its platform does; the floor
side is the least hand-written function that makes the same calls to the same backends:
the same store writes and reads, the same secret reads, one ImgGo ingest over an
HTTP client ready for HTTPS (the real ImgGo is HTTPS: both pay for a TLS context).

Both run under bench/probe/callprobe.py, which times the child from its first line to
the answer (interpreter start-up, the same for both, is left out and reported apart)
and counts every call on the wire. The sides alternate, several times, after one
unmeasured run of each (the OS file cache, the backends' first-use costs); the medians
are compared. The calls each side made are printed next to the figures, and whether
they are the same calls: a floor that did less would flatter nobody but us.

Wall time on a shared machine swings with its neighbours (the same two sides have read
1.00x and 1.38x in consecutive runs here), so each side also runs once under valgrind's
callgrind, which counts the instructions the process executed: the same count for the
same work whatever else the machine does. The interpreter's own start-up, counted apart
(a child that runs `pass`), is taken off both sides, as the timings leave it out. The
instruction ratio is what a change to our code moves; it reads lower than the wall
ratio, since more modules also mean more cache misses per instruction.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.probe import callprobe

GOAL = 1.25
RUNS = 7
# The directory holding callprobe.py alone: on every child's path, and nothing else of ours.
PROBE_DIR = Path(callprobe.__file__).resolve().parent
_COLLECTED = re.compile(r"Collected : (\d+)")


@dataclass(frozen=True)
class Sample:
    """One child's run: its time from its first line to the answer, and its calls."""

    ms: float
    cpu_ms: float  # CPU time of the process over the same span, all its threads
    startup_ms: float | None  # interpreter start-up before the first line
    calls: dict[str, int]
    tls_contexts: int
    modules: frozenset[str] = frozenset()  # what the measured code imported
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Child:
    """One side: the script a fresh process runs, with which interpreter, where."""

    script: str
    interpreter: Sequence[str]  # the interpreter and its flags, before `-c`
    env: Mapping[str, str]
    cwd: Path
    timeout_s: float = 120.0

    def run(self) -> Sample:
        env = {**self.env, callprobe.SPAWNED_AT_ENV: repr(time.time())}
        done = subprocess.run(
            [*self.interpreter, "-c", self.script],
            env=env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(f"a cold-start child failed:\n{done.stderr[-3000:]}")
        # The last line is the probe's; the function's own log lines come before it.
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if result["status"] not in (200, 202):
            raise RuntimeError(f"a cold-start child answered {result['status']}:\n{done.stdout}")
        return Sample(
            ms=result.pop("ms"),
            cpu_ms=result.pop("cpu_ms"),
            startup_ms=result.pop("startup_ms"),
            calls=result.pop("calls"),
            tls_contexts=result.pop("tls_contexts"),
            modules=frozenset(result.pop("modules")),
            extra=result,
        )

    def instructions(self) -> int:
        """The instructions one run executes, counted by callgrind (valgrind must be
        installed; the run is some 50 times slower than a plain one)."""
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                *self.interpreter,
                "-c",
                self.script,
            ],
            env={**self.env, callprobe.SPAWNED_AT_ENV: repr(time.time())},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=self.timeout_s * 20,
        )
        counted = _COLLECTED.search(done.stderr)
        if done.returncode != 0 or counted is None:
            raise RuntimeError(f"a cold-start child failed under valgrind:\n{done.stderr[-3000:]}")
        if self.script != "pass":  # the same answer as a timed run, or the count is moot
            status = json.loads(done.stdout.strip().splitlines()[-1])["status"]
            if status not in (200, 202):
                raise RuntimeError(f"a cold-start child answered {status} under valgrind")
        return int(counted.group(1))

    def start_up(self) -> Child:
        """The same interpreter, flags and environment running nothing: its start-up."""
        return Child("pass", self.interpreter, self.env, self.cwd, self.timeout_s)


@dataclass(frozen=True)
class Instructions:
    """One callgrind count of each side, and of the interpreter starting alone."""

    function: int
    floor: int
    start_up: int

    @property
    def ratio(self) -> float:
        return (self.function - self.start_up) / (self.floor - self.start_up)


def child_path(*entries: str | Path) -> str:
    """A PYTHONPATH of `entries` with the probe's directory last."""
    return os.pathsep.join(str(e) for e in [*entries, PROBE_DIR])


@dataclass(frozen=True)
class Comparison:
    """Both sides' samples for one cloud, and what a reader needs to judge them."""

    cloud: str
    function_work: str  # what the function side ran, in a line
    floor_work: str
    function: list[Sample]
    floor: list[Sample]
    instructions: Instructions | None = None  # None: valgrind is not installed

    @property
    def function_ms(self) -> float:
        return statistics.median(s.ms for s in self.function)

    @property
    def floor_ms(self) -> float:
        return statistics.median(s.ms for s in self.floor)

    @property
    def ratio(self) -> float:
        return self.function_ms / self.floor_ms

    @property
    def cpu_ratio(self) -> float:
        """The same comparison in CPU time: what a busy machine (other processes taking
        turns on the cores) distorts least, and what the wall-clock ratio is checked by."""
        return statistics.median(s.cpu_ms for s in self.function) / statistics.median(
            s.cpu_ms for s in self.floor
        )

    @property
    def meets_goal(self) -> bool:
        return self.ratio <= GOAL

    @staticmethod
    def _calls(samples: list[Sample]) -> dict[str, int] | None:
        """The calls every sample made, or None if they differed between runs."""
        first = samples[0].calls
        return first if all(s.calls == first for s in samples) else None

    @property
    def function_calls(self) -> dict[str, int] | None:
        return self._calls(self.function)

    @property
    def floor_calls(self) -> dict[str, int] | None:
        return self._calls(self.floor)

    @property
    def same_calls(self) -> bool:
        return self.function_calls is not None and self.function_calls == self.floor_calls

    def imports_only_by(self, side: str) -> Counter[str]:
        """Modules one side imported and the other did not, counted by top-level package
        (`function` or `floor`): where most of a cold start's difference lies."""
        ours, theirs = self.function[0].modules, self.floor[0].modules
        only = ours - theirs if side == "function" else theirs - ours
        return Counter(name.split(".", 1)[0] for name in only)

    @property
    def startup_ms(self) -> float | None:
        known = [s.startup_ms for s in [*self.function, *self.floor] if s.startup_ms is not None]
        return statistics.median(known) if known else None


def compare(
    cloud: str,
    function: Child,
    floor: Child,
    *,
    runs: int = RUNS,
    function_work: str,
    floor_work: str,
    warm_up: bool = True,
    count_instructions: bool = True,
) -> Comparison:
    """`runs` samples of each side, alternating which goes first, after one unmeasured
    run of each when `warm_up`; then each side's instructions, where valgrind is."""
    if warm_up:
        function.run()
        floor.run()
    ours: list[Sample] = []
    theirs: list[Sample] = []
    for i in range(runs):
        if i % 2 == 0:
            ours.append(function.run())
            theirs.append(floor.run())
        else:
            theirs.append(floor.run())
            ours.append(function.run())
    counted = None
    if count_instructions and shutil.which("valgrind"):
        counted = Instructions(
            function=function.instructions(),
            floor=floor.instructions(),
            start_up=function.start_up().instructions(),
        )
    return Comparison(cloud, function_work, floor_work, ours, theirs, counted)


def calls_text(calls: dict[str, int] | None) -> str:
    if calls is None:
        return "(differed between runs)"
    return ", ".join(f"{name} x{count}" for name, count in sorted(calls.items())) or "(none)"


def _packages(counts: Counter[str], shown: int = 8) -> str:
    if not counts:
        return "none"
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:shown]
    top = ", ".join(f"{name} {n}" for name, n in ranked)
    rest = sum(counts.values()) - sum(n for _, n in ranked)
    return f"{sum(counts.values())} ({top}{f', others {rest}' if rest else ''})"


def table(comparisons: Sequence[Comparison]) -> list[str]:
    """The one cold-start table: a row per cloud, then the work each side did."""
    header = (
        "cloud",
        "function",
        "floor",
        "ratio",
        f"goal <= {GOAL}x",
        "cpu ratio",
        "instr ratio",
        "same calls",
    )
    rows = [
        (
            c.cloud,
            f"{c.function_ms:.0f} ms",
            f"{c.floor_ms:.0f} ms",
            f"{c.ratio:.2f}x",
            "meets" if c.meets_goal else "MISSES",
            f"{c.cpu_ratio:.2f}x",
            "n/a" if c.instructions is None else f"{c.instructions.ratio:.2f}x",
            "yes" if c.same_calls else "NO",
        )
        for c in comparisons
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    runs = sorted({len(c.function) for c in comparisons})
    lines = [
        "Cold start: a fresh process, import + first POST /v1/jobs (JSON image_url), "
        f"median of {'/'.join(map(str, runs))} runs, from the child's first line to its answer",
        "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    for c in comparisons:
        lines.append(f"{c.cloud}:")
        lines.append(f"  function: {c.function_work}")
        lines.append(f"  floor:    {c.floor_work}")
        if c.same_calls:
            lines.append(f"  calls, each side: {calls_text(c.function_calls)}")
        else:
            lines.append(f"  calls, function:  {calls_text(c.function_calls)}")
            lines.append(f"  calls, floor:     {calls_text(c.floor_calls)}")
        tls = (
            f"{statistics.median(s.tls_contexts for s in c.function):.0f} / "
            f"{statistics.median(s.tls_contexts for s in c.floor):.0f}"
        )
        startup = "" if c.startup_ms is None else f"; interpreter start-up {c.startup_ms:.0f} ms"
        lines.append(f"  TLS contexts built, function / floor: {tls}{startup}")
        for side in ("function", "floor"):
            only = _packages(c.imports_only_by(side))
            lines.append(f"  modules only the {side} imported: {only}")
        counted = c.instructions
        if counted is None:
            lines.append("  instructions: not counted (valgrind is not installed)")
        else:
            lines.append(
                f"  instructions (callgrind, one run each, less the interpreter's start-up, "
                f"{counted.start_up / 1e6:.0f} M): function "
                f"{(counted.function - counted.start_up) / 1e6:.0f} M, floor "
                f"{(counted.floor - counted.start_up) / 1e6:.0f} M"
            )
        for what, key in (("ms", "ms"), ("cpu ms", "cpu_ms")):
            lines.append(
                f"  {what}, function: "
                + " ".join(f"{getattr(s, key):.0f}" for s in c.function)
                + " | floor: "
                + " ".join(f"{getattr(s, key):.0f}" for s in c.floor)
            )
    return lines


def main_for(prog: str, run: Callable[[int], Comparison]) -> None:
    """`python -m bench.cold_start_<cloud> [--runs N]`: one cloud's table."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--runs", type=int, default=RUNS)
    print("\n".join(table([run(parser.parse_args().runs)])))
