"""PyAV decoding (captioner.data.video): sparse sampling on H.264 with B-frames, timing from the
sampling pass itself (VideoFrames.info), and agreement with the OpenCV path."""

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from captioner.data import video
from captioner.data.video import VideoFrames, probe, sample_frames, write_video

av = pytest.importorskip("av", reason="PyAV is not installed (pip install av)")

FPS = 30
N = 90  # 3 s


def numbered(i: int, size=(48, 64)) -> np.ndarray:
    """Frame i's index in its pixels: tens as the left half's grey, units as the right half's."""
    h, w = size
    frame = np.empty((h, w, 3), np.uint8)
    frame[:, : w // 2] = 24 * (i // 10)
    frame[:, w // 2 :] = 24 * (i % 10)
    return frame


def read_number(image: np.ndarray) -> int:
    h, w = image.shape[:2]
    left = image[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean()
    right = image[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].mean()
    return 10 * round(left / 24) + round(right / 24)


def write_h264(path: Path, frames: list[np.ndarray], fps: int, gop: int = 60) -> Path:
    """An H.264 MP4 with B-pyramid frames (x264 defaults), as cameras and YouTube write them,
    and a keyframe every ``gop`` frames."""
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx264 encoder to write the H.264 test clip")
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"bf": "3", "b-pyramid": "normal", "crf": "18", "g": str(gop),
                          "keyint_min": str(gop)}
        stream.time_base = Fraction(1, fps)
        for i, pixels in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def h264(tmp_path_factory) -> Path:
    return write_h264(tmp_path_factory.mktemp("h264") / "numbered.mp4",
                      [numbered(i) for i in range(N)], FPS)


B_FRAME = 3  # AV_PICTURE_TYPE_B


def test_the_h264_clip_has_b_frames(h264):
    with av.open(str(h264)) as container:
        kinds = [int(frame.pict_type) for frame in container.decode(video=0)]
    assert kinds.count(B_FRAME) >= N // 5  # else the sparse tests below would prove nothing


@pytest.mark.parametrize("rate", [1.0, 2.0, 3.0])
def test_sparse_sampling_keeps_the_nearest_decoded_frame(h264, rate):
    # 30 fps sampled at <= 3 fps: non-reference frames are skipped, so a target may get a
    # frame one away from the nearest; the pixels are always those of the frame it names.
    frames = list(sample_frames(h264, fps=rate))
    assert len(frames) == int(N / FPS * rate)
    for k, frame in enumerate(frames):
        assert abs(frame.time - k / rate) <= 2 / FPS + 1e-6
        assert frame.time == pytest.approx(frame.index / FPS)
        assert read_number(frame.image) == frame.index


def test_only_kept_frames_are_converted(h264, monkeypatch):
    converted = []
    real = video._av_rgb

    def counting(frame, size):
        converted.append(frame.pts)
        return real(frame, size)

    monkeypatch.setattr(video, "_av_rgb", counting)
    assert [f.index for f in sample_frames(h264, fps=FPS)] == list(range(N))  # all, once each
    assert len(converted) == N
    converted.clear()
    assert len(list(sample_frames(h264, fps=1))) == 3 and len(converted) == 3


def test_dense_sampling_matches_opencv(h264, monkeypatch):
    ours = list(sample_frames(h264, fps=10, size=32))
    monkeypatch.setattr(video, "_open_av", lambda path: None)
    theirs = list(sample_frames(h264, fps=10, size=32))
    assert [f.index for f in ours] == [f.index for f in theirs]
    assert [f.time for f in ours] == [f.time for f in theirs]
    for a, b in zip(ours, theirs):  # swscale's area filter against OpenCV's: a level or two
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() < 3


@pytest.mark.parametrize("suffix", [".mp4", ".avi", ".h264.mp4"])
@pytest.mark.parametrize("rate", [1.0, 10.0])
def test_the_sampling_pass_times_the_video_as_probe_does(tmp_path, suffix, rate):
    frames = [numbered(i) for i in range(40)]
    path = (write_h264(tmp_path / "clip.mp4", frames, 10) if suffix == ".h264.mp4"
            else write_video(tmp_path / f"clip{suffix}", frames, 10))
    reader = VideoFrames(path, fps=rate, size=16)
    assert reader.info is None  # known only once the pass is over
    kept = list(reader)
    assert len(kept) == 4 if rate == 1.0 else 40
    assert reader.info == probe(path)


def test_the_sampling_pass_sees_a_header_count_that_lies(tmp_path, caplog):
    path = write_video(tmp_path / "lying.avi", [numbered(i) for i in range(40)], 10)
    data = bytearray(path.read_bytes())
    for chunk, offset in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames, dwLength
        data[data.find(chunk) + 8 + offset : data.find(chunk) + 12 + offset] = (500).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    reader = VideoFrames(path, fps=1)
    with caplog.at_level(logging.WARNING, logger="captioner.data.video"):
        assert len(list(reader)) == 4
    assert reader.info.frame_count == 40 and not reader.info.reliable
    assert reader.info.duration == pytest.approx(4.0)


@pytest.mark.parametrize("kind", ["h264", "mjpg"])
def test_sparse_sampling_seeks_past_keyframes_it_does_not_need(tmp_path, kind):
    # 30 s at 10 fps with a keyframe every second (MJPG: every frame), sampled every 5 s: the
    # pass jumps to the keyframe before each target instead of decoding the 49 frames between.
    frames = [numbered(i % 100) for i in range(300)]
    path = (write_h264(tmp_path / "long.mp4", frames, 10, gop=10) if kind == "h264"
            else write_video(tmp_path / "long.avi", frames, 10))
    reader = VideoFrames(path, fps=0.2)
    kept = list(reader)
    assert [f.index for f in kept] == [0, 50, 100, 150, 200, 250]
    assert [read_number(f.image) for f in kept] == [0, 50, 0, 50, 0, 50]
    # 32 (H.264) and 12 (MJPG) of 300 here: each target costs the frames from its keyframe on
    assert reader.tally["seeks"] >= 4 and reader.tally["decoded"] < 60, reader.tally
    assert reader.info == probe(path)


def test_frames_past_a_header_count_that_is_too_low_are_still_sampled(tmp_path):
    # After the last target before the announced end, the pass only reads packets (to measure
    # the length); packets past that end mean the header is stale, and decoding resumes.
    path = write_video(tmp_path / "stale.avi", [numbered(i) for i in range(40)], 10)
    data = bytearray(path.read_bytes())
    for chunk, offset in ((b"avih", 16), (b"strh", 32)):  # dwTotalFrames, dwLength
        at = data.find(chunk) + 8 + offset
        data[at : at + 4] = (20).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    reader = VideoFrames(path, fps=1)
    kept = list(reader)
    assert [f.index for f in kept] == [0, 10, 20, 30]
    assert [read_number(f.image) for f in kept] == [0, 10, 20, 30]
    assert reader.info.frame_count == 40 and reader.info.duration == pytest.approx(4.0)


def test_nothing_is_decoded_after_the_last_target(h264):
    reader = VideoFrames(h264, fps=1)  # targets 0, 1, 2 s of a 3 s clip
    assert [f.index for f in reader] == [0, 30, 60]
    # 44 here: frames 61-89 are read, not decoded (decoding them would make about 60)
    assert reader.tally["decoded"] <= 50 and reader.info.frame_count == N
