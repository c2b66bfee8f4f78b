"""Figure 4: seconds from typing ``python -m fer_lightning.train ...`` to the first training step,
where they go, and which imports cost most; cold (the first run draws the synthetic faces) and warm
(a rerun reads them from the cache).

The training command runs in a fresh process with one extra callback (``FirstStepMarker``, added
by a Hydra override) that writes wall-clock marks to a JSON file; nothing in the project changes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from benchmarks.report import figure
from benchmarks.sizes import Sizes

ROOT = Path(__file__).resolve().parents[1]
# Packages a training run could pull in; the figure says which ones it does.
HEAVY = ("torch", "pytorch_lightning", "lightning_fabric", "torchmetrics", "hydra", "omegaconf",
         "albumentations", "cv2", "tensorboard", "matplotlib", "captum", "rich", "onnx", "onnxruntime",
         "scipy", "skimage", "pandas", "sklearn")
# Seconds from the command to the first training step: a rerun, and the very first run.
WARM_TARGET, COLD_TARGET = 5.0, 8.0
IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


class FirstStepMarker(pl.Callback):
    """Writes time.time() at the moments that divide start-up into phases."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.marks = {"callbacks_built": time.time()}

    def on_fit_start(self, trainer, pl_module) -> None:
        self.marks["fit_start"] = time.time()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.marks["first_step_start"] = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx == 0:
            self.marks["first_step_end"] = time.time()
            Path(self.path).write_text(json.dumps(self.marks))


def train_command(scratch: Path, synthetic: tuple[int, int, int] | None, importtime: bool,
                  overrides: Sequence[str] = ()) -> list[str]:
    marker = scratch / "marks.json"
    args = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "fer_lightning.train",
            "+trainer.max_steps=1", "+trainer.limit_val_batches=0", "test=false", "print_config=false",
            "callbacks=none", f"paths.log_dir={scratch}",
            "+callbacks.first_step._target_=benchmarks.startup.FirstStepMarker",
            f"+callbacks.first_step.path={marker}", *overrides]
    if synthetic is not None:
        args += [f"data.synthetic.train={synthetic[0]}", f"data.synthetic.val={synthetic[1]}",
                 f"data.synthetic.test={synthetic[2]}"]
    return args


def timed_train_run(synthetic: tuple[int, int, int] | None, importtime: bool,
                    overrides: Sequence[str] = (), cache_dir: Path | None = None) -> tuple[dict[str, float], str]:
    """Phase end times (seconds after launch) of one training run, and its stderr. With ``cache_dir``
    the synthetic faces are cached there (a second run with it finds them: a warm start)."""
    with tempfile.TemporaryDirectory(prefix="fer-bench-startup-") as scratch:
        cache = [f"data.cache_dir={cache_dir}"] if cache_dir is not None else []
        command = train_command(Path(scratch), synthetic, importtime, [*overrides, *cache])
        launched = time.time()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
        finished = time.time()
        marks_file = Path(scratch) / "marks.json"
        if result.returncode != 0 or not marks_file.is_file():
            raise RuntimeError(f"training run failed ({result.returncode}): {result.stderr[-2000:]}")
        marks = {k: v - launched for k, v in json.loads(marks_file.read_text()).items()}
    marks["process_exit"] = finished - launched
    return marks, result.stderr


def python_seconds(code: str, repeats: int = 1) -> float:
    """Fastest wall time of ``python -c code`` (the interpreter's start included)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def entry_import() -> tuple[float, set[str]]:
    """Seconds ``import fer_lightning.cli.train`` takes in a fresh interpreter, and the HEAVY packages it loads."""
    probe = ("import json, sys, time; started = time.perf_counter(); import fer_lightning.cli.train; "
             "print(json.dumps([time.perf_counter() - started, "
             f"[m for m in {HEAVY!r} if m in sys.modules]]))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, capture_output=True, text=True)
    seconds, loaded = json.loads(result.stdout.strip().splitlines()[-1])
    return seconds, set(loaded)


def import_records(stderr: str) -> list[tuple[int, str, float]]:
    """(nesting depth, module, self seconds) of each ``-X importtime`` line, in its order:
    a module's line comes after the lines of what it imported, and is less indented."""
    records = []
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            records.append((len(match.group(3)), match.group(4), int(match.group(1)) / 1e6))
    return records


def import_costs(records: list[tuple[int, str, float]]) -> dict[str, float]:
    """Seconds of import work per top-level package (self times summed)."""
    per_package: dict[str, float] = defaultdict(float)
    for _, name, seconds in records:
        per_package[name.split(".")[0]] += seconds
    return dict(per_package)


def imported_via(records: list[tuple[int, str, float]], package: str) -> str:
    """Who first imported ``package``: the nearest importer outside it, and the outermost import."""
    own = [i for i, (_, name, _) in enumerate(records) if name.split(".")[0] == package]
    if not own:
        return ""
    exact = [i for i in own if records[i][1] == package]
    # Without the package's own line (it happens), its shallowest module stands in for it.
    index = exact[0] if exact else max(own, key=lambda i: (-records[i][0], i))
    depth, importer, outermost = records[index][0], None, None
    for level, name, _ in records[index + 1:]:
        if level < depth:
            depth = level
            if importer is None and name.split(".")[0] != package:
                importer = name
            outermost = name
    if importer is None:
        return "the running program (no enclosing import)"
    return importer if outermost in (None, importer) else f"{importer} (from {outermost})"


def synthetic_cost(sizes: Sizes, sample: int = 200) -> tuple[int, float]:
    """(faces the timed run draws, seconds per face): ``sample`` faces timed in this process."""
    from benchmarks.workload import compose_train_config
    from fer_lightning.data.synthetic import generate_synthetic_faces

    if sizes.startup_synthetic is None:
        counts = compose_train_config([]).data.synthetic
        faces = int(counts.train) + int(counts.val) + int(counts.test)
    else:
        faces = sum(sizes.startup_synthetic)
    sample = min(sample, max(faces, 1))
    started = time.perf_counter()
    generate_synthetic_faces(sample, seed=12345, with_masks=False)  # as training draws them
    return faces, (time.perf_counter() - started) / sample


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    interpreter = python_seconds("pass", repeats=2)
    entry_seconds, at_entry = entry_import()
    entry = interpreter + entry_seconds
    model = [*sizes.model_overrides, *sizes.startup_overrides]
    with tempfile.TemporaryDirectory(prefix="fer-bench-cache-") as cache:
        # Cold: the first run ever draws the synthetic faces; warm: a rerun reads them from the cache.
        marks, stderr = timed_train_run(sizes.startup_synthetic, importtime=sizes.startup_runs < 2,
                                        overrides=model, cache_dir=Path(cache))
        warm, _ = timed_train_run(sizes.startup_synthetic, importtime=False, overrides=model, cache_dir=Path(cache))
    if sizes.startup_runs >= 2:
        # Tiny data: only this run's imports matter.
        _, stderr = timed_train_run((256, 64, 0), importtime=True, overrides=model)
    records = import_records(stderr)
    costs = import_costs(records)
    imported = {name.split(".")[0] for _, name, _ in records}

    phases = [
        ("python interpreter alone (python -c pass)", interpreter),
        ("+ import fer_lightning.cli.train (what --help costs)", entry),
        ("+ Hydra, imports, data (synthetic faces drawn), model: callbacks built", marks["callbacks_built"]),
        ("+ trainer set-up: fit starts", marks["fit_start"]),
        ("first training step starts", marks["first_step_start"]),
        ("first training step ends", marks["first_step_end"]),
        ("process exits (after the step: checkpoint, logger, teardown)", marks["process_exit"]),
    ]
    rows = []
    previous = 0.0
    for label, at in phases:
        rows.append({"phase": label, "seconds_after_launch": at, "phase_seconds": at - previous})
        previous = at
    faces, seconds_per_face = synthetic_cost(sizes)
    rows.insert(3, {"phase": f"  of which drawing {faces:,} synthetic faces (estimated)",
                    "phase_seconds": faces * seconds_per_face})
    rows.append({"phase": f"rerun (faces from the cache): first training step starts (target {WARM_TARGET:.0f} s)",
                 "seconds_after_launch": warm["first_step_start"]})
    rows.append({"phase": f"first run above: first training step starts (target {COLD_TARGET:.0f} s)",
                 "seconds_after_launch": marks["first_step_start"]})
    top = sorted(costs.items(), key=lambda item: -item[1])[:10]
    for package, seconds in top:
        rows.append({"phase": f"import {package}", "import_seconds": seconds,
                     "when": "at entry" if package in at_entry else "after the command line is parsed",
                     "via": imported_via(records, package)})
    never = sorted(set(HEAVY) - imported)
    if sizes.startup_synthetic is None:
        synthetic = f"the config's default ({faces:,} faces over train, val and test)"
    else:
        synthetic = "train/val/test " + "/".join(str(n) for n in sizes.startup_synthetic)
    settings = " ".join(sizes.startup_overrides) or "TensorBoard logger on"
    imports = ("Timed without -X importtime; import costs from a second run under -X importtime "
               "(self time summed per top-level package)." if sizes.startup_runs >= 2 else
               "One run under -X importtime: its timings include the profiler's overhead.")
    notes = [
        f"Data: synthetic faces, {synthetic}; callbacks=none, {settings}, +trainer.max_steps=1, "
        f"no validation. {imports}",
        "Imported only after Hydra parsed the command line: "
        + (", ".join(sorted(imported & set(HEAVY) - at_entry)) or "none")
        + ". Never imported by training: " + (", ".join(never) or "none") + ".",
    ]
    columns = [
        ("phase", "phase / import", "{}"),
        ("seconds_after_launch", "s after launch", "{:.2f}"),
        ("phase_seconds", "phase s", "{:.2f}"),
        ("import_seconds", "import s", "{:.2f}"),
        ("when", "imported", "{}"),
        ("via", "first imported by", "{}"),
    ]
    summary = {
        "seconds_to_first_step": marks["first_step_start"],
        "seconds_to_first_step_warm": warm["first_step_start"],
        "warm_marks": warm,
        "seconds_entry_import": entry,
        "seconds_interpreter": interpreter,
        "marks": marks,
        "import_seconds_by_package": dict(top),
        "loaded_at_entry": sorted(at_entry),
        "never_imported_by_training": never,
    }
    return figure("4. Start-up: command to first training step", columns, rows, summary, notes)
