"""Turning what a user names into files (captioner.data.paths): one scan for images and videos."""

import os

import pytest
from conftest import write_photo

from captioner.data.paths import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    display_path,
    expand_paths,
    find_files,
)


def test_find_images_by_extension_case_insensitive(tmp_path):
    write_photo(tmp_path / "A.JPG")
    write_photo(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("x")
    write_photo(tmp_path / "sub" / "c.webp", fmt="WEBP")
    assert [p.name for p in find_files(tmp_path, IMAGE_EXTENSIONS)[0]] == ["A.JPG", "b.png"]
    deep, problems = find_files(tmp_path, IMAGE_EXTENSIONS, recursive=True)
    assert [p.name for p in deep] == ["A.JPG", "b.png", "c.webp"] and problems == []
    both, _ = expand_paths([tmp_path / "b.png", tmp_path], IMAGE_EXTENSIONS)
    assert [p.name for p in both] == ["b.png", "A.JPG"]


def test_find_videos(tmp_path):
    for name in ["b.avi", "a.MP4", "c.txt", "d.WebM", "sub/e.mkv"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_files(tmp_path, VIDEO_EXTENSIONS)[0]] == ["a.MP4", "b.avi", "d.WebM"]
    assert find_files(tmp_path, VIDEO_EXTENSIONS, recursive=True)[0][-1].name == "e.mkv"
    assert find_files(tmp_path / "c.txt", VIDEO_EXTENSIONS) == ([tmp_path / "c.txt"], [])


def test_a_missing_path_is_a_problem_and_the_others_go_on(tmp_path):
    photo = write_photo(tmp_path / "ok.png")
    files, problems = expand_paths([tmp_path / "gone.jpg", photo], IMAGE_EXTENSIONS)
    assert files == [photo]
    assert problems == [(tmp_path / "gone.jpg", "no such file or folder")]


def test_a_folder_named_like_an_image_is_reported_not_silently_empty(tmp_path):
    (tmp_path / "x.jpg").mkdir()
    files, problems = expand_paths([tmp_path / "x.jpg"], IMAGE_EXTENSIONS)
    assert files == [] and problems[0][0] == tmp_path / "x.jpg"
    assert "holds no image files" in problems[0][1]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every folder; permissions cannot be tested")
def test_an_unreadable_sub_folder_is_a_problem(tmp_path):  # pragma: no cover - root in CI
    write_photo(tmp_path / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        files, problems = find_files(tmp_path, IMAGE_EXTENSIONS, recursive=True)
    finally:
        locked.chmod(0o755)
    assert [p.name for p in files] == ["a.png"] and "cannot list" in problems[0][1]


def test_an_unreadable_sub_folder_from_the_scanner_is_a_problem(tmp_path, monkeypatch):
    """The same case as root sees it: the scanner reports the folder it could not list."""
    write_photo(tmp_path / "a.png")
    (tmp_path / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path):
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    files, problems = find_files(tmp_path, IMAGE_EXTENSIONS, recursive=True)
    assert [p.name for p in files] == ["a.png"]
    assert problems == [(tmp_path / "locked", "cannot list folder (Permission denied)")]


def test_non_utf8_names_display_readably():
    name = os.fsdecode(b"caf\xe9.jpg")  # what Python makes of a Latin-1 name on a UTF-8 system
    shown = display_path(name)
    assert shown == "caf\\xe9.jpg"
    shown.encode("utf-8")  # printable and writable
    assert display_path("café.jpg") == "café.jpg"
