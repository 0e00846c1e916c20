"""What pip installs: every extra resolves to the versions a plain install gets."""

from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
# The packages a dry run (pip install --dry-run --report) saw the [beam] extra move backwards.
SHARED = ("numpy", "pillow", "protobuf")


def base_dependencies() -> dict[str, Requirement]:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = (Requirement(r) for r in project["dependencies"])
    return {r.name.lower(): r for r in found}


def upper_bound(requirement: Requirement):
    from packaging.version import Version

    caps = [Version(s.version) for s in requirement.specifier if s.operator in ("<", "<=")]
    return min(caps) if caps else None


@pytest.mark.parametrize("name", SHARED)
def test_the_base_install_is_capped_where_apache_beam_caps_it(name):
    beam = [Requirement(r) for r in requires("apache-beam") or []]
    # Markers pick the line for this Python (beam 2.78 caps numpy per version) and drop extras.
    (theirs,) = [r for r in beam if r.name.lower() == name and (r.marker is None or r.marker.evaluate())]
    ours = base_dependencies().get(name)
    assert ours is not None, f"pyproject.toml should list {name} (apache-beam caps it: {theirs})"
    cap, their_cap = upper_bound(ours), upper_bound(theirs)
    # By release number: "<7" and "<7.0.0.dev0" allow the same releases.
    assert their_cap is None or (cap is not None and cap.release <= their_cap.release), (str(ours), str(theirs))
