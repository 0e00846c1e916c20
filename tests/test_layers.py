"""The package's layers: nothing imports upward, and no two modules import each other in a ring.

Layers, lowest first (DESIGN.md's data flow): the base helpers; data; encoders, evaluation and
results (side by side, none importing another); tagging; captioning; video and serving (side
by side); the faces (the CLI, the Beam pipeline and the top-level package). A module may import its own
sub-package or a lower layer, nothing else. Imports inside functions count too: a lazy import
upward is still an upward import.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "captioner"
BASE = {"errors", "files", "checks", "topk", "machine"}
RANKS = {"base": 0, "data": 1, "encoders": 2, "evaluation": 2, "results": 2, "tagging": 3,
         "captioning": 4, "video": 5, "serving": 5, "faces": 6}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("cli", "__main__", "beam"):
        return "faces"
    return "base" if parts[1] in BASE else parts[1]


def imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules a file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
    return {m for m in found if m in modules}


def graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(files)) - {name} for name, path in files.items()}


def test_every_module_has_a_layer():
    for module in graph():
        assert layer(module) in RANKS, f"{module}: put it in a sub-package of the data flow"


def test_no_module_imports_a_higher_or_sibling_layer():
    wrong = []
    for module, targets in graph().items():
        mine = layer(module)
        for target in targets:
            theirs = layer(target)
            if theirs != mine and RANKS[theirs] >= RANKS[mine]:
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module, path):
        state[module] = 1
        for target in sorted(edges[module]):
            if state.get(target) == 1:
                ring = path[path.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(ring))
            if target not in state:
                visit(target, path + [target])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rules above are not vacuous: an upward import in a data module is caught."""
    sample = tmp_path / "captioner" / "data" / "leak.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("def f():\n    from captioner.captioning.captioner import Captioner\n")
    targets = imports(sample, {"captioner.captioning.captioner"})
    assert targets == {"captioner.captioning.captioner"}
    assert RANKS[layer("captioner.captioning.captioner")] > RANKS[layer("captioner.data.leak")]
