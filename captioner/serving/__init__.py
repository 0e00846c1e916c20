"""Captioners in the formats other systems load: a SavedModel (TensorFlow Serving, plain
``tf.saved_model.load``) and TFLite files (phones, small devices)."""

from __future__ import annotations

from pathlib import Path

from captioner.errors import CaptionerError

FORMATS = ("savedmodel", "tflite")


def export(captioner, out: Path, format: str = "savedmodel", beam: int | None = None,
           length_penalty: float | None = None) -> Path:
    """Write ``captioner`` to the new folder ``out`` in ``format`` (see FORMATS); the decoding
    defaults to the one its card chose."""
    if format == "savedmodel":
        from captioner.serving.savedmodel import export_savedmodel

        return export_savedmodel(captioner, out, beam, length_penalty)
    if format == "tflite":
        from captioner.serving.tflite import export_tflite

        return export_tflite(captioner, out, beam, length_penalty)
    raise CaptionerError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
