"""Terminal output: tables that fit the terminal, and a progress line with done/total
and a note (for ingest: images sent, the plan's limit, the ETA). rich draws them on a
terminal when it is installed; plain text otherwise (and whenever stderr is not a
terminal, so logs and pipes get readable lines)."""

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
    """`label: done/total done (note)`, the note saying whatever the caller knows best
    (imggo_cli.schedule: images sent, the plan's limit, the ETA). Thread-safe. rich
    redraws it in place on a terminal; plain text prints it at most every
    PLAIN_PROGRESS_EVERY_S, and once more at the end."""

    def __init__(
        self,
        total: int,
        label: str,
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.label, self.note = total, 0, label, ""
        self._stream = stream or sys.stderr
        self._clock = clock
        self._last_line = clock()
        self._printed: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._rich: Any = None
        if self._stream.isatty():
            self._rich = _rich_progress(self._stream)
        if self._rich is not None:
            self._task = self._rich.add_task(label, total=total, note="")
            self._rich.start()

    def line(self) -> str:
        text = f"{self.label}: {self.done}/{self.total} done"
        return f"{text} ({self.note})" if self.note else text

    def update(self, done: int, note: str = "") -> None:
        with self._lock:
            self.done, self.note = done, note
            if self._rich is not None:
                self._rich.update(self._task, completed=done, note=note)
                return
            now = self._clock()
            finished = done >= self.total and self._printed != (done, note)
            if finished or now - self._last_line >= PLAIN_PROGRESS_EVERY_S:
                self._print(now)

    def close(self) -> None:
        with self._lock:
            if self._rich is not None:
                self._rich.stop()
                self._rich = None
            elif self._printed is None or self._printed[0] != self.done:
                self._print(self._clock())  # where a run that did not finish ended

    def _print(self, now: float) -> None:
        self._last_line, self._printed = now, (self.done, self.note)
        print(self.line(), file=self._stream, flush=True)


def _rich_progress(stream: TextIO) -> Any:
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    except ImportError:
        return None
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
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
