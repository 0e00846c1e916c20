"""Show-and-Tell caption decoder: an image feature starts an LSTM that writes the caption.

The pooled image feature, projected, becomes the initial hidden and cell state of every LSTM
layer (Vinyals et al. 2015 feed it as the first input instead; the state is simpler and, on
small data, trains as well). Words are embedded, run through the LSTM stack and projected
to vocabulary logits. Padding (id 0) is masked, in the LSTM and in the loss.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="captioner")
class CaptionDecoder(keras.Model):
    """(image features (B, D), token ids (B, T)) -> next-word logits (B, T, vocab)."""

    feature_kind = "pooled"

    def __init__(
        self,
        vocab_size: int,
        feature_dim: int,
        embed_dim: int = 256,
        units: int = 512,
        num_layers: int = 1,
        dropout: float = 0.3,
        feature_dropout: float = 0.3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.feature_dim = feature_dim
        self.embed_dim = embed_dim
        self.units = units
        self.num_layers = num_layers
        self.dropout_rate = dropout
        self.feature_dropout_rate = feature_dropout
        self.feature_dropout = keras.layers.Dropout(feature_dropout)
        self.init_h = [keras.layers.Dense(units, activation="tanh", name=f"init_h{i}") for i in range(num_layers)]
        self.init_c = [keras.layers.Dense(units, name=f"init_c{i}") for i in range(num_layers)]
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")
        self.lstms = [
            keras.layers.LSTM(units, return_sequences=True, return_state=True, name=f"lstm{i}")
            for i in range(num_layers)
        ]
        self.dropout = keras.layers.Dropout(dropout)
        self.logits = keras.layers.Dense(vocab_size, name="logits")

    def initial_state(self, features, training=False) -> list:
        """LSTM states [h0, c0, h1, c1, ...] from image features."""
        x = self.feature_dropout(features, training=training)
        states = []
        for dense_h, dense_c in zip(self.init_h, self.init_c):
            states += [dense_h(x), dense_c(x)]
        return states

    def decode(self, tokens, states, training=False, mask=None):
        """Run token ids (B, T) from ``states``; returns logits (B, T, V) and the new states."""
        x = self.embedding(tokens)
        if mask is None:
            mask = self.embedding.compute_mask(tokens)
        new_states = []
        for i, lstm in enumerate(self.lstms):
            x = self.dropout(x, training=training)
            x, h, c = lstm(x, initial_state=states[2 * i : 2 * i + 2], mask=mask, training=training)
            new_states += [h, c]
        return self.logits(self.dropout(x, training=training)), new_states

    def call(self, inputs, training=False):
        features, tokens = inputs
        logits, _ = self.decode(tokens, self.initial_state(features, training), training)
        return logits

    def step(self, tokens, states):
        """One decoding step: tokens (B,) -> log-probabilities (B, V) and the next states."""
        logits, states = self.decode(ops.expand_dims(tokens, 1), states, mask=ops.ones_like(ops.expand_dims(tokens, 1), dtype="bool"))
        return ops.log_softmax(logits[:, 0], axis=-1), states

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "feature_dim": self.feature_dim,
            "embed_dim": self.embed_dim,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout_rate,
            "feature_dropout": self.feature_dropout_rate,
        }

    def build_for(self) -> CaptionDecoder:
        """Create every weight by running a dummy batch (needed before loading weights)."""
        self((ops.zeros((1, self.feature_dim)), ops.ones((1, 2), dtype="int32")))
        return self
