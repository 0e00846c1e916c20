"""Show, Attend and Tell (Xu et al. 2015) soft attention: the LSTM looks at the encoder's map.

At each word the decoder scores every region of the spatial map (7x7 for Lite0) against its
hidden state, takes the softmax-weighted mean of the regions as the context, scales it by a
learned gate beta = sigmoid(W h) (the paper's "gating scalar"), and feeds word and context to
the LSTM. The mean of the map starts the state. Training adds the doubly stochastic
regulariser lambda * sum_regions (1 - sum_words alpha)^2, which asks every region to be looked
at about once over the caption (divided by the caption's length here, since the word loss is
a per-word mean while the paper sums both). Same interface as the Show-and-Tell ``CaptionDecoder``:
``initial_state``, ``step``, ``build_for``; the map travels in the state, so the searches
need no change.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="captioner")
class AttentionDecoder(keras.Model):
    """(spatial maps (B, R, D), token ids (B, T)) -> next-word logits (B, T, vocab)."""

    feature_kind = "spatial"
    # The map and its projection ride in the state but never change: a search that reorders
    # hypotheses of one image may leave them where they are (48 MB a step at beam 3 x 64).
    fixed_states = (2, 3)

    def __init__(self, vocab_size: int, feature_dim: int, regions: int = 49, embed_dim: int = 256,
                 units: int = 512, attention_dim: int = 256, dropout: float = 0.5,
                 feature_dropout: float = 0.5, attention_penalty: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.feature_dim, self.regions = vocab_size, feature_dim, regions
        self.embed_dim, self.units, self.attention_dim = embed_dim, units, attention_dim
        self.dropout_rate, self.feature_dropout_rate = dropout, feature_dropout
        self.attention_penalty = attention_penalty
        self.feature_dropout = keras.layers.Dropout(feature_dropout)
        self.init_h = keras.layers.Dense(units, activation="tanh", name="init_h")
        self.init_c = keras.layers.Dense(units, name="init_c")
        self.map_projection = keras.layers.Dense(attention_dim, name="map_projection")
        self.state_projection = keras.layers.Dense(attention_dim, name="state_projection")
        self.score = keras.layers.Dense(1, name="score")
        self.gate = keras.layers.Dense(1, activation="sigmoid", name="gate")
        self.embedding = keras.layers.Embedding(vocab_size, embed_dim, mask_zero=True, name="embedding")
        self.cell = keras.layers.LSTMCell(units, name="lstm")
        self.dropout = keras.layers.Dropout(dropout)
        self.logits = keras.layers.Dense(vocab_size, name="logits")

    def initial_state(self, features, training=False) -> list:
        """[h, c, map, projected map] from spatial maps (B, R, D): the map rides in the state."""
        features = self.feature_dropout(ops.cast(features, "float32"), training=training)
        mean = ops.mean(features, axis=1)
        return [self.init_h(mean), self.init_c(mean), features, self.map_projection(features)]

    def attend(self, h, features, projected):
        """Attention weights (B, R) over the regions and the gated context (B, D)."""
        scores = self.score(ops.tanh(projected + ops.expand_dims(self.state_projection(h), 1)))
        alpha = ops.softmax(ops.squeeze(scores, -1), axis=-1)
        context = ops.sum(ops.expand_dims(alpha, -1) * features, axis=1)
        return alpha, self.gate(h) * context

    def run(self, tokens, states, training=False):
        """Decode token ids (B, T) from ``states``: logits (B, T, V), attention (B, T, R), states."""
        h, c, features, projected = states
        embedded = self.embedding(tokens)
        logits, alphas = [], []
        for t in range(tokens.shape[1]):
            alpha, context = self.attend(h, features, projected)
            x = self.dropout(ops.concatenate([embedded[:, t], context], axis=-1), training=training)
            out, (h_new, c_new) = self.cell(x, [h, c], training=training)
            # A padded position leaves the state as it was (the searches feed real words only).
            keep = ops.expand_dims(ops.cast(ops.not_equal(tokens[:, t], 0), "float32"), -1)
            h, c = keep * h_new + (1 - keep) * h, keep * c_new + (1 - keep) * c
            logits.append(self.logits(self.dropout(out, training=training)))
            alphas.append(alpha)
        return ops.stack(logits, axis=1), ops.stack(alphas, axis=1), [h, c, features, projected]

    def call(self, inputs, training=False):
        features, tokens = inputs
        logits, alphas, _ = self.run(tokens, self.initial_state(features, training), training)
        if training and self.attention_penalty:
            real = ops.cast(ops.not_equal(tokens, 0), "float32")
            seen = ops.sum(alphas * ops.expand_dims(real, -1), axis=1)  # (B, R): looks per region
            # Per word, as the word loss is a mean over words (the paper sums both over words).
            penalty = ops.sum(ops.square(1.0 - seen), -1) / ops.maximum(ops.sum(real, -1), 1.0)
            self.add_loss(self.attention_penalty * ops.mean(penalty))
        return logits

    def step(self, tokens, states):
        """One decoding step: tokens (B,) -> log-probabilities (B, V) and the next states."""
        logits, _, states = self.run(ops.expand_dims(tokens, 1), states)
        return ops.log_softmax(logits[:, 0], axis=-1), states

    def attention_maps(self, features, tokens):
        """Attention weights (B, T, R) while reading ``tokens`` (teacher forcing), for plots."""
        _, alphas, _ = self.run(tokens, self.initial_state(features))
        return alphas

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "feature_dim": self.feature_dim, "regions": self.regions,
                "embed_dim": self.embed_dim, "units": self.units,
                "attention_dim": self.attention_dim, "dropout": self.dropout_rate,
                "feature_dropout": self.feature_dropout_rate,
                "attention_penalty": self.attention_penalty}

    def build_for(self) -> AttentionDecoder:
        """Create every weight by running a dummy batch (needed before loading weights)."""
        self((ops.zeros((1, self.regions, self.feature_dim)), ops.ones((1, 2), dtype="int32")))
        return self
