"""Models shipped with the package: published from a run, checked by sha256 and loaded weights-only,
accepted as ``ckpt_path=pretrained`` by every command, and a starting point for fine-tuning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from fer_lightning.checkpoints import shipped as pretrained
from fer_lightning.checkpoints.model_file import load_initial_weights
from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.cli.publish import MAX_BYTES
from fer_lightning.cli.publish import main as publish_main
from fer_lightning.cli.train import train_command
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import CheckpointError, ConfigError
from fer_lightning.inference.evaluation import evaluate
from fer_lightning.inference.export import export
from fer_lightning.inference.prediction import predict
from fer_lightning.inference.scoring import predict_probabilities
from fer_lightning.models.classifier import ExpressionClassifier
from tests.conftest import FAST, compose_config

SHIPPED = pretrained.PRETRAINED_DIR


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrained")
    cfg = compose_config([*FAST, f"paths.log_dir={root}", "data.synthetic.train=256", "data.synthetic.val=64"],
                         output_dir=root / "run")
    train_command(cfg)
    GlobalHydra.instance().clear()
    # What Hydra saves beside every run launched from the command line.
    (root / "run" / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]),
                   root / "run" / ".hydra" / "config.yaml")
    return root / "run"


@pytest.fixture(scope="module")
def shelf(trained_run, tmp_path_factory) -> Path:
    """A pretrained/ folder holding the tiny run, published as a user would."""
    directory = tmp_path_factory.mktemp("shelf")
    publish_main([str(trained_run), "--name", "tiny", "--directory", str(directory),
                  "--evaluate-data", "data=synthetic"])
    return directory


@pytest.fixture
def shipped_tiny(shelf, monkeypatch):
    """``pretrained`` now names the tiny model."""
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", shelf)
    return shelf


def command(name: str, *overrides: str):
    cfg = compose_config(list(overrides), config_name=name)
    GlobalHydra.instance().clear()
    return cfg


def test_publishing_stores_fp16_weights_whose_accuracy_matches_the_checkpoint(shelf, trained_run):
    registry = json.loads((shelf / "models.json").read_text())
    entry = registry["models"]["tiny"]
    assert registry["default"] == "tiny"
    assert entry["sha256"] == pretrained.sha256_of(shelf / entry["file"])
    stored = torch.load(shelf / entry["file"], weights_only=True)
    assert all(t.dtype == torch.float16 for t in stored["state_dict"].values() if t.is_floating_point())
    assert set(stored["hyper_parameters"]) <= set(pretrained.NETWORK_KEYS)  # no optimizer, no code
    assert abs(entry["val_accuracy"] - entry["val_accuracy_of_checkpoint"]) < 0.001
    assert entry["history"]["acc/val"] and len(entry["val_confusion_matrix"]) == 7
    # Its predictions are the checkpoint's, to fp16 precision.
    faces = generate_synthetic_faces(16, seed=5).images
    full = predict_probabilities(load_predictor(trained_run / "checkpoints" / "best.ckpt").module, faces)
    compact = predict_probabilities(load_predictor(shelf / entry["file"]).module, faces)
    assert np.abs(full - compact).max() < 2e-3


def test_a_damaged_or_replaced_model_file_is_refused_in_one_line(shelf, tmp_path):
    copy = tmp_path / "shelf"
    copy.mkdir()
    for item in shelf.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    weights = copy / "tiny.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged or was replaced") as refused:
        pretrained.pretrained_file("pretrained", directory=copy)
    assert "\n" not in str(refused.value)
    weights.unlink()
    with pytest.raises(CheckpointError, match="missing"):
        pretrained.pretrained_file("pretrained:tiny", directory=copy)
    with pytest.raises(CheckpointError, match=r"no such shipped model \(shipped: pretrained:tiny\)"):
        pretrained.pretrained_file("pretrained:huge", directory=copy)


def test_every_command_accepts_the_pretrained_name(shipped_tiny, tmp_path):
    # evaluate: the shipped model has no run directory, so the data is named
    result = evaluate(command("evaluate", "ckpt_path=pretrained", "data=synthetic", "data.synthetic.val=32",
                              "split=val", f"output={tmp_path / 'eval.json'}"))
    assert result["checkpoint"] == "pretrained" and result["num_images"] == 32
    with pytest.raises(ConfigError, match="name the data to evaluate on, for example data=synthetic"):
        evaluate(command("evaluate", "ckpt_path=pretrained:tiny", "split=val"))
    # predict: the default model
    faces = generate_synthetic_faces(3, seed=1).images
    for index, face in enumerate(faces):
        import cv2

        cv2.imwrite(str(tmp_path / f"face{index}.png"), face)
    predict(command("predict", f"input={tmp_path}", f"output={tmp_path / 'faces.csv'}"))
    assert len((tmp_path / "faces.csv").read_text().splitlines()) == 1 + len(faces)
    # export
    onnx = export(command("export", "ckpt_path=pretrained:tiny", f"output={tmp_path / 'tiny.onnx'}"))
    assert onnx.stat().st_size > 0
    # report
    from fer_lightning.reporting.run_report import build_report

    page = build_report(command("report", "run_dir=pretrained", "data=synthetic", "data.synthetic.val=21",
                                f"output_dir={tmp_path / 'report'}", "saliency.methods=[saliency]",
                                "saliency.per_class=1", "filters.filters=2", "filters.steps=2"))
    text = page.read_text()
    assert "pretrained:tiny" in text and 'id="history"' in text and (page.parent / "history.png").is_file()


def test_fine_tuning_starts_from_the_shipped_weights(shipped_tiny, train_config, tmp_path):
    donor = load_predictor("pretrained").module.members[0]
    model = ExpressionClassifier(**{k: v for k, v in donor_hparams(shipped_tiny).items()})
    load_initial_weights(model, "pretrained")
    for name, value in donor.state_dict().items():
        assert torch.equal(model.net.state_dict()[name], value)
    # A whole run from it trains and finishes; a network of another width is refused in one line.
    assert train_command(train_config("init_from=pretrained", run="tuned")) is not None
    with pytest.raises(SystemExit):
        train_command(train_config("ckpt_path=pretrained", "model/width=report", run="wrong-width"))
    metrics = json.loads((tmp_path / "wrong-width" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "does not fit" in metrics["error"] and "\n" not in metrics["error"]
    # ckpt_path is the name every command gives a model; init_from, its older name here, must agree with it.
    with pytest.raises(SystemExit):
        train_command(train_config("ckpt_path=pretrained", f"init_from={tmp_path}", run="two"))


def donor_hparams(shelf: Path) -> dict:
    return torch.load(shelf / "tiny.pt", weights_only=True)["hyper_parameters"]


@pytest.mark.skipif(not (SHIPPED / "models.json").is_file(), reason="no model ships in this checkout")
def test_the_shipped_model_verifies_and_loads():
    registry = pretrained.read_registry(SHIPPED)
    for name, entry in registry["models"].items():
        path = pretrained.pretrained_file(f"pretrained:{name}", directory=SHIPPED)
        assert path.stat().st_size <= MAX_BYTES
        predictor = load_predictor(path)
        faces = generate_synthetic_faces(4, seed=0).images
        probabilities = predict_probabilities(predictor.module, faces)
        assert probabilities.shape == (4, 7) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute", "", ".hidden", "a/b", "tiny.pt", "x" * 65])
def test_a_published_name_is_a_plain_name(trained_run, tmp_path, capsys, name):
    with pytest.raises(SystemExit) as stopped:
        publish_main([str(trained_run), "--name", name, "--directory", str(tmp_path / "shelf")])
    assert stopped.value.code == 2 and "a model name is 1 to 64 letters" in capsys.readouterr().err
    assert not (tmp_path / "shelf").exists() and not list(tmp_path.parent.glob("escaped*"))


def test_replacing_a_published_model_must_be_asked_for_and_says_what_it_replaces(shelf, trained_run, capsys):
    registry = json.loads((shelf / "models.json").read_text())
    with pytest.raises(SystemExit) as stopped:
        publish_main([str(trained_run), "--name", "tiny", "--directory", str(shelf)])
    error = capsys.readouterr().err
    assert stopped.value.code == 2 and "the model tiny (" in error and "pass --replace" in error
    assert json.loads((shelf / "models.json").read_text()) == registry


def test_an_ensemble_file_ships_with_its_members_in_fp16(tmp_path):
    from fer_lightning.sweeps.ensemble import build_ensemble
    from tests.test_ensemble import fake_sweep

    sweep = fake_sweep(tmp_path, val_accs=[0.6, 0.5, 0.4])
    build_ensemble(sweep, top_k=2)
    shelf = tmp_path / "shelf"
    publish_main([str(sweep / "ensemble.ckpt"), "--name", "tiny-ensemble", "--directory", str(shelf),
                  "--evaluate-data", "data=synthetic", "--not-default"])
    entry = json.loads((shelf / "models.json").read_text())["models"]["tiny-ensemble"]
    assert entry["selection"] == "top_k" and [m["run"] for m in entry["members"]] == [
        "model.dropout=0.3", "model.dropout=0.4"]
    assert [m["weight"] for m in entry["members"]] == [0.5, 0.5]
    stored = torch.load(shelf / entry["file"], weights_only=True)
    assert all(t.dtype == torch.float16 for m in stored["members"] for t in m["state_dict"].values()
               if t.is_floating_point())
    assert str(tmp_path) not in json.dumps(entry) and "run_dir" not in stored["members"][0]  # no local paths
    faces = generate_synthetic_faces(16, seed=5).images
    full = predict_probabilities(load_predictor(sweep / "ensemble.ckpt").module, faces)
    compact = predict_probabilities(load_predictor(shelf / entry["file"]).module, faces)
    assert np.abs(full - compact).max() < 2e-3 and abs(entry["val_accuracy"] - entry["val_accuracy_of_checkpoint"]) < 0.001
