"""Result pages: one self-contained HTML file that any browser opens offline.

A gallery for image rows (thumbnail, caption, score, tags, attention maps on a caption word,
the detector's boxes when the rows have them)
and a timeline for video rows (the video with its captions as a track, a strip of clips that
seek it). The style and behaviour come from ``page/page.css`` and ``page/page.js``, inlined:
nothing is fetched. ``gallery_html`` and ``timeline_html`` give the page's body alone, for a
notebook (``IPython.display.HTML``); ``write_page`` writes the whole document, atomically.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from captioner.errors import CaptionerError, FormatError
from captioner.files import atomic_write_text
from captioner.results.cues import cue_text
from captioner.data.images import as_rgb_array
from captioner.results.media import (
    clip_keyframes,
    photo_size,
    photo_thumbnail,
    picture_thumbnail,
    relative_url,
)

PAGE_KINDS = {"images": "gallery", "videos": "timeline"}


def gallery_html(rows: Iterable[dict[str, Any]], folder: Path | None = None,
                 link_images: bool = False, pictures: list | None = None) -> str:
    """The gallery of image rows as an HTML fragment with its own style and script.

    Thumbnails (at most 256 px) are embedded as JPEG data URIs, or with ``link_images`` the
    photos are linked relative to ``folder`` (the page's; None: the working folder).
    ``pictures``: what was captioned, one per row, for rows of in-memory images (PIL images or
    arrays; a row of a file may have None), whose rows name no file to show.
    """
    rows = list(rows)
    pictures = list(pictures) if pictures is not None else [None] * len(rows)
    if len(pictures) != len(rows):
        raise ValueError(f"{len(pictures)} pictures for {len(rows)} rows; give one per row")
    bad = sum("error" in row for row in rows)
    items = [_photo(n, row, folder, link_images, picture) for n, (row, picture)
             in enumerate(tqdm(list(zip(rows, pictures)), desc="gallery", unit="image", disable=None))]
    head = f"{len(rows)} photo{'' if len(rows) == 1 else 's'}" + (f", {bad} unreadable" if bad else "")
    sort = ('<label>sort <select class="cp-sort"><option value="given">as given</option>'
            '<option value="best">best score first</option>'
            '<option value="worst">worst score first</option></select></label>')
    return _page("gallery", head, sort, f'<div class="cp-grid">{"".join(items)}</div>')


def timeline_html(rows: Iterable[dict[str, Any]], folder: Path | None = None) -> str:
    """The timeline of video rows as an HTML fragment: per video, the video (linked relative to
    ``folder``, the page's; None: the working folder) with its captions as a track, and a strip
    of its clips, each with a keyframe, times, caption and tag bars; clicking one seeks there."""
    videos: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        videos.setdefault(str(row["video"]), []).append(row)
    sections = [_video(name, clips, folder)
                for name, clips in tqdm(videos.items(), desc="timeline", unit="video", disable=None)]
    bad = sum(any("error" in row for row in clips) for clips in videos.values())
    clips = sum("error" not in row for group in videos.values() for row in group)
    head = (f"{len(videos)} video{'' if len(videos) == 1 else 's'}, "
            f"{clips} clip{'' if clips == 1 else 's'}"
            + (f", {bad} unreadable" if bad else ""))
    return _page("timeline", head, "", "".join(sections))


def page_document(rows: Iterable[dict[str, Any]], kind: str, folder: Path | None = None,
                  link_images: bool = False) -> str:
    """A whole HTML document for ``kind`` rows ("images": a gallery; "videos": a timeline)."""
    if kind not in PAGE_KINDS:
        raise FormatError(f"no page for {kind!r} rows; expected one of {', '.join(PAGE_KINDS)}")
    body = (gallery_html(rows, folder, link_images) if kind == "images"
            else timeline_html(rows, folder))
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>captioner {PAGE_KINDS[kind]}</title></head>\n<body>\n{body}\n</body></html>\n')


def write_page(path: str | os.PathLike, rows: Iterable[dict[str, Any]], kind: str,
               link_images: bool = False) -> None:
    """Write the page of ``kind`` rows to ``path`` atomically, links relative to its folder."""
    path = Path(path)
    atomic_write_text(path, page_document(rows, kind, path.parent, link_images))


def _page(kind: str, head: str, controls: str, content: str) -> str:
    """The fragment around a page's content: style, title line, filter bar, script."""
    style = resources.files("captioner.results").joinpath("page/page.css").read_text("utf-8")
    script = resources.files("captioner.results").joinpath("page/page.js").read_text("utf-8")
    return (f'<div class="captioner-page cp-{kind}">\n<style>{style}</style>\n'
            f'<h1>captioner {kind}: {_text(head)}</h1>\n'
            '<div class="cp-bar"><input type="search" class="cp-filter" aria-label="filter" '
            'placeholder="filter by words">'
            f'{controls}<span class="cp-count"></span></div>\n'
            f'{content}\n<script>{script}</script>\n</div>')


def _photo(order: int, row: dict[str, Any], folder: Path | None, link_images: bool,
           picture=None) -> str:
    """One gallery item: the thumbnail, then the caption, score, tags and name (or the error)."""
    name = str(row["image"])
    words = _filter_text(row.get("caption"), row.get("tags"), Path(name).name, row.get("error"))
    attrs = {"class": "cp-item" + (" cp-error" if "error" in row else ""), "data-order": order,
             "data-text": words}
    if "error" in row:
        thumb = '<div class="cp-missing">unreadable</div>'
        details = f'<p class="cp-error-text">{_text(row["error"])}</p>'
    else:
        thumb = _thumbnail(name, folder, link_images, picture)
        if "score" in row:
            attrs["data-score"] = row["score"]
        if row.get("objects") and thumb.startswith("<img"):
            thumb += _boxes(row["objects"], name, picture)
        maps = _attention(row)
        if maps is not None and thumb.startswith("<img"):
            attrs["data-maps"], attrs["data-grid"] = maps
            thumb += f'<canvas class="cp-map" width="{maps[1]}" height="{maps[1]}"></canvas>'
        caption = " ".join(f'<span class="cp-word">{_text(word)}</span>'
                           for word in str(row.get("caption", "")).split())
        score = f'<p class="cp-score">score {row["score"]:.3f}</p>' if "score" in row else ""
        details = f'<p class="cp-caption">{caption}</p>{score}{_tags(row.get("tags"))}'
    return (f'<figure {_attrs(attrs)}><div class="cp-thumb">{thumb}</div><figcaption>{details}'
            f'<p class="cp-name" title="{_text(name)}">{_text(Path(name).name)}</p>'
            '</figcaption></figure>')


def _thumbnail(name: str, folder: Path | None, link_images: bool, picture=None) -> str:
    """The photo's <img> (embedded, or linked), or a note when it cannot be read any more."""
    if picture is not None:
        source = picture_thumbnail(picture)
    elif link_images:
        source = relative_url(name, folder)
    else:
        try:
            source = photo_thumbnail(name)
        except CaptionerError as exc:  # moved or changed since it was captioned
            return f'<div class="cp-missing" title="{_text(exc)}">no thumbnail</div>'
    return (f'<img {_attrs({"src": source, "alt": Path(name).name})} '
            'loading="lazy" decoding="async">')


def _boxes(objects: list[dict[str, Any]], name: str, picture=None) -> str:
    """The detector's boxes over the thumbnail: an SVG in the photo's own pixels, stretched over it."""
    try:
        width, height = (as_rgb_array(picture).shape[1::-1] if picture is not None else photo_size(name))
    except CaptionerError:
        return ""
    font = max(width, height) * 0.045
    shapes = []
    for box in objects:
        x0, y0, x1, y1 = (float(v) for v in box["box"])
        label = f'{box["label"]} {float(box["score"]):.2f}'
        shapes.append(f'<rect x="{x0:g}" y="{y0:g}" width="{x1 - x0:g}" height="{y1 - y0:g}">'
                      f'<title>{_text(label)}</title></rect>'
                      f'<text x="{x0 + font * 0.3:g}" y="{y0 + font:g}" font-size="{font:g}">'
                      f'{_text(box["label"])}</text>')
    return (f'<svg class="cp-boxes" viewBox="0 0 {width} {height}" preserveAspectRatio="none">'
            f'{"".join(shapes)}</svg>')


def _attention(row: dict[str, Any]) -> tuple[str, int] | None:
    """The row's attention maps as (JSON, grid side), when it has them over a square grid."""
    weights = row.get("attention")
    if not weights or len({len(word) for word in weights}) != 1:
        return None  # none, or ragged: nothing to draw
    if not np.isfinite(np.asarray(weights, dtype=float)).all():
        return None  # a NaN would stop the page's JSON.parse
    side = math.isqrt(len(weights[0]))
    if side * side != len(weights[0]):
        return None  # the row does not say the grid's shape; only square grids are drawn
    return json.dumps([[float(w) for w in word] for word in weights]), side


def _video(name: str, rows: list[dict[str, Any]], folder: Path | None) -> str:
    """One video's section: the player with its caption track and the strip of its clips."""
    title = f'<h2 title="{_text(name)}">{_text(Path(name).name)}</h2>'
    errors = [row["error"] for row in rows if "error" in row]
    if errors:
        item = _attrs({"class": "cp-item", "data-text": _filter_text(Path(name).name, errors[0])})
        return (f'<section class="cp-video cp-error">{title}<div {item}>'
                f'<p class="cp-error-text">{_text(errors[0])}</p></div></section>')
    rows = sorted(rows, key=lambda row: float(row["start"]))
    track = "data:text/vtt;base64," + base64.b64encode(cue_text(rows).encode("utf-8")).decode("ascii")
    player = (f'<video controls preload="metadata" {_attrs({"src": relative_url(name, folder)})}>'
              f'<track kind="captions" srclang="en" label="captioner" default '
              f'{_attrs({"src": track})}></video>')
    frames = clip_keyframes(name, [(float(r["start"]) + float(r["end"])) / 2 for r in rows])
    clips = "".join(_clip(row, frame, Path(name).name) for row, frame in zip(rows, frames))
    note = ('<p class="cp-unplayable" hidden>This browser cannot play this file (or it has '
            'moved); the clips below still show what it holds.</p>')
    return f'<section class="cp-video">{title}{player}{note}<ol class="cp-strip">{clips}</ol></section>'


def _clip(row: dict[str, Any], keyframe: str | None, file_name: str) -> str:
    """One clip of the strip: keyframe, start-end time, caption, tags as bars."""
    start, end = float(row["start"]), float(row["end"])
    attrs = {"class": "cp-item cp-clip", "tabindex": 0, "data-start": _decimal(start),
             "data-end": _decimal(end), "data-text": _filter_text(row.get("caption"), row.get("tags"),
                                                               file_name)}
    picture = (f'<img {_attrs({"src": keyframe, "alt": f"frame at {_clock(start)}"})} '
               'loading="lazy" decoding="async">' if keyframe else "")
    return (f'<li {_attrs(attrs)}>{picture}<p class="cp-time">{_clock(start)} – {_clock(end)}</p>'
            f'<p class="cp-caption">{_text(row.get("caption") or "")}</p>{_tags(row.get("tags"))}</li>')


def _tags(tags: list[dict[str, Any]] | None) -> str:
    """Tags as a list of name, bar (the score as its width) and score."""
    if not tags:
        return ""
    items = []
    for tag in tags:
        score = float(tag["score"])
        width = f"{100 * min(max(score, 0.0), 1.0):.0f}%"
        items.append(f'<li><span class="cp-tag">{_text(tag["tag"])}</span><span class="cp-meter">'
                     f'<span style="width: {width}"></span></span><span>{score:.2f}</span></li>')
    return f'<ul class="cp-tags">{"".join(items)}</ul>'


def _filter_text(*parts: Any) -> str:
    """The lower-case words the filter box searches: caption, tag names, file name, error."""
    words = []
    for part in parts:
        if isinstance(part, list):
            words += [str(tag["tag"]) for tag in part]
        elif part:
            words.append(str(part))
    return " ".join(" ".join(words).lower().split())


def _clock(seconds: float) -> str:
    """``m:ss.s`` (``h:mm:ss.s`` from an hour up)."""
    tenths = round(max(seconds, 0.0) * 10)  # rounded first, so 59.96 s reads 1:00.0
    minutes, tenths = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    rest = f"{tenths // 10:02d}.{tenths % 10}"
    return f"{hours}:{minutes:02d}:{rest}" if hours else f"{minutes}:{rest}"


def _decimal(seconds: float) -> str:
    """A time for a data attribute: to the millisecond rows carry, no trailing zeros."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _attrs(values: dict[str, Any]) -> str:
    """HTML attributes, every value escaped and double-quoted."""
    return " ".join(f'{key}="{html.escape(str(value), quote=True)}"' for key, value in values.items())


def _text(value: Any) -> str:
    """Text escaped for HTML content and attribute values."""
    return html.escape(str(value), quote=True)
