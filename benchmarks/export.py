"""Exported captioners against `captioner caption` on real photos: agreement and speed.

    python benchmarks/export.py [--limit N] [--coco]

Exports the bundled captioner as a SavedModel and as TFLite files, then captions the Flickr8k
dev photos of ../shared/data/flickr8k_mini (selected by the dev split list) four ways: the
Python API as `captioner caption` runs it (the card's beam and guidance), the same without
guidance, the SavedModel (loaded with plain tf.saved_model.load; guided in the graph, sent
requests of 128 photos, as `caption` decodes them), and
captioner's beam search stepping the exported decoder.tflite on the Python encoder's features
(free captions). Prints the share of
identical captions and each way's images/s. ``--coco``: the 118 everyday coco_dev photos too
(listed by their caption file), whose tags differ most from Flickr8k's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "flickr8k_mini"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=415)
    parser.add_argument("--coco", action="store_true", help="the coco_dev photos too")
    args = parser.parse_args()
    split = DATA / "Flickr_8k.devImages.txt"
    if not split.is_file():
        print(f"skipped: {split} is absent (the real photos live in ../shared/data)")
        return 0
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf

    from captioner import Captioner, export
    from captioner.captioning.captioner import STREAM_CHUNK
    from captioner.captioning.search import beam_search, shortlist
    from captioner.encoders.features import as_regions, extract_features
    from captioner.serving.tflite import TFLiteDecoder

    names = split.read_text().split()
    photos = [p for p in (DATA / "Images" / n for n in names) if p.is_file()][: args.limit]
    flickr = len(photos)
    if args.coco:
        from captioner.data.caption_sets import group_by_image, read_captions

        coco = DATA.parent / "coco_dev"
        photos += [coco / "Images" / n for n in group_by_image(read_captions(coco / "captions.token.txt").records)]
    captioner = Captioner.from_pretrained()
    folder = Path(tempfile.mkdtemp(prefix="export-bench-"))
    started = time.perf_counter()
    export(captioner, folder / "savedmodel", "savedmodel")
    saved_s = time.perf_counter() - started
    started = time.perf_counter()
    export(captioner, folder / "tflite", "tflite")
    tflite_s = time.perf_counter() - started

    timed = {}

    def run(name, fn):
        start = time.perf_counter()
        captions = fn()
        timed[name] = (captions, len(photos) / (time.perf_counter() - start))

    run("caption (card: beam and guidance)",
        lambda: [r["caption"] for r in captioner.caption_items(photos, progress=False)])
    run("caption --no-guided",
        lambda: [r["caption"] for r in captioner.caption_items(photos, progress=False, guided=False)])
    serve = tf.saved_model.load(str(folder / "savedmodel")).signatures["serving_default"]

    def served():
        out = []
        for first in range(0, len(photos), STREAM_CHUNK):
            batch = tf.constant([p.read_bytes() for p in photos[first : first + STREAM_CHUNK]])
            out += [c.decode() for c in serve(images=batch)["captions"].numpy()]
        return out

    run("SavedModel (tf.saved_model.load)", served)
    settings = captioner.decoding()
    decoder = TFLiteDecoder(folder / "tflite" / "decoder.tflite")
    frequent = captioner.card.get("decoding", {}).get("shortlist")
    if frequent:  # as caption decodes free captions
        decoder = decoder.shortlisted(shortlist(frequent))

    def stepped():
        found = extract_features(photos, captioner.encoder, kinds=(captioner.feature_kind,),
                                 progress=False)
        features = as_regions(found.features[captioner.feature_kind])
        out = []
        for first in range(0, len(features), 64):
            out += [c.text for c in beam_search(decoder, captioner.vocab, features[first : first + 64],
                                                settings["beam"], 20, settings["length_penalty"])]
        return out

    run("decoder.tflite through beam_search (cached features)", stepped)
    reference = timed["caption (card: beam and guidance)"][0]
    free = timed["caption --no-guided"][0]
    print(f"{flickr} Flickr8k dev photos, {len(photos) - flickr} coco_dev photos; export took {saved_s:.0f} s (SavedModel) and "
          f"{tflite_s:.0f} s (TFLite)\n")
    print("| way | images/s | same caption as `caption` | same as `caption --no-guided` |")
    print("|---|---:|---:|---:|")
    for name, (captions, rate) in timed.items():
        same = sum(a == b for a, b in zip(captions, reference)) / len(photos)
        same_free = sum(a == b for a, b in zip(captions, free)) / len(photos)
        print(f"| {name} | {rate:.1f} | {same:.1%} | {same_free:.1%} |")
    served_captions = timed["SavedModel (tf.saved_model.load)"][0]
    for photo, ours, theirs in zip(photos, reference, served_captions):
        if ours != theirs:
            print(f"{photo.name}: caption {ours!r}, SavedModel {theirs!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
