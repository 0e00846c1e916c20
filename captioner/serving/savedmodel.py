"""A captioner as one SavedModel: encoded image bytes in, captions and scores out.

Everything runs inside the graph, so the model loads with ``tf.saved_model.load`` (or
TensorFlow Serving) where captioner is not installed: JPEG/PNG/GIF/BMP decoding, the resize to
the encoder's input (bicubic with antialiasing, as Pillow's resize), the encoder, and the
decoder's beam search (captioner.serving.graph_search) with the beam, length penalty and
shortlist the bundle's card chose, and the guidance ``caption`` gives by default: the merged
photo tags (ImageNet words and concepts, calibrated), the confident ones named by the
caption, objects without evidence held back (captioner.serving.graph_guidance). As ``caption`` does, transparency is composited on white.
An image that is no JPEG/PNG/GIF/BMP, whose header is cut short, or that has more pixels than
``load_image`` accepts is refused from its header, before decoding, and one whose data past a
valid header cannot be decoded is refused when its decoding fails: its row gets an error and
no caption while the rest of the request is captioned. Outside the graph: EXIF orientation,
and the object detector (``caption --objects``, off by default). tests/test_serving.py
measures the agreement with ``caption``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from captioner.captioning.captioner import TAG_COUNT
from captioner.captioning.ensemble import Ensemble
from captioner.captioning.guided import HOLD_PENALTY
from captioner.captioning.search import DEFAULT_MAX_LENGTH
from captioner.data.images import DEFAULT_MAX_PIXELS
from captioner.errors import CaptionerError
from captioner.serving.graph_search import beam_search_graph, ids_to_text

DAMAGED = "the image's data is damaged: it cannot be decoded"


def export_savedmodel(captioner, out: Path, beam: int | None = None,
                      length_penalty: float | None = None) -> Path:
    """Write ``captioner`` to the new folder ``out`` as a SavedModel with the signature
    ``serving_default``: ``images`` (tf.string [None]) -> ``captions`` (tf.string [None]),
    ``scores`` (tf.float32 [None], mean log-probability per word), ``errors`` (tf.string
    [None]: "" for a captioned image, else why it was refused; its caption "", score NaN),
    and, for an encoder with an ImageNet head, the best tags: ``tags``, ``tag_scores`` and
    ``tag_sources`` ([None, 5]; "" and NaN past an image's tags). Guided as the card says."""
    import keras
    import tensorflow as tf

    from captioner.serving.graph_guidance import GraphGuidance

    out = new_folder(out)
    if isinstance(captioner.decoder, Ensemble):
        raise CaptionerError("an ensemble cannot be exported yet; export one of its members")
    settings = captioner.decoding(beam, length_penalty)
    shortlist = captioner.card.get("decoding", {}).get("shortlist")  # as caption decodes
    encoder, decoder, kind = captioner.encoder, captioner.decoder, captioner.feature_kind
    size = encoder.input_size
    words = tf.constant(list(captioner.vocab.id_to_word))
    guide, tagger = captioner.guidance(), captioner.tagger
    hold_penalty = captioner.card.get("decoding", {}).get("hold_penalty", HOLD_PENALTY)
    tagging = None if tagger is None else GraphGuidance(
        tagger, captioner.vocab, guide["guide_threshold"], guide["hold_threshold"], hold_penalty)

    def pixels(data):
        image = tf.cond(tf.io.is_jpeg(data), lambda: _jpeg(data, size), lambda: _on_white(data))
        image = tf.cast(tf.ensure_shape(image, [None, None, 3]), tf.float32)
        image = _reduce(image, tf.reduce_min(tf.shape(image)[:2]) // size)
        # Pillow resizes rows, then columns, rounding to bytes in between.
        image = _to_bytes(tf.image.resize(image, [tf.shape(image)[0], size], "bicubic", antialias=True))
        return _to_bytes(tf.image.resize(image, [size, size], "bicubic", antialias=True))

    def checked(data):
        """The image's pixels, or blank ones and why it is refused (decoded only if it passes)."""
        problem = _problem(data, DEFAULT_MAX_PIXELS)
        image = tf.cond(problem == "", lambda: pixels(data), lambda: tf.zeros([size, size, 3]))
        return image, problem

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="images")])
    def serve(images):
        batch, problems = _each_checked(images, checked, size)
        fine = problems == ""
        encoded = encoder.model(batch, training=False)
        features = _regions(encoded[kind]) if kind == "spatial" else encoded[kind]
        found, guides = {}, None
        if tagging is not None:
            maps = _regions(encoded["spatial"]) if tagging.concepts else None
            tag_scores, from_concept = tagging.scores(encoded["probabilities"], maps)
            best = tagging.top(tag_scores, from_concept, TAG_COUNT)
            for name, part, empty in zip(("tags", "tag_scores", "tag_sources"), best, ("", float("nan"), "")):
                found[name] = tf.where(fine[:, None], part, empty)
            guides = tagging.guides(tag_scores) if guide["guided"] else None
        ids, scores, _ = beam_search_graph(decoder, features, settings["beam"], DEFAULT_MAX_LENGTH,
                                           settings["length_penalty"], shortlist, guides)
        return {"captions": tf.where(fine, ids_to_text(ids, words), ""),
                "scores": tf.where(fine, scores, float("nan")), "errors": problems, **found}

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


def _regions(maps):
    """(N, h, w, C) maps as (N, regions, C), what an attention decoder and the concepts read,
    through float16 as ``caption`` reads them (captioner.encoders.features.stored)."""
    import tensorflow as tf

    maps = tf.cast(tf.cast(maps, tf.float16), tf.float32)
    return tf.reshape(maps, [tf.shape(maps)[0], -1, maps.shape[-1]])


def _each_checked(images, checked, size: int):
    """``checked`` (pixels, why refused) of every image, in a tf.data pipeline that drops a row
    whose ops fail (its data is damaged past the header checks: the reason given is DAMAGED).
    A graph cannot catch an op's error, so else one such file would fail the whole request."""
    import tensorflow as tf

    count = tf.shape(images)[0]
    rows = tf.data.Dataset.from_tensor_slices((tf.range(count), images))
    rows = rows.map(lambda i, data: (i, *checked(data))).ignore_errors()
    # Every row that survives in one batch (none: no batch), then joined once to the empty
    # start: joining row by row would copy the growing batch for every image.
    whole = rows.batch(tf.cast(tf.maximum(count, 1), tf.int64))
    start = (tf.zeros([0], tf.int32), tf.zeros([0, size, size, 3]), tf.zeros([0], tf.string))
    index, batch, problems = whole.reduce(start, lambda got, part: tuple(
        tf.concat([old, new], 0) for old, new in zip(got, part)))
    where = index[:, None]
    return (tf.scatter_nd(where, batch, [count, size, size, 3]),
            tf.tensor_scatter_nd_update(tf.fill([count], DAMAGED), where, problems))


def _problem(data, max_pixels: int):
    """Why the graph refuses an image ("" when it does not), from its header alone: not a
    JPEG, PNG, GIF or BMP, a header cut short, or more pixels than ``max_pixels`` (a
    decompression bomb is refused before it is decoded, as ``load_image`` refuses it)."""
    import tensorflow as tf

    head = tf.io.decode_raw(tf.strings.substr(data + tf.constant("\0" * 26), 0, 26), tf.uint8)
    head = tf.cast(head, tf.int64)

    def number(start, count, big_endian):
        digits = head[start : start + count]
        digits = digits if big_endian else tf.reverse(digits, [0])
        return tf.reduce_sum(digits * tf.constant([256 ** (count - 1 - i) for i in range(count)], tf.int64))

    def signed32(start):  # a BMP height is negative for top-down rows
        value = number(start, 4, False)
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    magic = tf.strings.substr(data, 0, 4)
    jpeg, png = tf.io.is_jpeg(data), tf.equal(magic, b"\x89PNG")
    gif, bmp = tf.equal(tf.strings.substr(data, 0, 3), b"GIF"), tf.equal(tf.strings.substr(data, 0, 2), b"BM")
    needed = tf.where(png, 24, tf.where(gif, 10, tf.where(bmp, 26, 0)))
    known = jpeg | png | gif | bmp
    short = tf.strings.length(data) < tf.cast(needed, tf.int32)
    sides = tf.case([(png, lambda: tf.stack([number(16, 4, True), number(20, 4, True)])),
                     (gif, lambda: tf.stack([number(6, 2, False), number(8, 2, False)])),
                     (bmp, lambda: tf.stack([number(18, 4, False), signed32(22)]))],
                    default=lambda: tf.zeros([2], tf.int64))
    sides = tf.cond(jpeg & ~short, lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64),
                    lambda: sides)
    pixels = sides[0] * sides[1]
    return tf.case([
        (~known, lambda: tf.constant("not an image (JPEG, PNG, GIF or BMP)")),
        (short, lambda: tf.constant("the image's header is cut short")),
        (pixels > max_pixels, lambda: tf.strings.format(
            "too many pixels ({} x {}; at most {} in all)", (sides[1], sides[0], max_pixels))),
    ], default=lambda: tf.constant(""))


def _on_white(data):
    """A PNG, GIF or BMP as RGB, transparency composited on white (as ``load_image`` does)."""
    import tensorflow as tf

    def composited():
        rgba = tf.cast(tf.io.decode_image(data, channels=4, expand_animations=False), tf.float32)
        alpha = rgba[..., 3:] / 255.0
        return tf.cast(_to_bytes(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)), tf.uint8)

    gif = tf.equal(tf.strings.substr(data, 0, 3), b"GIF")  # TensorFlow decodes GIFs as RGB only
    return tf.cond(gif, lambda: tf.io.decode_image(data, channels=3, expand_animations=False),
                   composited)


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
