"""Video label files: clips with tags and/or captions, from the three common layouts.

- folder per tag: ``root/<tag>/<clip>.mp4`` (Kinetics, UCF101): one tag per clip;
- CSV: header ``clip,tags`` with tags separated by ``;`` (multi-label);
- MSVD / MLDS JSON: ``[{"caption": [...], "id": "clip.avi"}]``: captions, no tags.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from captioner.data.paths import VIDEO_EXTENSIONS, find_files
from captioner.errors import FormatError
from captioner.files import read_json, read_text


@dataclass(frozen=True)
class VideoRecord:
    """One clip file and what is known about it."""

    path: Path
    tags: tuple[str, ...] = ()
    captions: tuple[str, ...] = ()


def read_video_labels(source: Path, videos: Path | None = None) -> list[VideoRecord]:
    """Clips and labels from a folder-per-tag root, a CSV or an MLDS JSON file.

    For the files, clip names are looked up under ``videos`` (default: the file's folder).
    """
    source = Path(source)
    if source.is_dir():
        return _folders(source)
    base = Path(videos) if videos else source.parent
    if source.suffix.lower() == ".csv":
        return _csv(source, base)
    if source.suffix.lower() == ".json":
        return _mlds(source, base)
    raise FormatError(f"{source}: not a video label source; give a folder of <tag>/<clip> "
                      "folders, a .csv with 'clip,tags' or an MSVD/MLDS .json")


def _folders(root: Path) -> list[VideoRecord]:
    records = [VideoRecord(path, tags=(folder.name,))
               for folder in sorted(p for p in root.iterdir() if p.is_dir())
               for path in find_files(folder, VIDEO_EXTENSIONS)[0]]
    if not records:
        raise FormatError(f"{root}: no <tag>/<clip> video files found")
    return records


def _csv(path: Path, base: Path) -> list[VideoRecord]:
    reader = csv.DictReader(io.StringIO(read_text(path)))
    if not reader.fieldnames or not {"clip", "tags"} <= set(reader.fieldnames):
        raise FormatError(f"{path}: expected a header 'clip,tags'")
    records = []
    for row in reader:
        tags = tuple(t.strip() for t in (row["tags"] or "").split(";") if t.strip())
        if row["clip"] and tags:
            records.append(VideoRecord(base / row["clip"], tags=tags))
    return records


def _mlds(path: Path, base: Path) -> list[VideoRecord]:
    data = read_json(path)
    if not isinstance(data, list):
        raise FormatError(f'{path}: expected a list of {{"caption": [...], "id": ...}} entries')
    records = []
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("caption"), list) and entry.get("id"):
            records.append(VideoRecord(base / str(entry["id"]), captions=tuple(map(str, entry["caption"]))))
    return records
