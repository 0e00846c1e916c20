"""File-system helpers shared by every layer: the cache folder, atomic (and durable) writes,
strict JSON text, text and JSON reading with one-line errors, content hashes."""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from captioner.errors import CaptionerError, FormatError

CACHE_ENV = "CAPTIONER_CACHE"


def cache_dir() -> Path:
    """The user cache folder (``$CAPTIONER_CACHE`` or ``~/.cache/captioner``), created if needed."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "captioner"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: Path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file is fsync'd before the rename and its folder after, so once this returns the new
    file is on disk whole, even through a machine crash (a rename alone can reach the disk
    before the data it names, leaving an empty file). ``suffix`` lets writers that insist on
    an extension (Keras' ``.weights.h5``) have it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    if suffix:
        tmp_path.unlink()
        tmp_path = tmp_path.with_name(tmp_path.name[: -len(".tmp")])
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o644)  # mkstemp makes it private; outputs are ordinary files
        fd = os.open(tmp_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_path, path)
        fsync_folder(path.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def fsync_folder(folder: Path) -> None:
    """Make the names created, renamed or removed in ``folder`` survive a machine crash."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8, see :func:`printable`)."""
    atomic_write_bytes(path, printable(text).encode("utf-8"))


def printable(text: str) -> str:
    """Text that can always be printed or written as UTF-8.

    A file name that is not valid UTF-8 (``caf\\xe9.jpg`` from an old Latin-1 disk) reaches
    Python with surrogate escapes, which no UTF-8 file accepts; its stray bytes are shown as
    ``\\xe9`` instead. Valid text comes back unchanged.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no file name produced
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def json_text(value: Any, indent: int | None = 1) -> str:
    """Strict JSON of ``value``, non-ASCII kept: a NaN or infinite float becomes null.

    Python's json writes ``NaN`` and ``Infinity``, which are not JSON (other readers refuse
    them); a card's missing number (no dev loss in a self-critical epoch) is null instead.
    """
    return json.dumps(finite(value), indent=indent, ensure_ascii=False, allow_nan=False)


def finite(value: Any) -> Any:
    """``value`` with every non-finite float inside it replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def read_text(path: Path, error: type[CaptionerError] = FormatError) -> str:
    """Read a whole UTF-8 text file, turning every way it can fail into one ``error`` line."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")  # -sig: drop a BOM left by spreadsheets
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, expected a file") from None
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text ({err})") from None
    except OSError as err:
        raise error(f"{path}: cannot be read ({err.strerror})") from None


def read_json(path: Path, error: type[CaptionerError] = FormatError) -> Any:
    """Parse a JSON file; a missing, unreadable or invalid file raises one ``error`` line."""
    try:
        return json.loads(read_text(path, error))
    except json.JSONDecodeError as err:
        raise error(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
