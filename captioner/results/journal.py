"""Resumable batch output: rows go to a journal as they come, the output file is written at the end.

One item (an image, or a video with all its clip rows) is one *unit*. Each `add` appends
its units to a journal beside the output, `.<name>.journal.jsonl`, one JSON list of a unit's
rows per line, in one write that is flushed and fsync'd: a crash loses at most the units of
the call in flight, as a torn last line, which the next run drops.

Before any work the writer makes sure the run can finish: the output's folder exists (it is
created) and is writable, an existing output is a results file, no other run is writing it,
and the settings of the run (model, beam, clip length...) are those the rows already there
were made with; other settings need `overwrite=True`, which starts the output afresh. The
settings stay beside the output in `.<name>.settings.json`, which is also the lock a run
holds (flock) while it writes. Items are keyed by their resolved path,
so `photo.jpg` and `/home/me/photo.jpg` are one item.

Through a machine crash: the settings file is replaced whole (written, fsync'd, renamed), and
before the first row reaches the journal; the output is fsync'd, file and folder, before the
journal goes. So the output is whole or its journal is still there, and rows on disk always
have their settings beside them.

A re-run loads what is done from the output itself (.jsonl and .csv can be read back) and
from the journal. Outputs that cannot be read back (.json, .vtt, .srt, .html) keep their journal
after the run, so that a later run adds to their rows instead of replacing them.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from captioner.errors import CaptionerError, FormatError
from captioner.files import atomic_path, fsync_folder, printable
from captioner.results.writers import (
    READABLE_SUFFIXES,
    check_items,
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
    "videos". A unit with an "error" row counts as done, so a re-run does not retry bad
    files. The output (`close`, or leaving a `with` block normally) holds the old units
    first, then the new ones in the order they were added; leaving on an exception keeps
    the journal instead, for the next run.
    """

    def __init__(self, path: str | os.PathLike, key: str, kind: str,
                 settings: dict[str, Any] | None = None, overwrite: bool = False,
                 link_images: bool = False) -> None:
        """Check that the run can write its output, lock it, then load what earlier runs did.

        ``link_images``: an .html gallery links the photos instead of embedding thumbnails; a
        page is rendered from all rows at the end, so this may change between runs.
        """
        self.path, self.key, self.kind = Path(path), key, kind
        self.link_images = link_images
        output_writer(self.path, kind)  # a wrong suffix fails now, not after the whole run
        self.journal = self.path.with_name(f".{self.path.name}.journal.jsonl")
        self.settings_path = self.path.with_name(f".{self.path.name}.settings.json")
        self._units: dict[str, list[dict[str, Any]]] = {}  # resolved key -> rows, output order
        self._file: BinaryIO | None = None
        self._closed = False
        _prepare_folder(self.path)
        if self.path.is_dir():
            raise FormatError(f"{self.path}: is a folder; name an output file")
        self._lock = _lock(self.settings_path, self.path)
        self._record: dict[str, Any] | None = None  # what the settings file will say, once written
        try:
            self._replacing = self._check_settings(settings or {}, overwrite)
            self._load_earlier()
        except BaseException:
            self._unlock()
            raise

    @property
    def rows(self) -> list[dict[str, Any]]:
        """All rows so far, in output order."""
        return [row for unit in self._units.values() for row in unit]

    def done(self, key_value: Any) -> bool:
        """Whether the item named `key_value` (a path, however spelled) needs no work in this run."""
        return _resolved(key_value) in self._units

    def expect(self, items: Iterable[Any]) -> None:
        """Refuse now, before any work, to add ``items`` (paths) that the output cannot hold
        with the items already in it (a .vtt or .srt file holds one video)."""
        kept = {k for k, unit in self._units.items() if any("error" not in r for r in unit)}
        check_items(self.path, kept | {_resolved(item) for item in items if not self.done(item)})

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        """Record finished rows (all rows of a video in one call) in the journal, fsync'd."""
        if self._closed:
            raise ValueError(f"{self.path}: the ResultWriter is closed")
        units = self._group(rows, "add()")
        again = [k for k in units if k in self._units]
        if again:
            raise ValueError(f"already done: {again[:3]}; check done() before the work")
        if not units:
            return
        self._write_record()
        data = "".join(json_line(unit) for unit in units.values()).encode("utf-8")
        new = self._file is None and not self.journal.exists()
        if self._file is None:
            self._file = self.journal.open("ab")
        self._file.write(data)  # one write per call: a crash tears at most its last line
        self._file.flush()
        os.fsync(self._file.fileno())
        if new:
            fsync_folder(self.journal.parent)  # the journal's name, too, survives a crash
        self._units.update(units)

    def close(self) -> None:
        """Write the output atomically from all rows; drop the journal if the output can replace it."""
        if self._closed:
            return
        try:
            self._close_journal()
            self._write_record()
            write_rows(self.path, self.rows, self.kind, self.link_images)
            self._write_record(replacing=False)  # the output on disk is this run's now
            if self.path.suffix.lower() in READABLE_SUFFIXES:
                self.journal.unlink(missing_ok=True)  # only now: a failed write keeps it
            self._closed = True
        finally:
            self._unlock()

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
            self._unlock()

    # --- start-up checks -----------------------------------------------------------------
    def _check_settings(self, settings: dict[str, Any], overwrite: bool) -> bool:
        """Refuse to mix rows made with other settings; returns whether the output on disk is
        an old one this run replaces (its rows are not this run's)."""
        plain = json.loads(json.dumps(settings, default=str))  # as they read back from disk
        self._lock.seek(0)
        text = self._lock.read().decode("utf-8", "replace")
        recorded = None
        if text.strip():
            try:
                recorded = json.loads(text)
                before, replacing = recorded["settings"], bool(recorded["replacing"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise FormatError(f"{self.settings_path}: not a settings file; delete it") from None
        if overwrite:
            # The old output stays until the new one replaces it; its journal goes now.
            self.journal.unlink(missing_ok=True)
            self._record = {"settings": plain, "replacing": self.path.exists()}
            self._write_record()
            return self._record["replacing"]
        if recorded is None:
            self._record = {"settings": plain, "replacing": False}  # written with the first row
            return False
        if before != plain:
            changed = [f"{k} {before.get(k)!r} -> {plain.get(k)!r}"
                       for k in sorted(set(before) | set(plain)) if before.get(k) != plain.get(k)]
            raise CaptionerError(
                f"{self.path}: was written with other settings ({'; '.join(changed)}); use "
                "--overwrite (overwrite=True) to start it afresh, or write to another file")
        self._record = recorded
        return replacing

    def _write_record(self, replacing: bool | None = None) -> None:
        """Replace the settings file (the lock file) if it does not say this yet.

        Never rewritten in place: a crash between truncating and writing would leave it empty,
        and an empty settings file lets a run with other settings add to the rows. The new
        file is locked before it takes the name, so the lock is held throughout.
        """
        wanted = dict(self._record, **({} if replacing is None else {"replacing": replacing}))
        self._lock.seek(0)
        if self._lock.read() == (data := json.dumps(wanted, indent=1, ensure_ascii=False).encode()):
            return
        handle = None
        try:
            with atomic_path(self.settings_path) as tmp:
                handle = tmp.open("r+b")
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file: free
                handle.write(data)
                handle.flush()
        except BaseException:
            if handle is not None:
                handle.close()
            raise
        self._lock.close()
        self._lock = handle
        self._record = wanted

    def _load_earlier(self) -> None:
        """Take in the rows of the output (when it can be read back) and of the journal."""
        if self.path.exists() and not self._replacing:
            if self.path.suffix.lower() in READABLE_SUFFIXES:
                self._load(read_rows(self.path), self.path)
            elif not self.journal.exists():
                what = _describe_foreign(self.path)
                raise FormatError(
                    f"{self.path}: already exists and {what}; its rows cannot be read back to "
                    "add to them: use --overwrite (overwrite=True) to replace it, or another name")
        if self.journal.exists():
            _drop_torn_tail(self.journal)
            for unit in read_jsonl(self.journal):
                if not isinstance(unit, list):
                    raise FormatError(f"{self.journal}: not a captioner journal; delete it")
                self._load(unit, self.journal)

    def _load(self, rows: Iterable[dict[str, Any]], source: Path) -> None:
        """Take in earlier units; the first one loaded for an item wins."""
        for key_value, unit in self._group(rows, source).items():
            self._units.setdefault(key_value, unit)

    def _group(self, rows: Iterable[Any], source: Any) -> dict[str, list[dict[str, Any]]]:
        """Rows grouped into units by resolved item: all rows of a video, the first of an image."""
        units: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            if not isinstance(row, dict) or self.key not in row:
                raise FormatError(
                    f"{source}: a row without {self.key!r}; is it the output of another "
                    f"command? Choose another output path"
                )
            unit = units.setdefault(_resolved(row[self.key]), [])
            if self.kind == "videos" or not unit:
                unit.append(row)
        return units

    def _close_journal(self) -> None:
        """Close the journal file if it is open."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor releases the lock
            self._lock = None


def _resolved(key_value: Any) -> str:
    """An item's key: its absolute path with links resolved, however it was spelled, as the
    printable text rows carry (so a non-UTF-8 name matches its row)."""
    path = os.fspath(key_value) if isinstance(key_value, os.PathLike) else str(key_value)
    return printable(os.path.realpath(path))


def _prepare_folder(path: Path) -> None:
    """Create the output's folder and prove it writable now, not after the whole run."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=path.parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise CaptionerError(f"{path}: cannot write there ({exc.strerror or exc}); choose an "
                             "output in a folder you can write to") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise CaptionerError(f"{path}: the file is read-only; choose another output")


def _lock(lock_path: Path, output: Path) -> BinaryIO:
    """Hold an exclusive lock on the output for this run; a second run is told so at once."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        handle = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise CaptionerError(f"{output}: another captioner run is writing this output; wait "
                                 "for it to finish, or choose another output") from None
        # The holder replaces the file when it rewrites the settings: the file opened here may
        # be the old one, released since; then lock the one at the path now.
        try:
            now = os.stat(lock_path)
        except FileNotFoundError:
            now = None
        held = os.fstat(handle.fileno())
        if now is not None and (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
            return handle
        handle.close()


def _describe_foreign(path: Path) -> str:
    """What an existing output that cannot be read back is: ours (results) or someone else's."""
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            ours = isinstance(data, list) and all(
                isinstance(r, dict) and set(r) == {"image_id", "caption"} for r in data)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            ours = False
        return "holds COCO results of another run" if ours else "is not a results file"
    if path.suffix.lower() == ".html":
        return "has no journal beside it to render the page from (another run's, or not ours)"
    return "was written by another run"


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

    def done(self, _key_value: Any) -> bool:
        """Nothing is done before a run without an output file."""
        return False

    def expect(self, _items: Iterable[Any]) -> None:
        """Memory holds any number of items."""

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Keep ``rows``."""
        self.rows.extend(rows)


def result_writer(path: Path | None, key: str, kind: str, settings: dict[str, Any] | None = None,
                  overwrite: bool = False, link_images: bool = False) -> ResultWriter | MemoryWriter:
    """A resumable ResultWriter for ``path``, or a MemoryWriter when there is no path."""
    if path is None:
        return MemoryWriter()
    return ResultWriter(path, key, kind, settings=settings, overwrite=overwrite,
                        link_images=link_images)
