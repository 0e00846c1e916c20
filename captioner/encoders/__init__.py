"""Encoders: pretrained CNNs that turn images into features (``registry.get_encoder``), and
the batched, cached feature extraction on top of them (``features``).

Kept free of imports so that naming the default encoder does not load TensorFlow.
"""

DEFAULT_ENCODER = "efficientnet_lite0"
