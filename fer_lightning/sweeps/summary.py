"""The line that ends every ``-m`` sweep: how many jobs completed, failed or were skipped.

A Hydra callback, so it runs in the launching process whatever the launcher (in-process, submitit
or SLURM) and reads the outcome from the jobs' own metrics.json files. The command exits non-zero
when a job failed (``cli/train.py`` reads ``failed_jobs``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fer_lightning.runs.directory import METRICS_FILE

failed_jobs: list[str] = []  # this process's last sweep: the failed jobs, as "<dir>: <error>"


def count_jobs(sweep_dir: Path, started: float) -> tuple[dict[str, int], list[str]]:
    """Jobs by outcome; a completed job whose metrics were written before the sweep started was skipped."""
    from fer_lightning.errors import FerError
    from fer_lightning.sweeps.leaderboard import collect_runs

    try:
        runs, _ = collect_runs(sweep_dir)
    except FerError:
        runs = []
    counts = {"completed": 0, "failed": 0, "skipped": 0, "unfinished": 0}
    failures = []
    for run in runs:
        if run.status == "completed":
            finished_before = (run.path / METRICS_FILE).stat().st_mtime < started
            counts["skipped" if finished_before else "completed"] += 1
        elif run.status == "failed":
            counts["failed"] += 1
            failures.append(f"{run.label}: {run.error or 'see its train.log'}")
        else:
            counts["unfinished"] += 1
    return counts, failures


class SweepSummary(Callback):
    def __init__(self) -> None:
        self.started = time.time()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.started = time.time()
        failed_jobs.clear()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        counts, failures = count_jobs(sweep_dir, self.started)
        failed_jobs[:] = failures
        parts = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n or outcome != "unfinished")
        first = f"; first failure: {failures[0]}" if failures else ""
        print(f"sweep {sweep_dir}: {parts}{first}", flush=True)
