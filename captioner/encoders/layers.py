"""Small serialisable layers shared by the encoders."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="captioner")
class PixelNormalization(keras.layers.Layer):
    """Map RGB pixels in [0, 255] to what a backbone was trained on: (x - offset) * scale.

    ``reverse_channels`` turns RGB into BGR first, for the Caffe-style backbones.
    """

    def __init__(self, offset=0.0, scale=1.0, reverse_channels=False, **kwargs):
        super().__init__(**kwargs)
        self.offset = offset
        self.scale = scale
        self.reverse_channels = reverse_channels

    def call(self, x):
        x = keras.ops.cast(x, self.compute_dtype)
        if self.reverse_channels:
            x = keras.ops.flip(x, axis=-1)
        offset = keras.ops.convert_to_tensor(self.offset, dtype=self.compute_dtype)
        return (x - offset) * self.scale

    def get_config(self):
        config = super().get_config()
        config.update(offset=self.offset, scale=self.scale, reverse_channels=self.reverse_channels)
        return config
