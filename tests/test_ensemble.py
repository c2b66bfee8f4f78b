"""Ensembles of a sweep's runs: chosen on validation accuracy, unreadable members skipped, greedy
selection, one weights-only artifact whose output is the members' averaged probabilities.

The sweeps here are made of untrained networks written like training writes them, so these tests
need no training; tests/test_sweep_to_ensemble.py runs the real thing end to end.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from fer_lightning.checkpoints.ensemble_file import SoftmaxAverage, member_checkpoints
from fer_lightning.checkpoints.model_file import load_classifier, network_from_checkpoint
from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import FerError
from fer_lightning.inference.scoring import load_split, predict_probabilities
from fer_lightning.models.classifier import ExpressionClassifier
from fer_lightning.runs.saved_run import run_data_config
from fer_lightning.sweeps.ensemble import build_ensemble, greedy_selection
from tests.conftest import FAST, compose_config

# ----------------------------------------------------------- fake sweeps (shared by other tests)
# Two widths, so that ensembles mix networks of different shapes; both small, to keep tests quick.
TINY = {"net": {"channels": [4, 8, 8, 16, 16, 32, 32], "hidden": [16, 16]}}
SMALLER = {"net": {"channels": [4, 4, 8, 8, 16, 16, 16], "hidden": [16, 8]}}
SMALL_DATA = ["data.synthetic.train=16", "data.synthetic.val=64", "data.synthetic.test=32"]


def saved_run_config(tmp_path: Path, *overrides: str) -> DictConfig:
    """A training config as Hydra saves it in .hydra/config.yaml (without the hydra node)."""
    cfg = compose_config([*FAST, *SMALL_DATA, f"paths.log_dir={tmp_path}", *overrides])
    GlobalHydra.instance().clear()
    return OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])


def write_checkpoint(path: Path, seed: int, dropout: float = 0.5, width: dict | None = None) -> ExpressionClassifier:
    """An untrained network saved the way training saves one (plain hyperparameters, marker)."""
    torch.manual_seed(seed)
    model = ExpressionClassifier(**(width or TINY), dropout=dropout).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"fer_lightning": {"kind": "model", "format": 1}, "hyper_parameters": dict(model.hparams),
                "state_dict": model.state_dict(), "epoch": 0}, path)
    return model


def write_run(run_dir: Path, config: DictConfig, overrides: list[str], status: str = "completed",
              best_val_acc: float | None = None, test_acc: float | None = None, seed: int = 0,
              dropout: float = 0.5, width: dict | None = None, error: str | None = None) -> Path:
    """A run directory as training leaves it: .hydra/, metrics.json and checkpoints/best.ckpt."""
    (run_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, run_dir / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), run_dir / ".hydra" / "overrides.yaml")
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    if status == "completed":
        write_checkpoint(checkpoint, seed, dropout, width)
    metrics = {"status": status, "best_val_acc": best_val_acc, "best_epoch": 0 if best_val_acc is not None else None,
               "test_acc": test_acc, "train_seconds": 12.5, "overrides": overrides, "error": error,
               "best_checkpoint": str(checkpoint.resolve()) if status == "completed" else None}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def fake_sweep(root: Path, val_accs: list[float], test_accs: list[float] | None = None) -> Path:
    """Completed runs differing in dropout (and, every other run, width), with the best validation
    accuracies given (as training would have recorded them)."""
    config = saved_run_config(root)
    sweep = root / "sweep"
    for index, val_acc in enumerate(val_accs):
        dropout = round(0.3 + 0.1 * index, 1)
        width = SMALLER if index % 2 else TINY
        overrides = [f"model.dropout={dropout}", "trainer.max_epochs=1"]
        write_run(sweep / f"model.dropout={dropout}", config, overrides, best_val_acc=val_acc,
                  test_acc=test_accs[index] if test_accs else None, seed=index, dropout=dropout, width=width)
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


# --------------------------------------------------------------------------------------- tests
def test_top_k_picks_by_validation_accuracy_never_test_and_averages_probabilities(tmp_path):
    # Test accuracy ranks the runs the other way round: it must not influence the choice.
    sweep = fake_sweep(tmp_path, val_accs=[0.50, 0.70, 0.60, 0.40], test_accs=[0.9, 0.1, 0.2, 0.95])
    document = build_ensemble(sweep, top_k=2)

    chosen = [Path(m["run_dir"]).name for m in document["members"]]
    assert chosen == ["model.dropout=0.4", "model.dropout=0.5"]
    assert [m["overrides"] for m in document["members"]] == [["model.dropout=0.4"], ["model.dropout=0.5"]]
    assert [m["weight"] for m in document["members"]] == [0.5, 0.5]
    assert document["selection"] == "top_k" and document["skipped"] == []
    assert json.loads((sweep / "ensemble.json").read_text()) == document

    # One file, weights-only loadable, marked, holding both members.
    raw = torch.load(sweep / "ensemble.ckpt", weights_only=True)
    assert raw["fer_lightning"]["kind"] == "ensemble" and len(raw["members"]) == 2
    assert raw["fer_lightning"]["data"]["synthetic"]["val"] == 64
    assert [m["hyper_parameters"]["net"]["channels"] for m in raw["members"]] == [
        SMALLER["net"]["channels"], TINY["net"]["channels"]]

    # Its output is the mean of the members' softmax; the recorded accuracies match it.
    val = load_split(run_data_config(sweep / "model.dropout=0.4"), "val")
    images = torch.from_numpy(val.images).float().div(255).unsqueeze(1)
    predictor = load_predictor(sweep / "ensemble.ckpt")
    members = [load_classifier(sweep / name / "checkpoints" / "best.ckpt") for name in chosen]
    with torch.inference_mode():
        expected = torch.stack([torch.softmax(m(images), dim=1) for m in members]).mean(dim=0)
        got = predictor.module(images)
        member_accs = [float((torch.softmax(m(images), 1).argmax(1).numpy() == val.labels).mean()) for m in members]
    assert torch.allclose(got, expected, atol=1e-6)
    assert predictor.kind == "ensemble" and predictor.member_count == 2
    assert document["ensemble"]["val_acc"] == pytest.approx(float((expected.argmax(1).numpy() == val.labels).mean()))
    assert [m["val_acc"] for m in document["members"]] == pytest.approx(member_accs)
    assert all(m["test_acc"] is not None for m in document["members"])
    assert document["ensemble"]["num_test"] == 32


def test_members_with_missing_or_corrupt_checkpoints_are_skipped_with_a_warning(tmp_path, caplog):
    sweep = fake_sweep(tmp_path, val_accs=[0.9, 0.8, 0.7, 0.6])
    corrupt = sweep / "model.dropout=0.3"
    (corrupt / "checkpoints" / "best.ckpt").write_bytes(b"PK\x03\x04 this is not a whole zip file")
    missing = sweep / "model.dropout=0.4"
    (missing / "checkpoints" / "best.ckpt").unlink()

    with caplog.at_level(logging.WARNING):
        document = build_ensemble(sweep, top_k=2)

    assert [Path(m["run_dir"]).name for m in document["members"]] == ["model.dropout=0.5", "model.dropout=0.6"]
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(corrupt) in warned and str(missing) in warned
    assert {Path(s["run_dir"]).name for s in document["skipped"]} == {corrupt.name, missing.name}


def test_failed_and_unfinished_runs_are_never_members(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.5])
    config = saved_run_config(tmp_path)
    write_run(sweep / "failed", config, ["model.dropout=0.9"], status="failed", error="boom")
    write_run(sweep / "stopped", config, ["model.dropout=0.8"], status="running", best_val_acc=0.99)
    document = build_ensemble(sweep, top_k=5)
    assert [Path(m["run_dir"]).name for m in document["members"]] == ["model.dropout=0.3"]


def test_runs_on_different_data_cannot_be_ensembled(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.5, 0.6])
    other = saved_run_config(tmp_path, "data.synthetic.seed=7")
    write_run(sweep / "other-data", other, ["data.synthetic.seed=7"], best_val_acc=0.7, seed=9)
    with pytest.raises(FerError, match="do not share one data source.*synthetic"):
        build_ensemble(sweep, top_k=3)


def test_greedy_stops_at_the_first_run_that_does_not_improve_validation_accuracy():
    labels = np.array([0, 1, 2, 3])
    # a alone gets 2 of 4 right, a+b 3 of 4; adding c (uniform) changes nothing, so selection stops
    # there, although d (perfect) would have helped: it is never even evaluated.
    probabilities = {
        "a": np.array([[.7, .1, .1, .1], [.1, .7, .1, .1], [.4, .1, .3, .2], [.7, .1, .1, .1]]),
        "b": np.array([[.7, .1, .1, .1], [.1, .7, .1, .1], [.1, .1, .7, .1], [.7, .1, .1, .1]]),
        "c": np.full((4, 4), 0.25),
        "d": np.eye(4),
    }
    looked_at = []

    def val_probabilities(name: str) -> np.ndarray:
        looked_at.append(name)
        return probabilities[name]

    assert greedy_selection(iter("abcd"), val_probabilities, labels) == ["a", "b"]
    assert looked_at == ["a", "b", "c"]  # d is never evaluated
    looked_at.clear()
    assert greedy_selection(iter("abcd"), val_probabilities, labels, max_members=1) == ["a"]
    assert looked_at == ["a"]
    assert greedy_selection(iter(""), lambda n: probabilities[n], labels) == []


def test_greedy_ensemble_is_at_least_as_good_as_its_best_member_on_validation(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.9, 0.8, 0.7])
    document = build_ensemble(sweep, top_k=3, greedy=True)
    assert document["selection"] == "greedy" and 1 <= len(document["members"]) <= 3
    assert Path(document["members"][0]["run_dir"]).name == "model.dropout=0.3"
    assert document["ensemble"]["val_acc"] >= document["members"][0]["val_acc"]


def test_softmax_average_normalises_weights_and_rejects_bad_ones():
    members = [torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)]
    average = SoftmaxAverage(members, [1.0, 3.0])
    assert torch.allclose(average.weights, torch.tensor([0.25, 0.75]))
    x = torch.randn(5, 3)
    expected = 0.25 * torch.softmax(members[0](x), 1) + 0.75 * torch.softmax(members[1](x), 1)
    assert torch.allclose(average(x), expected, atol=1e-6)
    assert torch.allclose(average(x).sum(dim=1), torch.ones(5))
    for weights in ([0.0, 0.0], [1.0, float("nan")], [-1.0, 2.0], [1.0]):
        with pytest.raises(ValueError):
            SoftmaxAverage(members, weights)


def test_ensemble_command_names_a_sweep_without_runs(tmp_path, capsys):
    from fer_lightning.cli.ensemble import main

    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "empty")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path / 'empty'}: no runs here")


# ------------------------------------------------------------------ what an ensemble may write and read
def test_the_ensemble_never_replaces_an_input_or_a_file_of_another_kind(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.6, 0.5])
    member = sweep / "model.dropout=0.3" / "checkpoints" / "best.ckpt"
    kept = member.read_bytes()
    photo = tmp_path / "victim.jpg"
    photo.write_bytes(b"\xff\xd8 a photo \xff\xd9")
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    for output, refused in ((member, "inside the run"), (sweep / "model.dropout=0.4" / "ens.ckpt", "inside the run"),
                            (photo, "ends in .ckpt or .pt"), (tmp_path / "notes.txt", "ends in .ckpt or .pt"),
                            (tmp_path / "notes.ckpt", "its summary"), (sweep / "multirun.yaml", ".ckpt or .pt")):
        with pytest.raises(FerError, match=refused):
            build_ensemble(sweep, top_k=2, output=output)
    assert member.read_bytes() == kept and notes.read_text() == '{"mine": true}'
    assert photo.read_bytes() == b"\xff\xd8 a photo \xff\xd9"
    # A checkpoint that is not an ensemble is replaced only when asked.
    other = tmp_path / "model.ckpt"
    other.write_bytes(member.read_bytes())
    with pytest.raises(FerError, match="is not an ensemble file: pass --overwrite"):
        build_ensemble(sweep, top_k=2, output=other)
    build_ensemble(sweep, top_k=2, output=other, overwrite=True)
    assert load_predictor(other).kind == "ensemble"
    build_ensemble(sweep, top_k=1, output=other)  # an ensemble file of its own may be replaced


def test_members_come_from_each_run_s_own_checkpoint_and_impossible_accuracies_rank_nowhere(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.6, 0.5, 0.4])
    # In a copied sweep every metrics.json may name one file elsewhere: each run's own file counts.
    elsewhere = sweep / "model.dropout=0.3" / "checkpoints" / "best.ckpt"
    for run in sweep.glob("model.dropout=*"):
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**metrics, "best_checkpoint": str(elsewhere)}))
    build_ensemble(sweep, top_k=3)
    members = torch.load(sweep / "ensemble.ckpt", weights_only=True)["members"]
    first_weights = [next(iter(m["state_dict"].values())) for m in members]
    assert len(members) == 3 and not torch.equal(first_weights[0], first_weights[2])  # not one file thrice
    for impossible in ("1e308", "NaN", "-0.5", "true"):
        run = sweep / "model.dropout=0.5"
        metrics = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps(metrics).replace('"best_val_acc": 0.4',
                                                                      f'"best_val_acc": {impossible}'))
        document = build_ensemble(sweep, top_k=3)
        assert run.name not in {Path(m["run_dir"]).name for m in document["members"]}
        (run / "metrics.json").write_text(json.dumps(metrics))


def test_a_huge_metrics_file_is_not_read_whole(tmp_path):
    from fer_lightning.files import MAX_JSON_BYTES
    from fer_lightning.sweeps.leaderboard import read_run

    sweep = fake_sweep(tmp_path, val_accs=[0.6])
    run = sweep / "model.dropout=0.3"
    with (run / "metrics.json").open("r+b") as handle:
        handle.truncate(2 * 2**30)  # sparse: 2 GB on paper, nothing on disk
    record = read_run(run)
    assert record.status == "failed" and "unreadable" in record.error and MAX_JSON_BYTES < 2**30


def test_a_run_whose_saved_config_holds_a_python_tag_is_left_out_not_fatal(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.6, 0.5, 0.4])
    tagged = sweep / "model.dropout=0.3"
    (tagged / ".hydra" / "config.yaml").write_text('data: !!python/object/apply:os.system ["touch pwned"]\n')
    document = build_ensemble(sweep, top_k=3)
    assert tagged.name not in {Path(m["run_dir"]).name for m in document["members"]} and len(document["members"]) == 2
    assert any(Path(s["run_dir"]).name == tagged.name for s in document["skipped"])
    assert not (Path.cwd() / "pwned").exists() and not (tagged / "pwned").exists()


@pytest.mark.parametrize("content", [b"[1]", b"\xff\xfe not utf-8", b'{"status": "completed", "best_val_acc": NaN}'])
def test_a_damaged_metrics_file_is_read_as_nothing_not_a_traceback(tmp_path, content):
    from fer_lightning.runs.directory import RunDirectory
    from fer_lightning.sweeps.leaderboard import read_run

    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_bytes(content)
    assert isinstance(RunDirectory(run).read_metrics(), dict)  # what train and report read: no traceback
    record = read_run(run)
    assert record.status == "failed" and "metrics.json is unreadable" in record.error


def test_an_ensemble_batch_of_no_images_is_refused(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.5])
    with pytest.raises(FerError, match="--batch-size 0: at least 1"):
        build_ensemble(sweep, batch_size=0)


def test_members_stored_contiguous_compute_channels_last_with_the_same_answers(tmp_path):
    # An ensemble file may hold its members' weights in either layout; oneDNN's CPU convolutions are
    # much faster on channels-last weights, so loading puts every member in that layout.
    sweep = fake_sweep(tmp_path, val_accs=[0.6, 0.5])
    build_ensemble(sweep, top_k=2)
    raw = torch.load(sweep / "ensemble.ckpt", weights_only=True)
    for member in raw["members"]:
        member["state_dict"] = {k: v.contiguous() for k, v in member["state_dict"].items()}
    torch.save(raw, tmp_path / "contiguous.ckpt")

    predictor = load_predictor(tmp_path / "contiguous.ckpt")
    convolutions = [p for p in predictor.module.parameters() if p.dim() == 4]
    assert convolutions and all(p.is_contiguous(memory_format=torch.channels_last) for p in convolutions)
    faces = generate_synthetic_faces(8, seed=3).images
    reference = SoftmaxAverage([network_from_checkpoint(m) for m in member_checkpoints(raw, source="raw")]).eval()
    assert np.allclose(predict_probabilities(predictor.module, faces), predict_probabilities(reference, faces),
                       atol=1e-5)
