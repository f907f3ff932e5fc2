"""`ingest --out`: the results file, JSON Lines or CSV.

The file is checked and opened before any work starts (a bad `--out` fails at once,
not after the whole batch), written to a temporary file beside it and renamed into
place at the end, so an interrupted run never leaves half a results file.

CSV flattens each manifest into columns the way ImgGo's `?format=csv` does: dotted
paths (`lines.0.sku`), lists of plain values joined with `|`.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from imggo_cli.errors import UserError

SUFFIXES = (".jsonl", ".csv")
CSV_FIELDS = ("input", "status", "job_id", "simulated", "error_code", "error", "dedupe_of")


def csv_rows(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[dict[str, str]]]:
    """Our columns, then `manifest.<path>` for every manifest field any record has."""
    # ImgGo's own flattening, as the simulator models ImgGo's formats; imported here, as
    # only a CSV needs it and the simulator package costs ~0.1 s to import.
    from imggo_simulator.formats import flatten, plain

    rows: list[dict[str, str]] = []
    manifest_columns: dict[str, None] = {}  # insertion-ordered set
    for record in records:
        error = record.get("error") or {}
        row = {
            "input": record["input"],
            "status": record["status"],
            "job_id": record.get("job_id") or "",
            "simulated": plain(record.get("simulated", False)),
            "error_code": error.get("code", ""),
            "error": error.get("message", ""),
            "dedupe_of": record.get("dedupe_of") or "",
        }
        for key, value in flatten(record.get("manifest") or {}).items():
            column = f"manifest.{key}"
            manifest_columns[column] = None
            row[column] = value
        rows.append(row)
    return [*CSV_FIELDS, *manifest_columns], rows


class ResultsFile:
    """Where `--out` goes. Raises UserError at once when it cannot be written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():
            raise UserError(f"--out {path} is a directory; give a file name")
        if path.suffix.lower() not in SUFFIXES:
            raise UserError(
                f"--out {path}: the name must end in {' or '.join(SUFFIXES)} (JSON Lines or CSV)"
            )
        self._partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Created like any file (the umask decides its mode), opened until write().
            self._handle: IO[str] = self._partial.open("x", newline="", encoding="utf-8")
        except OSError as exc:
            raise UserError(f"--out {path}: cannot write there ({exc.strerror})") from exc

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        handle = self._handle
        try:
            if self.path.suffix.lower() == ".csv":
                fields, rows = csv_rows(records)
                writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\r\n")
                writer.writeheader()
                writer.writerows(rows)
            else:
                for record in records:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.close()
            os.replace(self._partial, self.path)
        except OSError as exc:
            self.discard()
            raise UserError(f"--out {self.path}: writing failed ({exc.strerror})") from exc

    def discard(self) -> None:
        self._handle.close()
        self._partial.unlink(missing_ok=True)
