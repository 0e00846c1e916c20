"""Fitting a ClipModel on clips given as sequences of frame features, with tags and/or captions."""

from __future__ import annotations

import keras
import numpy as np

from captioner.captioning.train import encode_captions
from captioner.data.text import Vocabulary
from captioner.errors import CaptionerError
from captioner.video.clip_model import ClipModel
from captioner.video.config import ClipTrainConfig


def tag_matrix(tag_lists, tags) -> np.ndarray:
    """Multi-hot (N, len(tags)) float32 matrix of the given tag lists."""
    index = {t: i for i, t in enumerate(tags)}
    out = np.zeros((len(tag_lists), len(tags)), dtype="float32")
    for row, names in enumerate(tag_lists):
        out[row, [index[n] for n in names]] = 1.0
    return out


def pad_clips(clips: list[np.ndarray], max_frames: int) -> np.ndarray:
    """Stack (T_i, D) frame features into (N, T, D), zero-padded (the model masks zeros).

    Clips longer than ``max_frames`` keep evenly spaced frames, so the whole clip is seen.
    """
    if not clips:
        raise CaptionerError("no clips to pad")
    dim = clips[0].shape[1]
    length = min(max_frames, max(len(c) for c in clips))
    out = np.zeros((len(clips), length, dim), dtype="float32")
    for i, clip in enumerate(clips):
        if len(clip) > length:
            clip = clip[np.linspace(0, len(clip) - 1, length).round().astype(int)]
        out[i, : len(clip)] = clip
    return out


def _examples(frames: np.ndarray, tags: np.ndarray | None, captions: list[list[str]] | None,
              vocab: Vocabulary | None, config: ClipTrainConfig):
    """Model inputs and targets; with captions, one example per (clip, caption) pair."""
    if captions is None:
        return {"frames": frames}, {"tags": tags}
    index = np.array([i for i, caps in enumerate(captions) for _ in caps])
    tokens = encode_captions(vocab, [c for caps in captions for c in caps], config.max_length)
    x = {"frames": frames[index], "tokens": tokens[:, :-1]}
    y = {"caption": tokens[:, 1:]}
    if tags is not None:
        y["tags"] = tags[index]
    return x, y


def fit_clip_model(clips: list[np.ndarray], tags: np.ndarray | None, captions: list[list[str]] | None,
                   config: ClipTrainConfig, vocab: Vocabulary | None = None,
                   validation: tuple | None = None, verbose: int = 0) -> ClipModel:
    """Train a ClipModel; ``validation`` = (clips, tags, captions) enables early stopping."""
    if tags is None and captions is None:
        raise CaptionerError("a clip model needs tags, captions, or both")
    keras.utils.set_random_seed(config.seed)
    frames = pad_clips(clips, config.max_frames)
    model = ClipModel(
        frames.shape[2], 0 if tags is None else tags.shape[1], 0 if vocab is None else len(vocab),
        units=config.units, dropout=config.dropout, pooling=config.pooling,
        caption_embed_dim=config.caption_embed_dim, caption_units=config.caption_units,
    )
    losses = {}
    if tags is not None:
        losses["tags"] = keras.losses.BinaryCrossentropy()
    if captions is not None:
        losses["caption"] = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    model.compile(optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=5.0), loss=losses)
    x, y = _examples(frames, tags, captions, vocab, config)
    callbacks, val = [], None
    if validation is not None:
        v_clips, v_tags, v_caps = validation
        val = _examples(pad_clips(v_clips, config.max_frames), v_tags, v_caps, vocab, config)
        callbacks.append(keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=True))
    model.fit(x, y, batch_size=config.batch_size, epochs=config.epochs, validation_data=val,
              callbacks=callbacks, shuffle=True, verbose=verbose)
    return model


def predict_tags(model: ClipModel, clips: list[np.ndarray], max_frames: int) -> np.ndarray:
    """Tag probabilities (N, C) for clips given as frame-feature sequences."""
    frames = pad_clips(clips, max_frames)
    return np.asarray(model.predict_on_batch({"frames": frames})["tags"])
