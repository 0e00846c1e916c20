"""Subtitle cues of video clip rows: the text of WebVTT and SRT files (and of a page's track)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def cue_text(rows: Iterable[dict[str, Any]], vtt: bool = True) -> str:
    """Video clip rows as WebVTT (``vtt``) or SRT text; the two differ in header, numbering, ms
    separator and escaping. Error rows are skipped; several videos' cues name their video."""
    sep = "." if vtt else ","
    blocks = ["WEBVTT"] if vtt else []
    for number, (start, end, lines) in enumerate(_cues(rows), start=1):
        timing = f"{_timestamp(start, sep)} --> {_timestamp(end, sep)}"
        if vtt:  # &, < and > are markup in WebVTT cue text
            blocks.append("\n".join([timing] + [html.escape(line, quote=False) for line in lines]))
        else:
            blocks.append("\n".join([str(number), timing, *lines]))
    return "\n\n".join(blocks) + "\n" if blocks else ""


def _cues(rows: Iterable[dict[str, Any]]) -> list[tuple[int, int, list[str]]]:
    """(start ms, end ms, text lines) of the clip rows, sorted by (video, start); errors skipped."""
    clips = sorted(
        (row for row in rows if "error" not in row),
        key=lambda row: (str(row["video"]), float(row["start"])),
    )
    several = len({str(row["video"]) for row in clips}) > 1
    cues = []
    for row in clips:
        caption = _one_line(row.get("caption") or "")
        if several:
            caption = f"[{_one_line(Path(row['video']).name)}] {caption}".rstrip()
        tags = ", ".join(f"{_one_line(t['tag'])} ({t['score']:.2f})" for t in row.get("tags") or [])
        lines = [line for line in (caption, tags and f"tags: {tags}") if line]
        start = max(0, round(float(row["start"]) * 1000))
        end = max(round(float(row["end"]) * 1000), start + 1)  # players drop cues that end first
        if lines:  # a cue without text would read as the end of the cue
            cues.append((start, end, lines))
    return cues


def _one_line(text: Any) -> str:
    """Cue-safe text: whitespace (newlines too) collapsed, no `-->` (it marks a timing line)."""
    return re.sub(r"-{2,}>", "->", " ".join(str(text).split()))


def _timestamp(ms: int, sep: str) -> str:
    """`HH:MM:SS<sep>mmm` for a time in milliseconds."""
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{sep}{ms:03d}"
