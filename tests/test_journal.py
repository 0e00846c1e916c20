"""Tests for captioner.results.journal.ResultWriter: interrupted batch runs resume, finished ones redo nothing."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from captioner.errors import CaptionerError, FormatError
from captioner.results.journal import ResultWriter
from captioner.results.writers import read_rows

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
    return path.with_name(f".{path.name}.journal.jsonl")


def left_beside(path: Path) -> list[str]:
    """What a run leaves in the output's folder besides its settings (also its lock)."""
    return sorted(p.name for p in path.parent.iterdir() if p.name != f".{path.name}.settings.json")


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
    kept = [journal(path).name] if name == "out.json" else []  # COCO results keep their rows there
    assert left_beside(path) == sorted([name, *kept])  # no temp files


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv"])
def test_finished_run_rerun_does_nothing_and_rewrites_the_same(tmp_path, name) -> None:
    path = tmp_path / name
    assert run(path) == ITEMS
    before = path.read_bytes()
    assert run(path) == []
    assert path.read_bytes() == before
    assert left_beside(path) == [name]


def test_outputs_that_cannot_be_read_back_keep_their_journal(tmp_path) -> None:
    path = tmp_path / "results.json"
    run(path, ITEMS[:2])
    assert run(path) == ITEMS[2:]  # the journal remembers what COCO results cannot say
    assert final_images(path) == [0, 1, 2, 4]
    journal(path).unlink()  # without it, the rows of the file would be lost: refuse
    with pytest.raises(FormatError, match="cannot be read back"):
        run(path)
    assert run(path, overwrite=True) == ITEMS


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


def test_errors_count_as_done(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    run(path)
    assert run(path) == []
    assert read_rows(path)[3] == caption(ITEMS[3])


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
    kept = [journal(path).name] if path.suffix in (".vtt", ".srt") else []
    assert left_beside(path) == sorted([name, *kept])


def test_a_rerun_with_other_settings_is_refused_until_overwrite(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    run(path, ITEMS[:2], settings={"beam": 3, "model": "abc"})
    assert run(path, settings={"beam": 3, "model": "abc"}) == ITEMS[2:]  # same settings: resume
    with pytest.raises(CaptionerError, match="other settings.*beam 3 -> 5"):
        run(path, settings={"beam": 5, "model": "abc"})
    assert len(read_rows(path)) == 5  # nothing lost by the refusal
    assert run(path, settings={"beam": 5, "model": "abc"}, overwrite=True) == ITEMS
    with pytest.raises(CaptionerError, match="beam 5 -> 3"):
        run(path, settings={"beam": 3, "model": "abc"})


def test_a_second_run_into_the_same_output_is_refused_while_the_first_writes(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    with ResultWriter(path, "image", "images") as first:
        first.add([caption(ITEMS[0])])
        with pytest.raises(CaptionerError, match="another captioner run is writing"):
            ResultWriter(path, "image", "images")
    assert run(path) == ITEMS[1:]  # released when the first one finished


def test_the_output_folder_is_made_and_checked_before_any_work(tmp_path) -> None:
    path = tmp_path / "new" / "deeper" / "out.csv"
    assert run(path) == ITEMS and path.is_file()
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(CaptionerError, match="cannot write there"):
        ResultWriter(blocker / "out.jsonl", "image", "images")


def test_a_read_only_folder_fails_at_start(tmp_path, monkeypatch) -> None:
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)  # what a read-only mount answers (root too)
    with pytest.raises(CaptionerError, match="cannot write there.*Permission denied"):
        ResultWriter(tmp_path / "out.jsonl", "image", "images")


def test_json_output_never_overwrites_a_file_that_is_not_results(tmp_path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"precious": true}', encoding="utf-8")
    with pytest.raises(FormatError, match="is not a results file"):
        run(path)
    assert path.read_text(encoding="utf-8") == '{"precious": true}'


def test_one_image_spelled_relative_and_absolute_is_one_item(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "out.jsonl"
    run(path, ["photos/a.jpg"])
    assert run(path, [str(tmp_path / "photos" / "a.jpg"), "./photos/../photos/b.jpg"]) == [
        "./photos/../photos/b.jpg"]
    assert len(read_rows(path)) == 2


@pytest.mark.parametrize("name", ["out.jsonl", "out.csv", "out.json"])
def test_non_utf8_file_names_are_written_readably(tmp_path, name) -> None:
    import os

    from captioner.data.paths import display_path

    odd = os.fsdecode(b"photos/caf\xe9.jpg")  # as Python sees a Latin-1 name
    raw = os.fsdecode(b"photos/th\xe9.jpg")
    path = tmp_path / name
    with ResultWriter(path, "image", "images") as writer:
        writer.add([{"image": display_path(odd), "caption": "a cup", "score": -1.0}])
        writer.add([{"image": raw, "error": f"cannot decode {raw}"}])  # a raw name slips through
    with ResultWriter(path, "image", "images") as again:  # a re-run knows both, however spelled
        assert again.done(odd) and again.done(raw) and again.done(display_path(raw))
    text = path.read_text(encoding="utf-8")  # valid UTF-8
    if name == "out.json":
        assert json.loads(text)[0]["caption"] == "a cup"  # COCO results carry no file names
    else:
        assert [row["image"] for row in read_rows(path)] == ["photos/caf\\xe9.jpg", "photos/th\\xe9.jpg"]


def test_overwrite_keeps_the_old_output_until_the_new_one_replaces_it(tmp_path) -> None:
    path = tmp_path / "out.jsonl"
    run(path, settings={"beam": 1})
    before = path.read_bytes()
    with pytest.raises(Crash):
        run(path, settings={"beam": 2}, overwrite=True, crash_after=2)
    assert path.read_bytes() == before  # an interrupted overwrite loses nothing yet
    # Resumed with the new settings, the old rows are not taken for this run's.
    assert run(path, settings={"beam": 2}) == ITEMS[2:]
    assert len(read_rows(path)) == 5


def test_a_refused_or_empty_run_leaves_no_settings_that_block_the_next(tmp_path) -> None:
    path = tmp_path / "data.json"
    path.write_text('{"not": "results"}', encoding="utf-8")
    with pytest.raises(FormatError):
        run(path, settings={"beam": 1})
    path.unlink()
    assert run(path, settings={"beam": 3}) == ITEMS  # the refused run's settings did not stick


def test_the_same_file_twice_in_one_run_is_one_item(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with ResultWriter(tmp_path / "out.jsonl", "image", "images") as writer:
        writer.add([caption("a.jpg")])
        assert writer.done(str(tmp_path / "a.jpg"))


def _record_disk_calls(monkeypatch) -> list[tuple[str, ...]]:
    """Spy on fsync, replace and unlink: the calls in order, with the paths they touched."""
    import os

    events: list[tuple[str, ...]] = []
    real = {name: getattr(os, name) for name in ("fsync", "replace", "unlink")}

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real["fsync"](fd)

    def replace(src, dst, *args, **kwargs):
        events.append(("replace", os.fspath(src), os.fspath(dst)))
        real["replace"](src, dst, *args, **kwargs)

    def unlink(path, *args, **kwargs):
        events.append(("unlink", os.fspath(path)))
        real["unlink"](path, *args, **kwargs)

    for name, spy in (("fsync", fsync), ("replace", replace), ("unlink", unlink)):
        monkeypatch.setattr(os, name, spy)
    return events


def test_close_makes_output_and_settings_durable_before_the_journal_goes(tmp_path,
                                                                         monkeypatch) -> None:
    """After a machine crash the output is whole or the journal is still there; the settings
    file is replaced whole (never truncated in place), so it cannot be found empty."""
    import os

    path = tmp_path / "out.jsonl"
    run(path)  # an old output: overwriting it rewrites the settings on close (replacing -> no)
    settings = path.with_name(f".{path.name}.settings.json")
    events = _record_disk_calls(monkeypatch)
    writer = ResultWriter(path, "image", "images", settings={"beam": 2}, overwrite=True)
    os.link(settings, tmp_path / "settings-before")  # the settings file as it was written first
    writer.add([caption(image) for image in ITEMS])
    writer.close()
    folder = str(tmp_path)

    def where(*event) -> int:
        return events.index(event)

    (out_src,) = [e[1] for e in events if e[0] == "replace" and e[2] == str(path)]
    out_at = where("replace", out_src, str(path))
    gone = max(i for i, e in enumerate(events) if e == ("unlink", str(journal(path))))
    assert ("fsync", out_src) in events[:out_at]  # the new output's bytes reached the disk...
    assert ("fsync", folder) in events[out_at:gone]  # ...and its name, before the journal went
    writes = [i for i, e in enumerate(events) if e[0] == "replace" and e[2] == str(settings)]
    assert len(writes) == 2  # the record at the start (replacing) and at the end (replaced)
    for i in writes:
        assert ("fsync", events[i][1]) in events[:i] and ("fsync", folder) in events[i:]
    assert writes[-1] < gone
    before = json.loads((tmp_path / "settings-before").read_text())
    assert before["replacing"] is True  # the first record's file was replaced, not rewritten
    assert json.loads(settings.read_text()) == {"settings": {"beam": 2}, "replacing": False}
    assert read_rows(path) == [caption(image) for image in ITEMS]


def test_a_lock_on_a_settings_file_replaced_meanwhile_is_taken_again(tmp_path, monkeypatch) -> None:
    """The settings file (also the lock) is replaced when rewritten: a run that locked the old
    file between its open and its flock must lock the one now at the path."""
    import fcntl
    import os

    from captioner.results import journal as journal_module

    path = tmp_path / "out.jsonl"
    settings = path.with_name(f".{path.name}.settings.json")
    real_flock, calls = fcntl.flock, []

    def flock(fd, op):
        calls.append(fd)
        if len(calls) == 1:  # another run replaces the file between this run's open and flock
            other = tmp_path / "other"
            other.write_text("")
            os.replace(other, settings)
        return real_flock(fd, op)

    monkeypatch.setattr(journal_module.fcntl, "flock", flock)
    writer = ResultWriter(path, "image", "images")
    assert len(calls) == 2
    assert os.fstat(writer._lock.fileno()).st_ino == settings.stat().st_ino
    writer.close()
