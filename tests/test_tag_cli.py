"""`captioner tag` and `train-video` end to end, on videos the test writes."""

import json
import re

import numpy as np
import pytest
from test_cli import run_cli

from captioner.data.synthetic import shape_clip
from captioner.data.video import write_video
from captioner.data.video_labels import read_video_labels
from captioner.results.writers import read_rows
from captioner.video.config import TagOptions
from captioner.video.tagger import VideoTagger

VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"
SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"


def _seconds(match) -> float:
    h, m, s, ms = map(int, match)
    return h * 3600 + m * 60 + s + ms / 1000


def _cues(text: str, pattern: str) -> list[tuple[float, float, str]]:
    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            m = re.fullmatch(f"{pattern} --> {pattern}", line)
            if m:
                cues.append((_seconds(m.groups()[:4]), _seconds(m.groups()[4:]), "\n".join(lines[i + 1 :])))
    return cues


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A 9-second video: three 3-second scenes of moving shapes."""
    frames = []
    for motion, shape, colour in (("moving right", "circle", "red"), ("growing", "square", "blue"),
                                  ("moving left", "circle", "green")):
        frames += [np.kron(f, np.ones((2, 2, 1), np.uint8)) for f in shape_clip(motion, shape, colour, frames=24)]
    return write_video(tmp_path_factory.mktemp("movie") / "scenes.mp4", frames, fps=8.0)


def test_tag_writes_matching_jsonl_csv_vtt_srt(movie, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 definitely not a movie")
    outputs = {ext: tmp_path / f"tags.{ext}" for ext in ("jsonl", "csv", "vtt", "srt")}
    proc = run_cli("tag", movie, broken, "-o", outputs["jsonl"], "--clip-seconds", "3", "--top-k", "3")
    assert "3 clips, 1 unreadable" in proc.stdout
    tagger = VideoTagger.default()  # the same run through the API, once per other format
    for ext in ("csv", "vtt", "srt"):
        videos = [movie, broken] if ext == "csv" else [movie]  # a cue file holds one video
        tagger.tag(videos, TagOptions(clip_seconds=3, top_k=3), output=outputs[ext], progress=False)
    rows = [json.loads(x) for x in outputs["jsonl"].read_text().splitlines()]
    clips = [r for r in rows if "error" not in r]
    assert [(r["clip"], r["start"], r["end"]) for r in clips] == [(0, 0.0, 3.0), (1, 3.0, 6.0), (2, 6.0, 9.0)]
    assert all(len(r["tags"]) == 3 and r["caption"] for r in clips)
    assert any("error" in r and r["video"] == str(broken) for r in rows)
    csv_rows = [r for r in read_rows(outputs["csv"]) if "error" not in r]
    assert [r["caption"] for r in csv_rows] == [r["caption"] for r in clips]
    assert [[t["tag"] for t in r["tags"]] for r in csv_rows] == [[t["tag"] for t in r["tags"]] for r in clips]
    vtt = outputs["vtt"].read_text()
    assert vtt.startswith("WEBVTT\n\n")
    for cues in (_cues(vtt, VTT_TIME), _cues(outputs["srt"].read_text(), SRT_TIME)):
        assert [(s, e) for s, e, _ in cues] == [(r["start"], r["end"]) for r in clips]
        for (_, _, text), row in zip(cues, clips):
            assert row["caption"] in text and row["tags"][0]["tag"] in text
    assert outputs["srt"].read_text().startswith("1\n00:00:00,000 --> 00:00:03,000\n")


def test_tag_resumes_and_skips_done_videos(movie, tmp_path):
    out = tmp_path / "tags.jsonl"
    run_cli("tag", movie, "-o", out, "--clip-seconds", "4.5")
    first = out.read_text()
    proc = run_cli("tag", movie, "-o", out, "--clip-seconds", "4.5")
    assert out.read_text() == first and "2 clips" in proc.stdout


def test_tag_rejects_bad_options(movie):
    proc = run_cli("tag", movie, "--clip-seconds", "2", "--overlap", "3", check=False)
    assert proc.returncode == 2 and "overlap (3 s) must be shorter" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_video_from_folder_layout(tmp_path):
    root = tmp_path / "clips"
    rng = np.random.default_rng(0)
    for tag, motion in (("rightward", "moving right"), ("leftward", "moving left")):
        for i in range(6):
            colour = ("red", "green", "blue")[i % 3]
            frames = shape_clip(motion, "circle", colour, frames=8, jitter=1.0, rng=rng)
            write_video(root / tag / f"{tag}{i}.avi", frames, fps=8.0)
    records = read_video_labels(root)
    assert len(records) == 12 and {r.tags for r in records} == {("leftward",), ("rightward",)}
    out = tmp_path / "tagger"
    run_cli("train-video", "--labels", root, "--out", out, "--fps", "8", "--epochs", "60", "--units", "32")
    assert json.loads((out / "tags.json").read_text()) == ["leftward", "rightward"]
    test_clip = write_video(tmp_path / "test.avi", shape_clip("moving left", "circle", "red", frames=8), fps=8.0)
    rows = [json.loads(x) for x in run_cli("tag", test_clip, "--model", out, "-o", tmp_path / "t.jsonl",
                                           "--clip-seconds", "1", "--top-k", "1").stdout and
            (tmp_path / "t.jsonl").read_text().splitlines()]
    assert rows[0]["tags"][0]["tag"] == "leftward"


def _stub_tagger(monkeypatch, worked: list) -> VideoTagger:
    """A VideoTagger whose decoding and models are stubs: one 1-second clip per video."""
    from types import SimpleNamespace

    from captioner.data.paths import display_path

    captioner = SimpleNamespace(card={"encoder": "efficientnet_lite0"}, encoder=None)
    tagger = VideoTagger(captioner=captioner)
    monkeypatch.setattr(VideoTagger, "video_features",
                        lambda self, path, options, cancel=None: worked.append(path))
    monkeypatch.setattr(VideoTagger, "_rows", lambda self, path, video, options: [
        {"video": display_path(path), "clip": 0, "start": 0.0, "end": 1.0, "tags": [],
         "caption": "x"}])
    return tagger


@pytest.mark.parametrize("suffix", [".vtt", ".srt"])
def test_a_cue_file_holds_one_video_and_more_are_refused_before_any_work(tmp_path, monkeypatch,
                                                                          suffix):
    """Two videos' cues in one .vtt/.srt overlap in time: refused before any video is decoded,
    also when the second video comes in a later run; .jsonl takes both."""
    from captioner.errors import CaptionerError

    frames = [shape_clip("moving right", "circle", "red", frames=2, size=32)] * 2
    one, two = (write_video(tmp_path / f"{name}.mp4", f, fps=2.0) for name, f in zip("ab", frames))
    worked = []
    tagger = _stub_tagger(monkeypatch, worked)
    out = tmp_path / f"tags{suffix}"
    with pytest.raises(CaptionerError, match=rf"one video per \.vtt/\.srt.*\.jsonl") as caught:
        tagger.tag([one, two], output=out, progress=False)
    assert str(one) in str(caught.value) and str(two) in str(caught.value)
    assert worked == [] and not out.exists()
    tagger.tag(one, output=out, progress=False)
    with pytest.raises(CaptionerError, match="one video per"):  # a later run adds no second one
        tagger.tag([one, two], output=out, progress=False)
    assert worked == [one]
    tagger.tag(one, output=out, progress=False)  # the same video again: nothing to do, no refusal
    rows = tagger.tag([one, two], output=tmp_path / "tags.jsonl", progress=False)
    assert [row["video"] for row in rows] == [str(one), str(two)]
