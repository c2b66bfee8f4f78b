"""The leaderboard lists every run of a sweep, best first, and hides none that failed or stopped."""

from __future__ import annotations

import json
import os
import socket

import pytest

from fer_lightning.cli.leaderboard import main
from fer_lightning.sweeps.leaderboard import collect_runs
from tests.helpers import mounted_tmpfs
from tests.test_ensemble import saved_run_config, write_run

COMMON = ["trainer.max_epochs=1", "data.synthetic.train=16"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("leaderboard")
    config = saved_run_config(root)
    sweep = root / "sweep"
    write_run(sweep / "a", config, ["model.dropout=0.3", *COMMON], best_val_acc=0.61, test_acc=0.6, seed=1)
    write_run(sweep / "b", config, ["model.dropout=0.5", *COMMON], best_val_acc=0.72, test_acc=0.7, seed=2)
    write_run(sweep / "c", config, ["model.dropout=0.9", *COMMON], status="failed",
              error="FloatingPointError: train loss is nan at epoch 3\nTraceback (most recent call last):")
    # Killed mid-training: metrics.json still says running, but no process holds the lock.
    write_run(sweep / "d", config, ["model.dropout=0.6", *COMMON], status="running", best_val_acc=0.95)
    (sweep / "d" / "run.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    # Started by Hydra, stopped before training wrote anything.
    (sweep / "e" / ".hydra").mkdir(parents=True)
    (sweep / "e" / ".hydra" / "overrides.yaml").write_text(f"- model.dropout=0.7\n- {COMMON[0]}\n- {COMMON[1]}\n")
    write_run(sweep / "f", config, ["model.dropout=0.4", *COMMON], status="interrupted", best_val_acc=0.5)
    # A previous attempt archived inside a run is part of that run, not a run of its own.
    archived = sweep / "a" / "archive" / "2026-01-01_00-00-00"
    archived.mkdir(parents=True)
    (archived / "metrics.json").write_text(json.dumps({"status": "completed", "best_val_acc": 0.99}))
    return sweep


def test_runs_are_sorted_best_first_with_failed_and_unfinished_ones_listed(sweep):
    runs, common = collect_runs(sweep)
    assert [(r.path.name, r.status) for r in runs] == [
        ("b", "completed"), ("a", "completed"), ("f", "interrupted"), ("d", "unfinished"), ("c", "failed"),
        ("e", "not started"),
    ]
    assert common == COMMON
    assert [r.changed for r in runs] == [["model.dropout=0.5"], ["model.dropout=0.3"], ["model.dropout=0.4"],
                                         ["model.dropout=0.6"], ["model.dropout=0.9"], ["model.dropout=0.7"]]
    failed = runs[4]
    assert failed.error == "FloatingPointError: train loss is nan at epoch 3"  # first line only
    assert runs[0].best_val_acc == 0.72 and runs[0].test_acc == 0.7 and runs[0].train_seconds == 12.5


def test_a_run_whose_process_is_alive_is_running(sweep, tmp_path):
    config = saved_run_config(tmp_path)
    live = tmp_path / "live"
    write_run(live / "x", config, ["model.dropout=0.3"], status="running", best_val_acc=0.4)
    (live / "x" / "run.lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    runs, _ = collect_runs(live)
    assert runs[0].status == "running"


def test_command_prints_the_table_and_writes_json(sweep, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: cells stay on one line
    output = tmp_path / "board.json"
    main([str(sweep), "--json", str(output)])
    printed = capsys.readouterr().out
    for text in ("model.dropout=0.5", "completed", "failed", "unfinished", "not started", "72.00",
                 "FloatingPointError"):
        assert text in printed
    document = json.loads(output.read_text())
    assert document["common_overrides"] == COMMON
    assert [run["status"] for run in document["runs"]][:2] == ["completed", "completed"]
    assert document["runs"][0]["best_checkpoint"].endswith("best.ckpt")
    assert len(document["runs"]) == 6


def test_json_never_lands_on_a_run_or_another_file(sweep, tmp_path, capsys):
    run = next(p for p in sweep.iterdir() if (p / "metrics.json").is_file())
    metrics = (run / "metrics.json").read_bytes()
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    for target, expected in ((run / "metrics.json", f"is inside the run directory {run}"),
                             (notes, "exists and is not a leaderboard: pass --overwrite to replace it")):
        with pytest.raises(SystemExit) as exit_info:
            main([str(sweep), "--json", str(target)])
        assert exit_info.value.code == 2
        assert expected in capsys.readouterr().err
    assert (run / "metrics.json").read_bytes() == metrics
    assert json.loads(notes.read_text()) == {"mine": True}

    main([str(sweep), "--json", str(notes), "--overwrite"])
    assert json.loads(notes.read_text())["sweep_dir"] == str(sweep)
    main([str(sweep), "--json", str(notes)])  # its own kind: replaced without asking


def test_command_without_runs_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "no runs here" in error and "\n" not in error


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system: even root cannot write there."""
    yield from mounted_tmpfs(tmp_path / "ro", "size=1m,ro")


def test_an_output_that_cannot_be_written_is_one_line_naming_it(read_only_folder, tmp_path, capsys):
    from fer_lightning.cli.leaderboard import main as leaderboard_main
    from tests.test_ensemble import fake_sweep

    sweep = fake_sweep(tmp_path, val_accs=[0.5])
    with pytest.raises(SystemExit) as stopped:
        leaderboard_main([str(sweep), "--json", str(read_only_folder / "board.json")])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {read_only_folder / 'board.json'}: cannot write (Read-only file system)"


def test_impossible_times_and_markup_like_errors_still_give_a_table(tmp_path, capsys):
    from tests.test_ensemble import fake_sweep

    sweep = fake_sweep(tmp_path, val_accs=[0.5, 0.4])
    for run, changes in ((sweep / "model.dropout=0.3", {"train_seconds": float("inf")}),
                         (sweep / "model.dropout=0.4", {"train_seconds": float("nan"), "status": "failed",
                                                        "error": "[/bold] oops"})):
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, **changes}))  # Infinity and NaN, as Python writes them
    main([str(sweep)])
    shown = capsys.readouterr().out
    assert "dropout=0.3" in shown and "[/bold] oops" in shown  # the error text as text, not markup
