"""A captioner as TFLite files, for phones and small devices.

The export is a folder: ``encoder.tflite`` (RGB pixels 0-255 at the encoder's input size ->
its outputs), ``decoder.tflite`` with two signatures, ``init`` (features -> the decoder's
start states) and ``step`` (a word and the states -> next-word log-probabilities and the new
states), ``vocab.json`` (the words, by id) and ``decoding.json`` (the beam and length
penalty the card chose, the input size, the feature kind). The search loop stays in the
caller's language: docs/export-and-scale.md shows a greedy one in plain LiteRT interpreter
calls, and ``TFLiteDecoder`` lets captioner's own searches step through the files.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from captioner.captioning.ensemble import Ensemble
from captioner.captioning.numpy_step import log_softmax
from captioner.captioning.search import DEFAULT_MAX_LENGTH
from captioner.encoders.tflite_runner import convert, open_interpreter
from captioner.errors import CaptionerError
from captioner.files import atomic_write_text
from captioner.serving.savedmodel import new_folder


def export_tflite(captioner, out: Path, beam: int | None = None,
                  length_penalty: float | None = None) -> Path:
    """Write ``captioner`` to the new folder ``out`` as TFLite files (see the module's doc)."""
    import keras
    import tensorflow as tf

    out = new_folder(out)
    if isinstance(captioner.decoder, Ensemble):
        raise CaptionerError("an ensemble cannot be exported yet; export one of its members")
    encoder, decoder = captioner.encoder, captioner.decoder
    feature_shape = _feature_shape(encoder, captioner.feature_kind)
    start = decoder.initial_state(np.zeros((1, *feature_shape), "float32"))
    specs = [tf.TensorSpec([None, *s.shape[1:]], tf.float32, name=f"state_{i}")
             for i, s in enumerate(start)]

    @tf.function(input_signature=[tf.TensorSpec([None, *feature_shape], tf.float32, name="features")])
    def init(features):
        return {f"state_{i}": s for i, s in enumerate(decoder.initial_state(features))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="tokens"), *specs])
    def step(tokens, *states):
        logp, after = decoder.step(tokens, list(states))
        return {"log_probs": logp, **{f"state_{i}": s for i, s in enumerate(after)}}

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        archive = keras.export.ExportArchive()
        archive.track(decoder)
        archive.add_endpoint("init", init)
        archive.add_endpoint("step", step)
        archive.write_out(str(staging / "decoder_savedmodel"), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(staging / "decoder_savedmodel"),
                                                             signature_keys=["init", "step"])
        (staging / "decoder.tflite").write_bytes(converter.convert())
        shutil.rmtree(staging / "decoder_savedmodel")
        convert(encoder.model, staging / "encoder.tflite")
        captioner.vocab.save(staging / "vocab.json")
        atomic_write_text(staging / "decoding.json", json.dumps(
            {**captioner.decoding(beam, length_penalty), "max_length": DEFAULT_MAX_LENGTH,
             "shortlist": captioner.card.get("decoding", {}).get("shortlist"),
             "input_size": encoder.input_size, "feature_kind": captioner.feature_kind}, indent=1))
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _feature_shape(encoder, kind: str) -> tuple[int, ...]:
    """What the decoder reads per image: (regions, channels) for maps, (channels,) pooled."""
    shape = tuple(int(d) for d in encoder.model.output[kind].shape[1:])
    return (shape[0] * shape[1], shape[2]) if kind == "spatial" else shape


class TFLiteDecoder:
    """The exported ``decoder.tflite`` with the decoder interface captioner's searches use
    (``initial_state``, ``step``, ``vocab_size``), so they run on the exported files."""

    words = None  # the shortlist's word ids (see ``shortlisted``); None: the whole vocabulary

    def __init__(self, path: Path):
        interpreter = open_interpreter(Path(path))
        self._init = interpreter.get_signature_runner("init")
        self._step = interpreter.get_signature_runner("step")
        self.vocab_size = int(self._step.get_output_details()["log_probs"]["shape"][-1])

    def initial_state(self, features) -> list[np.ndarray]:
        """The start states for features (N, ...)."""
        out = self._init(features=np.asarray(features, "float32"))
        return [out[f"state_{i}"] for i in range(len(out))]

    def step(self, tokens, states):
        """Next-word log-probabilities (N, V) and the new states."""
        out = self._step(tokens=np.asarray(tokens, "int32"),
                         **{f"state_{i}": np.asarray(s, "float32") for i, s in enumerate(states)})
        logp = out["log_probs"]
        if self.words is not None:  # the shortlist's columns, renormalised over them
            logp = log_softmax(logp[:, self.words])
        return logp, [out[f"state_{i}"] for i in range(len(states))]

    def shortlisted(self, words) -> TFLiteDecoder:
        """This decoder scoring only ``words`` (sorted ids), as the numpy step's ``shortlisted``:
        the file still computes every word; the searches rank the shortlist's columns."""
        twin = copy.copy(self)
        twin.words = np.asarray(words, dtype=np.intp)
        return twin
