"""Resumable batch output: rows go to a journal as they come, the output file is written at the end.

One item (an image, or a video with all its clip rows) is one *unit*. Each `add` appends
its units to a journal beside the output, `.<name>.partial.jsonl`, one JSON list of a unit's
rows per line, in one write that is flushed and fsync'd: a crash loses at most the units of
the call in flight, as a torn last line, which the next run drops. A re-run with the same
output loads what is done from the output itself (.jsonl and .csv only: the other formats
cannot be read back) and from the journal, and skips it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from captioner.errors import FormatError
from captioner.writers import (
    READABLE_SUFFIXES,
    json_line,
    output_writer,
    read_jsonl,
    read_rows,
    write_rows,
)

if TYPE_CHECKING:  # typing.Self is Python 3.11+; the annotation is never evaluated
    from typing_extensions import Self

log = logging.getLogger(__name__)


class ResultWriter:
    """Collect the result rows of a batch run so that an interrupted run resumes where it stopped.

    `key` is the row key that names an item ("image" or "video"); `kind` is "images" or
    "videos". A unit with an "error" row counts as done, so a re-run does not retry bad files;
    with `retry_errors=True` it does, and the new rows take the old unit's place. Otherwise
    the first unit loaded for a key wins. The output (`close`, or leaving a `with` block
    normally) holds the old units first, then the new ones in the order they were added;
    leaving on an exception keeps the journal instead, for the next run.
    """

    def __init__(
        self, path: str | os.PathLike, key: str, kind: str, retry_errors: bool = False
    ) -> None:
        """Check that the output can hold `kind` rows, then load what earlier runs did."""
        self.path, self.key, self.kind = Path(path), key, kind
        output_writer(self.path, kind)  # a wrong suffix fails now, not after the whole run
        self.journal = self.path.with_name(f".{self.path.name}.partial.jsonl")
        self._units: dict[str, list[dict[str, Any]]] = {}  # key value -> rows, output order
        self._file: BinaryIO | None = None
        self._closed = False
        if self.path.suffix.lower() in READABLE_SUFFIXES and self.path.exists():
            self._load(read_rows(self.path), self.path)
        if self.journal.exists():
            _drop_torn_tail(self.journal)
            for unit in read_jsonl(self.journal):
                if not isinstance(unit, list):
                    raise FormatError(f"{self.journal}: not a captioner journal; delete it")
                self._load(unit, self.journal)
        failed = {k for k, unit in self._units.items() if _failed(unit)}
        self._retry = failed if retry_errors else set()  # loaded error units to do again

    @property
    def rows(self) -> list[dict[str, Any]]:
        """All rows so far, in output order."""
        return [row for unit in self._units.values() for row in unit]

    def done(self, key_value: Any) -> bool:
        """Whether the item named `key_value` needs no work in this run."""
        key_value = str(key_value)
        return key_value in self._units and key_value not in self._retry

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record finished rows (all rows of a video in one call) in the journal, fsync'd."""
        if self._closed:
            raise ValueError(f"{self.path}: the ResultWriter is closed")
        units = self._group(rows, "add()")
        again = [k for k in units if self.done(k)]
        if again:
            raise ValueError(f"already done: {again[:3]}; check done() before the work")
        if not units:
            return
        data = "".join(json_line(unit) for unit in units.values()).encode("utf-8")
        if self._file is None:
            self._file = self.journal.open("ab")
        self._file.write(data)  # one write per call: a crash tears at most its last line
        self._file.flush()
        os.fsync(self._file.fileno())
        self._units.update(units)
        self._retry -= units.keys()

    def close(self) -> None:
        """Write the output atomically from all rows, then delete the journal."""
        if self._closed:
            return
        self._close_journal()
        write_rows(self.path, self.rows, self.kind)
        self.journal.unlink(missing_ok=True)  # only now: a failed write keeps it
        self._closed = True

    def __enter__(self) -> Self:
        """Use as a context manager."""
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Write the output on success; keep the journal on an exception, to resume from."""
        if exc_type is None:
            self.close()
        else:
            self._close_journal()
            self._closed = True

    def _load(self, rows: Iterable[dict[str, Any]], source: Path) -> None:
        """Take in earlier units; a later unit replaces an error one (it is a retry)."""
        for key_value, unit in self._group(rows, source).items():
            if key_value not in self._units or _failed(self._units[key_value]):
                self._units[key_value] = unit

    def _group(self, rows: Iterable[Any], source: Any) -> dict[str, list[dict[str, Any]]]:
        """Rows grouped into units by key value: all rows of a video, the first row of an image."""
        units: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if not isinstance(row, dict) or self.key not in row:
                raise FormatError(
                    f"{source}: a row without {self.key!r}; is it the output of another "
                    f"command? Choose another output path"
                )
            unit = units.setdefault(str(row[self.key]), [])
            if self.kind == "videos" or not unit:
                unit.append(row)
        return units

    def _close_journal(self) -> None:
        """Close the journal file if it is open."""
        if self._file is not None:
            self._file.close()
            self._file = None


def _failed(unit: list[dict[str, Any]]) -> bool:
    """Whether a unit records an error."""
    return any("error" in row for row in unit)


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left without its newline by a crash, so that appends start clean."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
        log.warning("%s: dropped a torn last line; that item will be done again", path)


class MemoryWriter:
    """A ResultWriter's stand-in when there is no output file: keeps the rows in memory."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def done(self, _key_value: str) -> bool:
        """Nothing is done before a run without an output file."""
        return False

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Keep ``rows``."""
        self.rows.extend(rows)


def result_writer(path: Path | None, key: str, kind: str) -> ResultWriter | MemoryWriter:
    """A resumable ResultWriter for ``path``, or a MemoryWriter when there is no path."""
    return ResultWriter(path, key, kind) if path is not None else MemoryWriter()
