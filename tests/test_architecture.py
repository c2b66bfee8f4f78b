"""The package's layers import downwards only, as docs/architecture.md draws them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "fer_lightning"
BASE = {"classes", "errors", "seeds", "files", "terminal"}
# What each part of the package may import from the package (besides itself).
ALLOWED = {
    "classes": set(), "errors": set(), "seeds": set(), "files": {"errors"}, "terminal": set(),
    "config": BASE,
    "theory": set(),
    "data": BASE | {"config"},
    "models": BASE | {"config"},
    "explain": BASE | {"config"},
    "checkpoints": BASE | {"config", "data", "models"},
    "runs": BASE | {"config", "data", "models", "checkpoints"},
    "inference": BASE | {"config", "data", "models", "checkpoints", "runs", "explain"},
    "sweeps": BASE | {"config", "data", "models", "checkpoints", "runs", "inference"},
    "viz": BASE | {"config", "models", "theory"},
    "reporting": BASE | {"config", "data", "models", "checkpoints", "explain", "runs", "inference", "viz"},
    "callbacks": BASE | {"data", "explain", "viz"},
    "web": BASE | {"config", "data", "models", "checkpoints", "inference", "viz"},
    "cli": BASE | {"config", "data", "models", "checkpoints", "explain", "runs", "inference", "sweeps", "viz", "theory",
                   "reporting", "web"},
}
ENTRY_POINTS = {"train", "evaluate", "predict", "export", "ensemble", "leaderboard", "report", "summary", "publish",
                "curves", "demo", "pack"}


def part_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def imported_parts(path: Path) -> set[str]:
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        parts |= {name.split(".")[1] for name in names if name.startswith("fer_lightning.")}
    return parts


def test_every_module_imports_only_the_layers_below_it():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        part = part_of(path)
        if part == "__init__":
            # The package root only re-exports the Python API, on first use.
            assert imported_parts(path) <= {"inference"}, path
            continue
        allowed = {"cli"} if part in ENTRY_POINTS else ALLOWED.get(part)
        assert allowed is not None, f"{path}: a part of the package that docs/architecture.md does not place"
        wrong += [f"{path.relative_to(PACKAGE)} imports {other}" for other in imported_parts(path) - allowed - {part}]
    assert not wrong, wrong


def test_training_and_inference_never_load_the_reports_math():
    code = ("import sys, fer_lightning.cli.train, fer_lightning.runs.training, fer_lightning.callbacks, "
            "fer_lightning.inference.evaluation, fer_lightning.inference.prediction, fer_lightning.inference.export; "
            "print(sorted(m for m in sys.modules if m.startswith('fer_lightning.theory')))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def runtime_imports(path: Path) -> set[str]:
    """The package modules a module imports, at load time or inside its functions; imports made only
    for type checking (``if TYPE_CHECKING:``) do not count."""
    names = set()
    pending = list(ast.parse(path.read_text()).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fer_lightning."):
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.startswith("fer_lightning.")}
        pending.extend(ast.iter_child_nodes(node))
    return names


def test_no_two_modules_import_each_other_in_a_loop():
    modules = {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
               for path in PACKAGE.rglob("*.py")}
    graph = {name: {other for other in runtime_imports(path) if other in modules and other != name}
             for name, path in modules.items()}
    loops = []

    def visit(name: str, trail: list[str]) -> None:
        for other in graph[name]:
            if other in trail:
                loops.append(" -> ".join([*trail[trail.index(other):], other]))
            elif len(trail) < 12:
                visit(other, [*trail, other])

    for name in graph:
        visit(name, [name])
    assert not loops, sorted(set(loops))[:5]
