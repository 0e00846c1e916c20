"""Encoder throughput on the 878 real Flickr8k photos, every variant measured in one run.

    python benchmarks/encode.py [--images DIR] [--naive-limit N]

(a) the encoder alone on already-decoded batches; (b) captioner's extraction end to end, cache
cold; (c) the tutorials' naive loop (PIL open, resize, model.predict per image); (d) cache
warm; (e) the machine's ceiling for this encoder: counted float32 FLOPs per image against the
float32 matmul peak measured now. Prints a Markdown table for the README.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = ROOT.parent / "shared" / "data" / "flickr8k_mini" / "Images"


def model_flops(model) -> float:
    """Float ops of one forward pass: 2 x multiply-adds of every convolution and dense layer."""
    import keras

    total = 0.0
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2.0 * h * w * c * kh * kw
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            total += 2.0 * h * w * cout * kh * kw * layer.input.shape[-1] / layer.groups
        elif isinstance(layer, keras.layers.Dense):
            total += 2.0 * layer.input.shape[-1] * layer.units
    return total


def _all_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
        else:
            yield layer


def matmul_peak(seconds: float = 3.0) -> float:
    """Best float32 GFLOP/s of a large matrix product, TensorFlow and NumPy, over a few seconds."""
    import tensorflow as tf

    n = 2048
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    best = 0.0
    for run in (lambda: tf.linalg.matmul(a, a).numpy(), lambda: a @ a):
        run()
        start = time.perf_counter()
        count = 0
        while time.perf_counter() - start < seconds:
            run()
            count += 1
        best = max(best, 2.0 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return best


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--naive-limit", type=int, default=200, help="images for the slow naive loop")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not args.images.is_dir():
        print(f"skipped: {args.images} is absent (the real photos live in ../shared/data)")
        return 0
    os.environ["CAPTIONER_CACHE"] = tempfile.mkdtemp(prefix="captioner-bench-")
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from captioner.data.images import load_image, resize
    from captioner.data.paths import IMAGE_EXTENSIONS, find_files
    from captioner.encoders.features import extract_features
    from captioner.encoders.registry import get_encoder

    encoder = get_encoder()  # converts into the fresh cache: not timed
    paths = find_files(args.images, IMAGE_EXTENSIONS)[0]
    n = len(paths)
    size = encoder.input_size
    print(f"{n} photos from {args.images}; encoder {encoder.name}; batch {args.batch_size}")

    decoded = np.stack([resize(load_image(p), size) for p in paths[: args.batch_size * 8]])
    batches = [decoded[i : i + args.batch_size] for i in range(0, len(decoded), args.batch_size)]
    encoder.encode(batches[0])
    a = len(decoded) / timed(lambda: [encoder.encode(b) for b in batches])
    keras_rate = len(decoded) / timed(
        lambda: [encoder.model.predict_on_batch(b.astype(np.float32)) for b in batches]
    )

    cold = timed(lambda: extract_features(paths, encoder, kinds=("pooled",), batch_size=args.batch_size,
                                          progress=False))
    warm = timed(lambda: extract_features(paths, encoder, kinds=("pooled",), batch_size=args.batch_size,
                                          progress=False))
    b, d = n / cold, n / warm

    naive_paths = paths[: args.naive_limit]

    def naive():
        for p in naive_paths:
            img = Image.open(p).convert("RGB").resize((size, size))
            encoder.model.predict(np.asarray(img, np.float32)[None], verbose=0)

    c = len(naive_paths) / timed(naive)

    flops = model_flops(encoder.model)
    peak = matmul_peak()
    e = peak * 1e9 / flops
    rows = [
        ("(a) encoder alone, decoded batches (TFLite runner)", a),
        ("    same, Keras predict_on_batch (reference)", keras_rate),
        ("(b) extract_features end to end, cache cold", b),
        (f"(c) naive PIL + model.predict per image ({len(naive_paths)} photos)", c),
        ("(d) extract_features, cache warm", d),
        (f"(e) ceiling: {peak:.0f} GFLOP/s peak / {flops / 1e9:.3f} GFLOP per image", e),
    ]
    print("\n| measure | images/s |\n|---|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} |")
    print(f"\nb/e = {b / e:.2f} (target >= 0.5); b/c = {b / c:.1f} (target >= 5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
