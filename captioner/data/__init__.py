"""Files in: images, video frames, caption data sets, video labels, caption text and vocabularies.

The lowest layer: it knows nothing of models, encoders or outputs.
"""
