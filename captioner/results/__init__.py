"""Result rows out: JSONL, CSV, COCO results, WebVTT and SRT writers, and the resume journal.

Knows nothing of models or TensorFlow.
"""
