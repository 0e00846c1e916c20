"""Per-frame encoder outputs of one video at one sampling rate: computed in one pass, cached.

The pass: a thread decodes and samples frames (captioner.data.video.VideoFrames) into a small
queue while the calling thread encodes them in batches, so decoding the next frames overlaps
encoding these; a frame is dropped once encoded, and memory holds at most QUEUE_FRAMES +
batch_size + 1 frames whatever the video's length. The same thread feeds each sampled frame to
the shot detector, so shot cuts need no second pass either. Outputs are written to disk as
they come: spatial maps (125 KB a frame as float16, too many to hold for a long video) are
read back through a memory map, the small kinds (pooled, probabilities) into memory.

The cache: one folder per (file content, sampling fps, encoder fingerprint, feature kinds),
plus a hash of the decoding, sampling and shot-detection code, beside the image features'
cache. Re-tagging a file with other clip settings (clip length, overlap, shots, top-k,
captions) reads it back without decoding; another fps or encoder makes a new entry. The
folder is written under a temporary name and renamed when complete, so a reader sees a whole
entry or none. Encoders with random weights get a temporary folder, never the cache.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from captioner.data.video import Frame, VideoFrames
from captioner.encoders.base import Encoder, code_digest
from captioner.encoders.features import cacheable, encoder_fingerprint
from captioner.errors import CaptionerError, VideoError
from captioner.files import cache_dir, file_digest
from captioner.tagging.objects import default_detector
from captioner.video.windows import ShotDetector

log = logging.getLogger(__name__)

QUEUE_FRAMES = 8  # decoded frames waiting for the encoder: enough to keep it busy, no more
# Frames per encoder call at most. Small, so the encoder starts while the video decodes (a
# 10 s clip at 1 fps has 10 frames); batches of 8 or 16 taken as they came were slower still
# (0.5 and 1.0 s against 0.38 and 0.60 s for a 720p clip at 1 and 5 fps): the TFLite runner
# reallocates for every new batch shape, and 2-4 frames per call already run at full speed.
BATCH_SIZE = 4
_CODE = ("data/video.py", "video/frame_features.py", "video/windows.py", "tagging/objects.py")
OBJECTS = "objects"  # a kind that is no encoder output: the object detector's boxes per frame
_DONE = object()  # the decoding thread's last word


@dataclass
class FrameFeatures:
    """One video's sampled frames (their stream index and time), its duration, its shot cuts,
    and the encoder outputs of each frame (``features[kind]``: (T, ...), spatial maps a
    read-only memory map; ``features["objects"]``: per frame, the detector's boxes)."""

    indices: np.ndarray
    times: np.ndarray
    duration: float
    cuts: list[float]
    features: dict[str, np.ndarray]
    folder: Path
    _keep: object = field(default=None, repr=False)  # a temporary folder lives as long as this


def frame_features(path: Path, encoder: Encoder, fps: float, kinds: tuple[str, ...] = ("pooled",),
                   batch_size: int = BATCH_SIZE, cache: bool = True,
                   cancel: threading.Event | None = None) -> FrameFeatures:
    """Encoder outputs of ``kinds`` for the frames of ``path`` sampled at ``fps``, from the cache
    when this file was done before at this rate with this encoder; VideoError if unreadable.
    Setting ``cancel`` (from another thread) ends the pass within a batch, with a CaptionerError."""
    path, kinds = Path(path), tuple(dict.fromkeys(kinds))
    unknown = set(kinds) - set(encoder.outputs) - {OBJECTS}
    if unknown:
        raise CaptionerError(f"encoder {encoder.name} has no output {sorted(unknown)}; "
                             f"it has {sorted(encoder.outputs)}")
    folder = _entry(path, encoder, fps, kinds) if cache and cacheable(encoder) else None
    if folder is not None:
        found = _load(folder)
        if found is not None:
            return found  # not even the header is read again
    reader = VideoFrames(path, fps=fps, size=encoder.input_size)  # a bad file fails here
    keep = None
    if folder is None:
        keep = tempfile.TemporaryDirectory(prefix="captioner-frames-")
        target = Path(keep.name) / "features"
    else:
        target = folder
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _compute(reader, encoder, kinds, batch_size, partial, cancel)
        try:
            os.rename(partial, target)
        except OSError:  # another run finished the same entry first: theirs is as good
            if not (target / "meta.json").is_file():
                raise
    finally:
        if partial.exists():
            shutil.rmtree(partial, ignore_errors=True)
    result = _load(target)
    if result is None:
        raise CaptionerError(f"{target}: frame features written but not readable")
    result._keep = keep
    return result


def _entry(path: Path, encoder: Encoder, fps: float, kinds: tuple[str, ...]) -> Path:
    """The cache folder for this file's content at this rate, encoder and kinds."""
    try:
        digest = file_digest(path)
    except OSError as exc:
        VideoFrames(path)  # says why in the words of every other video error (no such file...)
        raise VideoError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    tag = f"{encoder.name}-{encoder_fingerprint(encoder)}-{code_digest(*_CODE)}"
    name = f"{digest}-{fps:g}fps-{'+'.join(sorted(kinds))}"
    return cache_dir() / "video_features" / tag / digest[:2] / name


def _compute(reader: VideoFrames, encoder: Encoder, kinds: tuple[str, ...], batch_size: int,
             folder: Path, cancel: threading.Event | None = None) -> None:
    """Decode (background thread) and encode (this thread) the video, writing into folder."""
    frames: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
    stop = threading.Event()  # set once this thread is done, however: decoding ends within a frame
    shots = ShotDetector()
    thread = threading.Thread(target=_decode, args=(reader, shots, frames, stop), daemon=True,
                              name="captioner-decode")
    shapes: dict[str, list[int]] = {}
    indices: list[int] = []
    times: list[float] = []
    arrays = tuple(k for k in kinds if k != OBJECTS)
    detector, boxes = (default_detector(), []) if OBJECTS in kinds else (None, None)
    thread.start()
    try:  # from here on, any way out (an error, Ctrl-C, cancel) stops the decoding thread
        with contextlib.ExitStack() as files_open:
            files = {k: files_open.enter_context(open(folder / f"{k}.bin", "wb")) for k in arrays}
            for batch in _batches(frames, batch_size, cancel, reader.path):
                images = [f.image for f in batch]
                outputs = encoder.encode(np.stack(images), arrays)  # only these
                if detector is not None:
                    boxes += detector.detect(images)
                indices += [f.index for f in batch]
                times += [f.time for f in batch]
                del batch, images  # the frames go now; only their outputs stay
                for k in arrays:
                    rows = np.asarray(outputs[k], np.float16 if k == "spatial" else np.float32)
                    shapes[k] = list(rows.shape[1:])
                    files[k].write(rows.tobytes())
    finally:
        stop.set()
        thread.join()
    info = reader.info
    if info is None or not indices:  # the thread ended without a frame or an error: a bug
        raise CaptionerError(f"{reader.path}: decoding stopped without a result")
    meta = {"indices": indices, "times": times, "duration": info.duration, "cuts": shots.cuts,
            "kinds": {k: {"shape": shapes[k], "dtype": "float16" if k == "spatial" else "float32"}
                      for k in arrays}}
    if boxes is not None:
        meta[OBJECTS] = boxes
    (folder / "meta.json").write_text(json.dumps(meta))


def _decode(reader: VideoFrames, shots: ShotDetector, frames: queue.Queue,
            stop: threading.Event) -> None:
    """The decoding thread: frames (then _DONE, or the exception) into the queue, until stop."""
    decoded = iter(reader)
    try:
        for frame in decoded:
            shots.add(frame)
            if not _put(frames, frame, stop):
                return
            del frame
        _put(frames, _DONE, stop)
    except BaseException as exc:  # noqa: BLE001 - handed to the encoding thread to raise
        _put(frames, exc, stop)
    finally:
        decoded.close()  # the container now, not whenever the generator is collected


def _put(frames: queue.Queue, item, stop: threading.Event) -> bool:
    """Put item in the queue unless the consumer gave up; whether it was put."""
    while not stop.is_set():
        try:
            frames.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def _get(frames: queue.Queue, cancel: threading.Event | None, path: Path):
    """The next item of the queue, waiting for it unless the caller cancels the pass."""
    while True:
        if cancel is not None and cancel.is_set():
            raise CaptionerError(f"{path}: cancelled before the end of the video")
        try:
            return frames.get(timeout=0.1)
        except queue.Empty:
            continue


def _batches(frames: queue.Queue, batch_size: int, cancel: threading.Event | None,
             path: Path) -> Iterator[list[Frame]]:
    """The decoded frames in lists of up to batch_size: whatever has arrived when the encoder is
    free (so it starts on the first frames instead of waiting for a full batch, which a short
    video at 1 fps never fills), at least one."""
    done = False
    while not done:
        batch: list[Frame] = []
        item = _get(frames, cancel, path)  # wait for one
        while True:
            if item is _DONE:
                done = True
                break
            if isinstance(item, BaseException):
                raise item
            batch.append(item)
            if len(batch) == batch_size:
                break
            try:
                item = frames.get_nowait()  # and take what else is there
            except queue.Empty:
                break
        if batch:
            yield batch


def _load(folder: Path) -> FrameFeatures | None:
    """A complete entry, or None when absent or unreadable (then it is computed again)."""
    try:
        meta = json.loads((folder / "meta.json").read_text())
        count = len(meta["indices"])
        features = {}
        for kind, spec in meta["kinds"].items():
            shape = (count, *spec["shape"])
            if (folder / f"{kind}.bin").stat().st_size != math.prod(shape) * np.dtype(
                    spec["dtype"]).itemsize:
                raise ValueError(f"{kind}.bin has the wrong size")
            rows = np.memmap(folder / f"{kind}.bin", dtype=spec["dtype"], mode="r", shape=shape)
            features[kind] = rows if kind == "spatial" else np.array(rows)
        if OBJECTS in meta:
            if len(meta[OBJECTS]) != count:
                raise ValueError("the objects do not match the frames")
            features[OBJECTS] = meta[OBJECTS]
        return FrameFeatures(np.asarray(meta["indices"], np.int64),
                             np.asarray(meta["times"], np.float64), float(meta["duration"]),
                             [float(c) for c in meta["cuts"]], features, folder)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: damaged frame-feature cache entry (%s); computing again", folder, exc)
        shutil.rmtree(folder, ignore_errors=True)
        return None
