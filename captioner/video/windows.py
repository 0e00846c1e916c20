"""A video's timeline cut into clips: fixed windows, shot cuts, and the frames of each clip."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

import cv2
from scenedetect import AdaptiveDetector, FrameTimecode

from captioner.data.video import Frame

SLIVER = 0.25  # a last clip adding less than this fraction of the stride is merged
SHOT_THRESHOLD = 3.0  # AdaptiveDetector's default: a cut changes 3x more than its neighbours
DETECTOR_RATE = 1000.0  # the timecodes' rate: only their order and seconds matter here


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


class ShotDetector:
    """Hard cuts among sampled frames, fed one at a time as they are decoded.

    PySceneDetect's AdaptiveDetector, fed the frames the tagger samples (no second decoding
    pass): a frame's mean HSV change from the frame before must be at least SHOT_THRESHOLD
    times the mean change of its neighbours (one each side) and at least the detector's
    published floor (15 of 255). It thus compares frames 1/fps apart, not consecutive ones: a
    cut is placed at the first sampled frame after it (up to 1/fps late), a cut within the last
    sampled frame goes unseen (it has no neighbour after it), and a fade shorter than 1/fps
    reads as a cut. Its fixed-threshold sibling, ContentDetector (27), called a cut at nearly
    every sample of the Kinetics clips at 1-2 fps, where anything that moves changes a lot
    between samples 0.5-1 s apart; the ratio to the neighbours does not care how much the
    whole shot moves.
    """

    def __init__(self, threshold: float = SHOT_THRESHOLD):
        # min_scene_len=0: no minimum in frames of the video's rate (these are samples);
        # cut_windows applies its own minimum in seconds.
        self._detector = AdaptiveDetector(adaptive_threshold=threshold, window_width=1,
                                          min_scene_len=0)
        self.cuts: list[float] = []

    def add(self, frame: Frame) -> None:
        """Look at the next sampled frame (in time order)."""
        timecode = FrameTimecode(float(frame.time), fps=DETECTOR_RATE)
        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)  # the detector reads OpenCV's order
        # A cut is reported one frame late (it needs the neighbour after), at its own time.
        self.cuts += [round(cut.seconds, 6) for cut in self._detector.process_frame(timecode, bgr)]


def shot_boundaries(frames: list[Frame], threshold: float = SHOT_THRESHOLD) -> list[float]:
    """Times of the first sampled frame of each new shot (hard cuts), in order."""
    detector = ShotDetector(threshold)
    for frame in sorted(frames, key=lambda f: f.time):
        detector.add(frame)
    return detector.cuts


def shot_windows(
    frames: list[Frame],
    duration: float,
    min_seconds: float = 1.0,
    threshold: float = SHOT_THRESHOLD,
) -> list[tuple[float, float]]:
    """[start, end) clips from shot to shot; shots shorter than min_seconds join the one before."""
    return cut_windows(shot_boundaries(frames, threshold), duration, min_seconds)


def cut_windows(
    cuts: list[float], duration: float, min_seconds: float = 1.0
) -> list[tuple[float, float]]:
    """[start, end) clips between cut times; shots shorter than min_seconds join the one before."""
    if not duration > 0:
        raise ValueError(f"duration must be positive, got {duration}")
    starts = [0.0]
    for cut in cuts:
        if cut - starts[-1] >= min_seconds and duration - cut > 0:
            starts.append(cut)
    if len(starts) > 1 and duration - starts[-1] < min_seconds:
        starts.pop()  # a short last shot joins the one before it
    ends = starts[1:] + [duration]
    return [(round(s, 6), round(e, 6)) for s, e in zip(starts, ends)]


def assign_frames(frames: list[Frame], windows: list[tuple[float, float]]) -> list[list[Frame]]:
    """The frames inside each [start, end) window (the last one closed); never an empty clip."""
    return [[frames[i] for i in rows] for rows in assign_rows([f.time for f in frames], windows)]


def assign_rows(times, windows: list[tuple[float, float]]) -> list[list[int]]:
    """Positions in ``times`` (frame times, seconds) of the frames inside each [start, end)
    window (the last one closed), in time order; a window with none gets the nearest frame."""
    order = sorted(range(len(times)), key=lambda i: times[i])
    ordered = [float(times[i]) for i in order]
    result: list[list[int]] = []
    for k, (start, end) in enumerate(windows):
        # Half-open, so abutting clips share no frame; the last one keeps a frame at its end.
        stop = bisect_right(ordered, end) if k == len(windows) - 1 else bisect_left(ordered, end)
        inside = order[bisect_left(ordered, start) : stop]
        if not inside and order:
            # An empty clip (sparse sampling) still gets the frame closest to it.
            inside = [min(order, key=lambda i: (max(start - times[i], times[i] - end, 0.0), times[i]))]
        result.append(inside)
    return result
