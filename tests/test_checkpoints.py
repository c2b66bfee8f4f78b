"""Checkpoints are loaded weights-only and refused with a clear message when they do not fit."""

from __future__ import annotations

import re

import pytest
import torch

from fer_lightning.checkpoints.model_file import load_classifier
from fer_lightning.errors import CheckpointError
from fer_lightning.models.classifier import ExpressionClassifier

NARROW = {"net": {"channels": [8, 16, 32, 64, 128, 256, 256], "hidden": [32, 16]}}


def save_like_training(path, module: ExpressionClassifier) -> None:
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, path)


def test_round_trip_gives_the_same_predictions(tmp_path):
    module = ExpressionClassifier(**NARROW).eval()
    save_like_training(tmp_path / "m.ckpt", module)
    loaded = load_classifier(tmp_path / "m.ckpt")
    x = torch.rand(4, 1, 48, 48)
    assert torch.equal(module(x), loaded(x))


def test_checkpoint_of_a_different_width_is_refused(tmp_path):
    module = ExpressionClassifier(**NARROW)
    checkpoint = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}
    module.on_save_checkpoint(checkpoint)
    checkpoint["hyper_parameters"]["net"]["channels"] = [16, 32, 64, 128, 256, 512, 512]  # says report width
    torch.save(checkpoint, tmp_path / "mismatch.ckpt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_classifier(tmp_path / "mismatch.ckpt")


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint", b"PK\x03\x04broken zip"])
def test_files_that_are_not_checkpoints_are_refused(tmp_path, content):
    path = tmp_path / "x.ckpt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=str(path)):
        load_classifier(path)


def test_a_tensor_file_is_not_a_project_checkpoint(tmp_path):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a model checkpoint of this project"):
        load_classifier(tmp_path / "other.pt")


def test_random_bytes_that_start_like_a_pickle_are_not_a_checkpoint_not_code(tmp_path):
    path = tmp_path / "noise.ckpt"
    path.write_bytes(b"\x80" + bytes(range(7, 250)) * 4)
    with pytest.raises(CheckpointError, match=r"not a PyTorch checkpoint \(unreadable pickle data") as error:
        load_classifier(path)
    assert "execute" not in str(error.value)


def odd_checkpoints(good: dict) -> dict[str, tuple[dict, str]]:
    """Files shaped like checkpoints whose parts are not what this project writes."""
    ensemble = {"fer_lightning": {"kind": "ensemble", "format": 1, "selection": "top_k", "data": None},
                "members": [{"hyper_parameters": good["hyper_parameters"], "state_dict": good["state_dict"]}]}
    return {
        "int weights": ({**good, "state_dict": {k: 1 for k in good["state_dict"]}}, "is not a tensor (found int)"),
        "list weights": ({**good, "state_dict": {k: [1, 2] for k in good["state_dict"]}}, "is not a tensor (found list)"),
        "list hyper_parameters": ({**good, "hyper_parameters": [1, 2]}, "hyper_parameters are not a mapping"),
        "ensemble with text weights": ({**ensemble, "weights": ["abc"]}, "its weights must be numbers"),
        "ensemble member with list hyper_parameters": ({**ensemble, "weights": [1.0], "members": [
            {"hyper_parameters": [1], "state_dict": good["state_dict"]}]}, "hyper_parameters are not a mapping"),
    }


def test_odd_checkpoint_parts_are_one_line_for_every_command_that_loads_them(tmp_path):
    from fer_lightning.checkpoints.model_file import check_resume_fits
    from fer_lightning.checkpoints.predictor import load_predictor

    good = torch.load("fer_lightning/pretrained/fer2013-narrow-cnn.pt", weights_only=True)
    for name, (data, words) in odd_checkpoints(good).items():
        path = tmp_path / f"{name.replace(' ', '_')}.ckpt"
        torch.save(data, path)
        with pytest.raises(CheckpointError, match=re.escape(words)):  # API, predict, evaluate, export, the demo
            load_predictor(path)
        if "ensemble" not in name:
            with pytest.raises(CheckpointError, match=f"cannot resume: .*{re.escape(words)}"):
                check_resume_fits(path, ExpressionClassifier())  # the same file as a run's last.ckpt


def test_weights_of_another_width_name_the_first_difference_and_the_width_that_fits():
    from fer_lightning.checkpoints.model_file import load_initial_weights

    with pytest.raises(CheckpointError, match=r"features.0.weight is \(8, 1, 3, 3\) in the file, \(16, 1, 3, 3\) "
                                              r"in the network\); it fits model/width=narrow"):
        load_initial_weights(ExpressionClassifier(), "pretrained")
