"""The prepared GPU run: refused without a GPU, and its dry run does every stage on the CPU."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import torch

from benchmarks.gpu_results import main


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_stops_in_one_line_before_any_work(tmp_path):
    with pytest.raises(SystemExit, match="no GPU that torch can use .* --dry-run"):
        main(["--data", str(tmp_path / "fer2013.npz"), "--output-dir", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_dry_run_trains_each_stage_runs_members_at_once_and_writes_the_rows(tmp_path):
    results = main(["--dry-run", "--output-dir", str(tmp_path)])
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    stages = results["stages"]
    assert [len(stages[name]["runs"]) for name in ("report", "best_single", "ensemble_sweep")] == [1, 1, 2]
    for stage in stages.values():
        for run in stage["runs"]:
            assert run["status"] == "completed" and run["epochs"] == run["configured_epochs"] == 2
            assert 0.0 <= run["val_acc"] <= 1.0 and run["median_epoch_seconds"] > 0
            config = (Path(run["run_dir"]) / ".hydra" / "config.yaml").read_text()
            assert "resident: true" in config and "device_augment: " in config

    # The members ran in processes of their own, at the same time.
    members = [json.loads((Path(run["run_dir"]) / "metrics.json").read_text()) for run in stages["ensemble_sweep"]["runs"]]
    starts = [datetime.fromisoformat(m["started_at"]) for m in members]
    ends = [datetime.fromisoformat(m["finished_at"]) for m in members]
    assert max(starts) <= min(ends), "the second member started after the first had finished"
    sweep_dir = Path(stages["ensemble_sweep"]["runs"][0]["run_dir"]).parent
    assert len(list(sweep_dir.glob(".submitit/*/*_log.out"))) == 2
    assert results["concurrent_speedup"] > 0

    assert Path(results["ensemble"]["file"]).is_file() and results["ensemble"]["members"] == 2
    rows = (tmp_path / "rows.md").read_text().splitlines()
    assert len(rows) == 3 and all(row.count("|") == 7 for row in rows)  # the README table's six columns
    assert "2 members trained at once" in rows[2]
