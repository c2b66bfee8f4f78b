"""The runs of a sweep, best first: what each changed, how well it did, and which did not finish."""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from fer_lightning.errors import ConfigError, FerError
from fer_lightning.files import check_output, read_json_object, write_text
from fer_lightning.runs.directory import LOCK_FILE, METRICS_FILE, process_alive

# Statuses in the order the leaderboard lists them; accuracy orders runs within each.
STATUS_ORDER = ("completed", "interrupted", "running", "unfinished", "failed", "not started")


@dataclass
class RunRecord:
    path: Path
    status: str  # one of STATUS_ORDER
    overrides: list[str]  # as given on the command line
    changed: list[str] = field(default_factory=list)  # overrides not shared by every run of the sweep
    best_val_acc: float | None = None
    best_epoch: int | None = None
    test_acc: float | None = None
    train_seconds: float | None = None
    error: str | None = None  # first line of a failed run's error
    best_checkpoint: Path | None = None
    tags: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How the table names the run: what it changed, else its directory."""
        return " ".join(self.changed) if self.changed else self.path.name

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["best_checkpoint"] = str(self.best_checkpoint) if self.best_checkpoint else None
        return data


def latest_sweep(root: Path) -> Path:
    """The most recently started sweep below ``root`` (outputs/multiruns), for a bare command."""
    sweeps = [p.parent for p in root.glob("**/multirun.yaml")] if root.is_dir() else []
    if not sweeps:
        raise FerError(f"no sweep found below {root}: run one (python -m fer_lightning.train -m ...) "
                       "or name its directory")
    return max(sweeps, key=lambda p: (p / "multirun.yaml").stat().st_mtime)


def find_run_dirs(sweep_dir: Path) -> list[Path]:
    """Directories holding a run (``.hydra/`` or metrics.json); archives inside a run are not runs."""
    if not sweep_dir.is_dir():
        raise FerError(f"{sweep_dir}: no such directory")
    runs = []
    for current, subdirs, files in os.walk(sweep_dir):
        if ".hydra" in subdirs or METRICS_FILE in files:
            runs.append(Path(current))
            subdirs.clear()  # its archive/ and checkpoints/ are part of it
        else:
            subdirs.sort()
    return sorted(runs)


def read_overrides(run_dir: Path, metrics: dict[str, Any]) -> list[str]:
    path = run_dir / ".hydra" / "overrides.yaml"
    if path.is_file():
        try:
            return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path))]  # type: ignore[union-attr]
        except Exception:  # a damaged file should not hide the run; metrics.json has a copy
            pass
    overrides = metrics.get("overrides")
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def lock_is_live(run_dir: Path) -> bool:
    lock = read_json_object(run_dir / LOCK_FILE)
    pid = lock.get("pid") if lock else None
    # Only a real process id (a pid_t above 0): os.kill reads 0 and -1 as groups of processes.
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False
    return lock.get("host") == socket.gethostname() and process_alive(pid)  # type: ignore[union-attr]


def _number(value: Any, low: float = 0.0, high: float = math.inf) -> float | None:
    """A finite number in [low, high], else None: NaN, 1e308 or -1 in metrics.json is no result."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and low <= value <= high:
        return value
    return None


def read_run(run_dir: Path) -> RunRecord:
    metrics: dict[str, Any] = {}
    if (run_dir / METRICS_FILE).is_file():
        found = read_json_object(run_dir / METRICS_FILE)
        metrics = found if found is not None else {
            "status": "failed", "error": f"{METRICS_FILE} is unreadable (not a JSON object)"}
    status = metrics.get("status") or "not started"
    if status == "running" and not lock_is_live(run_dir):
        status = "unfinished"  # its process is gone: killed, crashed or the machine stopped
    if status not in STATUS_ORDER:
        status = "unfinished"
    error = metrics.get("error")
    checkpoint = metrics.get("best_checkpoint")
    epoch = metrics.get("best_epoch")
    best_val_acc = _number(metrics.get("best_val_acc"), high=1.0)
    if status == "completed" and best_val_acc is None:
        status, error = "failed", f"{METRICS_FILE} is unreadable (best_val_acc {str(metrics.get('best_val_acc'))[:40]} is no accuracy)"
    return RunRecord(
        path=run_dir,
        status=status,
        overrides=read_overrides(run_dir, metrics),
        best_val_acc=best_val_acc,
        best_epoch=epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None,
        test_acc=_number(metrics.get("test_acc"), high=1.0),
        train_seconds=_number(metrics.get("train_seconds")),
        error=str(error).strip().splitlines()[0] if error and str(error).strip() else None,
        best_checkpoint=Path(checkpoint) if isinstance(checkpoint, str) and checkpoint else None,
        tags=[str(tag)[:40] for tag in tags[:20]] if isinstance(tags := metrics.get("tags"), list) else [],
    )


def sort_key(run: RunRecord) -> tuple:
    accuracy = run.best_val_acc if isinstance(run.best_val_acc, (int, float)) else -1.0
    return (STATUS_ORDER.index(run.status), -accuracy, str(run.path))


def common_overrides(runs: list[RunRecord]) -> list[str]:
    """Overrides every run shares (the sweep's fixed settings); empty for a single run."""
    if len(runs) < 2:
        return []
    shared = set(runs[0].overrides).intersection(*(r.overrides for r in runs[1:]))
    return [o for o in runs[0].overrides if o in shared]


def collect_runs(sweep_dir: str | Path, tags: list[str] | None = None) -> tuple[list[RunRecord], list[str]]:
    """All runs of a sweep (with every one of ``tags``, when given), best first, and the overrides
    they have in common."""
    runs = [read_run(path) for path in find_run_dirs(Path(sweep_dir))]
    if not runs:
        raise FerError(f"{sweep_dir}: no runs here (no directory with .hydra/ or {METRICS_FILE})")
    if tags:
        runs = [run for run in runs if set(tags) <= set(run.tags)]
        if not runs:
            raise FerError(f"{sweep_dir}: no run is tagged {' and '.join(tags)}")
    common = common_overrides(runs)
    for run in runs:
        run.changed = [o for o in run.overrides if o not in common]
    return sorted(runs, key=sort_key), common


def _percent(value: float | None) -> str:
    return f"{100 * value:.2f}" if isinstance(value, (int, float)) else "-"


def _duration(seconds: float | None) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{secs:02d}s"


def render_table(sweep_dir: Path, runs: list[RunRecord], common: list[str]):
    from rich.markup import escape
    from rich.table import Table

    # Labels, paths and error notes come from the runs' files: text, never Rich markup.
    table = Table(title=f"Sweep {escape(str(sweep_dir))}", caption="common: " + escape(" ".join(common) or "-"),
                  caption_justify="left")
    # The run column keeps what a run changed readable; long error notes fold instead.
    run_width = min(40, max(len(run.label) for run in runs))
    tagged = any(run.tags for run in runs)
    for name, justify in (("#", "right"), ("run", "left"), ("status", "left"), ("val acc %", "right"),
                          ("epoch", "right"), ("test acc %", "right"), ("time", "right"),
                          *((("tags", "left"),) if tagged else ()), ("note", "left")):
        table.add_column(name, justify=justify, overflow="fold",  # type: ignore[arg-type]
                         min_width=run_width if name == "run" else None)
    styles = {"completed": "green", "failed": "red"}
    rank = 0
    for run in runs:
        rank += run.status == "completed"
        table.add_row(
            str(rank) if run.status == "completed" else "",
            escape(run.label),
            f"[{styles.get(run.status, 'yellow')}]{run.status}[/]",
            _percent(run.best_val_acc),
            "-" if run.best_epoch is None else str(run.best_epoch),
            _percent(run.test_acc),
            _duration(run.train_seconds),
            *((escape(" ".join(run.tags)),) if tagged else ()),
            escape(run.error or ""),
        )
    return table


FOLD_KEY = "data.fold="


def fold_summary(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """k-fold sweeps: per configuration (the overrides less data.fold), the folds that completed and
    their validation accuracy's mean and standard deviation."""
    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for run in runs:
        if any(o.startswith(FOLD_KEY) for o in run.overrides):
            groups.setdefault(tuple(o for o in run.overrides if not o.startswith(FOLD_KEY)), []).append(run)
    summary = []
    for config, members in groups.items():
        scores = [run.best_val_acc for run in members if run.status == "completed" and run.best_val_acc is not None]
        mean = sum(scores) / len(scores) if scores else None
        std = math.sqrt(sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)) if len(scores) > 1 else None
        summary.append({"config": list(config), "folds": len(members), "completed": len(scores),
                        "mean_val_acc": mean, "std_val_acc": std})
    return summary


def render_folds(summary: list[dict[str, Any]], common: list[str]):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="k-fold: validation accuracy over the folds")
    for name, justify in (("configuration", "left"), ("folds", "right"), ("val acc % mean ± std", "right")):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in summary:
        label = " ".join(o for o in row["config"] if o not in common) or "-"
        spread = "" if row["std_val_acc"] is None else f" ± {100 * row['std_val_acc']:.2f}"
        table.add_row(escape(label), f"{row['completed']} of {row['folds']}",
                      "-" if row["mean_val_acc"] is None else f"{100 * row['mean_val_acc']:.2f}{spread}")
    return table


def is_leaderboard_json(path: Path) -> bool:
    document = json.loads(path.read_text())
    return isinstance(document, dict) and {"sweep_dir", "runs"} <= set(document)


def leaderboard(sweep_dir: str | Path, json_path: str | Path | None = None, width: int | None = None,
                overwrite: bool = False, tags: list[str] | None = None) -> list[RunRecord]:
    """Print the sweep's table (and write it as JSON); returns the runs, best first.

    The JSON never lands on a run's files (its metrics.json, a checkpoint): an existing file that is
    not a leaderboard is replaced only with ``overwrite``, and nothing inside a run directory at all.
    """
    from fer_lightning.terminal import console

    sweep_dir = Path(sweep_dir)
    runs, common = collect_runs(sweep_dir, tags)
    if json_path is not None:
        inside = next((run.path for run in runs if Path(json_path).resolve().is_relative_to(run.path.resolve())), None)
        if inside is not None:
            raise ConfigError(f"--json {json_path} is inside the run directory {inside}; write it elsewhere")
        check_output(json_path, [], is_leaderboard_json, overwrite, kind="a leaderboard", key="--json",
                     overwrite_flag="--overwrite")
    folds = fold_summary(runs)
    console(width).print(render_table(sweep_dir, runs, common))
    if folds:
        console(width).print(render_folds(folds, common))
    if json_path is not None:
        document = {"sweep_dir": str(sweep_dir), "common_overrides": common, "runs": [r.to_json() for r in runs],
                    **({"folds": folds} if folds else {})}
        write_text(json_path, json.dumps(document, indent=2) + "\n")
    return runs
