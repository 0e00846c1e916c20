"""Video files in, timed RGB uint8 frames out: probing, frame sampling, clip windows, shot cuts.

How the timing is decided (headers lie: webm/mkv often say 1000 fps, counts can be 0, negative
or stale after a bad remux):

* The header (CAP_PROP_FPS, CAP_PROP_FRAME_COUNT) is trusted when it is plausible: fps within
  FPS_RANGE and, if the first frames carry CAP_PROP_POS_MSEC timestamps, within FPS_TOLERANCE
  of the rate they show; a frame count of at least 1 and at most MAX_SECONDS long; and the
  stream really ends there (frame count - 1 can be grabbed, frame count cannot; a stream
  shorter than PROBE_FRAMES is counted outright).
* Otherwise (VideoInfo.reliable is False) frames are counted by grabbing them all, and the fps
  comes from the timestamps when they are present, else from the header if it is at least
  positive, else DEFAULT_FPS (both with a warning: the timing is then a guess).
* sample_frames times each frame as index / fps when the header fps passed those checks, and
  from its own timestamp (relative to the first frame) otherwise, so variable-rate files work.
* Some containers state the rate twice, and FFmpeg reads one statement only, deriving both
  CAP_PROP_FPS and CAP_PROP_POS_MSEC from it: then a lie there cannot be seen from OpenCV, and
  the other statement is read from the file (see _container_rate) and wins where it must.

How the pixels are decoded: the header checks above stay on OpenCV (they read ten frames);
the sampling pass decodes with PyAV where it opens the file, else with OpenCV's grab(), which
decodes every frame. PyAV decodes packet by packet, so one damaged packet costs a frame, not
the rest of the video. On a constant-rate stream sampled at least SPARSE_FRAMES frames apart
it skips the frames no other frame refers to and the deblocking filter (skip_frame=NONREF,
skip_loop_filter=all): about 2x faster on 720p H.264. Skipping non-reference frames changes
no decoded pixel; skipping the filter shifts them by 1-2 levels of 255 on average at 224 px
(measured on the Kinetics clips). The price is that each target time gets the nearest
*decoded* frame: one frame (33 ms at 30 fps) further than the nearest at most on the shared
clips, two where a stream has two non-reference frames in a row (frames and times stay true
to each other, as a frame's time comes from its own timestamp). Skipping all
B-frames (BIDIR) was 1.4x faster again but wrong: x264's B-pyramid frames are references, and
the P-frames after them decoded 21 levels off on average. When the next
target lies beyond twice the widest keyframe gap seen (and at least SEEK_MIN_SECONDS ahead), the
pass seeks to the last keyframe before it; a seek that lands behind where it left turns seeking
off for that file. Once no target is left before the header's last frame, packets are only
read, for the length (decoding resumes from the keyframe before if the stream outlives its
header). Only the kept frames are converted, to RGB at the output size in one swscale
pass (area filter).
"""

from __future__ import annotations

import logging
import math
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from captioner.errors import VideoError

try:  # PyAV: decodes only what is kept; without it every frame goes through OpenCV's grab()
    import av
except ImportError:  # pragma: no cover - a dependency, but the OpenCV path stands alone
    av = None

log = logging.getLogger(__name__)

# On a bad file FFmpeg and OpenCV print lines of their own ("[h264 @ 0x...] ...", "[ WARN:0...]")
# besides the one this module logs. FFmpeg's level is read when the first capture opens; OpenCV's
# when cv2 is imported, maybe before this module, hence setLogLevel. A level the user set wins.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
if "OPENCV_LOG_LEVEL" not in os.environ:
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# Codecs OpenCV's bundled FFmpeg can write here (no H.264 encoder in the wheel).
WRITER_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}

FPS_RANGE = (0.5, 240.0)  # outside this a header fps is a placeholder, not a frame rate
FPS_TOLERANCE = 0.05  # header fps may differ this much (relative) from the timestamps' rate
MAX_SECONDS = 7 * 24 * 3600.0  # a header announcing more than a week of video is corrupt
PROBE_FRAMES = 10  # frames decoded up front to check the header against the timestamps
DEFAULT_FPS = 25.0  # only when neither the header nor the timestamps say anything usable
MP4_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide"}  # MP4/MOV/M4V files
# Sampled frames at least this many video frames apart: non-reference frames and deblocking
# are skipped (a frame further from a target than the nearest is small beside a gap of 4).
SPARSE_FRAMES = 4
# A sparse pass seeks when the next target lies beyond SEEK_GAPS times the widest keyframe gap
# seen so far (so a keyframe surely lies between) and at least SEEK_MIN_SECONDS ahead.
SEEK_GAPS = 2.0
SEEK_MIN_SECONDS = 1.0


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: timing from the header when plausible, else from decoding."""

    path: Path
    fps: float
    frame_count: int
    duration: float  # seconds
    width: int
    height: int
    reliable: bool  # True when the header passed the checks in the module docstring


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: its index in the stream, its time in seconds, its RGB pixels."""

    index: int
    time: float
    image: np.ndarray  # (H, W, 3) uint8 RGB


@dataclass(frozen=True)
class _Start:
    """The header numbers of an opened video and what decoding its first frames showed."""

    fps: float
    frame_count: float
    width: int
    height: int
    stamps_ms: list[float]  # CAP_PROP_POS_MSEC after each of the first frames grabbed
    ms_scale: float = 1.0  # POS_MSEC times this is real time; 1 unless _container_rate overruled


def probe(path: Path) -> VideoInfo:
    """Frame rate, frame count, duration and size of a video; VideoError if it cannot be read."""
    path = Path(path)
    start = _read_start(path)
    doubt = _fps_doubt(start.fps, start.stamps_ms) or _count_doubt(
        start.frame_count, start.fps, start.stamps_ms
    )
    if doubt is None and len(start.stamps_ms) == PROBE_FRAMES:
        doubt = _check_end(path, int(start.frame_count))
    reliable = start.ms_scale == 1.0
    if doubt is None:
        count = int(start.frame_count)
        duration = count / start.fps
        return VideoInfo(path, start.fps, count, duration, start.width, start.height, reliable)
    log.info("%s: %s; counting frames by decoding", path, doubt)
    stamps = [ms * start.ms_scale for ms in _all_stamps(path)]
    fps, duration = _decoded_timing(start.fps, stamps, path)
    return VideoInfo(path, fps, len(stamps), duration, start.width, start.height, False)


def sample_frames(
    path: Path, fps: float = 1.0, max_frames: int | None = None, size: int | None = None
) -> Iterator[Frame]:
    """Frames nearest the times 0, 1/fps, 2/fps... decoded in one pass, resized if size is given."""
    return iter(VideoFrames(path, fps, max_frames, size))


class VideoFrames:
    """sample_frames' frames, and after the last one the video's timing as that pass saw it.

    ``info`` (after iterating to the end) is what probe would say, learnt from the same pass
    instead of a second one: probe's check of the header count seeks to the last frame, which
    decodes the whole last group of pictures (half a second on a 720p H.264 clip). The count
    is the stream's own (its last timestamp, skipped frames included) and the duration follows
    the module docstring's rules, so both agree with probe's on honest files.
    """

    def __init__(self, path: Path, fps: float = 1.0, max_frames: int | None = None,
                 size: int | None = None):
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        if size is not None and size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.path, self.fps, self.max_frames, self.size = Path(path), fps, max_frames, size
        self.start = _read_start(self.path)  # now, so a bad file fails at the call, not mid-loop
        start = self.start
        # A rate taken from the container's other header is a constant rate: time by index.
        self.by_index = start.ms_scale != 1.0 or _fps_doubt(start.fps, start.stamps_ms) is None
        self.video_fps = (start.fps if self.by_index
                          else _decoded_timing(start.fps, start.stamps_ms, self.path)[0])
        # A plausible header count lets a stream that stops early be reported as truncated (a
        # count derived from a bogus fps would only raise false alarms).
        count_ok = math.isfinite(start.frame_count) and 1 <= start.frame_count <= 2**31
        self.expected = int(start.frame_count) if self.by_index and count_ok else None
        self.tally: dict = {"count": 0, "stamps_ms": []}
        self.info: VideoInfo | None = None

    def __iter__(self) -> Iterator[Frame]:
        args = (self.path, self.fps, self.max_frames, self.size, self.video_fps, self.by_index,
                self.expected)
        container = _open_av(self.path)
        if container is None:
            frames = _sample(*args, tally=self.tally)
        else:
            frames = _sample_av(container, *args, self.start.ms_scale, tally=self.tally)
        yield from frames
        self.info = self._timing()

    def _timing(self) -> VideoInfo:
        start, count = self.start, self.tally["count"]
        if self.by_index:
            fps = self.video_fps
            reliable = start.ms_scale == 1.0 and count == self.expected
            duration = count / fps
        else:
            fps, duration = _decoded_timing(start.fps, self.tally["stamps_ms"], self.path)
            reliable = False
        return VideoInfo(self.path, fps, count, duration, start.width, start.height, reliable)


def _open_av(path: Path):
    """The file opened by PyAV with a video stream, or None (no PyAV, or a file it cannot open:
    the OpenCV path then decides)."""
    if av is None:
        return None
    try:
        with _utf8_name(path) as name:  # the open file outlives the link
            container = av.open(name, mode="r")
    except (av.FFmpegError, OSError, UnicodeError, ValueError):
        return None
    if not container.streams.video:
        container.close()
        return None
    return container


@dataclass
class _Decoded:
    """A decoded PyAV frame waiting to be chosen or passed over."""

    index: int
    time: float
    frame: object  # av.VideoFrame, converted only if chosen


def _sample_av(
    container,
    path: Path,
    fps: float,
    max_frames: int | None,
    size: int | None,
    video_fps: float,
    by_index: bool,
    expected: int | None,
    ms_scale: float,
    tally: dict,
) -> Iterator[Frame]:
    """sample_frames through PyAV: for each target time, the nearest of the decoded frames."""
    step = 1.0 / video_fps
    stream = container.streams.video[0]
    # One thread: the caller encodes on the other core (AUTO threading measured slower on 2).
    sparse = by_index and video_fps / fps >= SPARSE_FRAMES
    if sparse:
        stream.codec_context.options = {"skip_loop_filter": "all"}
        stream.codec_context.skip_frame = "NONREF"
    target, emitted, count, bad = 0, 0, 0, 0
    first = prev = last_pts = None
    last_index, last_time, last_emitted = -1, None, -1
    stopped = ""
    # Keyframe seeking (sparse only): the widest keyframe gap seen so far, the last keyframe,
    # the frames already seen when a seek was made (not to be taken again), and whether
    # seeking still moves forward (a file whose seek lands behind is decoded straight on).
    gap = last_key = landed = None
    floor, seeking, tally["seeks"] = -1, sparse, 0

    def emit(item: _Decoded) -> Frame:
        return Frame(item.index, round(item.time, 6), _av_rgb(item.frame, size))

    try:
        packets = container.demux(stream)
        while max_frames is None or emitted < max_frames:
            goal = target / fps
            if (seeking and gap is not None and last_time is not None and last_index > floor
                    and goal - last_time > max(SEEK_GAPS * gap, SEEK_MIN_SECONDS)
                    and (expected is None or goal * video_fps < expected - 1)):
                # The next target is past at least one more keyframe: jump to the last keyframe
                # before it (before the earliest frame that can be the nearest, half a frame
                # early) instead of decoding every reference frame on the way.
                try:
                    container.seek(int((first + (goal - step / 2) / ms_scale) / stream.time_base),
                                   backward=True, any_frame=False, stream=stream)
                    packets = container.demux(stream)
                    floor, last_key, landed = last_index, None, last_time
                    tally["seeks"] += 1
                except av.FFmpegError:
                    seeking = False  # not seekable: decode straight on
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                stopped = f"reading failed ({_one_line(exc)})"
                break
            if packet.pts is not None and packet.size:  # skipped frames count for the length
                last_pts = packet.pts if last_pts is None else max(last_pts, packet.pts)
                if sparse and expected is not None and first is not None and (
                        target / fps > (expected - 0.5) * step + 1e-9):
                    # No target left before the announced end: read on for the length only.
                    at = round((float(packet.pts * stream.time_base) - first) * ms_scale
                               * video_fps)
                    if at < expected:
                        continue
                    # The stream outlives its header: decode again from the keyframe before.
                    expected, floor, last_key, landed = None, last_index, None, None
                    try:
                        container.seek(packet.pts, backward=True, any_frame=False, stream=stream)
                    except av.FFmpegError:
                        stopped = f"could not go back to frame {at}, past the header's count"
                        break
                    packets = container.demux(stream)
                    continue
                if packet.is_keyframe:
                    key = float(packet.pts * stream.time_base)
                    if landed is not None and first is not None:
                        # Where the last seek landed: behind where it left, seeking is no help.
                        seeking = seeking and (key - first) * ms_scale > landed
                        landed = None
                    if last_key is not None and key > last_key:  # in real seconds, as goals
                        gap = max(gap or 0.0, (key - last_key) * ms_scale)
                    last_key = key
            try:
                decoded = packet.decode()
            except av.FFmpegError:
                bad += 1  # a damaged packet costs its own frame; the decoder resyncs
                continue
            for frame in decoded:
                seconds = None if frame.pts is None else float(frame.pts * frame.time_base)
                if seconds is not None and first is None:
                    first = seconds
                if by_index:
                    # Constant rate: the index from the timestamp (frames may have been skipped).
                    index = (last_index + 1 if seconds is None
                             else round((seconds - first) * ms_scale * video_fps))
                    if index <= floor:
                        continue  # decoded again after a seek that landed behind: seen already
                    index = max(index, last_index + 1)
                    time = index * step
                else:
                    index = last_index + 1
                    time = 0.0 if seconds is None else seconds - first
                    if last_time is not None and not time > last_time:
                        time = last_time + step  # a missing or backward timestamp: a guess
                last_index, last_time, count = index, time, count + 1
                if not by_index:
                    tally["stamps_ms"].append(time * 1000.0)
                current = _Decoded(index, time, frame)
                # Every target this frame reaches: the nearer of it and the frame before.
                while target / fps <= time and (max_frames is None or emitted < max_frames):
                    goal = target / fps
                    pick = prev if prev is not None and goal - prev.time <= time - goal else current
                    target += 1
                    if pick.index != last_emitted:
                        yield emit(pick)
                        last_emitted, emitted = pick.index, emitted + 1
                prev = current
        # A target past the last frame still gets it if within half a frame (as when decoding all).
        if (prev is not None and (max_frames is None or emitted < max_frames)
                and target / fps - prev.time <= step / 2 + 1e-9 and prev.index != last_emitted):
            yield emit(prev)
            emitted += 1
    finally:
        if by_index and last_pts is not None and first is not None:
            seconds = float(last_pts * stream.time_base) - first
            last_index = max(last_index, round(seconds * ms_scale * video_fps))
        tally["count"], tally["decoded"] = last_index + 1, count
        container.close()
    if count == 0:
        raise VideoError(f"{path}: the file opens but no frame could be decoded")
    if bad:
        log.warning("%s: %d damaged packets skipped", path, bad)
    frames_seen = last_index + 1
    short = expected is not None and frames_seen < expected - max(2, expected // 50)
    if not stopped and short and (max_frames is None or emitted < max_frames):
        stopped = f"the stream ended at frame {frames_seen} of the {expected} its header announces"
    if stopped:
        log.warning("%s: %s; keeping the %d frames sampled so far", path, stopped, emitted)


def _av_rgb(frame, size: int | None) -> np.ndarray:
    """A PyAV frame as RGB uint8, shrunk to size x size in the same swscale pass if size is given."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(width=size, height=size, format="rgb24",
                          interpolation="AREA").to_ndarray()


def _sample(
    path: Path,
    fps: float,
    max_frames: int | None,
    size: int | None,
    video_fps: float,
    by_index: bool,
    expected: int | None,
    tally: dict,
) -> Iterator[Frame]:
    """The OpenCV decoding loop: grab every frame, retrieve only the chosen ones."""
    step = 1.0 / video_fps
    index, target, emitted = 0, 0, 0
    first_ms = last_time = None
    stopped = ""
    with _capture(path) as cap:
        while max_frames is None or emitted < max_frames:
            try:
                if not cap.grab():
                    break
                stamp = cap.get(cv2.CAP_PROP_POS_MSEC)
            except cv2.error as exc:
                stopped = f"decoding failed ({_one_line(exc)})"
                break
            tally["count"] = index + 1
            if not by_index:
                tally["stamps_ms"].append(stamp)
            if by_index:
                time = index * step
            else:
                # Timestamps relative to the first frame; a missing or backward one is a guess.
                first_ms = stamp if first_ms is None else first_ms
                time = (stamp - first_ms) / 1000.0
                if last_time is not None and not time > last_time:
                    time = last_time + step
            last_time = time
            # The nearest frame to the target is the first one past target - half a frame.
            if time >= target / fps - step / 2:
                try:
                    ok, bgr = cap.retrieve()
                except cv2.error:
                    ok, bgr = False, None
                if not ok or bgr is None:
                    stopped = f"frame {index} could not be decoded"
                    break
                yield Frame(index, round(time, 6), _to_rgb(_shrink(bgr, size)))
                emitted += 1
                # Skip every target this frame is nearest to (sampling faster than the video).
                while (target + 1) / fps - step / 2 <= time:
                    target += 1
                target += 1
            index += 1
    if index == 0:
        raise VideoError(f"{path}: the file opens but no frame could be decoded")
    short = expected is not None and index < expected - max(2, expected // 50)
    if not stopped and short and (max_frames is None or emitted < max_frames):
        stopped = f"the stream ended at frame {index} of the {expected} its header announces"
    if stopped:
        log.warning("%s: %s; keeping the %d frames sampled so far", path, stopped, emitted)


def write_video(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    """Write RGB uint8 frames as .mp4/.m4v/.mov (mp4v) or .avi/.mkv (MJPG), atomically."""
    path = Path(path)
    fourcc = WRITER_FOURCC.get(path.suffix.lower())
    if fourcc is None:
        raise VideoError(
            f"{path}: cannot write this kind of video; use one of {list(WRITER_FOURCC)}"
        )
    if not frames:
        raise ValueError("write_video needs at least one frame")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    height, width = frames[0].shape[:2]
    # The writer silently drops frames of another size, so check them all first.
    for i, frame in enumerate(frames):
        if frame.dtype != np.uint8 or frame.shape != (height, width, 3):
            raise ValueError(
                f"frame {i}: expected ({height}, {width}, 3) uint8 RGB, "
                f"got {frame.shape} {frame.dtype}"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same suffix on the temp file: FFmpeg picks the container from it. An ASCII name, as
    # OpenCV crashes on names that are not UTF-8; the rename at the end gives the real one.
    tmp = path.with_name(f".captioner-{os.getpid()}.partial{path.suffix}")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), float(fps), (width, height))
    try:
        if not writer.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open a {fourcc} writer here")
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    if not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise VideoError(f"{path}: the {fourcc} writer produced no file")
    os.replace(tmp, path)
    return path


@contextmanager
def _capture(path: Path) -> Iterator[cv2.VideoCapture]:
    """An FFmpeg capture on an existing, non-empty file, released after; else VideoError saying why.

    A cv2.error anywhere inside (opening, reading, releasing) becomes a VideoError naming the
    file, so that a batch records the file and goes on.
    """
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file():
        raise VideoError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: file is empty")
    try:
        # FFmpeg only: the default would also try the image-sequence backend on names with '%'.
        with _utf8_name(path) as name:
            cap = cv2.VideoCapture(name, cv2.CAP_FFMPEG)
        try:
            if not cap.isOpened():
                raise VideoError(
                    f"{path}: cannot open as a video (not a video file, truncated before its "
                    "index, or a codec OpenCV's FFmpeg lacks)"
                )
            yield cap
        finally:
            cap.release()
    except cv2.error as exc:
        raise VideoError(f"{path}: OpenCV failed on this file ({_one_line(exc)})") from None


@contextmanager
def _utf8_name(path: Path) -> Iterator[str]:
    """A name OpenCV can open ``path`` by: itself, or for a name that is not UTF-8 (on which
    OpenCV crashes the process) a link with a plain name in a temporary folder."""
    try:
        str(path).encode("utf-8")
        yield str(path)
        return
    except UnicodeEncodeError:
        pass
    with tempfile.TemporaryDirectory(prefix="captioner-") as folder:
        link = Path(folder) / f"video{path.suffix.encode('ascii', 'replace').decode()}"
        link.symlink_to(os.path.abspath(path))
        yield str(link)


def _still_image(path: Path) -> str | None:
    """The picture format FFmpeg finds in ``path`` (jpeg, png...) when it is a still image, else
    None (also without PyAV, or when PyAV cannot open it: OpenCV then decides alone).

    FFmpeg reads a photo through an image demuxer, ``image2`` or one named ``<format>_pipe``
    (jpeg_pipe, png_pipe, webp_pipe...): a one-frame "video" whatever the file is named.
    """
    if av is None:
        return None
    try:
        with _utf8_name(path) as name, av.open(name, mode="r") as container:
            demuxer = container.format.name
    except (av.FFmpegError, OSError, UnicodeError, ValueError):
        return None
    if demuxer.endswith("_pipe"):
        return demuxer.removesuffix("_pipe")
    return "image" if demuxer in ("image2", "image2pipe") else None


def _one_line(exc: Exception) -> str:
    """An exception's message on one line (cv2.error messages carry newlines)."""
    return " ".join(str(exc).split())


def _read_start(path: Path) -> _Start:
    """Header numbers plus the timestamps of the first PROBE_FRAMES frames and the real size."""
    with _capture(path) as cap:
        picture = _still_image(path)
        if picture:  # FFmpeg would read it as a one-frame video; a photo belongs elsewhere
            raise VideoError(f"{path}: a still image ({picture}), not a video, whatever its name "
                             "says; caption it as a photo")
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
        if not cap.grab():
            raise VideoError(f"{path}: the file opens but no frame could be decoded")
        stamps = [cap.get(cv2.CAP_PROP_POS_MSEC)]
        ok, bgr = cap.retrieve()
        if not ok or bgr is None:
            raise VideoError(f"{path}: the first frame cannot be decoded")
        height, width = bgr.shape[:2]  # the decoded size, not the header's (rotation, odd streams)
        try:
            while len(stamps) < PROBE_FRAMES and cap.grab():
                stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        except cv2.error:
            pass  # a stream that breaks after its first frame is for probe to count
    rate = _container_rate(path, fps, count)
    if rate is None:
        return _Start(fps, count, width, height, stamps)
    # Overruling an absurd rate is a fix; choosing between two plausible ones is a guess.
    level = logging.WARNING if FPS_RANGE[0] <= fps <= FPS_RANGE[1] else logging.INFO
    log.log(
        level, "%s: FFmpeg reads %g fps, the container's other header %g; using it", path, fps, rate
    )
    scale = fps / rate  # FFmpeg's timestamps follow the rate it read
    return _Start(rate, count, width, height, [ms * scale for ms in stamps], scale)


def _container_rate(path: Path, fps: float, count: float) -> float | None:
    """The rate a container states besides the one FFmpeg read, where it must win over fps; or None.

    AVI: FFmpeg times frames by strh's dwRate/dwScale only; avih's frame period is the other
    statement (real files agree to 0.01%), and wins when they disagree. MP4/MOV: FFmpeg times
    frames by mdhd/stts only; mvhd's movie duration over the frame count is the other statement,
    but only against a rate outside FPS_RANGE: a plausible rate with a shorter movie is exactly
    what a trimmed video is (FFmpeg plays just the edit). MKV/WebM: the header and the block
    timestamps are independent already (see _fps_doubt). Where the statements agree, as in a
    file whose every header says 2 fps, the file is a 2 fps video: nothing else can say so.
    """
    lo, hi = FPS_RANGE
    if not (math.isfinite(fps) and fps > 0):
        return None  # no rate to correct the timestamps by; _decoded_timing copes
    try:
        with open(path, "rb") as f:
            head = f.read(36)
            if head[:4] == b"RIFF" and head[8:12] == b"AVI " and head[24:28] == b"avih":
                usec = struct.unpack_from("<I", head, 32)[0]  # avih.dwMicroSecPerFrame
                rate = 1e6 / usec if usec else math.nan
            elif head[4:8] in MP4_FIRST_BOXES and not lo <= fps <= hi:
                seconds = _mp4_movie_seconds(f)
                rate = count / seconds if seconds else math.nan
            else:
                return None
    except (OSError, struct.error):
        return None
    return rate if lo <= rate <= hi and abs(rate - fps) > FPS_TOLERANCE * rate else None


def _mp4_movie_seconds(f: BinaryIO) -> float | None:
    """The duration in mvhd (the movie header) of an open MP4/MOV file, in seconds; or None."""
    size = os.fstat(f.fileno()).st_size
    moov = next(((a, b) for kind, a, b in _boxes(f, 0, size) if kind == b"moov"), None)
    mvhd = moov and next((a for kind, a, _ in _boxes(f, *moov) if kind == b"mvhd"), None)
    if not mvhd:
        return None
    f.seek(mvhd)
    body = f.read(32)  # version, flags, created, modified, timescale, duration (v1: 64-bit times)
    if body[:1] == b"\x01":
        timescale, duration = struct.unpack_from(">IQ", body, 20)
    else:
        timescale, duration = struct.unpack_from(">II", body, 12)
    return duration / timescale if timescale else None


def _boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each ISO-BMFF box from start to end of an open file."""
    while start + 8 <= end:
        f.seek(start)
        size, kind = struct.unpack(">I4s", f.read(8))
        body = start + 8
        if size == 1:  # a 64-bit size follows
            size, body = struct.unpack(">Q", f.read(8))[0], start + 16
        elif size == 0:  # the box runs to the end
            size = end - start
        if size < body - start:
            return
        yield kind, body, min(start + size, end)
        start += size


def _stamp_span(stamps_ms: Sequence[float]) -> tuple[int, float, int, float] | None:
    """(first index, its ms, last index, its ms) of the timestamps that move forward, or None."""
    # Some streams report 0 for a frame (often the last) or repeat one: skip those.
    kept: list[tuple[int, float]] = []
    for i, stamp in enumerate(stamps_ms):
        if math.isfinite(stamp) and (not kept or stamp > kept[-1][1]):
            kept.append((i, stamp))
    if len(kept) < 2:
        return None
    return kept[0] + kept[-1]


def _stamp_fps(stamps_ms: Sequence[float]) -> float | None:
    """Frame rate shown by POS_MSEC timestamps (one per frame), or None if they show none."""
    span = _stamp_span(stamps_ms)
    if span is None:
        return None
    i0, t0, i1, t1 = span
    return (i1 - i0) * 1000.0 / (t1 - t0)


def _fps_doubt(fps: float, stamps_ms: Sequence[float]) -> str | None:
    """Why the header fps cannot be trusted, judged by the first frames' timestamps; or None."""
    lo, hi = FPS_RANGE
    if not (math.isfinite(fps) and lo <= fps <= hi):
        return f"header fps {fps:g} is not plausible"
    shown = _stamp_fps(stamps_ms)
    if shown is not None and abs(shown - fps) > FPS_TOLERANCE * fps:
        return f"header fps {fps:g} disagrees with the timestamps ({shown:.3f} fps)"
    return None


def _count_doubt(count: float, fps: float, stamps_ms: Sequence[float]) -> str | None:
    """Why the header frame count cannot be trusted (before looking at the end); or None."""
    if not (math.isfinite(count) and count >= 1 and count / max(fps, 1e-9) <= MAX_SECONDS):
        return f"header frame count {count:g} is not plausible"
    if len(stamps_ms) < PROBE_FRAMES and len(stamps_ms) != int(count):
        return f"header frame count {int(count)} but {len(stamps_ms)} frames decode"
    return None


def _check_end(path: Path, count: int) -> str | None:
    """None when the stream really ends after count frames (seek to the last one, one past it)."""
    with _capture(path) as cap:
        try:
            if cap.set(cv2.CAP_PROP_POS_FRAMES, count - 1) and cap.grab() and not cap.grab():
                return None
        except cv2.error:
            pass  # a seek that fails casts doubt on the count, not on the file
    return f"header frame count {count} does not match the end of the stream"


def _all_stamps(path: Path) -> list[float]:
    """POS_MSEC of every frame, by grabbing (decoding) the whole stream once; no pixels kept."""
    stamps: list[float] = []
    with _capture(path) as cap:
        try:
            while cap.grab():
                stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
        except cv2.error as exc:
            log.warning(
                "%s: decoding failed after %d frames (%s)", path, len(stamps), _one_line(exc)
            )
    if not stamps:
        raise VideoError(f"{path}: the file opens but no frame could be decoded")
    return stamps


def _decoded_timing(
    header_fps: float, stamps_ms: Sequence[float], path: Path | None = None
) -> tuple[float, float]:
    """(fps, duration) from decoded frames when the header is doubted; see the module docstring."""
    lo, hi = FPS_RANGE
    header_ok = math.isfinite(header_fps) and lo <= header_fps <= hi
    span = _stamp_span(stamps_ms)
    if span is not None:
        i0, t0, i1, t1 = span
        shown = (i1 - i0) * 1000.0 / (t1 - t0)
        # Prefer the header's exact rate (29.97, not 30.3 from rounded ms) when they agree.
        agree = header_ok and abs(shown - header_fps) <= FPS_TOLERANCE * shown
        fps = header_fps if agree else shown
        # The timed stretch, plus one frame time for each frame outside it (and the last one).
        return fps, (t1 - t0) / 1000.0 + (len(stamps_ms) - i1 + i0) / fps
    if header_ok:
        fps = header_fps
    elif math.isfinite(header_fps) and header_fps > 0:
        fps = header_fps
        log.warning("%s: no timestamps and an odd header fps %g; using it anyway", path, fps)
    else:
        fps = DEFAULT_FPS
        log.warning("%s: no timestamps and no header fps; assuming %g fps", path, fps)
    return fps, len(stamps_ms) / fps


def _shrink(image: np.ndarray, size: int | None) -> np.ndarray:
    """image resized to size x size (aspect not kept, as the encoders are trained), area filter."""
    if size is None or image.shape[:2] == (size, size):
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def _to_rgb(bgr: np.ndarray) -> np.ndarray:
    """OpenCV's BGR (or grey, or BGRA) uint8 frame as RGB uint8."""
    if bgr.ndim == 2:
        return np.repeat(bgr[..., None], 3, axis=-1)
    if bgr.shape[2] == 4:
        return cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
