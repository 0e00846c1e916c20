"""Result rows out: JSONL, CSV, COCO results, WebVTT and SRT writers, HTML pages to look at, and
the resume journal.

Knows nothing of models or TensorFlow. ``gallery_html`` and ``timeline_html`` render rows as
an HTML fragment, e.g. for ``IPython.display.HTML`` in a notebook.
"""

from captioner.results.pages import gallery_html, timeline_html

__all__ = ["gallery_html", "timeline_html"]
