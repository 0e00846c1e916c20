"""Video tagging on top of captioning: clip windows and shots, the clip model, default tags
and the ``VideoTagger``."""
