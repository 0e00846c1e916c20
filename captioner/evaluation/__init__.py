"""Scores: caption metrics (BLEU-1..4, CIDEr-D, CHAIR, trigrams unseen in the training text)
and tag metrics (mAP, GAP, hit@1, P/R@k).

Knows nothing of models or TensorFlow.
"""
