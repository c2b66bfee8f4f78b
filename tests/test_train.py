"""Training end to end on synthetic data: what a run leaves behind, reruns, sweeps, errors."""

from __future__ import annotations

import json
import time

import pytest
import torch

from fer_lightning.cli.train import train_command as train
from tests.conftest import FAST
from tests.helpers import run_cli, tensorboard_tags

pytestmark = pytest.mark.slow


def test_short_training_leaves_metrics_checkpoints_and_curves(train_config, tmp_path):
    cfg = train_config("trainer.max_epochs=2")
    best = train(cfg)
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["best_val_acc"] == pytest.approx(best)
    assert metrics["best_epoch"] in (0, 1)
    assert metrics["epochs_completed"] == 2
    assert metrics["test_acc"] is not None and 0.0 <= metrics["test_acc"] <= 1.0
    assert metrics["train_seconds"] > 0
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(run / "checkpoints" / name, weights_only=True)  # no pickled code needed
        assert checkpoint["hyper_parameters"]["net"]["channels"] == list(cfg.model.net.channels)
    assert metrics["best_checkpoint"].endswith("best.ckpt")

    scalars = tensorboard_tags(run / "tensorboard")["scalars"]
    for tag in ("loss/train", "loss/val", "acc/train", "acc/val", "acc_macro/val", "hp/best_val_acc"):
        assert tag in scalars, f"{tag} missing from {sorted(scalars)}"
    assert any(tag.startswith("lr-") for tag in scalars)
    assert (run / "tensorboard" / "hparams.yaml").is_file()


def test_every_logger_option_trains_and_records_the_epochs(train_config, tmp_path):
    """logger=csv and logger=many: each logger gets the hyperparameters in the form it takes."""
    import csv

    for option in ("csv", "many"):
        train(train_config(f"logger={option}", run=option))
        rows = list(csv.DictReader((tmp_path / option / "csv" / "metrics.csv").open()))
        assert any(row.get("acc/val") for row in rows)
        assert (tmp_path / option / "csv" / "hparams.yaml").is_file()
    assert (tmp_path / "many" / "tensorboard").is_dir()


def test_finished_run_is_skipped_and_retrain_archives_it(train_config, tmp_path):
    train(train_config())
    run = tmp_path / "run"
    first = json.loads((run / "metrics.json").read_text())
    mtime = (run / "checkpoints" / "best.ckpt").stat().st_mtime_ns

    assert train(train_config()) == pytest.approx(first["best_val_acc"])
    assert (run / "checkpoints" / "best.ckpt").stat().st_mtime_ns == mtime  # untouched

    train(train_config("retrain=true"))
    archived = list((run / "archive").glob("*/checkpoints/best.ckpt"))
    assert len(archived) == 1
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"


def test_unfinished_run_resumes_from_last_checkpoint(train_config, tmp_path):
    train(train_config("trainer.max_epochs=1"))
    run = tmp_path / "run"
    # As if the process had been killed after epoch 1 of 2: status still "running", no time recorded,
    # and (to tell the two stretches apart) an hour of fitting behind it kept in last.ckpt.
    data = json.loads((run / "metrics.json").read_text())
    data["status"] = "running"
    first_stretch = data.pop("train_seconds")
    (run / "metrics.json").write_text(json.dumps(data))
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert 0 < last["callbacks"]["FitSummary"]["train_seconds"] <= first_stretch
    last["callbacks"]["FitSummary"]["train_seconds"] = 3600.0
    torch.save(last, run / "checkpoints" / "last.ckpt")

    started = time.perf_counter()
    train(train_config("trainer.max_epochs=2"))
    second_stretch = time.perf_counter() - started
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["epochs_completed"] == 2
    assert 3600 < metrics["train_seconds"] < 3600 + second_stretch  # both stretches, counted once
    log = (run / "checkpoints" / "last.ckpt")
    assert torch.load(log, weights_only=True)["epoch"] == 1


def test_an_epoch_cut_short_by_a_step_or_time_limit_is_not_counted(train_config, tmp_path):
    # 448 images in batches of 64: 7 steps an epoch; 10 steps are epoch 0 and 3/7 of epoch 1.
    train(train_config("trainer.max_epochs=3", "+trainer.max_steps=10", "data.batch_size=64", "test=false"))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs_completed"] == 1
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10


def test_multirun_sweep_gives_each_job_its_own_directory(tmp_path):
    result = run_cli("fer_lightning.train", "-m", "model.dropout=0.3,0.5", *FAST,
                     "data.synthetic.train=128", "data.synthetic.val=64", "data.synthetic.test=0",
                     f"paths.log_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = sorted(tmp_path.glob("multiruns/default/*/*/metrics.json"))
    assert len(metrics) == 2
    assert {p.parent.name.split("model.dropout=")[1][:3] for p in metrics} == {"0.3", "0.5"}
    for path in metrics:
        data = json.loads(path.read_text())
        assert data["status"] == "completed" and data["test_acc"] is None
        assert (path.parent / ".hydra" / "config.yaml").is_file()
        # Each job's log has its epoch line, with the accuracy metrics.json recorded.
        epoch_lines = [line for line in (path.parent / "train.log").read_text().splitlines() if "epoch 0/0:" in line]
        assert len(epoch_lines) == 1 and f"acc/val {data['best_val_acc']:.4f}" in epoch_lines[0]


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("model.dropout=1.0", "model.dropout=1.0 is not allowed: a number in [0, 1)"),
        ("model/width=huge", "Available options in 'model/width': narrow, report, wide"),
        ("data.batch_size=0", "data.batch_size=0 is not allowed"),
        ("model.optimizer.lr=-0.1", "model.optimizer.lr=-0.1 is not allowed: a number > 0"),
        ("model.net.channels=[16,0,64,128,256,512,512]", "model.net.channels[1]=0 is not allowed"),
        ("model.net.channels=[]", "model.net.channels=[] is not allowed: at least one conv layer width"),
        ("data=fer2013 data.path=../no/such.csv.gz", "data.path=../no/such.csv.gz: no such file"),
        ("data=fer2013 data.path=/no/such/fer.csv", "data.path=/no/such/fer.csv: no such file"),
        ("augmentation=unknown", "Available options in 'augmentation'"),
    ],
)
def test_bad_config_stops_with_one_line(override, expected, tmp_path):
    result = run_cli("fer_lightning.train", *override.split(), f"paths.log_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not list(tmp_path.rglob("*.ckpt"))


def test_ema_checkpoints_carry_the_averaged_weights_that_inference_uses(train_config, tmp_path):
    from fer_lightning.checkpoints.model_file import network_from_checkpoint

    train(train_config("callbacks=ema", "callbacks.weight_averaging.update_starting_at_step=0",
                       "trainer.max_epochs=2"))
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "best.ckpt", weights_only=True)
    averaged, live = checkpoint["state_dict"], checkpoint["current_model_state"]
    key = next(k for k in averaged if k.endswith("weight") and k.startswith("net."))
    assert not torch.equal(averaged[key], live[key])  # two different sets of weights were kept
    net = network_from_checkpoint(checkpoint)
    assert torch.equal(net.state_dict()[key.removeprefix("net.")], averaged[key].float())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "completed"
