"""Imports point downward only: every diffrep import (module level or inside a function) goes to
the same package or to a lower layer (README "Layout")."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "diffrep"
LAYERS = [
    {"errors"},
    {"plugins", "internals", "rng"},
    {"diffusion", "nets"},
    {"ema", "distributed", "quiet"},
    {"checkpoints"},
    {"official_checkpoints"},
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


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_cycles() -> list[list[str]]:
    """Cycles among diffrep's modules, counting imports inside functions too (they hide circles
    from Python, not from a reader)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: sorted({i for i in diffrep_imports(p) if i in modules and i != m}) for m, p in modules.items()}
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_module_imports_itself_through_a_circle():
    assert not import_cycles()


def test_the_cycle_finder_finds_a_planted_circle(tmp_path, monkeypatch):
    package = tmp_path / "diffrep"
    (package / "sub").mkdir(parents=True)
    (package / "sub/a.py").write_text("from diffrep.sub.b import x\n")
    (package / "sub/b.py").write_text("def f():\n    from diffrep.sub.a import y\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", package)
    assert import_cycles() == [["diffrep.sub.a", "diffrep.sub.b", "diffrep.sub.a"]]
