"""An earlier commit of this repository, checked out beside it for a side-by-side benchmark."""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "c93c92a"  # the last commit before captioning left TensorFlow behind (issue 22)


@contextmanager
def worktree(rev: str):
    """A temporary git worktree of ``rev`` (detached), removed on leaving."""
    folder = Path(tempfile.mkdtemp(prefix="captioner-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), rev],
                   check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],
                       capture_output=True)
