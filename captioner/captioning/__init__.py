"""Captions from image features: decoders, search, training, bundles and the ``Captioner``."""
