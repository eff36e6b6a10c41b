"""The package's plan holds (issue 19): imports only point down the layers, no module-level
import cycle, every module opens with what it is for.

Layers, bottom first (the module map in ``ethbtc/__init__.py`` reads top-down): foundations
(errors, fileio, cli, endpoints) < ``data/`` < ``monitoring/`` < the strategy core < ``sim/`` and
``research/`` < ``live/`` < the entry points (demo, entrypoint). A module may import its own
layer or a lower one, at module level or lazily inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "ethbtc"
LAYERS: dict[str, int] = {  # dotted prefix -> layer; the longest matching prefix decides
    "ethbtc": 0, "ethbtc.errors": 0, "ethbtc.fileio": 0, "ethbtc.cli": 0, "ethbtc.endpoints": 0,
    "ethbtc.data": 1,
    "ethbtc.monitoring": 2,
    "ethbtc.fillmodel": 3, "ethbtc.kernel": 3, "ethbtc.config": 3, "ethbtc.indicators": 3,
    "ethbtc.strategy": 3, "ethbtc.backtest": 3, "ethbtc.reports": 3, "ethbtc.htmlreport": 3,
    "ethbtc.search": 3,
    "ethbtc.sim": 4, "ethbtc.research": 4,
    "ethbtc.live": 5,
    "ethbtc.demo": 6, "ethbtc.entrypoint": 6,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def layer_of(mod: str) -> int:
    best = max((k for k in LAYERS if mod == k or mod.startswith(k + ".")), key=len, default=None)
    assert best is not None, f"{mod} is in no layer: add it to LAYERS (and to the module map)"
    return LAYERS[best]


def imports(mod: str, path: Path, known: set[str], *, top_level_only: bool) -> set[str]:
    """The package modules ``mod`` imports (``from .x import y`` resolved; ``from pkg import sub``
    counts the submodule when it is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "ethbtc"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "ethbtc":
                continue
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known}
            out |= subs or {target}
    return {m for m in out if m != mod}


def test_layer_table_resolves_relative_imports_like_python() -> None:
    """The checker's own edge: ``from .x import y`` in a wing's module and in its __init__."""
    known = set(modules())
    assert "ethbtc.live.engine" in imports("ethbtc.live.app", PACKAGE / "live" / "app.py", known,
                                           top_level_only=False)
    assert layer_of("ethbtc.data.candles") == 1 and layer_of("ethbtc.live") == 5 and layer_of("ethbtc") == 0


def test_every_import_points_down_the_layers() -> None:
    mods = modules()
    known = set(mods)
    up = [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
          for a, path in mods.items() for b in sorted(imports(a, path, known, top_level_only=False))
          if layer_of(b) > layer_of(a)]
    assert up == [], "imports that point up:\n" + "\n".join(up)


def test_no_module_level_import_cycle() -> None:
    mods = modules()
    known = set(mods)
    edges = {a: imports(a, p, known, top_level_only=True) & known for a, p in mods.items()}
    # a package's __init__ and its submodules import each other by design (``from .x import y``)
    edges = {a: {b for b in outs if not b.startswith(a + ".") and not a.startswith(b + ".")}
             for a, outs in edges.items()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for mod in sorted(edges):
        if mod not in state:
            visit(mod, [mod])


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_opens_with_what_it_is_for(path: Path) -> None:
    if path.name == "__main__.py" or "__pycache__" in path.parts:
        pytest.skip("entry stub")
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc and len(doc.split()) >= 5, f"{path.relative_to(ROOT)} has no docstring saying what it is for"
