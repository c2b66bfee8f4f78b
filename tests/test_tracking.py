"""Experiment tracking and debugging: debug presets, tags and provenance, k-fold folds, a resumable
optuna study, MLflow against a real tracking server, W&B offline."""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from fer_lightning.config.checks import check_data
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.splits import stratified_folds
from fer_lightning.errors import ConfigError
from fer_lightning.sweeps.leaderboard import collect_runs, fold_summary
from tests.conftest import compose_config
from tests.helpers import run_cli

# A run of a few seconds: a narrow network on a few synthetic faces.
TINY = ["model/width=narrow", "data.synthetic.train=128", "data.synthetic.val=64", "data.synthetic.test=0",
        "data.batch_size=32"]


def train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    flags = [o for o in overrides if o == "-m"]  # Hydra reads its flags before the overrides
    settings = [o for o in overrides if o != "-m"]
    result = run_cli("fer_lightning.train", *flags, *TINY, *settings, env={"FER_OUTPUTS": str(tmp_path / "outputs")})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def sweep(tmp_path: Path, *overrides: str) -> Path:
    """A quiet one-epoch sweep of ``overrides``; its sweep directory."""
    train(tmp_path, "-m", *overrides, "callbacks=none", "logger=none", "trainer.max_epochs=1")
    return next((tmp_path / "outputs" / "multiruns").glob("*/*"))


def run_with(root: Path, override: str) -> Path:
    """The run below ``root`` that the command line gave ``override``."""
    return next(d for d in run_dirs(root) if override in (d / ".hydra" / "overrides.yaml").read_text())


def run_dirs(root: Path) -> list[Path]:
    return sorted(path.parent for path in root.rglob("metrics.json") if (path.parent / ".hydra").is_dir())


# ------------------------------------------------------------------------------------------ debug
@pytest.mark.slow
def test_debug_presets_run_what_they_promise(tmp_path):
    outputs = tmp_path / "outputs"
    # fdr: one batch of each loop, no checkpoint; every preset lands under outputs/runs/debug/.
    train(tmp_path, "debug=fdr", "callbacks=none")
    (fdr,) = run_dirs(outputs / "runs" / "debug")
    assert json.loads((fdr / "metrics.json").read_text())["status"] == "completed"
    assert not (fdr / "checkpoints").exists()

    # limit: three epochs of three batches, checkpoints and test included.
    train(tmp_path, "debug=limit", "callbacks=none", "logger=csv", "data.synthetic.test=64")
    limit = run_with(outputs / "runs" / "debug", "debug=limit")
    rows = list(csv.DictReader((limit / "csv" / "metrics.csv").open()))
    trained = [int(r["epoch"]) for r in rows if r.get("acc/train")]  # the test row carries the epoch after the last
    assert max(trained) == 2 and (limit / "checkpoints" / "last.ckpt").is_file()
    assert json.loads((limit / "metrics.json").read_text())["test_acc"] is not None

    # overfit: three batches learnt by heart.
    train(tmp_path, "debug=overfit", "callbacks=none", "logger=csv", "trainer.max_epochs=25")
    overfit = run_with(outputs / "runs" / "debug", "debug=overfit")
    rows = list(csv.DictReader((overfit / "csv" / "metrics.csv").open()))
    train_acc = [float(r["acc/train"]) for r in rows if r.get("acc/train")]
    assert max(train_acc) >= 0.95, train_acc

    # profiler: Lightning's report in the run directory.
    train(tmp_path, "debug=profiler", "callbacks=none", "logger=none")
    profiled = run_with(outputs / "runs" / "debug", "debug=profiler")
    report = (profiled / "fit-profile.txt").read_text()
    assert "run_training_epoch" in report and "Mean duration" in report


# ------------------------------------------------------------------------------ tags, provenance
@pytest.mark.slow
def test_a_run_records_its_tags_and_provenance_and_the_leaderboard_filters_by_tag(tmp_path):
    swept = sweep(tmp_path, "model.dropout=0.1,0.2", "tags=[baseline,tiny]")
    runs = run_dirs(swept)
    assert len(runs) == 2
    provenance = json.loads((runs[0] / "provenance.json").read_text())
    assert provenance["tags"] == ["baseline", "tiny"]
    assert provenance["command"].startswith("python -m fer_lightning.train ") and "tags=[baseline,tiny]" in provenance["command"]
    git = provenance["git"]
    assert git == "not a git checkout" or (len(git["commit"]) == 40 and isinstance(git["dirty"], bool))
    assert provenance["versions"]["torch"] and provenance["versions"]["pytorch-lightning"]
    assert provenance["hardware"]["precision"] in ("bf16-mixed", "32-true") and provenance["hardware"]["cores"] >= 1

    # Retag one run as an older run would be: the filter keeps only the runs with every tag asked for.
    metrics = json.loads((runs[1] / "metrics.json").read_text())
    (runs[1] / "metrics.json").write_text(json.dumps({**metrics, "tags": ["tiny"]}))
    assert [run.path for run in collect_runs(swept, ["baseline"])[0]] == [runs[0]]
    assert len(collect_runs(swept, ["tiny"])[0]) == 2
    shown = run_cli("fer_lightning.leaderboard", str(swept), "tags=baseline")
    assert shown.returncode == 0 and "baseline tiny" in shown.stdout and "model.dropout=0.2" not in shown.stdout
    missing = run_cli("fer_lightning.leaderboard", str(swept), "tags=[nothing]")
    assert missing.returncode == 2 and "no run is tagged nothing" in missing.stderr


# ----------------------------------------------------------------------------------------- folds
def test_folds_partition_the_rows_and_keep_each_class_share():
    labels = np.repeat(np.arange(7), [50, 7, 40, 90, 60, 30, 61])
    folds = stratified_folds(labels, 5, seed=3)
    together = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(together, np.arange(len(labels)))  # every row once
    for cls, count in enumerate(np.bincount(labels)):
        per_fold = [int(np.sum(labels[f] == cls)) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1 and sum(per_fold) == count
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert not np.array_equal(stratified_folds(labels, 5, seed=4)[0], folds[0])


def test_a_fold_validates_on_training_rows_only():
    whole = FERDataModule(synthetic={"train": 90, "val": 30, "test": 0}, cache_dir=None)
    whole.setup()
    module = FERDataModule(synthetic={"train": 90, "val": 30, "test": 0}, cache_dir=None, folds=3, fold=1)
    module.setup()
    assert len(module.splits["val"].images) == 30 and len(module.splits["train"].images) == 60
    training_rows = {face.tobytes() for face in whole.splits["train"].images}
    assert all(face.tobytes() in training_rows for face in module.splits["val"].images)  # not the data's val


@pytest.mark.parametrize(("overrides", "words"), [
    (["data.folds=1"], "data.folds=1 is not allowed"),
    (["data.folds=4", "data.fold=4"], "data.fold=4 is not allowed: a fold number from 0 to 3"),
])
def test_impossible_fold_settings_are_one_line(overrides, words):
    with pytest.raises(ConfigError, match=words):
        check_data(compose_config(overrides).data)


@pytest.mark.slow
def test_a_k_fold_sweep_is_summed_up_by_the_leaderboard(tmp_path):
    swept = sweep(tmp_path, "data.folds=3", "data.fold=range(3)")
    runs, _ = collect_runs(swept)
    (summary,) = fold_summary(runs)
    accuracies = [run.best_val_acc for run in runs]
    assert summary["completed"] == 3 and summary["mean_val_acc"] == pytest.approx(np.mean(accuracies))
    assert summary["std_val_acc"] == pytest.approx(np.std(accuracies, ddof=1))
    shown = run_cli("fer_lightning.leaderboard", str(swept))
    assert "k-fold" in shown.stdout and "3 of 3" in shown.stdout


# ---------------------------------------------------------------------------------------- optuna
@pytest.mark.slow
def test_a_stopped_optuna_search_goes_on_with_the_same_study(tmp_path):
    search = ["-m", "hparams_search=optuna", "hydra.sweeper.sampler.n_startup_trials=1",
              'hydra.sweeper.params={model.dropout:"interval(0.1,0.5)"}', "callbacks=none", "logger=none",
              "trainer.max_epochs=1"]
    train(tmp_path, *search, "hydra.sweeper.n_trials=2")
    again = train(tmp_path, *search, "hydra.sweeper.n_trials=3")  # as if the first had been stopped at 2
    assert "2 of 3 trials already ended, 1 to go" in again.stdout + again.stderr
    (database,) = (tmp_path / "outputs" / "multiruns").rglob("optuna.db")
    with sqlite3.connect(database) as db:
        trials = db.execute("select number, state from trials order by number").fetchall()
    assert trials == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert len(run_dirs(database.parent)) == 3
    done = train(tmp_path, *search, "hydra.sweeper.n_trials=3")
    assert "3 of 3 trials already ended, 0 to go" in done.stdout + done.stderr


# ---------------------------------------------------------------------------------------- mlflow
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on 127.0.0.1 (SQLite backend, a temporary artifact folder),
    stopped when the test ends."""
    executable = shutil.which("mlflow", path=str(Path(sys.executable).parent))
    if executable is None:
        if os.environ.get("FER_REQUIRE_MLFLOW") == "1":
            pytest.fail("FER_REQUIRE_MLFLOW=1 but mlflow is not installed (pip install -e '.[tracking]')")
        pytest.skip("mlflow is not installed (the tracking extra)")
    port = free_port()
    server = subprocess.Popen(
        [executable, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "server.log").open("w"), start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the MLflow server did not start: {(tmp_path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
def test_mlflow_finds_each_job_of_a_sweep_with_its_config_curves_and_files(tmp_path, mlflow_server):
    import mlflow
    from mlflow.tracking import MlflowClient

    train(tmp_path, "-m", "model.dropout=0.1,0.2", "logger=mlflow", f"logger.mlflow.tracking_uri={mlflow_server}",
          "name=tracked", "tags=[tiny]", "trainer.max_epochs=2", "callbacks.filter_pictures=null")
    mlflow.set_tracking_uri(mlflow_server)  # served artifacts (mlflow-artifacts:) are read through it
    client = MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["fer.sweep"] for r in runs}) == 1  # one sweep, one tag to find its jobs by
    run = next(r for r in runs if r.data.params["model.dropout"] == "0.1")
    assert run.data.params["model.net.channels"] == "[8, 16, 32, 64, 128, 256, 256]"
    assert run.data.tags["fer.tags"] == "tiny"
    history = client.get_metric_history(run.info.run_id, "acc/val")
    assert len(history) == 2  # one value per epoch

    def artifacts(path=None):
        for item in client.list_artifacts(run.info.run_id, path):
            yield from artifacts(item.path) if item.is_dir else [item.path]

    stored = set(artifacts())
    assert {"run/metrics.json", "run/provenance.json", "run/config.yaml", "checkpoints/best.ckpt"} <= stored
    assert any(path.startswith("figures/confusion_matrix/") and path.endswith(".png") for path in stored)
    metrics = json.loads(Path(client.download_artifacts(run.info.run_id, "run/metrics.json", str(tmp_path))).read_text())
    assert metrics["status"] == "completed"


# ----------------------------------------------------------------------------------------- wandb
@pytest.mark.slow
def test_wandb_logs_offline_into_the_run_directory(tmp_path):
    pytest.importorskip("wandb")
    train(tmp_path, "logger=wandb", "trainer.max_epochs=2", "callbacks.filter_pictures=null",
          "callbacks.saliency=null", "tags=[offline]")
    (run_dir,) = run_dirs(tmp_path / "outputs" / "runs")
    (record,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    data = record.read_bytes()
    # The run's history (each epoch's metrics) and its config, as a later `wandb sync` uploads them.
    assert b"acc/val" in data and b"loss/train" in data and b"model.net.channels" in data and b"offline" in data
    files = record.parent / "files"
    assert (files / "run" / "metrics.json").is_file() and (files / "checkpoints" / "best.ckpt").is_file()
