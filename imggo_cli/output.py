"""Terminal output: tables that fit the terminal, and a progress line with done/total,
rate and ETA. rich draws them on a terminal when it is installed; plain text otherwise
(and whenever stderr is not a terminal, so logs and pipes get readable lines)."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

# A plain progress line at most this often (and always at the end).
PLAIN_PROGRESS_EVERY_S = 2.0


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Progress:
    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.label = total, 0, label
        self._stream = stream or sys.stderr
        self._clock = clock
        self._started = self._last_line = clock()
        self._lock = threading.Lock()
        self._rich: Any = None
        if self._stream.isatty():
            self._rich = _rich_progress(self._stream)
        if self._rich is not None:
            self._task = self._rich.add_task(label, total=total)
            self._rich.start()

    def line(self) -> str:
        """`label: done/total (rate/s, ETA t)`."""
        elapsed = self._clock() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self.label}: {self.done}/{self.total}"
        if self.done and rate > 0:
            eta = (self.total - self.done) / rate
            text += f" ({rate:.1f}/s, ETA {duration(eta)})"
        return text

    def advance(self, n: int = 1) -> None:
        """Thread-safe: a batch's workers report as they finish."""
        with self._lock:
            self.done += n
            if self._rich is not None:
                self._rich.update(self._task, completed=self.done)
                return
            now = self._clock()
            if self.done >= self.total or now - self._last_line >= PLAIN_PROGRESS_EVERY_S:
                self._last_line = now
                print(self.line(), file=self._stream, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None


def _rich_progress(stream: TextIO) -> Any:
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text
    except ImportError:
        return None

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            return Text(f"{task.speed:.1f}/s" if task.speed else "", style="progress.data.speed")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(file=stream),
        transient=False,
    )


def fit_widths(natural: Sequence[int], shrinkable: Sequence[bool], room: int) -> list[int]:
    """Column widths within `room`: fixed columns keep their natural width; shrinkable
    ones share what is left, narrow ones keeping theirs (water-filling), never under 3."""
    widths = list(natural)
    flexible = [i for i, s in enumerate(shrinkable) if s]
    left = room - sum(w for i, w in enumerate(natural) if not shrinkable[i])
    for count, i in enumerate(sorted(flexible, key=lambda i: natural[i])):
        share = left // (len(flexible) - count)
        widths[i] = max(3, min(natural[i], share))
        left -= widths[i]
    return widths


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    title: str = "",
    *,
    shrink: Sequence[str] = (),
) -> None:
    """A table as wide as the terminal at most. When it does not fit, the columns named
    in `shrink` are cut with an ellipsis and the others keep their width; cells never
    wrap, so a row stays one line."""
    cells = [[str(c) for c in row] for row in rows]
    natural = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    shrinkable = [h in shrink for h in headers]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = shutil.get_terminal_size().columns
        widths = fit_widths(natural, shrinkable, width - 2 * (len(headers) - 1))
        _plain_table(headers, cells, title, widths)
        return
    console = Console()
    # rich's frame: a bar before each column and after the last, a space either side.
    widths = fit_widths(natural, shrinkable, console.width - 3 * len(headers) - 1)
    t = Table(title=title or None, title_justify="left")
    for header, width in zip(headers, widths, strict=True):
        t.add_column(header, no_wrap=True, overflow="ellipsis", width=width)
    for row in cells:
        t.add_row(*row)
    console.print(t)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain_table(
    headers: Sequence[str], rows: list[list[str]], title: str, widths: list[int]
) -> None:
    if title:
        print(title)
    for row in [list(headers), *rows]:
        cut = (_cut(c, w).ljust(w) for c, w in zip(row, widths, strict=True))
        print("  ".join(cut).rstrip())
