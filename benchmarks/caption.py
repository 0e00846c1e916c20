"""Captioning throughput on the real Flickr8k photos: end to end against the encoder alone.

    python benchmarks/caption.py [--images DIR] [--limit N]

Every run starts from a cold feature cache, so "end to end" is decode + encode + caption,
as `captioner caption` does it. The decoder's share is the time of the search alone (on
features already computed) over the end-to-end time.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "flickr8k_mini" / "Images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--limit", type=int, default=400)
    args = parser.parse_args()
    if not args.images.is_dir():
        print(f"skipped: {args.images} is absent (the real photos live in ../shared/data)")
        return 0
    sys.path.insert(0, str(ROOT))
    from captioner import Captioner
    from captioner.data.paths import IMAGE_EXTENSIONS, find_files
    from captioner.encoders.features import extract_features

    captioner = Captioner.from_pretrained()
    encoder = captioner.encoder
    paths = find_files(args.images, IMAGE_EXTENSIONS)[0][: args.limit]
    n = len(paths)

    def cold(fn):
        os.environ["CAPTIONER_CACHE"] = tempfile.mkdtemp(prefix="captioner-bench-")
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    t_encoder, result = cold(lambda: extract_features(paths, encoder, cache=False, progress=False))
    features = result.features["pooled"]
    rows = [("encoder alone (decode + CNN)", t_encoder, None)]
    for beam in (1, 3):
        t_e2e, _ = cold(lambda b=beam: captioner.caption_items(paths, beam=b, progress=False))
        start = time.perf_counter()
        captioner.caption_features(features, beam=beam)
        t_search = time.perf_counter() - start
        name = "greedy" if beam == 1 else f"beam {beam}"
        rows.append((f"caption end to end, {name}", t_e2e, t_search / t_e2e))
    print(f"{n} photos from {args.images}\n")
    print("| run | images/s | decoder share |\n|---|---:|---:|")
    for name, seconds, share in rows:
        print(f"| {name} | {n / seconds:.1f} | {'' if share is None else f'{share:.0%}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
