"""Export to ONNX and TorchScript: one graph that gives the same probabilities as PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.classes import CLASS_NAMES
from fer_lightning.cli.entry import quote_path_overrides
from fer_lightning.errors import ConfigError
from fer_lightning.inference.export import export
from fer_lightning.sweeps.ensemble import build_ensemble
from tests.conftest import compose_config
from tests.test_ensemble import fake_sweep


def export_config(*overrides: str):
    cfg = compose_config(quote_path_overrides(overrides), config_name="export")
    GlobalHydra.instance().clear()
    return cfg


@pytest.fixture(scope="module")
def ensemble_file(tmp_path_factory):
    """An ensemble of two networks of different widths."""
    sweep = fake_sweep(tmp_path_factory.mktemp("export"), val_accs=[0.6, 0.5])
    build_ensemble(sweep, top_k=2)
    return sweep / "ensemble.ckpt"


def test_onnx_export_of_an_ensemble_matches_torch_on_any_batch_size(ensemble_file, tmp_path):
    output = export(export_config(f"ckpt_path={ensemble_file}", f"output={tmp_path / 'ensemble.onnx'}"))

    model = onnx.load(str(output))
    onnx.checker.check_model(model)
    assert {p.key: p.value for p in model.metadata_props}["class_names"] == ",".join(CLASS_NAMES)
    session = onnxruntime.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    module = load_predictor(ensemble_file).module
    for batch_size in (1, 7):
        images = torch.rand(batch_size, 1, 48, 48, generator=torch.Generator().manual_seed(batch_size))
        (probabilities,) = session.run(None, {"image": images.numpy()})
        with torch.inference_mode():
            expected = module(images).numpy()
        assert probabilities.shape == (batch_size, 7)
        assert np.abs(probabilities - expected).max() < 1e-4
        assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_torchscript_export_of_a_single_checkpoint_sits_next_to_it(ensemble_file):
    checkpoint = next(ensemble_file.parent.glob("*/checkpoints/best.ckpt"))
    output = export(export_config(f"ckpt_path={checkpoint}", "format=torchscript"))
    assert output == checkpoint.with_name("best.torchscript.pt")
    traced = torch.jit.load(str(output))
    images = torch.rand(5, 1, 48, 48)
    with torch.inference_mode():
        assert torch.allclose(traced(images), load_predictor(checkpoint).module(images), atol=1e-5)


def test_unknown_export_format_is_refused(ensemble_file):
    with pytest.raises(ConfigError, match="onnx, torchscript"):
        export(export_config(f"ckpt_path={ensemble_file}", "format=tflite"))
