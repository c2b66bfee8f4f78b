"""Bad input, crashes and reruns: clear errors, nothing lost, nothing silently wrong."""

from __future__ import annotations

import json

import pytest

from fer_lightning.cli.train import train_command as train
from fer_lightning.models.classifier import ExpressionClassifier
from tests.conftest import FAST
from tests.helpers import mounted_tmpfs, run_cli

pytestmark = pytest.mark.slow

GOOD_ROW = "0," + " ".join(["128"] * 2304) + ",Training"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("emotion,pixels,Usage\n" + GOOD_ROW + "\n" + "9," + " ".join(["1"] * 2304) + ",Training\n", "line 3"),
        ("emotion,pixels,Usage\n" + GOOD_ROW + "\n" + "0," + " ".join(["1"] * 2000) + ",Training\n", "line 3"),
        ("", "empty"),
    ],
)
def test_bad_csv_stops_training_with_one_line(tmp_path, content, expected):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    result = run_cli("fer_lightning.train", "data=fer2013", f"data.path={bad}", "data.cache_dir=null",
                     f"paths.log_dir={tmp_path / 'out'}", "print_config=false", timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip() and "Warning" not in line]
    assert len(lines) == 1, result.stderr
    assert str(bad) in lines[0] and expected in lines[0].lower()
    assert "Traceback" not in result.stderr
    metrics = json.loads(next((tmp_path / "out").rglob("metrics.json")).read_text())
    assert metrics["status"] == "failed" and str(bad) in metrics["error"]


def test_unwritable_output_directory_fails_before_training(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = run_cli("fer_lightning.train", *FAST, f"paths.log_dir={blocker}/outputs", timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and str(blocker) in result.stderr
    assert "Traceback" not in result.stderr


def test_a_setting_that_fails_only_when_used_is_one_line_without_hydras_report(tmp_path):
    # The Trainer refuses the argument only when training builds it, inside the Hydra job.
    result = run_cli("fer_lightning.train", *FAST, "+trainer.bogus=1", f"paths.log_dir={tmp_path}", timeout=120)
    assert result.returncode == 2
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "rror" in line]
    assert errors == [errors[-1]] and errors[-1].startswith("error: ") and "'bogus'" in errors[-1], errors
    assert "Error executing job" not in result.stdout + result.stderr


def test_nan_loss_stops_the_run_and_keeps_the_best_checkpoint(train_config, tmp_path, monkeypatch):
    train(train_config("trainer.max_epochs=1"))
    run = tmp_path / "run"
    best = run / "checkpoints" / "best.ckpt"
    before = best.read_bytes()
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["status"] = "running"  # as if killed, so the next call resumes
    (run / "metrics.json").write_text(json.dumps(metrics))

    original = ExpressionClassifier.loss
    monkeypatch.setattr(ExpressionClassifier, "loss", lambda self, logits, target: original(self, logits, target) * float("nan"))
    with pytest.raises(SystemExit) as exit_info:
        train(train_config("trainer.max_epochs=2"))
    assert exit_info.value.code == 2
    failed = json.loads((run / "metrics.json").read_text())
    assert failed["status"] == "failed" and "loss is nan" in failed["error"]
    assert best.read_bytes() == before


def test_same_seed_same_config_gives_identical_metrics(tmp_path):
    from tests.conftest import compose_config

    results = []
    for attempt in ("first", "second"):
        cfg = compose_config([*FAST, f"paths.log_dir={tmp_path}", "trainer.max_epochs=2"],
                             output_dir=tmp_path / attempt)
        train(cfg)
        results.append(json.loads((tmp_path / attempt / "metrics.json").read_text()))
    for key in ("best_val_acc", "best_epoch", "test_acc"):
        assert results[0][key] == results[1][key]


def test_failing_job_does_not_stop_the_sweep(tmp_path):
    result = run_cli("fer_lightning.train", "-m", "model.dropout=0.3,1.0", *FAST,
                     "data.synthetic.train=128", "data.synthetic.val=64", "data.synthetic.test=0",
                     f"paths.log_dir={tmp_path}")
    # The sweep went on past the failed job, said so in one line, and exits non-zero.
    assert result.returncode == 1, result.stderr[-2000:]
    statuses = {p.parent.name: json.loads(p.read_text())["status"]
                for p in tmp_path.glob("multiruns/default/*/*/metrics.json")}
    assert statuses == {"model.dropout=0.3": "completed", "model.dropout=1.0": "failed"}
    summary = [line for line in result.stdout.splitlines() if line.startswith("sweep ")]
    assert len(summary) == 1 and "1 completed, 1 failed, 0 skipped" in summary[0]
    assert "first failure: model.dropout=1.0: model.dropout=1.0 is not allowed" in summary[0]


class CrashAtEpoch:
    """A callback that kills training at the start of an epoch, after earlier checkpoints exist."""

    def __new__(cls, epoch: int):
        import pytorch_lightning as pl

        class _Crash(pl.Callback):
            def on_train_epoch_start(self, trainer, module):
                if trainer.current_epoch == epoch:
                    raise RuntimeError("simulated crash")

        return _Crash()


def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path):
    import torch

    from tests.conftest import compose_config

    common = [*FAST, f"paths.log_dir={tmp_path}", "trainer.max_epochs=3", "augmentation=strong"]
    train(compose_config(common, output_dir=tmp_path / "straight"))

    crash = ["+callbacks.crash._target_=tests.test_reliability.CrashAtEpoch", "+callbacks.crash.epoch=2"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(compose_config(common + crash, output_dir=tmp_path / "resumed"))
    assert json.loads((tmp_path / "resumed" / "metrics.json").read_text())["status"] == "failed"
    train(compose_config(common, output_dir=tmp_path / "resumed"))

    straight, resumed = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("straight", "resumed"))
    assert resumed["status"] == "completed" and resumed["epochs_completed"] == 3
    for key in ("best_val_acc", "best_epoch", "test_acc"):
        assert straight[key] == resumed[key], key
    weights = [torch.load(tmp_path / d / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for d in ("straight", "resumed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_truncated_last_checkpoint_is_kept_aside_not_loaded(tmp_path):
    from fer_lightning.runs.directory import RunDirectory

    run = RunDirectory(tmp_path)
    run.checkpoint_dir.mkdir(parents=True)
    import torch

    torch.save({"x": torch.zeros(1000)}, run.checkpoint_dir / "last.ckpt")
    data = (run.checkpoint_dir / "last.ckpt").read_bytes()
    run.write_metrics(status="running")
    assert run.resume_checkpoint() == run.checkpoint_dir / "last.ckpt"
    (run.checkpoint_dir / "last.ckpt").write_bytes(data[: len(data) // 2])  # killed mid-write
    assert run.resume_checkpoint() is None
    kept = list(run.checkpoint_dir.glob("last.ckpt.broken-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == data[: len(data) // 2]


def test_a_last_checkpoint_that_no_longer_fits_is_one_line_with_the_way_on(train_config, tmp_path, capsys):
    import torch

    train(train_config("trainer.max_epochs=1"))
    metrics = tmp_path / "run" / "metrics.json"
    # The same run directory, now holding an unfinished run of a narrower network.
    data = json.loads(metrics.read_text())
    metrics.write_text(json.dumps({**data, "status": "running"}))
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    checkpoint["state_dict"] = {k: v[..., :1] if v.ndim else v for k, v in checkpoint["state_dict"].items()}
    torch.save(checkpoint, last)
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train(train_config("trainer.max_epochs=2"))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot resume from" in lines[0] and "retrain=true" in lines[0]
    assert last.is_file()  # nothing the user made is deleted


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB file system of its own: room for one checkpoint and a bit, not two."""
    yield from mounted_tmpfs(tmp_path / "disk", "size=3m")


def test_a_full_disk_never_truncates_the_last_good_checkpoint(small_disk, train_config):
    import torch
    from hydra.utils import instantiate

    from fer_lightning.errors import WriteError
    from fer_lightning.runs.checkpoint_io import AtomicCheckpointIO
    from fer_lightning.runs.training import trainer_arguments

    trainer = instantiate(trainer_arguments(train_config().trainer), logger=False, callbacks=[])
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)  # what every run writes with
    last = small_disk / "checkpoints" / "last.ckpt"
    good = {"state_dict": {"w": torch.ones(400_000)}, "epoch": 3}  # 1.6 MB
    trainer.strategy.checkpoint_io.save_checkpoint(good, last)
    size = last.stat().st_size
    with pytest.raises(WriteError, match=f"{last}: cannot write \\(No space left on device\\)"):
        trainer.strategy.checkpoint_io.save_checkpoint({"state_dict": {"w": torch.zeros(400_000)}, "epoch": 4}, last)
    assert last.stat().st_size == size and torch.equal(torch.load(last, weights_only=True)["state_dict"]["w"],
                                                        good["state_dict"]["w"])
    assert [p.name for p in last.parent.iterdir()] == ["last.ckpt"]  # no partial file left behind
