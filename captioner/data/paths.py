"""What a user names on the command line, turned into the media files to work on.

One scan serves images and videos alike. A bad name never stops a batch: a missing path, a
folder with nothing to work on or a sub-folder that cannot be read becomes a problem
``(path, reason)`` that the caller reports as an error row, and the scan goes on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from captioner.files import printable

# Extensions tried when scanning a folder; the content decides when the file is read.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")

Problem = tuple[Path, str]


def display_path(path: str | os.PathLike) -> str:
    """A path as text that can always be printed and written as UTF-8 (see ``files.printable``)."""
    return printable(os.fsdecode(path))


def path_from_display(text: str) -> Path:
    """The file a ``display_path`` text names: the text itself when that file exists, else the
    text with its ``\\xNN`` escapes turned back into the bytes of a non-UTF-8 name (only bytes
    from 0x80 up are escaped there, so a literal ``\\x41`` in a name stays as it is)."""
    path = Path(text)
    if "\\x" not in text or path.exists():
        return path
    raw = re.sub(rb"\\x([89a-f][0-9a-f])", lambda m: bytes([int(m[1], 16)]), text.encode("utf-8"))
    return Path(os.fsdecode(raw))


def listed(path: str | os.PathLike, extensions: tuple[str, ...]) -> bool:
    """Whether a file met in a folder (or matched by a glob) is one to work on: its suffix is
    one of ``extensions``, in any case. A file the user names on its own is taken as it is."""
    return Path(os.fsdecode(path)).suffix.lower() in extensions


def find_files(
    root: Path, extensions: tuple[str, ...], recursive: bool = False
) -> tuple[list[Path], list[Problem]]:
    """Files under ``root`` with one of ``extensions`` (case-insensitive), sorted; a file is itself.

    Returns the files and the problems met: ``root`` missing, a folder with no such file, a
    sub-folder that cannot be listed.
    """
    root = Path(root)
    if root.is_file():
        return [root], []
    if not root.is_dir():
        return [], [(root, "no such file or folder")]
    problems: list[Problem] = []

    def unreadable(err: OSError) -> None:
        problems.append((Path(err.filename or root), f"cannot list folder ({err.strerror})"))

    found = []
    for folder, subfolders, names in os.walk(root, onerror=unreadable):
        subfolders.sort()
        found += [Path(folder) / n for n in names if listed(n, extensions)]
        if not recursive:
            break
    found = sorted(p for p in found if p.is_file())
    if not found and not problems:
        kinds = "video" if extensions == VIDEO_EXTENSIONS else "image"
        deep = " (or its sub-folders)" if recursive else " (add --recursive to look deeper)"
        problems.append((root, f"folder holds no {kinds} files{'' if recursive else deep}"))
    return found, problems


def expand_paths(
    paths: Iterable[str | os.PathLike], extensions: tuple[str, ...], recursive: bool = False
) -> tuple[list[Path], list[Problem]]:
    """Files and folders given by a user, expanded to absolute file paths in order, plus problems.

    Absolute, so that a row names its file whatever folder a later run starts in; a file
    reached twice (``a.jpg`` and ``/home/me/a.jpg``, or through a link) comes once.
    """
    seen: dict[str, Path] = {}
    problems: list[Problem] = []
    for path in paths:
        files, more = find_files(Path(os.path.abspath(path)), extensions, recursive)
        problems += more
        for found in files:
            seen.setdefault(os.path.realpath(found), found)
    return list(seen.values()), problems
