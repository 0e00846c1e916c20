"""A captioner as one SavedModel: encoded image bytes in, captions and scores out.

Everything runs inside the graph, so the model loads with ``tf.saved_model.load`` (or
TensorFlow Serving) where captioner is not installed: JPEG/PNG/GIF/BMP decoding, the resize to
the encoder's input (bicubic with antialiasing, as Pillow's resize), the encoder, and the
decoder's beam search (captioner.serving.graph_search) with the beam and length penalty the
bundle's card chose. Two things of the Python path stay outside: EXIF orientation, and guided
captions (the tags' constraints); the README gives the measured agreement with ``caption``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from captioner.captioning.ensemble import Ensemble
from captioner.captioning.search import DEFAULT_MAX_LENGTH
from captioner.errors import CaptionerError
from captioner.serving.graph_search import beam_search_graph, ids_to_text


def export_savedmodel(captioner, out: Path, beam: int | None = None,
                      length_penalty: float | None = None) -> Path:
    """Write ``captioner`` to the new folder ``out`` as a SavedModel with the signature
    ``serving_default``: ``images`` (tf.string [None]) -> ``captions`` (tf.string [None]),
    ``scores`` (tf.float32 [None], mean log-probability per word)."""
    import keras
    import tensorflow as tf

    out = new_folder(out)
    if isinstance(captioner.decoder, Ensemble):
        raise CaptionerError("an ensemble cannot be exported yet; export one of its members")
    settings = captioner.decoding(beam, length_penalty)
    encoder, decoder, kind = captioner.encoder, captioner.decoder, captioner.feature_kind
    size = encoder.input_size
    words = tf.constant(list(captioner.vocab.id_to_word))

    def pixels(data):
        image = tf.cond(tf.io.is_jpeg(data), lambda: _jpeg(data, size),
                        lambda: tf.io.decode_image(data, channels=3, expand_animations=False))
        image = tf.cast(tf.ensure_shape(image, [None, None, 3]), tf.float32)
        image = _reduce(image, tf.reduce_min(tf.shape(image)[:2]) // size)
        # Pillow resizes rows, then columns, rounding to bytes in between.
        image = _to_bytes(tf.image.resize(image, [tf.shape(image)[0], size], "bicubic", antialias=True))
        return _to_bytes(tf.image.resize(image, [size, size], "bicubic", antialias=True))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve(images):
        batch = tf.map_fn(pixels, images, fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))
        features = encoder.model(batch, training=False)[kind]
        if kind == "spatial":  # (N, h, w, C) as (N, regions, C), what an attention decoder reads
            features = tf.reshape(features, [tf.shape(features)[0], -1, features.shape[-1]])
        ids, scores, _ = beam_search_graph(decoder, features, settings["beam"], DEFAULT_MAX_LENGTH,
                                           settings["length_penalty"])
        return {"captions": ids_to_text(ids, words), "scores": scores}

    archive = keras.export.ExportArchive()
    archive.track(encoder.model)
    archive.track(decoder)
    archive.add_endpoint("serving_default", serve)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        archive.write_out(str(staging), verbose=False)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _jpeg(data, size: int):
    """A JPEG decoded as ``load_image`` decodes it: at the smallest DCT scale (1/2, 1/4, 1/8)
    that keeps both sides at least ``size`` (Pillow's draft), with libjpeg's accurate integer
    transform (TensorFlow's default is the fast one, whose errors change some captions)."""
    import tensorflow as tf

    shape = tf.io.extract_jpeg_shape(data)
    fits = tf.reduce_min(shape[:2] // size)
    branch = tf.reduce_sum(tf.cast(fits >= [2, 4, 8], tf.int32))  # 0: full size .. 3: 1/8
    return tf.switch_case(branch, [
        lambda r=ratio: tf.io.decode_jpeg(data, channels=3, ratio=r, dct_method="INTEGER_ACCURATE")
        for ratio in (1, 2, 4, 8)])


def _reduce(image, factor):
    """Pillow's ``reduce(factor)`` when ``factor`` >= 2: the mean of each factor x factor block,
    blocks cut short at the right and bottom edges averaging what they hold."""
    import tensorflow as tf

    def boxes():
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        pad = [[0, -height % factor], [0, -width % factor], [0, 0]]

        def sums(x):
            x = tf.pad(x, pad)
            blocks = [tf.shape(x)[0] // factor, factor, tf.shape(x)[1] // factor, factor, 3]
            return tf.reduce_sum(tf.reshape(x, blocks), axis=[1, 3])

        return _to_bytes(sums(image) / sums(tf.ones_like(image)))

    return tf.cond(factor >= 2, boxes, lambda: image)


def _to_bytes(image):
    import tensorflow as tf

    return tf.clip_by_value(tf.round(image), 0.0, 255.0)


def new_folder(out: Path) -> Path:
    """``out`` if nothing is there yet (an empty folder is taken); else a clear error."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaptionerError(f"{out}: already exists; export into a new folder")
    if out.is_dir():
        out.rmdir()  # replaced by the finished export
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CaptionerError(f"{out}: cannot create its folder ({exc.strerror or exc})") from None
    return out
