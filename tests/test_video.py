import logging
import os
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from captioner.data import video
from captioner.data.video import DEFAULT_FPS, probe, sample_frames, write_video
from captioner.errors import VideoError

VIDEO_MINI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video_mini"
FPS = 10
N = 40  # 4 s at 10 fps
DIGIT = 24  # grey step per digit: far above the few levels mp4v and MJPG shift a flat area


def numbered(i: int, size=(48, 64)) -> np.ndarray:
    """A frame that carries its index: tens as the left half's grey, units as the right half's."""
    h, w = size
    frame = np.empty((h, w, 3), np.uint8)
    frame[:, : w // 2] = DIGIT * (i // 10)
    frame[:, w // 2 :] = DIGIT * (i % 10)
    return frame


def read_number(image: np.ndarray) -> int:
    """The index numbered() wrote, read back from the middle of each half."""
    h, w = image.shape[:2]
    left = image[h // 4 : 3 * h // 4, w // 8 : 3 * w // 8].mean()
    right = image[h // 4 : 3 * h // 4, 5 * w // 8 : 7 * w // 8].mean()
    return 10 * round(left / DIGIT) + round(right / DIGIT)


@pytest.fixture(autouse=True, params=["pyav", "opencv"])
def reader(request, monkeypatch) -> str:
    """Every test runs on both decoding paths: PyAV's, and OpenCV's grab() loop, which takes the
    files PyAV cannot open (simulated here by PyAV opening nothing)."""
    if request.param == "opencv":
        monkeypatch.setattr(video, "_open_av", lambda path: None)
    return request.param


@pytest.fixture(scope="module", params=[".mp4", ".avi"])
def clip(request, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clip") / f"numbered{request.param}"
    return write_video(path, [numbered(i) for i in range(N)], FPS)


# ---- probe and sampling ------------------------------------------------------------------------


def test_probe_reads_the_header(clip):
    info = probe(clip)
    assert info.path == clip and info.reliable
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == N
    assert info.duration == pytest.approx(N / FPS)
    assert (info.width, info.height) == (64, 48)


def test_numbered_frames_survive_the_codec(clip):
    frames = list(sample_frames(clip, fps=100))  # faster than the video: every frame, once
    assert [f.index for f in frames] == list(range(N))
    assert [read_number(f.image) for f in frames] == list(range(N))


@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_sampling_times_counts_and_content(clip, rate):
    frames = list(sample_frames(clip, fps=rate))
    assert len(frames) == int(N / FPS * rate)  # targets 0, 1/rate, ... before the end
    for k, frame in enumerate(frames):
        assert abs(frame.time - k / rate) <= 1 / FPS + 1e-6  # the nearest frame, +-1
        assert frame.time == pytest.approx(frame.index / FPS)
        assert frame.image.dtype == np.uint8 and frame.image.shape == (48, 64, 3)
        assert read_number(frame.image) == frame.index  # the pixels of that very frame


def test_sampling_respects_size_and_max_frames(clip):
    frames = list(sample_frames(clip, fps=2, max_frames=3, size=32))
    assert len(frames) == 3
    assert all(f.image.shape == (32, 32, 3) and f.image.dtype == np.uint8 for f in frames)


def test_sampling_rejects_bad_arguments(clip):
    with pytest.raises(ValueError, match="fps"):
        sample_frames(clip, fps=0)
    with pytest.raises(ValueError, match="max_frames"):
        sample_frames(clip, max_frames=0)


# ---- files that are not (whole) videos -------------------------------------------------------


def _bad_file(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "folder":
        path.mkdir()
    elif kind == "photo":  # a real JPEG under a video's name: FFmpeg would read one frame
        from PIL import Image

        Image.fromarray(numbered(7)).save(path, format="JPEG")
    return path  # "missing": never written


@pytest.mark.parametrize(
    "kind,reason",
    [
        ("missing", "no such file"),
        ("empty", "empty"),
        ("text", "cannot open as a video"),
        ("folder", "not a file"),
        ("photo", "a still image \\(jpeg\\), not a video"),
    ],
)
def test_unusable_files_raise_video_error_naming_the_file(tmp_path, kind, reason):
    path = _bad_file(tmp_path, kind)
    for read in (probe, sample_frames):  # sample_frames fails at the call, not mid-loop
        with pytest.raises(VideoError, match=reason) as caught:
            read(path)
        assert str(path) in str(caught.value)


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_truncated_file_gives_fewer_frames_with_a_warning_or_video_error(tmp_path, caplog, suffix):
    whole = write_video(tmp_path / f"whole{suffix}", [numbered(i) for i in range(N)], FPS)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 2])
    try:
        with caplog.at_level(logging.WARNING, logger="captioner.data.video"):
            frames = list(sample_frames(cut, fps=FPS))
    except VideoError as exc:  # mp4v writes its index (moov) last: the half file cannot open
        assert str(cut) in str(exc)
        return
    assert 1 <= len(frames) < N
    assert any(str(cut) in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert probe(cut).frame_count == len(frames) and not probe(cut).reliable


@pytest.mark.parametrize(
    "method", ["__init__", "isOpened", "get", "set", "grab", "retrieve", "release"]
)
@pytest.mark.parametrize("healthy", [0, 1, 2])  # captures that work before the failing ones
def test_opencv_errors_become_video_errors_naming_the_file(clip, monkeypatch, method, healthy):
    real, opened = cv2.VideoCapture, []

    class FailingCapture:
        """A real capture whose `method` raises cv2.error once `healthy` captures were opened."""

        def __init__(self, *args):
            self._cap, self._broken = real(*args), len(opened) >= healthy
            opened.append(self)
            if self._broken and method == "__init__":
                raise cv2.error("simulated failure in VideoCapture()")

        def __getattr__(self, name):
            return self._fail if self._broken and name == method else getattr(self._cap, name)

        @staticmethod
        def _fail(*args):
            raise cv2.error(f"simulated failure in {method}()")

    monkeypatch.setattr(video.cv2, "VideoCapture", FailingCapture)
    for read in (probe, lambda path: list(sample_frames(path, fps=2))):
        opened.clear()
        try:
            read(clip)
        except VideoError as exc:
            assert str(clip) in str(exc) and "\n" not in str(exc)
        else:  # a later capture failing may only cost frames; the first one is always needed
            assert healthy > 0 or method == "set", f"{method} failed and nothing was said"


def test_ffmpeg_and_opencv_keep_quiet_on_bad_files(tmp_path):
    # A fresh interpreter: FFmpeg's level is fixed at the first capture opened in a process.
    whole = write_video(tmp_path / "whole.mp4", [numbered(i) for i in range(N)], FPS)
    (tmp_path / "cut.mp4").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp_path / "garbage.mp4").write_bytes(bytes(range(256)) * 40)
    avi = write_video(tmp_path / "noisy.avi", [numbered(i) for i in range(N)], FPS)
    data = np.frombuffer(avi.read_bytes(), np.uint8).copy()
    data[data.size // 3 : 2 * data.size // 3 : 7] = 0  # FFmpeg's demuxer and decoder complain
    avi.write_bytes(data.tobytes())
    script = (
        "import sys\n"
        "from captioner.data.video import probe, sample_frames\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        probe(name); list(sample_frames(name, fps=100))\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__, exc)\n"
    )
    names = [str(tmp_path / n) for n in ("cut.mp4", "garbage.mp4", "noisy.avi")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCV_")}
    done = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
        check=True,
    )
    assert f"VideoError {names[0]}" in done.stdout and f"VideoError {names[1]}" in done.stdout
    lines = done.stderr.splitlines()
    assert not [line for line in lines if "@ 0x" in line or "WARN:" in line], done.stderr
    assert len(lines) <= len(names), done.stderr  # at most the module's own line per file


# ---- headers that lie --------------------------------------------------------------------------
# OpenCV writes honest headers, so these patch real files: an MKV track's DefaultDuration (the
# header fps; the block timestamps stay true), an AVI's strh rate (avih keeps the truth), an MP4's
# mdhd timescale (mvhd keeps the truth) and an AVI's frame counts (avih and strh).


def _mkv_with_fps_header(path: Path, fake_fps: float) -> Path:
    write_video(path, [numbered(i) for i in range(N)], FPS)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x23\xe3\x83\x84")  # DefaultDuration, 4-byte value in ns
    assert at > 0, "MKV DefaultDuration element not found; has OpenCV's muxer changed?"
    struct.pack_into(">I", data, at + 4, round(1e9 / fake_fps))
    path.write_bytes(bytes(data))
    return path


def _avi_with_count_header(path: Path, fake_count: int) -> Path:
    write_video(path, [numbered(i) for i in range(N)], FPS)
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    assert avih > 0 and strh > 0, "AVI header chunks not found"
    struct.pack_into("<I", data, avih + 8 + 16, fake_count)  # dwTotalFrames
    struct.pack_into("<I", data, strh + 8 + 32, fake_count)  # dwLength
    path.write_bytes(bytes(data))
    return path


def _avi_with_stream_rate(path: Path, fake_fps: int) -> Path:
    """strh's rate (what FFmpeg times frames by) lies; avih's frame period keeps the truth."""
    write_video(path, [numbered(i) for i in range(N)], FPS)
    data = bytearray(path.read_bytes())
    strh = data.find(b"strh")
    assert strh > 0, "AVI strh chunk not found"
    scale = struct.unpack_from("<I", data, strh + 8 + 20)[0]  # dwScale, then dwRate
    struct.pack_into("<I", data, strh + 8 + 24, fake_fps * scale)
    path.write_bytes(bytes(data))
    return path


def _mp4_with_media_rate(path: Path, fake_fps: int) -> Path:
    """mdhd's timescale (what FFmpeg times frames by) lies; mvhd, tkhd and the edit list don't."""
    write_video(path, [numbered(i) for i in range(N)], FPS)
    data = bytearray(path.read_bytes())
    mdhd = data.find(b"mdhd") - 4
    assert mdhd > 0 and data[mdhd + 8] == 0, "MP4 mdhd (version 0) not found"
    timescale = struct.unpack_from(">I", data, mdhd + 20)[0]
    assert timescale * fake_fps % FPS == 0, f"timescale {timescale} cannot show {fake_fps} fps"
    struct.pack_into(">I", data, mdhd + 20, timescale * fake_fps // FPS)
    path.write_bytes(bytes(data))
    return path


def _assert_timed_as_written(path: Path, fake_fps: float) -> None:
    """OpenCV reports the lie in fps and timestamps alike; probe and sampling see through it."""
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(fake_fps)
    assert cap.grab() and cap.grab()  # frame 1's timestamp shows the lie too:
    assert cap.get(cv2.CAP_PROP_POS_MSEC) == pytest.approx(1000 / fake_fps, rel=0.02)
    cap.release()
    info = probe(path)
    assert not info.reliable and info.frame_count == N
    assert info.fps == pytest.approx(FPS, rel=1e-3)
    assert info.duration == pytest.approx(N / FPS, rel=1e-3)
    frames = list(sample_frames(path, fps=1))
    assert [f.time for f in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=1e-3)
    assert [read_number(f.image) for f in frames] == [0, 10, 20, 30]


@pytest.mark.parametrize("fake_fps", [1000, 2])
def test_avi_stream_rate_lie_is_overruled_by_the_main_header(tmp_path, caplog, fake_fps):
    path = _avi_with_stream_rate(tmp_path / "lying.avi", fake_fps)
    with caplog.at_level(logging.INFO, logger="captioner.data.video"):
        _assert_timed_as_written(path, fake_fps)
    # Two plausible rates that disagree: the choice is a guess, and is said out loud.
    level = logging.WARNING if fake_fps == 2 else logging.INFO
    assert any(r.levelno == level and "other header" in r.getMessage() for r in caplog.records)


def test_mp4_absurd_media_rate_is_overruled_by_the_movie_duration(tmp_path):
    _assert_timed_as_written(_mp4_with_media_rate(tmp_path / "lying.mp4", 1000), 1000)


def test_mp4_plausible_media_rate_is_the_rate_of_a_trimmed_video(tmp_path):
    # A 2 fps media under a N/FPS s edit list is what a trimmed 2 fps video is: FFmpeg plays the
    # edit (N/FPS s of it), and nothing in the container says otherwise.
    path = _mp4_with_media_rate(tmp_path / "trimmed.mp4", 2)
    info = probe(path)
    assert info.fps == pytest.approx(2) and info.duration == pytest.approx(N / FPS)
    assert info.frame_count == 2 * N // FPS


@pytest.mark.parametrize("fake_fps", [1000, 2])
def test_mkv_header_fps_lie_falls_back_to_timestamps(tmp_path, fake_fps):
    path = _mkv_with_fps_header(tmp_path / "lying.mkv", fake_fps=fake_fps)
    assert cv2.VideoCapture(str(path)).get(cv2.CAP_PROP_FPS) == pytest.approx(fake_fps)  # the lie
    info = probe(path)
    assert not info.reliable
    assert info.fps == pytest.approx(FPS) and info.frame_count == N
    assert info.duration == pytest.approx(N / FPS)
    frames = list(sample_frames(path, fps=1))
    assert [f.time for f in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert [read_number(f.image) for f in frames] == [0, 10, 20, 30]


def test_header_frame_count_too_high_is_caught(tmp_path, caplog):
    path = _avi_with_count_header(tmp_path / "lying.avi", fake_count=500)
    info = probe(path)
    assert not info.reliable and info.frame_count == N
    assert info.fps == pytest.approx(FPS) and info.duration == pytest.approx(N / FPS)
    with caplog.at_level(logging.WARNING, logger="captioner.data.video"):
        frames = list(sample_frames(path, fps=1))
    assert len(frames) == 4  # decoding goes to the real end, whatever the header says
    assert any("500" in r.getMessage() for r in caplog.records)


def test_fallback_rules_on_header_numbers_and_decoded_facts(caplog):
    ms = [100.0 * i for i in range(N)]  # what decoding shows: 10 fps
    assert video._fps_doubt(FPS, ms) is None
    assert "not plausible" in video._fps_doubt(1000.0, ms)
    assert "not plausible" in video._fps_doubt(0.0, ms)
    assert "disagrees" in video._fps_doubt(30.0, ms)  # plausible, but not what the stream shows
    assert video._fps_doubt(29.97, []) is None  # no timestamps: nothing to contradict it
    assert "not plausible" in video._count_doubt(-9.2e18, FPS, ms[:10])
    assert "not plausible" in video._count_doubt(0.0, FPS, ms[:10])
    assert "3 frames decode" in video._count_doubt(30.0, FPS, ms[:3])  # a short file, counted
    # Decoded timing: timestamps win over an absurd fps; a trailing 0 (seen in a real MSVD clip)
    # and a start offset are ignored; a header rate that agrees is kept as the exact value.
    assert video._decoded_timing(1000.0, ms) == pytest.approx((10.0, 4.0))
    assert video._decoded_timing(0.0, [*ms[1:], 0.0]) == pytest.approx((10.0, 4.0))
    rounded = [float(round(i * 1000 / 29.97)) for i in range(300)]
    assert video._decoded_timing(29.97, rounded) == pytest.approx((29.97, 300 / 29.97), rel=1e-3)
    # No timestamps at all: the header if it is a rate at all, else DEFAULT_FPS, with a warning.
    with caplog.at_level(logging.WARNING, logger="captioner.data.video"):
        assert video._decoded_timing(12.0, [0.0] * 24) == pytest.approx((12.0, 2.0))
        assert video._decoded_timing(0.0, [0.0] * 50) == pytest.approx((DEFAULT_FPS, 2.0))
    assert any("assuming" in r.getMessage() for r in caplog.records)


# ---- windows, shots, frames per window --------------------------------------------------------


# ---- files ---------------------------------------------------------------------------------------


def test_write_video_checks_its_input(tmp_path):
    frame = numbered(1)
    with pytest.raises(VideoError, match="cannot write"):
        write_video(tmp_path / "x.gif", [frame], FPS)
    with pytest.raises(ValueError, match="frame 1"):
        write_video(tmp_path / "x.avi", [frame, frame[:10]], FPS)
    with pytest.raises(ValueError, match="at least one frame"):
        write_video(tmp_path / "x.avi", [], FPS)
    write_video(tmp_path / "ok.avi", [frame] * 3, FPS)
    assert [p.name for p in tmp_path.iterdir()] == ["ok.avi"]  # no temp file left behind


# ---- the real clips ----------------------------------------------------------------------------


def _smallest(folder: Path, suffix: str) -> Path:
    if not folder.is_dir():
        pytest.skip(f"real data not available: {folder.resolve()} is absent")
    found = sorted(folder.rglob(f"*{suffix}"), key=lambda p: p.stat().st_size)
    if not found:
        pytest.skip(f"real data not available: no {suffix} file under {folder.resolve()}")
    return found[0]


@pytest.mark.parametrize(
    "folder,suffix,low,high",
    [
        ("msvd", ".avi", 4.0, 15.0),  # MSVD clips are 4-14 s
        ("kinetics", ".mp4", 9.5, 10.5),  # Kinetics clips are 10 s
    ],
)
def test_real_clips(folder, suffix, low, high):
    path = _smallest(VIDEO_MINI / folder, suffix)
    info = probe(path)
    assert low <= info.duration <= high
    assert info.reliable and info.width > 0 and info.height > 0
    frames = list(sample_frames(path, fps=1, size=64))
    assert abs(len(frames) - info.duration) <= 1.5
    assert frames[-1].time == pytest.approx(len(frames) - 1, abs=1 / info.fps + 1e-6)
    assert all(f.image.shape == (64, 64, 3) for f in frames)


def test_a_video_whose_name_is_not_utf8_is_read_and_written(tmp_path):
    """OpenCV crashes the process on such names: they are opened through a plain-named link."""
    import os

    name = tmp_path / os.fsdecode(b"vid\xe9.avi")
    write_video(name, [np.full((32, 32, 3), 10 * i, np.uint8) for i in range(10)], fps=5)
    assert os.fsencode(name) in [os.fsencode(p) for p in tmp_path.iterdir()]
    assert probe(name).frame_count == 10
    assert len(list(sample_frames(name, fps=5))) == 10
