"""Clip windows, shot cuts and the frames of each clip (captioner.video.windows)."""

from pathlib import Path

import numpy as np
import pytest

from captioner.data.video import Frame, probe, sample_frames, write_video
from captioner.video.windows import (
    ShotDetector,
    assign_frames,
    cut_windows,
    fixed_windows,
    shot_boundaries,
    shot_windows,
)

VIDEO_MINI = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video_mini"
FPS = 10
N = 40  # 4 s at 10 fps


def shots_video(path: Path) -> Path:
    """Four 1 s shots at 10 fps, each moving a little: red, green noise, blue pan, white square."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(40, 220, 64).astype(np.uint8)
    frames = []
    for i in range(N):
        shot, k = divmod(i, 10)
        frame = np.zeros((48, 64, 3), np.uint8)
        if shot == 0:
            frame[:] = (200, 30, 30)
            frame[10:20, 5 + 2 * k : 15 + 2 * k] = (120, 20, 20)
        elif shot == 1:
            frame[..., 1] = rng.integers(120, 220, (48, 64))
        elif shot == 2:
            frame[..., 2] = np.roll(ramp, 2 * k)[None, :]  # a gradient panning sideways
        else:
            frame[:] = 255
            frame[20:30, 4 * k : 4 * k + 10] = 0
        frames.append(frame)
    return write_video(path, frames, FPS)


def test_fixed_windows_cover_the_timeline():
    assert fixed_windows(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert fixed_windows(3, 5) == [(0, 3)]
    assert fixed_windows(10.5, 5) == [(0, 5), (5, 10.5)]  # the 0.5 s sliver joins the last clip
    assert fixed_windows(11.5, 5) == [(0, 5), (5, 10), (10, 11.5)]  # 1.5 s is a clip
    assert fixed_windows(10, 4, overlap=2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert fixed_windows(10.3, 4, overlap=2) == [(0, 4), (2, 6), (4, 8), (6, 10.3)]
    dense = fixed_windows(10, 4, overlap=3.5)  # a stride under the sliver size still slides
    assert len(dense) == 13 and dense[-1] == (6, 10)
    assert all(e - s == pytest.approx(4) for s, e in dense)


@pytest.mark.parametrize(
    "args,match",
    [
        ((10, 4, 4), "overlap"),
        ((10, 4, -1), "overlap"),
        ((10, 0), "clip_seconds"),
        ((0, 4), "duration"),
    ],
)
def test_fixed_windows_reject_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        fixed_windows(*args)


def test_shot_boundaries_find_three_hard_cuts(tmp_path):
    path = shots_video(tmp_path / "shots.mp4")
    frames = list(sample_frames(path, fps=2))
    assert shot_boundaries(frames) == pytest.approx([1.0, 2.0, 3.0])
    assert shot_windows(frames, 4.0) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert shot_windows(frames, 4.0, min_seconds=1.5) == [(0, 2), (2, 4)]


def test_cuts_found_at_one_frame_per_second_as_frames_arrive(tmp_path):
    # Three 3 s shots (a small square moving in each), sampled at the tagger's default 1 fps and
    # fed one frame at a time, as the tagger's decoding thread does.
    frames = []
    for i in range(90):
        shot, k = divmod(i, 30)
        frame = np.full((48, 64, 3), [(180, 40, 40), (30, 160, 60), (240, 240, 240)][shot], np.uint8)
        frame[10:20, k : k + 10] = 0
        frames.append(frame)
    path = write_video(tmp_path / "three.avi", frames, FPS)
    detector = ShotDetector()
    sampled = list(sample_frames(path, fps=1, size=32))
    for frame in sampled:
        detector.add(frame)
    assert detector.cuts == pytest.approx([3.0, 6.0])
    assert shot_boundaries(sampled) == detector.cuts
    assert cut_windows(detector.cuts, 9.0) == [(0, 3), (3, 6), (6, 9)]
    assert cut_windows(detector.cuts, 9.0, min_seconds=4) == [(0, 9)]  # all shorter: one clip


def test_no_cuts_in_one_moving_shot():
    # A textured picture panning sideways changes every pixel but is one shot.
    rng = np.random.default_rng(1)
    scene = np.clip(rng.normal(128, 40, (48, 64, 3)), 0, 255).astype(np.uint8)
    scene[:, :32] //= 2  # a darker left half, so the pan moves a big edge too
    moving = [Frame(i, i / 2, np.roll(scene, 4 * i, axis=1)) for i in range(8)]
    assert shot_boundaries(moving) == []
    assert shot_boundaries(moving[:1]) == []
    assert shot_windows(moving, 4.0) == [(0, 4.0)]


def test_assign_frames_by_time():
    frames = [Frame(i, i / 2, np.zeros((2, 2, 3), np.uint8)) for i in range(8)]  # 0 .. 3.5 s

    def times(groups):
        return [[f.time for f in group] for group in groups]

    assert times(assign_frames(frames, fixed_windows(4, 2))) == [
        [0, 0.5, 1, 1.5],
        [2, 2.5, 3, 3.5],
    ]
    # Overlapping windows share the frames of their shared stretch, boundaries included.
    assert times(assign_frames(frames, [(0, 2), (1, 3), (2, 4)])) == [
        [0, 0.5, 1, 1.5],
        [1, 1.5, 2, 2.5],
        [2, 2.5, 3, 3.5],
    ]
    # A window between sampled frames still gets the nearest one; the last keeps its end frame.
    assert times(assign_frames(frames, [(0, 0.2), (0.2, 0.4), (0.4, 3.5)])) == [
        [0],
        [0.5],
        [0.5, 1, 1.5, 2, 2.5, 3, 3.5],
    ]
    assert assign_frames([], [(0, 1)]) == [[]]


def test_real_cuts_in_an_msvd_clip():
    # The detector's published defaults, not thresholds set on this clip.
    path = VIDEO_MINI / "msvd" / "video" / "0lh_UWF9ZP4_62_69.avi"  # cook, rice bowl, cook
    if not path.is_file():
        pytest.skip(f"real data not available: {path.resolve()} is absent")
    frames = list(sample_frames(path, fps=2, size=128))
    assert shot_boundaries(frames) == pytest.approx([1.0, 5.5], abs=0.05)
    duration = probe(path).duration
    windows = shot_windows(frames, duration)
    assert [start for start, _ in windows] == pytest.approx([0.0, 1.0, 5.5], abs=0.05)
    assert windows[-1][1] == pytest.approx(duration)


def test_windows_end_on_durations_that_do_not_round_evenly():
    # 14.0333... s (421 frames at 30 fps) once never ended: rounded ends fell short of it.
    for duration in (421 / 30, 10 / 3, 7.0000004):
        for clip in (duration + 1, 2.0, 3.3):
            windows = fixed_windows(duration, clip)
            assert windows[-1][1] == round(duration, 6)
