"""Tests for the result writers of captioner.data.caption_sets: each format written, then parsed back."""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path

import pytest

from captioner.errors import FormatError
from captioner.results.writers import (
    CSV_COLUMNS,
    coco_image_id,
    read_rows,
    write_coco_results,
    write_csv,
    write_jsonl,
    write_rows,
    write_srt,
    write_webvtt,
)

IMAGES = [
    {"image": "val/COCO_val2014_000000000042.jpg", "caption": 'a cat, on a "mat"', "score": -1.25,
     "tags": [{"tag": "cat", "score": 0.93}, {"tag": "mat", "score": 0.4}]},
    {"image": "dög.png", "caption": "ein Hund — schön\nzweite Zeile", "tags": []},
    {"image": "bad.jpg", "error": "not an image file"},
    {"image": "1000268201_693b08cb0e.jpg", "caption": "a girl", "score": -0.5,
     "tags": [{"tag": "girl", "score": 0.5}]},
]
VIDEOS = [
    {
        "video": "b/walk.mp4",
        "clip": 1,
        "start": 5.0,
        "end": 10.0,
        "caption": "a man walks",
        "tags": [{"tag": "walking", "score": 0.91}, {"tag": "street", "score": 0.4}],
    },
    {
        "video": "b/walk.mp4",
        "clip": 0,
        "start": 0.0,
        "end": 5.0,
        "caption": "a door --> opens\n\nwide",
        "tags": [{"tag": "door", "score": 0.5}],
    },
    {
        "video": "a/dog & cat.mp4",
        "clip": 0,
        "start": 3725.5,
        "end": 3725.5,
        "caption": "a <dog>",
        "tags": [],
    },
    {"video": "c/broken.mp4", "error": "cannot decode"},
]
VTT_TIMING = re.compile(
    r"^(\d{2}):([0-5]\d):([0-5]\d)\.(\d{3}) --> (\d{2}):([0-5]\d):([0-5]\d)\.(\d{3})$"
)
SRT_TIMING = re.compile(VTT_TIMING.pattern.replace(r"\.", ","))


def _ms(h: str, m: str, s: str, ms: str) -> int:
    return ((int(h) * 60 + int(m)) * 60 + int(s)) * 1000 + int(ms)


def parse_cues(text: str, srt: bool) -> list[tuple[int, int, list[str]]]:
    """A strict WebVTT/SRT parser: header, blank-line separated cues, numbering, valid timings."""
    assert "\r" not in text and text.endswith("\n") and not text.endswith("\n\n")
    blocks = text[:-1].split("\n\n")
    if not srt:
        assert blocks.pop(0) == "WEBVTT"
    cues = []
    for number, block in enumerate(blocks, start=1):
        lines = block.split("\n")
        if srt:
            assert lines.pop(0) == str(number)
        match = (SRT_TIMING if srt else VTT_TIMING).match(lines[0])
        assert match, lines[0]
        start, end = _ms(*match.groups()[:4]), _ms(*match.groups()[4:])
        text_lines = lines[1:]
        assert start < end and text_lines
        assert all(line.strip() and "-->" not in line for line in text_lines)
        if not srt:  # raw &, < and > would be markup
            assert not re.search(r"[<>]|&(?!amp;|lt;|gt;)", "".join(text_lines))
            text_lines = [html.unescape(line) for line in text_lines]
        cues.append((start, end, text_lines))
    return cues


EXPECTED_CUES = [
    (3725500, 3725501, ["[dog & cat.mp4] a <dog>"]),
    (0, 5000, ["[walk.mp4] a door -> opens wide", "tags: door (0.50)"]),
    (5000, 10000, ["[walk.mp4] a man walks", "tags: walking (0.91), street (0.40)"]),
]


def test_jsonl_one_object_a_line_utf8(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    write_jsonl(path, IMAGES + [{"image": Path("p.jpg"), "caption": "x"}])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == IMAGES + [{"image": "p.jpg", "caption": "x"}]
    assert "schön" in lines[1]  # ensure_ascii=False
    assert read_rows(path)[:4] == IMAGES


def test_csv_images_round_trip(tmp_path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, IMAGES)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        records = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS["images"]
    assert records[0] == {
        "image": IMAGES[0]["image"],
        "caption": 'a cat, on a "mat"',
        "score": "-1.25",
        "tags": "cat:0.93;mat:0.40",
        "error": "",
    }
    assert records[1]["caption"] == IMAGES[1]["caption"]  # newline quoted, kept
    assert records[2] == {
        "image": "bad.jpg",
        "caption": "",
        "score": "",
        "tags": "",
        "error": "not an image file",
    }
    assert read_rows(path) == IMAGES


def test_csv_videos_tags_and_round_trip(tmp_path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, VIDEOS)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        records = list(reader)
    assert tuple(reader.fieldnames) == CSV_COLUMNS["videos"]
    assert records[0]["tags"] == "walking:0.91;street:0.40"
    assert records[0]["clip"] == "1" and records[0]["start"] == "5.0"
    assert read_rows(path) == VIDEOS


def test_csv_text_cells_that_a_spreadsheet_would_run_are_quoted(tmp_path) -> None:
    """OWASP's CSV injection advice: a text cell starting with = + - @ (or tab, CR) gets a
    leading ' so a spreadsheet shows it as text; numbers stay numbers; reading back undoes it."""
    rows = [{"image": '=HYPERLINK("x")', "caption": "+1 dog", "score": -0.53,
             "tags": [{"tag": "-x", "score": 0.5}]},
            {"image": "@evil.jpg", "error": "\tnot an image file"},
            {"image": "'quoted'.jpg", "caption": "a dog", "score": 0.25, "tags": []}]
    path = tmp_path / "out.csv"
    write_csv(path, rows)
    with path.open(newline="", encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    assert records[0] == {"image": "'=HYPERLINK(\"x\")", "caption": "'+1 dog", "score": "-0.53",
                          "tags": "'-x:0.50", "error": ""}
    assert records[1]["image"] == "'@evil.jpg" and records[1]["error"] == "'\tnot an image file"
    assert records[2]["image"] == "''quoted'.jpg"  # a leading ' of its own survives the round trip
    assert read_rows(path) == rows


def test_csv_tag_with_separator_is_refused(tmp_path) -> None:
    row = dict(VIDEOS[0], tags=[{"tag": "a;b", "score": 0.5}])
    with pytest.raises(FormatError, match="';'"):
        write_csv(tmp_path / "out.csv", [row])


def test_read_rows_ignores_torn_last_line_only(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"image": "a.jpg", "caption": "x"}\n{"image": "b.jpg", "cap', encoding="utf-8")
    assert read_rows(path) == [{"image": "a.jpg", "caption": "x"}]
    path.write_text(
        '{"image": "a.jpg", "cap\n{"image": "b.jpg", "caption": "y"}\n', encoding="utf-8"
    )
    with pytest.raises(FormatError, match=":1: not valid JSON"):
        read_rows(path)


def test_read_rows_refuses_other_files(tmp_path) -> None:
    (tmp_path / "x.csv").write_text("image,caption\na.jpg,a dog\n", encoding="utf-8")
    with pytest.raises(FormatError, match="not a results CSV"):
        read_rows(tmp_path / "x.csv")
    with pytest.raises(FormatError, match="read back"):
        read_rows(tmp_path / "x.vtt")


@pytest.mark.parametrize(
    "image, expected",
    [
        ("val2014/COCO_val2014_000000123456.jpg", 123456),
        ("123.jpg", 123),
        ("1000268201_693b08cb0e.jpg", "1000268201_693b08cb0e.jpg"),
        ("photos/dog.png", "dog.png"),
    ],
)
def test_coco_image_id(image, expected) -> None:
    assert coco_image_id(image) == expected


def test_coco_results(tmp_path) -> None:
    path = tmp_path / "results.json"
    write_coco_results(path, IMAGES)
    results = json.loads(path.read_text(encoding="utf-8"))
    assert all(set(r) == {"image_id", "caption"} for r in results)
    # One id type per file: "dög.png" has no digits, so every id is the file name.
    assert [r["image_id"] for r in results] == [
        "COCO_val2014_000000000042.jpg", "dög.png", "1000268201_693b08cb0e.jpg"]
    numbered = [row for row in IMAGES if row["image"].endswith("42.jpg")]
    write_coco_results(path, numbered + [{"image": "x/7.png", "caption": "y"}])
    assert [r["image_id"] for r in json.loads(path.read_text(encoding="utf-8"))] == [42, 7]
    with pytest.raises(FormatError, match="both give COCO image_id 42"):
        write_coco_results(path, numbered + [{"image": "other/42.jpg", "caption": "x"}])


def test_webvtt(tmp_path) -> None:
    path = tmp_path / "out.vtt"
    write_webvtt(path, VIDEOS)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("WEBVTT\n\n")
    assert parse_cues(text, srt=False) == EXPECTED_CUES
    assert "&lt;dog&gt;" in text and "dog &amp; cat.mp4" in text


def test_srt(tmp_path) -> None:
    path = tmp_path / "out.srt"
    write_srt(path, VIDEOS)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("1\n01:02:05,500 --> 01:02:05,501\n")  # a/ sorts before b/
    assert "\n\n2\n00:00:00,000 --> 00:00:05,000\n" in text
    assert parse_cues(text, srt=True) == EXPECTED_CUES


def test_one_video_has_no_name_prefix(tmp_path) -> None:
    path = tmp_path / "out.vtt"
    write_webvtt(path, VIDEOS[:2])
    assert [cue[2][0] for cue in parse_cues(path.read_text(encoding="utf-8"), srt=False)] == [
        "a door -> opens wide",
        "a man walks",
    ]


@pytest.mark.parametrize(
    "name, kind, rows, message",
    [
        ("out.txt", "images", IMAGES, r"\.jsonl, \.csv and \.html \(a page\)"),
        ("out", "videos", VIDEOS, "without a suffix"),
        ("out.json", "videos", VIDEOS, r"\.json \(COCO results\) for images"),
        ("out.vtt", "images", IMAGES, r"\.vtt and \.srt for videos"),
        ("out.jsonl", "images", VIDEOS, "has no 'image'"),
        ("out.jsonl", "frames", IMAGES, "unknown result kind"),
    ],
)
def test_write_rows_refuses_wrong_suffix_or_family(tmp_path, name, kind, rows, message) -> None:
    with pytest.raises(FormatError, match=message):
        write_rows(tmp_path / name, rows, kind)
    assert list(tmp_path.iterdir()) == []


def test_write_rows_dispatch_leaves_no_temp_files(tmp_path) -> None:
    for name in ("a.jsonl", "a.csv", "a.JSON"):
        write_rows(tmp_path / name, IMAGES, "images")
    for name in ("v.jsonl", "v.csv", "v.vtt", "v.srt"):
        write_rows(tmp_path / name, VIDEOS, "videos")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.jsonl", "a.csv", "a.JSON", "v.jsonl", "v.csv", "v.vtt", "v.srt"]
    )
    first = json.loads((tmp_path / "a.JSON").read_text(encoding="utf-8"))[0]
    assert first["image_id"] == "COCO_val2014_000000000042.jpg"
    assert (tmp_path / "v.srt").read_text(encoding="utf-8").startswith("1\n")
