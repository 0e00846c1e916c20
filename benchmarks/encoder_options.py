"""Encoder options side by side: threads, batch size, float16 and int8 weights.

    python benchmarks/encoder_options.py [--rounds 3]

On the dev-select photos of ../shared/data/flickr8k_mini, decoded once up front: images/s of
the Lite0 TFLite encoder (the shipped float32 one with 1 thread and with every core, at batch
8, 16, 32 and 64; a float16-weights and a dynamic-range int8 conversion at the default
settings), every variant timed in each round, best round kept. Then the bundled captioner's
BLEU-4 and CIDEr-D on those photos from each precision's features (the card's beam, free
captions). An option is worth keeping only if it is faster than float32 in this same run and
both scores stay within 0.3 of float32's. Prints Markdown tables for the README.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "flickr8k_mini"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not DATA.is_dir():
        print(f"skipped: {DATA} is absent (the real photos live in ../shared/data)")
        return 0
    sys.path.insert(0, str(ROOT))
    import tensorflow as tf

    from captioner import Captioner
    from captioner.captioning.dataset import read_records
    from captioner.data.caption_sets import in_splits
    from captioner.data.images import load_image, resize
    from captioner.encoders.features import as_regions
    from captioner.encoders.tflite_runner import TFLiteRunner
    from captioner.evaluation.captions import evaluate_captions
    from captioner.machine import cores

    captioner = Captioner.from_pretrained()
    encoder = captioner.encoder
    records = [r for r in read_records(DATA / "Flickr8k.token.txt") if in_splits(r, ("dev-select",))]
    refs: dict[str, list[str]] = {}
    for r in records:
        if (DATA / "Images" / r.image).is_file():
            refs.setdefault(r.image, []).append(r.caption)
    names = sorted(refs)
    size = encoder.input_size
    images = np.stack([resize(load_image(DATA / "Images" / n, size=size), size) for n in names])
    images = images.astype(np.float32)

    folder = Path(tempfile.mkdtemp(prefix="encoder-options-"))
    files = {"float32": None}
    for name, setup in (("float16 weights", _float16), ("int8 dynamic range", _int8)):
        converter = tf.lite.TFLiteConverter.from_keras_model(encoder.model)
        setup(converter, tf)
        with contextlib.redirect_stdout(io.StringIO()):
            files[name] = folder / f"{name.split()[0]}.tflite"
            files[name].write_bytes(converter.convert())
    shipped = _shipped_file(encoder)
    all_cores = cores()
    variants = {}
    for threads in sorted({1, all_cores}):
        for batch in (8, 16, 32, 64):
            variants[("float32", threads, batch)] = TFLiteRunner(shipped, threads)
    for name in ("float16 weights", "int8 dynamic range"):
        variants[(name, all_cores, 32)] = TFLiteRunner(files[name], all_cores)

    kind = captioner.feature_kind
    best = {key: 0.0 for key in variants}
    for _ in range(args.rounds):
        for (name, threads, batch), runner in variants.items():
            runner(images[:batch], (kind,))  # allocate for this batch size
            start = time.perf_counter()
            for first in range(0, len(images), batch):
                runner(images[first : first + batch], (kind, "probabilities"))
            best[(name, threads, batch)] = max(best[(name, threads, batch)],
                                               len(images) / (time.perf_counter() - start))

    scores = {}
    for name in ("float32", "float16 weights", "int8 dynamic range"):
        runner = variants[(name, all_cores, 32)]
        features = np.concatenate([runner(images[i : i + 32], (kind,))[kind]
                                   for i in range(0, len(images), 32)])
        captions = captioner.caption_features(as_regions(features))
        result = evaluate_captions({n: c.text for n, c in zip(names, captions)}, refs)
        scores[name] = (result["BLEU-4"], result["CIDEr-D"])

    print(f"{len(names)} dev-select photos, decoded once; {all_cores} cores; best of "
          f"{args.rounds} rounds, all variants timed in each round\n")
    print("| encoder | threads | batch | images/s |\n|---|---:|---:|---:|")
    for (name, threads, batch), rate in best.items():
        print(f"| {name} | {threads} | {batch} | {rate:.1f} |")
    base = scores["float32"]
    reference = best[("float32", all_cores, 32)]
    print("\n| encoder | BLEU-4 | CIDEr-D | speed vs float32 | kept |\n|---|---:|---:|---:|---|")
    for name, (bleu, cider) in scores.items():
        speed = best[(name, all_cores, 32)] / reference
        close = abs(bleu - base[0]) <= 0.3 and abs(cider - base[1]) <= 0.3
        kept = "shipped" if name == "float32" else ("yes" if close and speed > 1.0 else "no")
        print(f"| {name} | {bleu:.2f} | {cider:.2f} | {speed:.2f}x | {kept} |")
    return 0


def _float16(converter, tf) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]


def _int8(converter, tf) -> None:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]  # weights int8, activations float


def _shipped_file(encoder) -> Path:
    """The .tflite file the shipped encoder runs (made by get_encoder on first use)."""
    from captioner.encoders.base import code_digest
    from captioner.encoders.registry import CONVERSION_CODE
    from captioner.files import cache_dir

    folder = cache_dir() / "encoders" / code_digest(*CONVERSION_CODE)
    return next(folder.glob(f"{encoder.name}-*.tflite"))


if __name__ == "__main__":
    sys.exit(main())
