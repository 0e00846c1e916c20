"""File-system helpers shared by every layer: the cache folder, atomic writes, content hashes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

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

    ``suffix`` lets writers that insist on an extension (Keras' ``.weights.h5``) have it.
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
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def file_digest(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
