"""One pass per video (captioner.video.frame_features): memory bounded by the queue and the
batch whatever the length, features cached per (file, fps, encoder, kinds), and a tagger that
re-tags with other clip settings without decoding again."""

import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from captioner.data import video
from captioner.data.video import write_video
from captioner.encoders.base import Encoder
from captioner.errors import VideoError
from captioner.video import frame_features as ff
from captioner.video.config import TagOptions
from captioner.video.frame_features import QUEUE_FRAMES, frame_features
from captioner.video.tagger import VideoTagger

FPS = 10


class FakeEncoder(Encoder):
    """Stands in for a CNN: features are the frame's mean colour, so they can be checked."""

    def __init__(self, weights_id="test:fixed", delay=0.0):
        super().__init__("fake", 16, weights_id=weights_id, layers_digest="fake",
                         outputs={"pooled": (3,), "probabilities": (1000,), "spatial": (2, 2, 3)})
        self.delay, self.batches = delay, []

    def encode(self, images, kinds=None):
        self.batches.append(len(images))
        time.sleep(self.delay)  # a slow encoder: the decoding thread fills the queue
        mean = images.reshape(len(images), -1, 3).mean(axis=1).astype(np.float32)
        probabilities = np.zeros((len(images), 1000), np.float32)
        probabilities[:, 281] = 1.0  # ImageNet's tabby cat
        return {"pooled": mean, "probabilities": probabilities,
                "spatial": np.repeat(mean[:, None, None, :], 4, axis=1).reshape(-1, 2, 2, 3)}


def scenes(path: Path, seconds: int = 6, mark: int = 0) -> Path:
    """Two shots of flat colour with a moving square: grey for half the time, then blue.
    ``mark`` makes the bytes (the cache key) differ from another test's clip."""
    frames = []
    for i in range(seconds * FPS):
        frame = np.full((32, 32, 3), (120, 120, 120) if i < seconds * FPS // 2 else (20, 40, 200),
                        np.uint8)
        frame[8:16, i % 20 : i % 20 + 8] = 250
        frame[24:, :8] = mark
        frames.append(frame)
    return write_video(path, frames, FPS)


@pytest.fixture
def clip(tmp_path) -> Path:
    return scenes(tmp_path / "scenes.avi")


def test_memory_holds_a_bounded_number_of_frames_whatever_the_length(tmp_path, monkeypatch):
    long_clip = write_video(tmp_path / "long.avi",
                            [np.full((24, 24, 3), i % 250, np.uint8) for i in range(600)], 50)
    live, peak = [0], [0]

    def gone():
        live[0] -= 1

    class CountingFrames(video.VideoFrames):
        """Counts the decoded frames alive anywhere (queue, batch, thread) at every moment."""

        def __iter__(self):
            for frame in super().__iter__():
                live[0] += 1
                peak[0] = max(peak[0], live[0])
                weakref.finalize(frame, gone)
                yield frame

    class WaitingEncoder(FakeEncoder):
        """Holds its first batch until the queue is full, so that the decoding has run ahead
        however busy the machine (a fixed sleep raced the decoder on a loaded CI machine)."""

        def encode(self, images, kinds=None):
            deadline = time.monotonic() + 30
            while not self.batches and live[0] < len(images) + QUEUE_FRAMES:
                assert time.monotonic() < deadline, "the decoding thread never filled the queue"
                time.sleep(0.001)
            return super().encode(images, kinds)

    monkeypatch.setattr(ff, "VideoFrames", CountingFrames)
    encoder = WaitingEncoder()
    result = frame_features(long_clip, encoder, fps=50, kinds=("pooled", "spatial"), batch_size=4)
    assert len(result.indices) == 600 and sum(encoder.batches) == 600
    assert max(encoder.batches) == 4
    assert peak[0] <= QUEUE_FRAMES + 4 + 2, f"{peak[0]} frames held at once"
    assert peak[0] > 4  # the queue was used: decoding ran ahead of the encoder
    assert isinstance(result.features["spatial"], np.memmap)  # the maps stay on disk
    assert result.features["pooled"][:, 0] == pytest.approx(np.arange(600) % 250, abs=3)


def test_second_pass_reads_the_cache_and_decodes_nothing(clip, monkeypatch):
    encoder = FakeEncoder()
    kinds = ("pooled", "probabilities", "spatial")
    first = frame_features(clip, encoder, fps=2, kinds=kinds)
    assert first.duration == pytest.approx(6.0) and first.cuts == pytest.approx([3.0])
    assert first.times.tolist() == pytest.approx([k / 2 for k in range(12)])

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(ff, "VideoFrames", no_decoding)
    again = frame_features(clip, encoder, fps=2, kinds=kinds)
    assert again.folder == first.folder and sum(encoder.batches) == 12  # the first pass's only
    assert again.indices.tolist() == first.indices.tolist()
    assert again.times.tolist() == first.times.tolist()
    assert (again.duration, again.cuts) == (first.duration, first.cuts)
    for kind in kinds:
        np.testing.assert_array_equal(np.asarray(again.features[kind]), first.features[kind])
    with pytest.raises(AssertionError, match="decoded again"):  # another rate: a new entry
        frame_features(clip, encoder, fps=1, kinds=kinds)


def test_random_weights_are_never_cached(clip, session_cache):
    encoder = FakeEncoder(weights_id="random")
    a = frame_features(clip, encoder, fps=1, kinds=("pooled",))
    b = frame_features(clip, encoder, fps=1, kinds=("pooled",))
    assert sum(encoder.batches) == 2 * 6 and a.folder != b.folder
    assert session_cache not in a.folder.parents


def test_bad_files_and_decoding_failures_raise_and_leave_no_entry(clip, tmp_path, monkeypatch):
    with pytest.raises(VideoError, match="no such file") as caught:
        frame_features(tmp_path / "missing.mp4", FakeEncoder(), fps=1)
    assert str(tmp_path / "missing.mp4") in str(caught.value)
    text = tmp_path / "text.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(VideoError, match="cannot open as a video"):
        frame_features(text, FakeEncoder(), fps=1)

    class Failing(video.VideoFrames):
        def __iter__(self):
            yield from list(super().__iter__())[:3]
            raise VideoError(f"{self.path}: simulated failure mid-stream")

    monkeypatch.setattr(ff, "VideoFrames", Failing)
    with pytest.raises(VideoError, match="simulated"):
        frame_features(clip, FakeEncoder(), fps=2, batch_size=2)
    entry = ff._entry(clip, FakeEncoder(), 2, ("pooled",))
    assert not entry.exists()  # neither the entry nor its half-written temporary folder
    assert not list(entry.parent.glob(f".{entry.name}.*"))


@dataclass
class _Caption:
    text: str


class FakeCaptioner:
    """What VideoTagger asks of an image captioner, answering from the fake features."""

    card: ClassVar[dict] = {"encoder": "fake", "decoding": {}}
    feature_kind = "spatial"

    def __init__(self):
        self.encoder = FakeEncoder()

    def caption_features(self, regions):
        return [_Caption("a cat on a grey mat" if r.mean() > 100 else "a cat in the blue sea")
                for r in regions]

    def tag_kinds(self):
        return ()  # no ImageNet head: no photo tags

    def tags_of(self, features, objects=None):
        return None

    def caption_tagged(self, regions, tags):
        # No tags means free captions: an empty tag list would hold back every object word.
        assert tags is None, "frames without tags must be captioned unguided"
        return self.caption_features(regions)

    def caption_views(self, regions, tags=None):
        return _Caption(f"a cat seen {len(regions)} times")


def test_retagging_with_other_clip_settings_does_not_decode(tmp_path, monkeypatch):
    clip = scenes(tmp_path / "own.avi", mark=60)
    tagger = VideoTagger(captioner=FakeCaptioner())
    first = tagger.tag_video(clip, TagOptions(clip_seconds=3, fps=2))
    assert [(r["start"], r["end"]) for r in first] == [(0, 3), (3, 6)]
    assert [r["caption"] for r in first] == ["a cat on a grey mat", "a cat in the blue sea"]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(ff, "VideoFrames", no_decoding)
    for options in (TagOptions(clip_seconds=2, overlap=1, fps=2, top_k=2),
                    TagOptions(shots=True, fps=2, clip_caption="frames"),
                    TagOptions(clip_seconds=6, fps=2, top_k=1)):
        rows = tagger.tag_video(clip, options)
        assert all("error" not in r for r in rows), rows
        assert all(len(r["tags"]) <= options.top_k for r in rows)
    shots = tagger.tag_video(clip, TagOptions(shots=True, fps=2, clip_caption="frames"))
    assert [(r["start"], r["end"], r["caption"]) for r in shots] == [
        (0, 3, "a cat seen 6 times"), (3, 6, "a cat seen 6 times")]
    assert sum(tagger.encoder.batches) == 12  # the 12 frames, encoded once


def test_the_next_video_decodes_while_this_one_is_captioned(tmp_path, monkeypatch):
    from captioner.video import tagger as tagger_module

    videos = [scenes(tmp_path / f"v{i}.avi", seconds=2, mark=100 + i) for i in range(3)]
    events = []
    real = tagger_module.frame_features

    def recorded(path, *args, **kwargs):
        events.append(("features", Path(path).name, time.perf_counter()))
        return real(path, *args, **kwargs)

    class SlowCaptioner(FakeCaptioner):
        def caption_features(self, regions):
            start = time.perf_counter()
            time.sleep(0.3)
            events.append(("captioned", None, start))
            return super().caption_features(regions)

    monkeypatch.setattr(tagger_module, "frame_features", recorded)
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF not really")
    rows = VideoTagger(captioner=SlowCaptioner()).tag([*videos, broken], TagOptions(fps=2),
                                                    progress=False)
    assert [r["video"] for r in rows if "error" not in r] == [str(v) for v in videos]
    assert any("error" in r and r["video"] == str(broken) for r in rows)
    started = {name: t for kind, name, t in events if kind == "features"}
    captioning = [t for kind, _, t in events if kind == "captioned"]
    # v1's features were under way before v0's captioning (0.3 s) was over, and so on.
    assert started["v1.avi"] < captioning[0] + 0.3 and started["v2.avi"] < captioning[1] + 0.3


def _threads_left(*names: str) -> list[threading.Thread]:
    """The threads of these names still alive after up to 2 s for each to end."""
    left = [t for t in threading.enumerate() if t.name.startswith(names)]
    for thread in left:
        thread.join(timeout=2)
    return [t for t in left if t.is_alive()]


def long_video(path: Path, frames: int = 600, mark: int = 0) -> Path:
    """A clip whose 50 fps sampling gives many more frames than the queue holds."""
    return write_video(path, [np.full((24, 24, 3), (i + mark) % 250, np.uint8) for i in range(frames)], 50)


def test_a_consumer_that_fails_at_once_stops_the_decoding_thread(tmp_path, monkeypatch):
    clip = long_video(tmp_path / "long.avi")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ff, "open", full_disk, raising=False)  # the output files cannot be made
    with pytest.raises(OSError, match="No space left"):
        frame_features(clip, FakeEncoder(), fps=50)
    assert not _threads_left("captioner-decode")


def test_an_interrupted_tag_run_does_not_wait_for_the_next_video(tmp_path, monkeypatch):
    videos = [scenes(tmp_path / "short.avi", seconds=2, mark=30), long_video(tmp_path / "long.avi", mark=7)]
    tagger = VideoTagger(captioner=FakeCaptioner())
    tagger.encoder.delay = 0.05  # the long video's pass takes 150 batches: 7.5 s

    def ctrl_c(*args):
        time.sleep(0.2)  # the next video is under way
        raise KeyboardInterrupt

    monkeypatch.setattr(tagger, "_rows", ctrl_c)
    start = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        tagger.tag(videos, TagOptions(fps=50), progress=False)
    assert time.perf_counter() - start < 3
    assert not _threads_left("captioner-decode", "captioner-next")
    assert sum(tagger.encoder.batches) < 60  # the long video was given up, not encoded to the end
