"""Captioning throughput on the real Flickr8k photos: end to end against the encoder alone.

    python benchmarks/caption.py [--images DIR] [--limit N] [--model BUNDLE ...] [--baseline REV]

Every run starts from a cold feature cache, so "end to end" is decode + encode + caption,
as `captioner caption` does it. The shipped default comes first (the card's beam, guided by
the tags, objects held back): what a user gets. The decoder's share is the time of the
decoding alone (on features already computed: the tags and the search for the default, the
search for the others) over the end-to-end time. The search is also timed stepping the
Keras decoder eagerly (as before the numpy step; loading it is left out), and the default
without the card's output-layer shortlist, side by side in the same run. Without --model:
the bundled captioner; give a show-and-tell bundle too to compare decoder types.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from worktree import ROOT, worktree

DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "flickr8k_mini" / "Images"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--limit", type=int, default=400)
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="a captioner bundle (repeat for several; default: the bundled one)")
    parser.add_argument("--baseline", metavar="REV",
                        help="then run this script as it was at commit REV, on the same photos")
    args = parser.parse_args()
    if not args.images.is_dir():
        print(f"skipped: {args.images} is absent (the real photos live in ../shared/data)")
        return 0
    sys.path.insert(0, str(ROOT))
    from captioner import Captioner
    from captioner.data.paths import IMAGE_EXTENSIONS, find_files

    paths = find_files(args.images, IMAGE_EXTENSIONS)[0][: args.limit]
    models = [Captioner.load(m) for m in args.model] or [Captioner.from_pretrained()]
    print(f"{len(paths)} photos from {args.images}\n")
    print("| decoder | run | images/s | decoder share |\n|---|---|---:|---:|")
    notes = []
    for captioner in models:
        decoder = captioner.card.get("config", {}).get("decoder", "show_tell")
        rows, note = _rows(captioner, paths)
        notes += [note] if note else []
        for name, seconds, share in rows:
            print(f"| {decoder} | {name} | {len(paths) / seconds:.1f} | "
                  f"{'' if share is None else f'{share:.0%}'} |", flush=True)
    print("".join(f"\n{note}" for note in notes))
    if args.baseline:
        with worktree(args.baseline) as tree:
            print(f"\nthe same, at commit {args.baseline}:", flush=True)
            subprocess.run([sys.executable, "benchmarks/caption.py", "--images", str(args.images.resolve()),
                            "--limit", str(args.limit)], cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                           stderr=subprocess.DEVNULL, check=True)
    return 0


def _rows(captioner, paths):
    from captioner.captioning.search import beam_search, greedy
    from captioner.encoders.features import as_regions, extract_features

    encoder, vocab, n = captioner.encoder, captioner.vocab, len(paths)

    def cold(fn):
        os.environ["CAPTIONER_CACHE"] = tempfile.mkdtemp(prefix="captioner-bench-")
        start = time.perf_counter()
        out = fn()
        return time.perf_counter() - start, out

    kind = captioner.feature_kind
    kinds = (kind, *captioner.tag_kinds())  # what caption computes: the tags' inputs too
    # The same pipeline as caption's, cold feature cache written as it goes, no captions.
    t_encoder, result = cold(lambda: extract_features(paths, encoder, kinds=kinds, progress=False))
    features = as_regions(result.features[kind])  # what the decoder reads
    rows = [("encoder alone (read, decode, CNN, cache written)", t_encoder, None)]

    settings = captioner.run_settings()
    t_e2e, _ = cold(lambda: captioner.caption_items(paths, progress=False))
    start = time.perf_counter()
    tags = captioner.tags_of(result.features)
    t_tags = time.perf_counter() - start

    def guided_search():
        start, captions = time.perf_counter(), []
        for first in range(0, n, 64):
            captions += captioner.caption_tagged(features[first:first + 64],
                                                 None if tags is None else tags[first:first + 64])
        return time.perf_counter() - start, [c.text for c in captions]

    t_decode, shipped = guided_search()
    decoding = captioner.card.setdefault("decoding", {})
    shortlist = decoding.get("shortlist")
    default = (f"beam {settings['beam']}" + (", guided" if settings["guided"] else "")
               + (f", shortlist {shortlist}" if shortlist else ""))
    rows.append((f"caption end to end, the shipped default ({default})", t_e2e, (t_tags + t_decode) / t_e2e))
    rows.append(("  tags alone (merged, calibrated)", t_tags, None))
    rows.append((f"  search alone, the default ({default}): numpy step", t_decode, None))
    note = None
    if shortlist:
        decoding["shortlist"] = None
        t_whole, whole = guided_search()
        rows.append(("  search alone, the default with the whole vocabulary: numpy step", t_whole, None))
        decoding["shortlist"] = shortlist
        changed = sum(a != b for a, b in zip(shipped, whole))
        note = f"The shortlist changes {changed} of the {n} default captions."

    def search(decoder, beam):
        """The free search alone: over ``decoder``, else as caption runs it (the numpy step,
        shortlisted when the card says so)."""
        start = time.perf_counter()
        for first in range(0, n, 64):
            batch = features[first:first + 64]
            if decoder is None:
                captioner.caption_features(batch, beam=beam)
            elif beam == 1:
                greedy(decoder, vocab, batch)
            else:
                beam_search(decoder, vocab, batch, width=beam)
        return time.perf_counter() - start

    for beam in (1, 3):
        t_e2e, _ = cold(lambda b=beam: captioner.caption_items(paths, beam=b, progress=False,
                                                               guided=False))
        name = "greedy" if beam == 1 else f"beam {beam}"
        t_search = search(None, beam)  # as caption runs it
        rows.append((f"caption end to end, {name}", t_e2e, t_search / t_e2e))
        rows.append((f"  search alone, {name}: numpy step", t_search, None))
        rows.append((f"  search alone, {name}: eager Keras step, whole vocabulary",
                     search(captioner.decoder, beam), None))
    return rows, note


if __name__ == "__main__":
    sys.exit(main())
