"""The notebooks are stored clean and run headless, top to bottom, on small parameters."""

from __future__ import annotations

import time

import pytest
from conftest import FLICKR, REPO, need

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = REPO / "notebooks"

# Runs with small values injected after the notebook's "parameters" cell, papermill-style:
# (notebook, values, text the run must print besides showing at least one PNG figure).
RUNS = {
    "caption_photos": ("01_caption_photos", {"BEAM": 2, "PREFIX": "a cat", "STEPS": 6},
                       ["greedy:", "probabilities table:", "attention map:",
                        "gallery: 5 photos, 5 with attention", '<div class="captioner-page cp-gallery">']),
    "tag_synthetic_video": ("02_tag_a_video", {"USE_REAL": False, "CLIP_SECONDS": 3, "FPS": 1},
                            ["synthetic frames:", "heat map:", "WEBVTT", "timeline: 4 clips",
                            '<div class="captioner-page cp-timeline">']),
    "train_real": ("03_train_and_evaluate", {"SIZE": 20, "DEV": 8, "EPOCHS": 2, "DATA": str(FLICKR)},
                   ["real Flickr8k photos", "best epoch:", "CIDEr-D"]),
    "train_synthetic": ("03_train_and_evaluate", {"EPOCHS": 2, "DATA": "no-such-folder"},
                        ["no Flickr8k in no-such-folder: training on synthetic pictures instead",
                         "best epoch:", "CIDEr-D"]),
}
NAMES = sorted({name for name, _, _ in RUNS.values()})


def load(name: str):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def parameters_index(nb) -> int:
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    return tagged[0]


def with_parameters(nb, values: dict):
    """The notebook with a cell setting ``values`` right after its parameters cell."""
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in values.items()))
    cell.metadata["tags"] = ["injected-parameters"]
    cell.id = "injected-parameters"
    nb.cells.insert(parameters_index(nb) + 1, cell)
    return nb


def outputs(nb) -> tuple[str, int]:
    """All text the notebook printed or displayed, and how many PNG images it showed."""
    text, pngs = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                text.append(out["text"])
            data = out.get("data", {})
            text.append(data.get("text/plain", ""))
            text.append(data.get("text/html", ""))
            pngs += "image/png" in data
    return "".join(text), pngs


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name):
    nb = load(name)
    nbformat.validate(nb)
    parameters_index(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name}: a code cell is stored with outputs"
            assert cell.execution_count is None, f"{name}: a code cell is stored with an execution count"


@pytest.mark.parametrize("name", NAMES)
def test_the_first_cell_says_which_data_the_notebook_uses(name):
    first = load(name).cells[0]
    assert first.cell_type == "markdown" and "**Data.**" in first.source, name
    data = first.source.split("**Data.**", 1)[1]
    assert "shared" in data or "ship" in data, f"{name}: which data, and where it comes from"
    if name.startswith("03"):
        assert "datasets/get_flickr8k.py" in data, "how to get Flickr8k"


@pytest.mark.slow
@pytest.mark.parametrize("run", sorted(RUNS))
def test_runs_headless(run, session_cache, tmp_path, monkeypatch):
    name, values, expected = RUNS[run]
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the kernel's temp folders land under pytest's
    if "DATA" in values and values["DATA"] == str(FLICKR):
        need(FLICKR)
    nb = with_parameters(load(name), values)
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=300,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the working directory
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    seconds = time.perf_counter() - start
    text, pngs = outputs(nb)
    assert pngs >= 1, f"{name}: no figure was shown"
    for line in expected:
        assert line in text, f"{name}: {line!r} not in the outputs"
    print(f"{run} ({name}): {seconds:.0f} s")
