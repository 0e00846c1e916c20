"""Tests for captioner.outputs.ResultWriter: interrupted batch runs resume, finished ones redo nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from captioner.errors import FormatError
from captioner.outputs import ResultWriter
from captioner.writers import read_rows

ITEMS = [f"img/{i:03d}.jpg" for i in range(5)]


class Crash(Exception):
    """Stands in for whatever stops a run half way (a bad GPU, Ctrl-C, a kill)."""


def caption(image: str) -> dict:
    if image.endswith("003.jpg"):
        return {"image": image, "error": "truncated file"}
    return {"image": image, "caption": f"a photo of {image}", "score": -0.5}


def run(path: Path, items=ITEMS, crash_after: int | None = None, **options) -> list[str]:
    """The loop a batch command runs; returns the items it worked on."""
    worked = []
    with ResultWriter(path, "image", "images", **options) as writer:
        for image in items:
            if writer.done(image):
                continue
            if len(worked) == crash_after:
                raise Crash(image)
            worked.append(image)
            writer.add([caption(image)])
    return worked


def journal(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial.jsonl")


def final_images(path: Path) -> list:
    if path.suffix == ".json":
        return [r["image_id"] for r in json.loads(path.read_text(encoding="utf-8"))]
    return [row["image"] for row in read_rows(path)]


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.json"])
def test_interrupted_run_resumes_and_each_item_is_written_once(tmp_path, name) -> None:
    path = tmp_path / name
    with pytest.raises(Crash):
        run(path, crash_after=2)
    assert not path.exists() and journal(path).exists()
    assert run(path) == ITEMS[2:]
    written = final_images(path)
    if name == "out.json":  # COCO results: error rows left out, ids from the file stems
        assert written == [0, 1, 2, 4]
    else:
        assert written == ITEMS and read_rows(path)[3] == caption(ITEMS[3])
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no journal, no temp files


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv"])
def test_finished_run_rerun_does_nothing_and_rewrites_the_same(tmp_path, name) -> None:
    path = tmp_path / name
    assert run(path) == ITEMS
    before = path.read_bytes()
    assert run(path) == []
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_only_the_journal_counts_for_formats_that_cannot_be_read_back(tmp_path) -> None:
    path = tmp_path / "results.json"
    run(path)
    assert run(path) == ITEMS  # documented: COCO results lose rows, so a finished run is redone


def test_new_items_come_after_old_ones(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    run(path, ITEMS[2:])
    assert run(path, ITEMS) == ITEMS[:2]
    assert final_images(path) == ITEMS[2:] + ITEMS[:2]


def test_torn_last_journal_line_is_ignored(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    lines = [json.dumps([caption(image)]) + "\n" for image in ITEMS[:2]]
    journal(path).write_text("".join(lines) + '[{"image": "img/002.jpg", "capt', encoding="utf-8")
    writer = ResultWriter(path, "image", "images")
    assert [writer.done(image) for image in ITEMS] == [True, True, False, False, False]
    writer.close()
    assert run(path) == ITEMS[2:]
    assert Counter(final_images(path)) == Counter(ITEMS)


def test_crash_between_output_and_journal_removal_gives_no_duplicates(tmp_path) -> None:
    path = tmp_path / "out.csv"
    run(path)
    journal(path).write_text("".join(json.dumps([caption(i)]) + "\n" for i in ITEMS), "utf-8")
    assert run(path) == []
    assert final_images(path) == ITEMS


def test_errors_count_as_done_unless_retried(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    run(path)
    assert run(path) == []
    writer = ResultWriter(path, "image", "images", retry_errors=True)
    assert [image for image in ITEMS if not writer.done(image)] == [ITEMS[3]]
    writer.add([{"image": ITEMS[3], "caption": "fixed"}])
    writer.close()
    assert read_rows(path)[3] == {"image": ITEMS[3], "caption": "fixed"}  # in its old place
    assert len(read_rows(path)) == 5


def test_retry_interrupted_keeps_the_retried_row(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    run(path)
    with pytest.raises(Crash), ResultWriter(path, "image", "images", retry_errors=True) as writer:
        writer.add([{"image": ITEMS[3], "caption": "fixed"}])
        raise Crash
    assert ResultWriter(path, "image", "images").rows[3] == {"image": ITEMS[3], "caption": "fixed"}


def test_adding_a_done_item_is_a_mistake(tmp_path) -> None:
    with ResultWriter(tmp_path / "out.jsonl", "image", "images") as writer:
        writer.add([caption(ITEMS[0])])
        with pytest.raises(ValueError, match="already done"):
            writer.add([caption(ITEMS[0])])


def test_wrong_output_fails_before_any_work(tmp_path) -> None:
    with pytest.raises(FormatError, match=r"\.vtt and \.srt for videos"):
        ResultWriter(tmp_path / "out.vtt", "image", "images")
    other = tmp_path / "notes.csv"
    other.write_text("name,age\nbob,3\n", encoding="utf-8")
    with pytest.raises(FormatError, match="not a results CSV"):
        ResultWriter(other, "image", "images")
    assert other.read_text(encoding="utf-8") == "name,age\nbob,3\n"


def clips(video: str, n: int) -> list[dict]:
    return [
        {
            "video": video,
            "clip": i,
            "start": 2.0 * i,
            "end": 2.0 * i + 2,
            "caption": f"{video} {i}",
            "tags": [{"tag": "dog", "score": 0.75}],
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("name", ["tags.jsonl", "tags.csv", "tags.vtt", "tags.srt"])
def test_videos_resume_by_whole_video(tmp_path, name) -> None:
    path = tmp_path / name
    videos = {"a.mp4": 3, "b.mp4": 2, "c.mp4": 4}
    with pytest.raises(Crash), ResultWriter(path, "video", "videos") as writer:
        writer.add(clips("a.mp4", 3))
        raise Crash
    # A crash in the middle of the write of b.mp4: half of its line is on disk.
    torn = json.dumps(clips("b.mp4", 2))
    journal(path).write_text(journal(path).read_text("utf-8") + torn[: len(torn) // 2], "utf-8")
    with ResultWriter(path, "video", "videos") as writer:
        assert [writer.done(v) for v in videos] == [True, False, False]
        for video, n in videos.items():
            if not writer.done(video):
                writer.add(clips(video, n))
    if path.suffix == ".vtt" or path.suffix == ".srt":
        text = path.read_text(encoding="utf-8")
        assert text.count("-->") == 9 and text.count("[a.mp4]") == 3
    else:
        assert read_rows(path) == clips("a.mp4", 3) + clips("b.mp4", 2) + clips("c.mp4", 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
