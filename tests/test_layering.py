"""Imports point downward only: every diffrep import (module level or inside a function) goes to
the same package or to a lower layer (README "Layout")."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "diffrep"
LAYERS = [
    {"diffusion", "nets"},
    {"ema", "distributed", "quiet"},
    {"checkpoints"},
    {"datamodules"},
    {"evaluation"},
    {"manipulation", "report"},
    {"lightning_modules"},
    {"callbacks", "loggers", "reliability"},
    {"cli"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def diffrep_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("diffrep."):
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("diffrep.")]
    return found


def test_every_import_points_down_the_layers():
    wrong = []
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        own = parts[0]
        assert own in RANK, f"{path}: add its package {own!r} to LAYERS (and to the README's Layout)"
        for module in diffrep_imports(path):
            target = module.split(".")[1]
            if target != own and RANK[target] >= RANK[own]:
                wrong.append(f"{'/'.join(parts)} imports {module}")
    assert not wrong, wrong
