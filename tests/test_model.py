"""The default network is the report's, exactly; variants change only what they say."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_lightning.models.classifier import ExpressionClassifier, balanced_class_weights
from fer_lightning.models.cnn import REPORT_DROPOUT_SCHEDULE, ReportCNN, scaled_dropout


def layer_kinds(module: nn.Sequential) -> list[str]:
    return [type(m).__name__ for m in module]


def test_report_network_structure():
    net = ReportCNN()
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256, 512, 512]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1) for c in convs)
    assert all(isinstance(m, nn.LeakyReLU) for m in net.features if not isinstance(
        m, (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.Dropout)))

    # What follows each conv block (after Conv, BN, LeakyReLU): pools and dropout rates of the report.
    after, block = [], -1
    for m in net.features:
        if isinstance(m, nn.Conv2d):
            block += 1
            after.append([])
        elif isinstance(m, nn.MaxPool2d):
            after[block].append("pool")
        elif isinstance(m, nn.Dropout):
            after[block].append(m.p)
    assert after == [[], ["pool", 0.1], [0.2], ["pool", 0.3], ["pool", 0.3], ["pool", 0.5], ["pool", 0.5]]

    assert layer_kinds(net.classifier) == [
        "Flatten", "Linear", "LeakyReLU", "Dropout", "Linear", "LeakyReLU", "Dropout", "Linear"]
    linears = [m for m in net.classifier if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(512, 256), (256, 128), (128, 7)]
    assert [m.p for m in net.classifier if isinstance(m, nn.Dropout)] == [0.7, 0.7]


def test_report_network_parameter_count():
    assert sum(p.numel() for p in ReportCNN().parameters()) == 4_100_455


def test_forward_shape_and_batchnorm_per_channel():
    net = ReportCNN().eval()
    out = net(torch.rand(3, 1, 48, 48))
    assert out.shape == (3, 7)
    assert all(bn.num_features == c for bn, c in zip(
        [m for m in net.features if isinstance(m, nn.BatchNorm2d)], [16, 32, 64, 128, 256, 512, 512]))


def test_dropout_knob_rescales_the_schedule_to_its_peak():
    assert scaled_dropout(REPORT_DROPOUT_SCHEDULE, None) == list(REPORT_DROPOUT_SCHEDULE)
    half = scaled_dropout(REPORT_DROPOUT_SCHEDULE, 0.35)
    assert max(half) == pytest.approx(0.35)
    assert half == pytest.approx([r / 2 for r in REPORT_DROPOUT_SCHEDULE])
    assert scaled_dropout(REPORT_DROPOUT_SCHEDULE, 0.0) == [0.0] * 9
    net = ReportCNN(dropout=0.0)
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())


def test_width_variant_changes_channels_only():
    narrow = ReportCNN(channels=(8, 16, 32, 64, 128, 256, 256), hidden=(128, 64))
    assert narrow(torch.rand(2, 1, 48, 48)).shape == (2, 7)
    assert sum(p.numel() for p in narrow.parameters()) < 4_100_455 / 3


def test_schedule_length_must_match_layers():
    with pytest.raises(ValueError, match="needs 9 rates"):
        ReportCNN(dropout_schedule=(0.1, 0.2))


def test_balanced_weights_favour_rare_classes():
    weights = balanced_class_weights([100, 10, 100, 100, 100, 100, 100])
    assert weights[1] > 5 * weights[0]
    assert weights.mean().item() == pytest.approx(1.0)


def test_checkpoint_hyperparameters_are_weights_only_loadable(tmp_path):
    from omegaconf import OmegaConf

    module = ExpressionClassifier(
        net=OmegaConf.create({"channels": [8, 16, 32, 64, 128, 256, 256], "hidden": [32, 16]}),
        optimizer=OmegaConf.create({"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}),
    )
    path = tmp_path / "m.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    loaded = torch.load(path, weights_only=True)  # raises if anything needs pickle
    assert loaded["hyper_parameters"]["net"]["channels"] == [8, 16, 32, 64, 128, 256, 256]
    rebuilt = ExpressionClassifier(**loaded["hyper_parameters"])
    rebuilt.load_state_dict(loaded["state_dict"])
    x = torch.rand(2, 1, 48, 48)
    module.eval(), rebuilt.eval()
    assert torch.equal(module(x), rebuilt(x))
