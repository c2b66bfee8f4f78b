"""One process per run directory: the lock is atomic, and a refused command leaves the live run alone."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fer_lightning.runs.directory import RunDirectory, RunInUse
from tests.helpers import ROOT

TRY_LOCK = (
    "import sys, time; from fer_lightning.runs.directory import RunDirectory, RunInUse\n"
    "start = float(sys.argv[2])\n"
    "while time.time() < start: pass\n"  # every process tries at the same instant
    "run = RunDirectory(sys.argv[1])\n"
    "try:\n    run.acquire_lock()\nexcept RunInUse:\n    print('refused'); sys.exit(0)\n"
    "print('locked', flush=True); time.sleep(1.5)\n"
)


def test_processes_started_at_the_same_instant_never_both_hold_the_run(tmp_path):
    for trial in range(8):
        run_dir = tmp_path / f"run{trial}"
        run_dir.mkdir()
        start = str(time.time() + 1.0)
        processes = [subprocess.Popen([sys.executable, "-c", TRY_LOCK, str(run_dir), start], cwd=ROOT,
                                      stdout=subprocess.PIPE, text=True) for _ in range(3)]
        outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in processes)
        assert outcomes == ["locked", "refused", "refused"], (trial, outcomes)


def hold_run(run_dir: Path) -> subprocess.Popen:
    """Another process that holds the run until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from fer_lightning.runs.directory import RunDirectory\n"
         f"run = RunDirectory({str(run_dir)!r}); run.acquire_lock(); print('held', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_refused_train_command_does_not_touch_the_live_run(train_config, tmp_path, capsys):
    from fer_lightning.cli.train import train_command

    cfg = train_config()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    live = {"status": "running", "error": None, "started_at": "2026-01-01T00:00:00"}
    (run_dir / "metrics.json").write_text(json.dumps(live))
    holder = hold_run(run_dir)
    try:
        before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
        with pytest.raises(SystemExit) as exit_info:
            train_command(cfg)
        assert exit_info.value.code == 2
        assert f"in use by process {holder.pid}" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before
    finally:
        holder.communicate("")
    # Once the holder is gone (here it ended; a killed one releases the same way) the run is free.
    run = RunDirectory(run_dir)
    run.acquire_lock()
    run.release_lock()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    holder = hold_run(tmp_path)
    with pytest.raises(RunInUse):
        RunDirectory(tmp_path).acquire_lock()
    holder.kill()
    holder.wait()
    run = RunDirectory(tmp_path)
    run.acquire_lock()  # no waiting, no manual clean-up
    assert json.loads((tmp_path / "run.lock").read_text())["pid"] > 0
    run.release_lock()
    assert not (tmp_path / "run.lock").exists()
