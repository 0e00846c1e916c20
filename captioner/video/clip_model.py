"""The clip model: an LSTM reads a clip's frame features in order, then tags and captions it.

Frame features (B, T, D) are zero-padded to the longest clip; all-zero frames are masked.
The LSTM's final state is the clip's encoding. From it, a sigmoid layer gives independent
tag probabilities (multi-label), and a CaptionDecoder, started from the encoding exactly as
the image captioner is started from an image feature, writes the caption. Either head can
be absent (a data set with tags only, or captions only). ``pooling="mean"`` swaps the LSTM
for a masked mean of the frames: the order-blind baseline the LSTM must beat.
"""

from __future__ import annotations

import keras

from captioner.captioning.decoder import CaptionDecoder


@keras.saving.register_keras_serializable(package="captioner")
class ClipModel(keras.Model):
    """{"frames": (B, T, D)[, "tokens": (B, L)]} -> {"tags": (B, C)[, "caption": (B, L, V)]}."""

    def __init__(self, feature_dim: int, num_tags: int, vocab_size: int = 0, units: int = 256,
                 dropout: float = 0.3, pooling: str = "lstm", caption_embed_dim: int = 128,
                 caption_units: int = 256, **kwargs):
        super().__init__(**kwargs)
        if pooling not in ("lstm", "mean"):
            raise ValueError(f"pooling must be 'lstm' or 'mean', not {pooling!r}")
        self.feature_dim, self.num_tags, self.vocab_size = feature_dim, num_tags, vocab_size
        self.units, self.dropout_rate, self.pooling = units, dropout, pooling
        self.caption_embed_dim, self.caption_units = caption_embed_dim, caption_units
        self.masking = keras.layers.Masking(0.0)
        self.frame_dropout = keras.layers.Dropout(dropout)
        self.project = keras.layers.Dense(units, activation="relu", name="project")
        if pooling == "lstm":
            self.reader = keras.layers.LSTM(units, name="reader")
        else:
            self.reader = keras.layers.GlobalAveragePooling1D(name="reader")
        self.tag_head = keras.layers.Dense(num_tags, activation="sigmoid", name="tags") if num_tags else None
        self.decoder = (
            CaptionDecoder(vocab_size, units, embed_dim=caption_embed_dim, units=caption_units,
                           dropout=dropout, feature_dropout=dropout, name="decoder")
            if vocab_size else None
        )

    def encode(self, frames, training=False):
        """The clip encoding (B, units) from frame features (B, T, D)."""
        x = self.masking(frames)
        mask = self.masking.compute_mask(frames)
        x = self.project(self.frame_dropout(x, training=training))
        return self.reader(x, mask=mask)

    def call(self, inputs, training=False):
        encoding = self.encode(inputs["frames"], training)
        outputs = {}
        if self.tag_head is not None:
            outputs["tags"] = self.tag_head(encoding)
        if self.decoder is not None and "tokens" in inputs:
            outputs["caption"] = self.decoder((encoding, inputs["tokens"]), training=training)
        return outputs

    def get_config(self):
        return {
            **super().get_config(), "feature_dim": self.feature_dim, "num_tags": self.num_tags,
            "vocab_size": self.vocab_size, "units": self.units, "dropout": self.dropout_rate,
            "pooling": self.pooling, "caption_embed_dim": self.caption_embed_dim,
            "caption_units": self.caption_units,
        }

    def build_for(self) -> ClipModel:
        """Create every weight by running a dummy batch (needed before loading weights)."""
        inputs = {"frames": keras.ops.ones((1, 2, self.feature_dim))}
        if self.decoder is not None:
            inputs["tokens"] = keras.ops.ones((1, 2), dtype="int32")
        self(inputs)
        return self
