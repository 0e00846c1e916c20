"""A video's timeline cut into clips: fixed windows, shot cuts, and the frames of each clip."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from itertools import pairwise

import cv2
import numpy as np

from captioner.data.video import Frame

SLIVER = 0.25  # a last clip adding less than this fraction of the stride is merged
SHOT_THRESHOLD = 0.3  # frame distance (0..1) below which no cut is ever declared
SHOT_RATIO = 3.0  # a cut must also stand this far above the distances around it (their
SHOT_LEVEL = 25  # 25th percentile, so other cuts nearby do not raise the bar)
SHOT_CONTEXT = 4  # consecutive distances on each side that set that local level


def fixed_windows(
    duration: float, clip_seconds: float, overlap: float = 0.0
) -> list[tuple[float, float]]:
    """[start, end) clips of clip_seconds covering 0..duration; a trailing sliver is merged."""
    # A sliver: a last clip adding less than SLIVER of the stride (clip_seconds - overlap).
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if not clip_seconds > 0:
        raise ValueError(f"clip_seconds must be positive, got {clip_seconds}")
    if not 0 <= overlap < clip_seconds:
        raise ValueError(
            f"overlap must be at least 0 and less than clip_seconds ({clip_seconds}), got {overlap}"
        )
    stride = clip_seconds - overlap
    duration = round(duration, 6)  # the ends below are rounded: compare like with like
    windows: list[tuple[float, float]] = []
    k = 0
    while True:
        start = round(k * stride, 6)  # k * stride, not a running sum: no drift over long videos
        end = round(min(start + clip_seconds, duration), 6)
        if windows and end >= duration and end - windows[-1][1] < SLIVER * stride:
            # The last clip would add too little that is new: stretch the one before instead.
            windows[-1] = (windows[-1][0], round(duration, 6))
        else:
            windows.append((start, end))
        if end >= duration:
            return windows
        k += 1


def shot_boundaries(frames: list[Frame], threshold: float = SHOT_THRESHOLD) -> list[float]:
    """Times of the first sampled frame of each new shot (hard cuts), in order."""
    if len(frames) < 2:
        return []
    signatures = [_signature(frame.image) for frame in frames]
    distances = [_distance(a, b) for a, b in pairwise(signatures)]
    cuts = []
    for i, d in enumerate(distances):
        # Adaptive: a cut stands out from its neighbours; steady motion raises them all.
        around = distances[max(0, i - SHOT_CONTEXT) : i] + distances[i + 1 : i + 1 + SHOT_CONTEXT]
        level = float(np.percentile(around, SHOT_LEVEL)) if around else 0.0
        if d >= threshold and d >= SHOT_RATIO * level:
            cuts.append(frames[i + 1].time)
    return cuts


def shot_windows(
    frames: list[Frame],
    duration: float,
    min_seconds: float = 1.0,
    threshold: float = SHOT_THRESHOLD,
) -> list[tuple[float, float]]:
    """[start, end) clips from shot to shot; shots shorter than min_seconds join the one before."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    starts = [0.0]
    for cut in shot_boundaries(frames, threshold):
        if cut - starts[-1] >= min_seconds and duration - cut > 0:
            starts.append(cut)
    if len(starts) > 1 and duration - starts[-1] < min_seconds:
        starts.pop()  # a short last shot joins the one before it
    ends = starts[1:] + [duration]
    return [(round(s, 6), round(e, 6)) for s, e in zip(starts, ends)]


def assign_frames(frames: list[Frame], windows: list[tuple[float, float]]) -> list[list[Frame]]:
    """The frames inside each [start, end) window (the last one closed); never an empty clip."""
    ordered = sorted(frames, key=lambda f: f.time)
    times = [f.time for f in ordered]
    result: list[list[Frame]] = []
    for k, (start, end) in enumerate(windows):
        # Half-open, so abutting clips share no frame; the last one keeps a frame at its end.
        stop = bisect_right(times, end) if k == len(windows) - 1 else bisect_left(times, end)
        inside = ordered[bisect_left(times, start) : stop]
        if not inside and ordered:
            # An empty clip (sparse sampling) still gets the frame closest to it.
            inside = [min(ordered, key=lambda f: (max(start - f.time, f.time - end, 0.0), f.time))]
        result.append(inside)
    return result


def _signature(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame reduced to what a cut changes: a Lab colour histogram and a 32x32 grey thumbnail."""
    # Lab, not HSV: hue is noise on grey skies and walls, and flickers between frames of a shot.
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    hist = cv2.calcHist([lab], [0, 1, 2], None, [4, 6, 6], [0, 256, 0, 256, 0, 256])
    small = cv2.resize(
        cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA
    )
    return hist, small.astype(np.float32) / 255.0


def _distance(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """0 (same picture) .. 1: mostly colour-histogram distance, partly grey-thumbnail difference."""
    # Weights and thresholds were set on the 12 real MSVD/Kinetics clips of video_mini sampled
    # at 2 fps (9 of 9 cuts, no false one): few clips, so treat them as a start, not a law.
    # The thumbnail catches cuts between shots of similar colours.
    colour = min(max(cv2.compareHist(a[0], b[0], cv2.HISTCMP_BHATTACHARYYA), 0.0), 1.0)
    layout = float(np.mean(np.abs(a[1] - b[1])))
    return 0.75 * colour + 0.25 * layout
