"""The real ``captioner`` command, run as a user runs it."""

import json
import os
import subprocess
import sys


def run_cli(*args, check=True):
    """Run ``python -m captioner ARGS`` with the test session's cache; returns the process."""
    proc = subprocess.run(
        [sys.executable, "-m", "captioner", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=600,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def test_classify_prints_right_labels(sample_photos, tmp_path):
    chelsea = next(p for p in sample_photos if p.name.startswith("chelsea"))
    coffee = next(p for p in sample_photos if p.name.startswith("coffee"))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    proc = run_cli("classify", chelsea, bad, coffee, "--top-k", "2", "--json")
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["image"] for r in rows] == [str(chelsea), str(bad), str(coffee)]
    assert rows[0]["labels"][0]["label"] in {"Egyptian cat", "tabby", "tiger cat"}
    assert rows[2]["labels"][0]["label"] == "espresso"
    assert len(rows[0]["labels"]) == 2
    assert "broken.jpg" not in rows[1]["error"] and rows[1]["error"]


def test_errors_are_messages_not_tracebacks(tmp_path):
    proc = run_cli("classify", tmp_path / "missing", check=False)
    assert proc.returncode != 0
    assert "no such file or folder" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("clasify", "x", check=False)
    assert proc.returncode == 2 and "did you mean classify" in proc.stderr
    proc = run_cli("classify", "x", "--top_k", "3", check=False)
    assert proc.returncode == 2 and "--top-k" in proc.stderr
