"""Video sampling throughput: sample-then-decode against decode-everything-then-subsample.

    python benchmarks/video.py [--clip PATH]

For a 10 s real Kinetics clip, at 1 and at 5 sampled frames per second: frames sampled and
encoded per second of wall time by captioner.video.sample_frames (grab every frame, decode
only the sampled ones) against the naive way (decode every frame with read(), keep every
k-th, then encode). Both encode the same number of frames with the same encoder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = next(iter(sorted((ROOT.parent / "shared" / "data" / "video_mini" / "kinetics").rglob("*.mp4"))), None) \
    if (ROOT.parent / "shared" / "data" / "video_mini").is_dir() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=DEFAULT_CLIP)
    args = parser.parse_args()
    if args.clip is None or not args.clip.is_file():
        print("skipped: no clip (the real clips live in ../shared/data/video_mini)")
        return 0
    sys.path.insert(0, str(ROOT))
    import cv2

    from captioner.data.images import resize
    from captioner.data.video import probe, sample_frames
    from captioner.encoders.features import encode_images
    from captioner.encoders.registry import get_encoder

    encoder = get_encoder()
    info = probe(args.clip)
    print(f"{args.clip.name}: {info.duration:.1f} s, {info.frame_count} frames at {info.fps:.2f} fps, "
          f"{info.width}x{info.height}\n")
    encode_images([resize(next(sample_frames(args.clip)).image, encoder.input_size)], encoder)  # warm up

    def ours(fps):
        frames = [f.image for f in sample_frames(args.clip, fps=fps, size=encoder.input_size)]
        encode_images(frames, encoder)
        return len(frames)

    def naive(fps):
        cap = cv2.VideoCapture(str(args.clip))
        every, frames, i = max(1, round(info.fps / fps)), [], 0
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % every == 0:
                frames.append(resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), encoder.input_size))
            i += 1
        cap.release()
        encode_images(frames, encoder)
        return len(frames)

    print("| sampling | way | frames | seconds | frames/s | video s per s |\n|---|---|---:|---:|---:|---:|")
    for fps in (1.0, 5.0):
        for name, fn in (("sample, decode only those", ours), ("decode all, subsample", naive)):
            start = time.perf_counter()
            n = fn(fps)
            seconds = time.perf_counter() - start
            print(f"| {fps:g} fps | {name} | {n} | {seconds:.2f} | {n / seconds:.1f} | {info.duration / seconds:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
