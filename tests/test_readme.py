"""The README stays short and true: its Python quick start runs as written, it fits in 300
lines, and every relative link in it and in docs/ names a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 300

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""<(?:img|a)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", re.IGNORECASE)


def first_python_block(text: str) -> str:
    match = re.search(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL)
    assert match, "README.md has no ```python block"
    return match.group(1)


def relative_links(text: str) -> list[str]:
    """Link targets outside code: no URL scheme, no bare #anchor; anchors and queries cut off."""
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    targets = LINK.findall(prose) + HTML_LINK.findall(prose)
    found = []
    for target in targets:
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "//")):
            continue
        found.append(re.split(r"[#?]", target, maxsplit=1)[0])
    return found


def markdown_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


def test_readme_has_at_most_300_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move text to docs/"


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_names_an_existing_file(page):
    missing = [t for t in relative_links(page.read_text(encoding="utf-8"))
               if not (page.parent / t).exists()]
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_readme_links_every_docs_page():
    linked = {(ROOT / t).resolve() for t in relative_links(README.read_text(encoding="utf-8"))}
    unlinked = [p.name for p in sorted((ROOT / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"README.md's Documentation list misses {unlinked}"


def test_the_link_finder_sees_links_and_skips_code():
    text = ("[a](docs/a.md#x) ![b](b.png) [web](https://x.org) [top](#here) <img src=\"c.png\">\n"
            "`[not](code.md)`\n```\n[nor](block.md)\n```\n")
    assert relative_links(text) == ["docs/a.md", "b.png", "c.png"]


@pytest.mark.slow
def test_the_readme_quick_start_runs_as_written(capsys):
    """The first ```python block, exec'd as a newcomer would paste it: the real bundled
    captioner on the sample photos, one printed line per photo."""
    from captioner.data.samples import sample_photos

    photos = sample_photos()
    assert photos, "scikit-image ships no sample photos"
    code = first_python_block(README.read_text(encoding="utf-8"))
    exec(compile(code, "README.md quick start", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == len(photos), printed
    assert all(line.strip() for line in printed), printed
