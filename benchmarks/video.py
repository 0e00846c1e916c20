"""Video throughput before and after the fast path, side by side in one run.

    python benchmarks/video.py [--clip PATH ...] [--repeats 3]

Default clips: the first 1280x720 H.264 Kinetics clip and the 320x240 H.264 MSVD AVI
(0lh_UWF9ZP4_62_69.avi) of ../shared/data/video_mini. For each, at 1 and 5 sampled frames per
second, video-seconds per second of wall time (best of --repeats) for:

* sample + encode (pooled features), before: the previous reader, kept here as it was (OpenCV
  grab() of every frame, retrieve() of the sampled ones, a full-size PIL bicubic resize),
  then all the video's frames encoded at once (encode_images);
* sample + encode, after: captioner.video.frame_features with the cache off (PyAV, skipping
  non-reference frames and deblocking when sparse, one swscale pass to 224 px, decoding in a
  thread while batches are encoded);
* tag, before: the previous VideoTagger.tag_video (probe, which seeks to the end to check the
  frame count, then the previous reader, encode all, caption the frames and the clips);
* tag, after: VideoTagger.default().tag_video on an empty cache, and again from the cache
  (another clip length: nothing decoded or encoded).

"frames held" is how many decoded frames the way holds at its peak (counted, not guessed):
before, every sampled frame of the video (and all their spatial maps, 250 KB each); after,
at most the queue and one batch (spatial maps go to disk).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO_MINI = ROOT.parent / "shared" / "data" / "video_mini"


def default_clips() -> list[Path]:
    kinetics = sorted((VIDEO_MINI / "kinetics").rglob("*.mp4")) if VIDEO_MINI.is_dir() else []
    avi = VIDEO_MINI / "msvd" / "video" / "0lh_UWF9ZP4_62_69.avi"
    return kinetics[:1] + ([avi] if avi.is_file() else [])


def old_sample(path: Path, fps: float, size: int):
    """The reader before this change: grab every frame, retrieve the sampled ones, PIL resize.
    (Its header checks are the ones captioner.data.video still runs; only the loop is copied.)"""
    import cv2
    import numpy as np
    from PIL import Image

    from captioner.data.video import _read_start

    start = _read_start(Path(path))
    step = 1.0 / start.fps
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames, index, target = [], 0, 0
    while cap.grab():
        time_ = index * step
        if time_ >= target / fps - step / 2:
            ok, bgr = cap.retrieve()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            image = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BICUBIC))
            frames.append((index, round(time_, 6), image))
            while (target + 1) / fps - step / 2 <= time_:
                target += 1
            target += 1
        index += 1
    cap.release()
    return frames


def old_tag(tagger, path: Path, options) -> list[dict]:
    """VideoTagger.tag_video as it was: probe, sample everything into memory, encode all."""
    from captioner.data.video import probe
    from captioner.encoders.features import encode_images
    from captioner.video.windows import assign_rows, fixed_windows

    info = probe(path)
    frames = old_sample(path, tagger.fps(options), tagger.encoder.input_size)
    windows = fixed_windows(info.duration, options.clip_seconds, options.overlap)
    kinds = tuple(dict.fromkeys(("pooled", "probabilities", tagger.captioner.feature_kind)))
    outputs = encode_images([image for _, _, image in frames], tagger.encoder, kinds)
    clips = assign_rows([t for _, t, _ in frames], windows)
    tags, captions = tagger._default(outputs, clips, options)
    return [{"clip": i, "tags": t, "caption": c} for i, (t, c) in enumerate(zip(tags, captions))]


def best(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, nargs="*", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    clips = args.clip or default_clips()
    if not clips or not all(c.is_file() for c in clips):
        print("skipped: no clip (the real clips live in ../shared/data/video_mini)")
        return 0
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from captioner import TagOptions, VideoTagger
    from captioner.data.video import probe
    from captioner.encoders.features import encode_images
    from captioner.video import frame_features as ff

    tagger = VideoTagger.default()
    encoder = tagger.encoder
    print(f"{os.cpu_count()} cores; encoder {encoder.name}; best of {args.repeats}\n")
    warm = old_sample(clips[0], 1.0, encoder.input_size)
    encode_images([image for _, _, image in warm], encoder)  # load and warm the encoder

    held = {"now": 0, "peak": 0}

    class CountingFrames(ff.VideoFrames):
        def __iter__(self):
            import weakref

            def gone():
                held["now"] -= 1

            for frame in super().__iter__():
                held["now"] += 1
                held["peak"] = max(held["peak"], held["now"])
                weakref.finalize(frame, gone)
                yield frame

    def sample_before(clip, fps):
        frames = old_sample(clip, fps, encoder.input_size)
        encode_images([image for _, _, image in frames], encoder)
        return len(frames)

    def sample_after(clip, fps):
        return len(ff.frame_features(clip, encoder, fps, ("pooled",), cache=False).indices)

    def tag_after(clip, options):
        os.environ["CAPTIONER_CACHE"] = tempfile.mkdtemp(prefix="captioner-bench-")  # a miss
        return tagger.tag_video(clip, options)

    def counted(fn):
        """best() with the decoded frames alive at once counted (their peak in held)."""
        held["peak"] = 0
        ff.VideoFrames, real = CountingFrames, ff.VideoFrames
        try:
            return best(fn, args.repeats)
        finally:
            ff.VideoFrames = real

    print("| clip | sampling | way | frames | seconds | video s per s | speed-up | frames held |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for clip in clips:
        info = probe(clip)
        name = f"{clip.name[:16]} {info.width}x{info.height}"
        for fps in (1.0, 5.0):
            options = TagOptions(fps=fps)
            rows = []
            seconds, n = best(partial(sample_before, clip, fps), args.repeats)
            rows.append(("sample + encode, before", n, seconds, n))
            seconds, n = counted(partial(sample_after, clip, fps))
            rows.append(("sample + encode, after", n, seconds, held["peak"]))
            seconds, _ = best(partial(old_tag, tagger, clip, options), args.repeats)
            rows.append(("tag, before", rows[0][1], seconds, rows[0][1]))
            seconds, _ = counted(partial(tag_after, clip, options))
            rows.append(("tag, after", rows[1][1], seconds, held["peak"]))
            again = TagOptions(fps=fps, clip_seconds=2.0, shots=False)
            seconds, _ = best(partial(tagger.tag_video, clip, again), args.repeats)
            rows.append(("tag, after, cached (other clips)", 0, seconds, 0))
            base = {"sample": rows[0][2], "tag": rows[2][2]}
            for way, n, seconds, frames_held in rows:
                ref = base["sample" if way.startswith("sample") else "tag"]
                print(f"| {name} | {fps:g} fps | {way} | {n} | {seconds:.3f} | "
                      f"{info.duration / seconds:.1f} | {ref / seconds:.2f}x | {frames_held} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
