"""Terminal output: a progress bar and tables with rich when it is installed, plain text
otherwise. Results files: JSON Lines or CSV."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


class Progress:
    def __init__(self, total: int, label: str) -> None:
        self.total, self.done = total, 0
        self._rich: Any = None
        try:
            from rich.progress import Progress as RichProgress

            if sys.stderr.isatty():
                self._rich = RichProgress(transient=False)
                self._task = self._rich.add_task(label, total=total)
                self._rich.start()
        except ImportError:
            self._rich = None
        self._label = label

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done)
        elif self.done == self.total or self.done % max(1, self.total // 10) == 0:
            print(f"{self._label}: {self.done}/{self.total}", file=sys.stderr)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(*headers, title=title or None)
        for row in rows:
            t.add_row(*(str(c) for c in row))
        Console(width=160).print(t)
    except ImportError:
        if title:
            print(title)
        widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
        print("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))


def write_results(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        fields = ["input", "job_id", "status", "error", "manifest"]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            for rec in records:
                writer.writerow(
                    {
                        "input": rec["input"],
                        "job_id": rec.get("job_id") or "",
                        "status": rec["status"],
                        "error": json.dumps(rec["error"]) if rec.get("error") else "",
                        "manifest": json.dumps(rec["manifest"]) if rec.get("manifest") else "",
                    }
                )
    else:
        with path.open("w") as handle:
            for rec in records:
                handle.write(json.dumps(rec) + "\n")
