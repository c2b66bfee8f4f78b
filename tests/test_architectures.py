"""The networks of the model group: each trains, checkpoints, loads for inference and explains;
the layer table's FLOPs agree with a forward pass; a stored architecture name is data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from fer_lightning.checkpoints.model_file import classifier_from_checkpoint, network_from_checkpoint
from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.cli.train import train_command
from fer_lightning.config.choices import ARCHITECTURES as ARCHITECTURE_NAMES
from fer_lightning.errors import CheckpointError, ConfigError
from fer_lightning.inference.scoring import predict_probabilities
from fer_lightning.models.architectures import ARCHITECTURES, build_network, net_keys
from fer_lightning.models.cnn import ReportCNN
from fer_lightning.viz.model_table import model_config_table, summarize
from tests.conftest import FAST, compose_config
from tests.helpers import tensorboard_tags

MODELS = ("report_cnn", "resnet", "separable")
# FAST without its model/width choice, which only the report's network has.
SMALL = [o for o in FAST if not o.startswith("model/width")]


def model_config(name: str, *overrides: str):
    return compose_config([f"model={name}", *overrides]).model


def test_every_declared_architecture_has_a_network_and_a_config():
    assert tuple(ARCHITECTURES) == ARCHITECTURE_NAMES
    for name in ARCHITECTURE_NAMES:
        assert model_config(name).net.architecture == name


@pytest.mark.parametrize("name", MODELS)
def test_table_counts_every_parameter_and_the_flops_of_a_forward_pass(name):
    net = build_network(model_config(name)).eval()
    rows = summarize(net)
    assert sum(r.params for r in rows) == sum(p.numel() for p in net.parameters())
    assert rows[-1].output_shape == (7,)

    # FLOPs measured on a real forward pass: 2 per multiply-add of every conv and linear layer.
    measured = []

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            measured.append(2 * output[0].numel() * module.in_channels // module.groups * kh * kw)
        else:
            measured.append(2 * output[0].numel() * module.in_features)

    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.register_forward_hook(count)
    with torch.no_grad():
        net(torch.rand(1, 1, 48, 48))
    assert sum(r.flops for r in rows) == sum(measured)


def test_the_report_network_keeps_its_size_and_cost():
    table = model_config_table(model_config("report_cnn"))
    assert "Total parameters: 4,100,455" in table
    assert "Forward FLOPs per face: 0.341 G" in table


@pytest.mark.parametrize(("overrides", "key"), [
    (["model=resnet", "model.net.blocks=[1,1]"], "model.net.blocks"),
    (["model=resnet", "model.net.channels=[8,8,8,8,8,8,8,8]", "model.net.blocks=[1,1,1,1,1,1,1,1]"], "model.net.channels"),
    (["model=separable", "model.net.stem=0"], "model.net.stem"),
    (["model=separable", "model.net.architecture=os.system"], "model.net.architecture"),
])
def test_a_wrong_network_setting_is_one_line_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as error:
        model_config_table(compose_config(overrides).model)
    assert "\n" not in str(error.value)


def test_cpu_hour_recipe_composes_with_every_network():
    for name in MODELS:
        cfg = compose_config(["experiment=cpu_hour", f"model={name}"])
        assert cfg.model.net.architecture == name
        assert cfg.model.dropout == 0.2 and cfg.model.label_smoothing == 0.1


@pytest.mark.slow
@pytest.mark.parametrize(("name", "method"), [("resnet", "gradcam"), ("separable", "saliency")])
def test_network_trains_with_every_figure_and_its_checkpoint_serves_inference(name, method, tmp_path):
    overrides = [*SMALL, f"model={name}", f"paths.log_dir={tmp_path}", f"callbacks.saliency.method={method}",
                 "callbacks.filter_pictures.steps=4"]
    overrides = [o for o in overrides if o not in ("callbacks.saliency=null", "callbacks.filter_pictures=null")]
    train_command(compose_config(overrides, output_dir=tmp_path / "run"))
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    images = tensorboard_tags(run / "tensorboard")["images"]
    assert any("saliency" in tag for tag in images), sorted(images)
    assert any("filter" in tag for tag in images), sorted(images)

    checkpoint = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["net"]["architecture"] == name
    net = network_from_checkpoint(checkpoint)
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in build_network(model_config(name)).parameters())
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    probabilities = predict_probabilities(load_predictor(run / "checkpoints" / "best.ckpt").module, faces)
    assert probabilities.shape == (5, 7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("hparams", "named"), [
    ({"net": {"architecture": "subprocess.Popen", "channels": [32, 64, 128, 256]}}, "'subprocess.Popen'"),
    # Stored flat, as files written before model.net are.
    ({"architecture": "subprocess.Popen", "channels": [32, 64, 128, 256]}, "'subprocess.Popen'"),
    ({"net": {"architecture": "resnet", "channels": [32, 64, 128, 256], "__class__": "os.system"}},
     "model.net.__class__: not a setting of the ResidualCNN network"),
    ({"net": "os.system"}, "model.net is not allowed to be str"),
])
def test_a_checkpoint_naming_an_unknown_architecture_or_setting_is_refused_as_data(hparams, named):
    net = build_network(model_config("resnet"))
    checkpoint = {
        "fer_lightning": {"kind": "model", "format": 1},
        "hyper_parameters": hparams,
        "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
    }
    for load in (network_from_checkpoint, classifier_from_checkpoint):
        with pytest.raises(CheckpointError, match="describe no network this project builds") as error:
            load(checkpoint, source="hostile.ckpt")
        assert str(error.value).startswith("hostile.ckpt: ") and named in str(error.value)


def test_a_checkpoint_stored_flat_without_an_architecture_is_the_report_network():
    # Checkpoints written before model.net held their network's settings beside the optimizer's, and
    # those written before the model group had other networks no architecture.
    config = model_config("report_cnn", "model/width=narrow")
    net = build_network(config)
    hparams = {**OmegaConf.to_container(config.net), "dropout": config.dropout, "seed": 3}
    del hparams["architecture"]
    assert set(hparams) - {"dropout", "seed"} <= set(net_keys(ReportCNN))
    checkpoint = {"fer_lightning": {"kind": "model", "format": 1}, "hyper_parameters": hparams,
                  "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}}
    rebuilt = network_from_checkpoint(checkpoint)
    classifier = classifier_from_checkpoint(checkpoint)
    assert classifier.hparams.net["channels"] == list(config.net.channels) and classifier.hparams.seed == 3
    x = torch.rand(2, 1, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), net.eval()(x))
        torch.testing.assert_close(classifier(x), net(x))
