import json

import pytest

from captioner.data.video_labels import read_video_labels
from captioner.errors import FormatError


def test_csv_multi_label(tmp_path):
    (tmp_path / "labels.csv").write_text("clip,tags\na.mp4,dog; running\nb.mp4,cat\nc.mp4,\n")
    records = read_video_labels(tmp_path / "labels.csv", videos=tmp_path / "clips")
    assert [(r.path.name, r.tags) for r in records] == [("a.mp4", ("dog", "running")), ("b.mp4", ("cat",))]
    assert records[0].path.parent == tmp_path / "clips"


def test_mlds_captions(tmp_path):
    data = [{"caption": ["a man cooks", "someone is cooking"], "id": "x.avi"}, {"id": "broken"}]
    (tmp_path / "label.json").write_text(json.dumps(data))
    (record,) = read_video_labels(tmp_path / "label.json")
    assert record.path == tmp_path / "x.avi" and record.captions == ("a man cooks", "someone is cooking")
    assert record.tags == ()


def test_bad_sources_name_the_file(tmp_path):
    (tmp_path / "labels.csv").write_text("video,label\na.mp4,dog\n")
    with pytest.raises(FormatError, match="labels.csv"):
        read_video_labels(tmp_path / "labels.csv")
    (tmp_path / "x.txt").write_text("?")
    with pytest.raises(FormatError, match="x.txt"):
        read_video_labels(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="no <tag>/<clip>"):
        read_video_labels(tmp_path / "empty")
