"""One photo, one command: `captioner caption PHOTO` from start to exit, this tree against an
earlier commit, side by side in one run.

    python benchmarks/startup.py [--baseline REV] [--runs N] [--photo FILE]

Both trees run in fresh processes with a warm encoder (each converted once beforehand, as a
user's second run finds it) and a cold feature cache for the photo (every run captions a new
copy: the photo re-saved at another JPEG quality, so its bytes are new). The baseline runs
from a temporary git worktree at REV. Reported: the median wall time of N runs, and the
TensorFlow and Keras modules that `python -X importtime` shows the command importing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from worktree import BASELINE, ROOT, worktree

DEFAULT_PHOTO = ROOT.parent / "shared" / "data" / "flickr8k_mini" / "Images" / "2090545563_a4e66ec76b.jpg"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE, help="the commit to compare with")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    args = parser.parse_args()
    if not args.photo.is_file():
        print(f"skipped: {args.photo} is absent (the real photos live in ../shared/data)")
        return 0
    from PIL import Image

    work = Path(tempfile.mkdtemp(prefix="captioner-startup-"))
    env = {**os.environ, "CAPTIONER_CACHE": str(work / "cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    quality = iter(range(95, 0, -1))  # a new JPEG quality, hence new bytes, for every run

    def photo() -> Path:
        path = work / f"photo-{next(quality)}.jpg"
        Image.open(args.photo).convert("RGB").save(path, quality=int(path.stem.split("-")[1]))
        return path

    def caption(tree: Path, *flags: str) -> tuple[float, subprocess.CompletedProcess]:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *flags, "-m", "captioner", "caption", str(photo())],
                              cwd=tree, env={**env, "PYTHONPATH": str(tree)}, capture_output=True,
                              text=True, timeout=600)
        if done.returncode:
            raise SystemExit(f"{tree}: caption failed: {done.stderr[-500:]}")
        return time.perf_counter() - start, done

    with worktree(args.baseline) as baseline:
        trees = {f"before ({args.baseline})": baseline, "now": ROOT}
        for tree in trees.values():
            caption(tree)  # converts the encoder once: later runs find it cached
        print(f"`captioner caption` on one new photo, warm encoder, median of {args.runs} runs\n")
        print("| tree | seconds | TensorFlow/Keras modules imported |\n|---|---:|---:|")
        times: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.runs):  # alternated, so that both trees meet the machine's moods
            for name, tree in trees.items():
                times[name].append(caption(tree)[0])
        for name, tree in trees.items():
            seconds = statistics.median(times[name])
            _, traced = caption(tree, "-X", "importtime")
            heavy = [line for line in traced.stderr.splitlines() if line.startswith("import time:")
                     and line.split("|")[-1].strip().split(".")[0] in ("tensorflow", "keras")]
            print(f"| {name} | {seconds:.2f} | {len(heavy)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
