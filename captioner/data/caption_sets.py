"""Caption files on disk: readers for the common data-set formats.

Every reader returns a `ReadResult`: the `CaptionRecord`s it could read, and a `problems`
list of `"<file>:<where>: <reason>"` strings for the entries it skipped (`<where>` is a
line number for text files, a JSON path such as `annotations[12]` for JSON files). A bad
entry never stops a read; the problems of one file are also logged once, as one summarised
warning. A file that is missing, or not in the format at all, raises `FormatError`. Image names
are joined to the image folder given with the file: a name that would leave it (absolute, or
with '..') is a problem too, never a file read from elsewhere.

Split names are the same in every reader: "train", "dev" and "test". Karpathy and COCO
files say "val" (mapped to "dev") and "restval" (extra training images, mapped to "train").
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captioner.errors import FormatError
from captioner.files import read_json, read_text

log = logging.getLogger(__name__)

FORMATS = ("flickr", "csv", "coco", "karpathy")
_SUPPORTED = f"supported: {', '.join(FORMATS)} (pass fmt= to choose one)"
_SPLIT_NAMES = {"train": "train", "val": "dev", "dev": "dev", "test": "test", "restval": "train"}
_FLICKR_SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "dev": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
# "<image>#<k>" then a tab (or spaces) then the caption.
_FLICKR_LINE = re.compile(r"^(?P<image>\S+)#(?P<k>\d+)(?:\s+(?P<caption>.*))?$")
# Flickr8k's known quirk: "2258277193_586949ec62.jpg.1#0" names "2258277193_586949ec62.jpg".
_IMAGE_COPY_SUFFIX = re.compile(r"^(?P<name>.+\.(?:jpe?g|png))\.\d+$", re.IGNORECASE)


@dataclass(frozen=True)
class CaptionRecord:
    """One caption of one image; `image` is the file name as the data set writes it."""

    image: str
    caption: str
    split: str | None = None


@dataclass
class ReadResult:
    """The records read from a caption file and the problems met on the way."""

    records: list[CaptionRecord] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[CaptionRecord]:
        """Iterate over the records."""
        return iter(self.records)

    def __len__(self) -> int:
        """Number of records."""
        return len(self.records)


# The dev split cut in two halves by a hash of the image name: every choice (early stopping,
# decoding settings) is made on "dev-select"; "dev-report" is only ever scored, so the scores
# a README reports were never tuned on.
DEV_PARTS = ("dev-select", "dev-report")


def dev_part(image: str) -> str:
    """Which half of the dev split an image falls in; stable across runs and machines."""
    return DEV_PARTS[int(hashlib.sha256(image.encode("utf-8")).hexdigest(), 16) % 2]


def in_splits(record: CaptionRecord, splits: Iterable[str | None]) -> bool:
    """Whether a record belongs to one of ``splits`` (names of DEV_PARTS pick a dev half)."""
    splits = tuple(splits)
    if record.split == "dev" and record.split not in splits:
        return dev_part(record.image) in splits
    return record.split in splits


def dev_when_unsplit(records: list[CaptionRecord]) -> list[CaptionRecord]:
    """The records as they are, or, when none names a split, all of them as dev: a set of
    photos kept for measurement then has the two halves of DEV_PARTS."""
    if any(r.split for r in records):
        return records
    return [CaptionRecord(r.image, r.caption, "dev") for r in records]


def outside_folder(image: str) -> str | None:
    """Why an image name would be read from outside the image folder it is joined to (it is
    absolute, or climbs out with '..'), or None when it stays inside."""
    path = Path(image)
    if path.is_absolute() or ".." in path.parts:
        return (f"image {image!r} is outside the image folder (an absolute name, or one with "
                "'..'); name images relative to the folder given with the caption file")
    return None


def group_by_image(records: Iterable[CaptionRecord]) -> dict[str, list[str]]:
    """Collect captions per image, images and captions in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for record in records:
        grouped.setdefault(record.image, []).append(record.caption)
    return grouped


# --- readers -------------------------------------------------------------------------------


def read_flickr_tokens(
    path: str | os.PathLike, split_files: dict[str, Path] | None = None
) -> ReadResult:
    """Read a Flickr8k/Flickr30k token file (`<image>#<k>\\t<caption>` lines)."""
    path = Path(path)
    result = ReadResult()
    splits = _read_split_lists(split_files or {}, result.problems)
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        match = _FLICKR_LINE.match(line.strip())
        if match is None:
            result.problems.append(f"{path}:{number}: expected '<image>#<k><tab><caption>'")
            continue
        caption = (match["caption"] or "").strip()
        if not caption:
            result.problems.append(f"{path}:{number}: empty caption")
            continue
        image = _strip_copy_suffix(match["image"])
        if _refused(image, f"{path}:{number}", result):
            continue
        result.records.append(CaptionRecord(image, caption, splits.get(image)))
    return _finish(path, result)


def find_flickr_splits(token_path: str | os.PathLike) -> dict[str, Path]:
    """Find the standard Flickr8k split lists next to a token file (only those that exist)."""
    folder = Path(token_path).parent
    found = {split: folder / name for split, name in _FLICKR_SPLIT_FILES.items()}
    return {split: p for split, p in found.items() if p.is_file()}


def read_captions_csv(path: str | os.PathLike) -> ReadResult:
    """Read a CSV with an `image,caption` header (Kaggle `captions.txt`) and maybe `split`."""
    path = Path(path)
    result = ReadResult()
    rows = csv.reader(read_text(path).splitlines(keepends=True))
    header = [name.strip().lower() for name in next(rows, [])]
    if "image" not in header or "caption" not in header:
        raise FormatError(f"{path}: expected a CSV header with 'image' and 'caption' columns")
    image_col, caption_col = header.index("image"), header.index("caption")
    split_col = header.index("split") if "split" in header else None
    only_image_caption = header == ["image", "caption"]
    start = rows.line_num + 1
    for row in rows:
        where, start = f"{path}:{start}", rows.line_num + 1  # a quoted caption may span lines
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header) and only_image_caption:
            # Kaggle's Flickr file has unquoted captions with commas: the rest is the caption.
            row = [row[0], ",".join(row[1:])]
        if len(row) != len(header):
            result.problems.append(f"{where}: expected {len(header)} fields, got {len(row)}")
            continue
        image, caption = row[image_col].strip(), row[caption_col].strip()
        if not image or not caption:
            result.problems.append(f"{where}: empty {'image' if not image else 'caption'}")
            continue
        if _refused(image, where, result):
            continue
        split = None
        if split_col is not None and row[split_col].strip():
            split = _split_name(row[split_col], where, result.problems)
        result.records.append(CaptionRecord(image, caption, split))
    return _finish(path, result)


def read_coco(path: str | os.PathLike) -> ReadResult:
    """Read a COCO captions JSON (`images` with id and file_name, `annotations`)."""
    path = Path(path)
    return _finish(path, _coco_records(path, read_json(path)))


def read_karpathy(path: str | os.PathLike) -> ReadResult:
    """Read a Karpathy split JSON (`images[]` with filename, split and sentences)."""
    path = Path(path)
    return _finish(path, _karpathy_records(path, read_json(path)))


def read_captions(path: str | os.PathLike, fmt: str | None = None) -> ReadResult:
    """Read a caption file in any supported format, told by `fmt` or found from the file."""
    path = Path(path)
    if fmt is None and path.suffix.lower() == ".json":
        data = read_json(path)  # parsed once, here, for both detection and reading
        if _json_format(path, data) == "coco":
            return _finish(path, _coco_records(path, data))
        return _finish(path, _karpathy_records(path, data))
    if fmt is None:
        fmt = _detect_text_format(path)
    readers: dict[str, Callable[[Path], ReadResult]] = {
        # The standard split lists, when they lie beside the token file, fill in the split.
        "flickr": lambda p: read_flickr_tokens(p, find_flickr_splits(p)),
        "csv": read_captions_csv,
        "coco": read_coco,
        "karpathy": read_karpathy,
    }
    if fmt not in readers:
        raise FormatError(f"unknown caption format {fmt!r}; {_SUPPORTED}")
    return readers[fmt](path)


# --- helpers -------------------------------------------------------------------------------


def _json_format(path: Path, data: Any) -> str:
    """Tell COCO (`annotations`) from Karpathy (`images[].sentences`) JSON."""
    if isinstance(data, dict) and "annotations" in data:
        return "coco"
    images = data.get("images") if isinstance(data, dict) else None
    if (
        isinstance(images, list)
        and images
        and isinstance(images[0], dict)
        and ("sentences" in images[0])
    ):
        return "karpathy"
    raise FormatError(f"{path}: a JSON file of no known caption format; {_SUPPORTED}")


def _detect_text_format(path: Path) -> str:
    """Tell CSV from Flickr tokens by the first non-blank line."""
    first = next((line.strip() for line in read_text(path).splitlines() if line.strip()), "")
    header = [name.strip().lower() for name in next(csv.reader([first]), [])]
    if "image" in header and "caption" in header:
        return "csv"
    if path.suffix.lower() == ".csv":
        raise FormatError(f"{path}: a CSV file without an 'image,caption' header; {_SUPPORTED}")
    if _FLICKR_LINE.match(first):
        return "flickr"
    raise FormatError(f"{path}: cannot tell the caption format; {_SUPPORTED}")


def _read_split_lists(split_files: dict[str, Path], problems: list[str]) -> dict[str, str]:
    """Map image name -> split from Flickr split lists (one image name per line)."""
    splits: dict[str, str] = {}
    for split, list_path in split_files.items():
        list_path = Path(list_path)
        for number, line in enumerate(read_text(list_path).splitlines(), start=1):
            image = line.strip()
            if not image:
                continue
            if splits.setdefault(image, split) != split:
                problems.append(f"{list_path}:{number}: {image} is also in split {splits[image]!r}")
    return splits


def _refused(image: str, where: str, result: ReadResult) -> bool:
    """Record a problem and say True when an image name leaves the image folder."""
    reason = outside_folder(image)
    if reason:
        result.problems.append(f"{where}: {reason}")
    return reason is not None


def _strip_copy_suffix(image: str) -> str:
    """Undo the `.jpg.1` quirk of one Flickr8k line."""
    match = _IMAGE_COPY_SUFFIX.match(image)
    return match["name"] if match else image


def _split_name(value: Any, where: str, problems: list[str]) -> str | None:
    """Map a split value onto train/dev/test, recording a problem for an unknown one."""
    name = _SPLIT_NAMES.get(str(value).strip().lower())
    if name is None:
        problems.append(f"{where}: unknown split {value!r} (known: {', '.join(_SPLIT_NAMES)})")
    return name


def _coco_records(path: Path, data: Any) -> ReadResult:
    """Records from parsed COCO captions JSON; split only from an image's own `split` key."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise FormatError(f"{path}: a COCO captions file needs 'images' and 'annotations' lists")
    result = ReadResult()
    images: dict[Any, tuple[str, str | None]] = {}
    refused = set()  # ids of images already reported: their captions go without a word more
    for i, image in enumerate(data["images"]):
        where = f"{path}:images[{i}]"
        if not isinstance(image, dict) or "id" not in image or not image.get("file_name"):
            result.problems.append(f"{where}: needs 'id' and 'file_name'")
            continue
        if image["id"] in images:
            result.problems.append(f"{where}: duplicate image id {image['id']!r}")
            continue
        if _refused(str(image["file_name"]), where, result):
            refused.add(image["id"])
            continue
        split = _split_name(image["split"], where, result.problems) if "split" in image else None
        images[image["id"]] = (str(image["file_name"]), split)
    for i, note in enumerate(data["annotations"]):
        where = f"{path}:annotations[{i}]"
        if not isinstance(note, dict) or "image_id" not in note:
            result.problems.append(f"{where}: needs 'image_id' and 'caption'")
            continue
        caption = note.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            result.problems.append(f"{where}: missing or empty caption")
            continue
        if note["image_id"] in refused:
            continue
        if note["image_id"] not in images:
            result.problems.append(f"{where}: image_id {note['image_id']!r} is not in 'images'")
            continue
        name, split = images[note["image_id"]]
        result.records.append(CaptionRecord(name, caption.strip(), split))
    return result


def _karpathy_records(path: Path, data: Any) -> ReadResult:
    """Records from a parsed Karpathy split JSON; `filepath/filename` when filepath is given."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise FormatError(f"{path}: a Karpathy split file needs an 'images' list")
    result = ReadResult()
    for i, image in enumerate(data["images"]):
        where = f"{path}:images[{i}]"
        if not isinstance(image, dict) or not image.get("filename"):
            result.problems.append(f"{where}: needs 'filename'")
            continue
        if not isinstance(image.get("sentences"), list):
            result.problems.append(f"{where}: needs a 'sentences' list")
            continue
        # COCO images live in train2014/ and val2014/: the folder is part of the name.
        name = str(image["filename"])
        if image.get("filepath"):
            name = f"{image['filepath']}/{name}"
        if _refused(name, where, result):
            continue
        split = _split_name(image["split"], where, result.problems) if "split" in image else None
        for j, sentence in enumerate(image["sentences"]):
            caption = _karpathy_caption(sentence)
            if caption is None:
                result.problems.append(f"{where}.sentences[{j}]: no 'raw' text or 'tokens'")
                continue
            result.records.append(CaptionRecord(name, caption, split))
    return result


def _karpathy_caption(sentence: Any) -> str | None:
    """The raw text of a Karpathy sentence, else its tokens joined by spaces."""
    if not isinstance(sentence, dict):
        return None
    raw = sentence.get("raw")
    if isinstance(raw, str) and raw.strip():
        return raw.strip()
    tokens = sentence.get("tokens")
    if isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens):
        return " ".join(tokens)
    return None


def _finish(path: Path, result: ReadResult) -> ReadResult:
    """Log a one-line summary of the problems of one file and return the result."""
    if result.problems:
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        log.warning(
            "%s: %d problem(s), those entries were skipped; first: %s%s",
            path,
            len(result.problems),
            result.problems[0],
            more,
        )
    return result
