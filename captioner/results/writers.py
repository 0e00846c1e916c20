"""Result writers: the rows of a captioning or tagging run as JSONL, CSV, COCO results, WebVTT,
SRT, or an HTML page (a gallery of photos, a timeline of videos).

Also reads JSONL and CSV outputs back, so that a batch run can resume.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from captioner.errors import CaptionerError, FormatError
from captioner.files import atomic_write_text, printable, read_text
from captioner.results.cues import cue_text
from captioner.results.pages import write_page

log = logging.getLogger(__name__)

#
# Result rows are plain dicts of one of two families ("kinds"):
#   images: {"image", "caption", "score" (optional), "tags" (optional)} or {"image", "error"}
#   videos: {"video", "clip", "start", "end", "tags": [{"tag", "score"}], "caption"}
#           or {"video", "error"}
# JSONL keeps every key of a row; CSV keeps its fixed columns; COCO results, WebVTT and SRT
# keep what their format can say, and an .html page shows them, so only .jsonl and .csv can be
# read back (to resume).

KINDS = {"images": "image", "videos": "video"}  # kind -> the key that names the item
OUTPUT_SUFFIXES = {
    "images": (".jsonl", ".csv", ".json", ".html"),
    "videos": (".jsonl", ".csv", ".vtt", ".srt", ".html"),
}
READABLE_SUFFIXES = (".jsonl", ".csv")
ONE_VIDEO_SUFFIXES = (".vtt", ".srt")  # a cue file is one video's timeline
CSV_COLUMNS = {
    "images": ("image", "caption", "score", "tags", "error"),
    "videos": ("video", "clip", "start", "end", "tags", "caption", "error"),
}
_OUTPUTS_HELP = (
    "supported: .jsonl, .csv and .html (a page) for images and videos, .json (COCO results) "
    "for images, .vtt and .srt for videos"
)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write rows as JSON Lines: one object a line, UTF-8, non-ASCII text kept as is."""
    atomic_write_text(Path(path), "".join(json_line(row) for row in rows))


def write_csv(
    path: str | os.PathLike, rows: Iterable[dict[str, Any]], kind: str | None = None
) -> None:
    """Write rows as CSV with the fixed columns of their kind (told by the rows when not given)."""
    rows = list(rows)
    kind = kind or ("videos" if rows and "video" in rows[0] else "images")
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS[kind], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(_csv_cells(row) for row in rows)
    atomic_write_text(Path(path), out.getvalue())


def coco_image_id(image: str | os.PathLike) -> int | str:
    """The COCO `image_id` an image would have alone: the trailing digits of its stem as an int,
    else its file name.

    `COCO_val2014_000000123456.jpg` -> 123456, `123.jpg` -> 123, `1000268_ab0e.jpg` ->
    "1000268_ab0e.jpg" (the stem does not end in digits).
    """
    name = Path(image).name
    digits = re.search(r"\d+$", Path(name).stem)
    return int(digits.group()) if digits else name


def write_coco_results(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write image captions as COCO results, `[{"image_id", "caption"}]`; error rows left out.

    Every id of one file has one type, as COCO tools expect: ints when every image's stem
    ends in digits (`coco_image_id`), else every image's file name. Two images with the same
    id would make the COCO scores wrong, so they raise FormatError instead.
    """
    rows = [row for row in rows if "error" not in row]
    ids = [coco_image_id(row["image"]) for row in rows]
    if not all(isinstance(i, int) for i in ids):
        ids = [Path(row["image"]).name for row in rows]
    results, seen = [], {}
    for row, image_id in zip(rows, ids):
        if image_id in seen:
            raise FormatError(
                f"{path}: {row['image']} and {seen[image_id]} both give COCO image_id "
                f"{image_id!r}; write .jsonl or .csv instead"
            )
        seen[image_id] = row["image"]
        results.append({"image_id": image_id, "caption": row["caption"]})
    atomic_write_text(Path(path), json_line(results))


def write_webvtt(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write video clip rows as WebVTT cues (`HH:MM:SS.mmm`); error rows are skipped."""
    atomic_write_text(Path(path), cue_text(rows, vtt=True))


def write_srt(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> None:
    """Write video clip rows as SRT cues (numbered from 1, `HH:MM:SS,mmm`); error rows skipped."""
    atomic_write_text(Path(path), cue_text(rows, vtt=False))


def output_writer(path: str | os.PathLike, kind: str,
                  link_images: bool = False) -> Callable[[Path, list[dict]], None]:
    """The writer for an output path's suffix, or FormatError when it cannot hold `kind` rows.

    ``link_images``: an .html gallery links the photos instead of embedding thumbnails.
    """
    path, suffix = Path(path), Path(path).suffix.lower()
    if kind not in KINDS:
        raise FormatError(f"unknown result kind {kind!r}; expected one of {', '.join(KINDS)}")
    if suffix not in OUTPUT_SUFFIXES[kind]:
        what = f"{suffix} files" if suffix else "files without a suffix"
        raise FormatError(f"{path}: cannot write {kind} results to {what}; {_OUTPUTS_HELP}")
    writers: dict[str, Callable[[Path, list[dict]], None]] = {
        ".jsonl": write_jsonl,
        ".csv": lambda p, rows: write_csv(p, rows, kind),
        ".json": write_coco_results,
        ".vtt": write_webvtt,
        ".srt": write_srt,
        ".html": lambda p, rows: write_page(p, rows, kind, link_images),
    }
    return writers[suffix]


def check_per_image(path: str | os.PathLike) -> None:
    """Refuse a per-image scores file (evaluate) that is not JSON Lines: its rows nest a dict
    per metric, which only .jsonl keeps (and reads back to resume)."""
    if Path(path).suffix.lower() != ".jsonl":
        raise CaptionerError(f"{path}: per-image scores are JSON Lines; name a .jsonl file")


def check_items(path: str | os.PathLike, items: Collection[str]) -> None:
    """Refuse, before any work, ``items`` (the files a run's rows name) that the output cannot
    hold together: a .vtt or .srt file is the timeline of one video, where the cues of two
    would overlap in time and play at once."""
    suffix = Path(path).suffix.lower()
    if suffix in ONE_VIDEO_SUFFIXES and len(items) > 1:
        named = ", ".join(sorted(items)[:3]) + (", ..." if len(items) > 3 else "")
        raise CaptionerError(
            f"{path}: a {suffix} file holds the cues of one video, and this run would put "
            f"{len(items)} in it ({named}); tag one video per .vtt/.srt file, or write .jsonl "
            "(or .csv) for many videos")


def write_rows(path: str | os.PathLike, rows: Iterable[dict[str, Any]], kind: str,
               link_images: bool = False) -> None:
    """Write `kind` rows ("images" or "videos") in the format told by the path's suffix."""
    writer = output_writer(path, kind, link_images)
    rows, key = list(rows), KINDS[kind]
    missing = next((i for i, row in enumerate(rows) if key not in row), None)
    if missing is not None:
        raise FormatError(f"{path}: row {missing} has no {key!r}; {kind} rows need one")
    writer(Path(path), rows)


def read_jsonl(path: str | os.PathLike) -> list[Any]:
    """Parse a JSON Lines file; a torn or invalid last line (a crash mid-write) is ignored."""
    path = Path(path)
    # split on "\n" only: splitlines() would also cut at U+2028 inside a (non-ASCII) string.
    lines = [(n, line) for n, line in enumerate(read_text(path).split("\n"), 1) if line.strip()]
    values = []
    for number, line in lines:
        try:
            values.append(json.loads(line))
        except json.JSONDecodeError as err:
            if number != lines[-1][0]:
                raise FormatError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            log.warning("%s:%d: ignored a torn last line (%s)", path, number, err.msg)
    return values


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read result rows back from a .jsonl or .csv output (to resume a batch run)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_results_csv(path)
    if suffix != ".jsonl":
        raise FormatError(
            f"{path}: only {' and '.join(READABLE_SUFFIXES)} results can be read back"
        )
    rows = read_jsonl(path)
    if not all(isinstance(row, dict) for row in rows):
        raise FormatError(f"{path}: holds JSON values that are not objects; not a results file")
    return rows


def json_line(value: Any) -> str:
    """One JSON Lines line (with its newline); paths and NumPy numbers become plain JSON.

    Text that UTF-8 cannot hold (a non-UTF-8 file name) is made printable first, inside the
    strings, so the line stays valid JSON.
    """
    line = json.dumps(value, ensure_ascii=False, default=_plain) + "\n"
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        line = json.dumps(_printable(value), ensure_ascii=False, default=_plain) + "\n"
    return line


def _printable(value: Any) -> Any:
    """``value`` with every string (keys too) passed through ``files.printable``."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, os.PathLike):
        return printable(os.fsdecode(value))
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    """`json.dumps` hook for the non-JSON types rows carry: paths, NumPy scalars and arrays."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _csv_cells(row: dict[str, Any]) -> dict[str, Any]:
    """A row as CSV cells: tags as `tag:0.91;tag:0.40`, None as an empty cell, text made inert."""
    cells = {name: value for name, value in row.items() if value is not None}
    if "tags" in cells:
        bad = [t["tag"] for t in cells["tags"] if ";" in str(t["tag"])]
        if bad:
            raise FormatError(f"tag {bad[0]!r} has a ';', which separates tags in CSV; use .jsonl")
        cells["tags"] = ";".join(f"{t['tag']}:{t['score']:.2f}" for t in cells["tags"])
    return {name: _inert(value) for name, value in cells.items()}


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such
# text cells get a leading ', as OWASP advises. A leading ' of the text's own is doubled, so
# that reading back (one ' dropped) gives the text exactly. Numbers are never text cells.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def _inert(value: Any) -> Any:
    """A text cell a spreadsheet shows as text; anything else as it is."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _uninert(cell: str) -> str:
    """Undo `_inert` on a cell read back."""
    return cell[1:] if cell.startswith("'") else cell


def _parse_tags(cell: str) -> list[dict[str, Any]]:
    """Undo `_csv_cells` on a tags cell; a tag name may itself hold ':'."""
    tags = []
    for item in filter(None, cell.split(";")):
        tag, _, score = item.rpartition(":")
        if not tag:
            raise ValueError(item)
        tags.append({"tag": tag, "score": float(score)})
    return tags


_CSV_PARSERS: dict[str, Callable[[str], Any]] = {
    "clip": int,
    "start": float,
    "end": float,
    "score": float,
    "tags": _parse_tags,
}


def _read_results_csv(path: Path) -> list[dict[str, Any]]:
    """Rows from a results CSV: empty cells dropped, numbers typed, tags parsed."""
    reader = csv.DictReader(io.StringIO(read_text(path)))
    columns = tuple(reader.fieldnames or ())
    kind = next((k for k, names in CSV_COLUMNS.items() if names == columns), None)
    if kind is None:
        headers = " or ".join(",".join(names) for names in CSV_COLUMNS.values())
        raise FormatError(f"{path}: not a results CSV (expected the header {headers})")
    rows = []
    for record in reader:
        where = f"{path}:{reader.line_num}"
        if None in record or None in record.values():
            raise FormatError(f"{where}: expected {len(columns)} fields")
        record = {name: _uninert(cell) for name, cell in record.items()}
        if record["error"]:
            rows.append({KINDS[kind]: record[KINDS[kind]], "error": record["error"]})
            continue
        row = {}
        for name, cell in record.items():
            if name == "error" or not (cell or name in ("caption", "tags")):
                continue
            try:
                row[name] = _CSV_PARSERS.get(name, str)(cell)
            except ValueError:
                raise FormatError(f"{where}: bad {name} value {cell!r}") from None
        rows.append(row)
    return rows
