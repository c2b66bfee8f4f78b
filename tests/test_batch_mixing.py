"""Mixup and CutMix: what the images and the loss become."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from fer_lightning.config.checks import check_train_config
from fer_lightning.errors import ConfigError
from fer_lightning.models.batch_mixing import cutmix_box, mix_batch
from fer_lightning.models.classifier import ExpressionClassifier
from tests.conftest import compose_config


def constant_images(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is filled with the value i, and its label is i: a pixel tells whose it is."""
    target = torch.arange(n)
    return target.float().view(n, 1, 1, 1).expand(n, 1, 48, 48).clone(), target


def test_mixup_blends_each_image_with_its_partner_by_lam():
    torch.manual_seed(3)
    images, target = constant_images(16)
    mixed = mix_batch(images, target, "mixup", alpha=0.4)
    assert 0.0 <= mixed.lam <= 1.0
    assert sorted(mixed.partner_target.tolist()) == target.tolist()  # a permutation of the batch
    expected = mixed.lam * target.float() + (1 - mixed.lam) * mixed.partner_target.float()
    assert torch.allclose(mixed.images[:, 0, 10, 10], expected)
    assert torch.allclose(mixed.images.amax(dim=(1, 2, 3)), mixed.images.amin(dim=(1, 2, 3)))


def test_cutmix_pastes_a_box_whose_share_is_one_minus_lam():
    torch.manual_seed(5)
    images, target = constant_images(16)
    mixed = mix_batch(images, target, "cutmix", alpha=1.0)
    for i in range(16):
        own, partner = int(target[i]), int(mixed.partner_target[i])
        pixels = mixed.images[i, 0]
        assert set(pixels.unique().tolist()) <= {float(own), float(partner)}
        if own != partner:
            assert (pixels == partner).float().mean().item() == pytest.approx(1 - mixed.lam)


def test_cutmix_box_is_clipped_to_the_image():
    torch.manual_seed(0)
    for lam in (0.0, 0.3, 0.9, 1.0):
        for _ in range(20):
            top, bottom, left, right = cutmix_box(48, 48, lam)
            assert 0 <= top <= bottom <= 48 and 0 <= left <= right <= 48
            assert (bottom - top) * (right - left) <= round(48 * (1 - lam) ** 0.5) ** 2


def test_training_loss_is_the_lam_weighted_loss_of_both_labels():
    model = ExpressionClassifier(net={"channels": [4, 8], "pool_after": [1, 2], "hidden": [16], "dropout_schedule": [0, 0, 0]},
                                 mixing="mixup", mixing_alpha=0.4, mixing_prob=1.0)
    seen = []
    model.net.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    images, target = torch.rand(8, 1, 48, 48), torch.randint(0, 7, (8,))
    torch.manual_seed(11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        loss = model._step((images, target), "train")
    torch.manual_seed(11)
    torch.rand(())  # the draw that decides whether this batch is mixed
    mixed = mix_batch(images, target, "mixup", alpha=0.4)
    assert torch.allclose(seen[0], mixed.images) and not torch.allclose(seen[0], images)
    logits = model(mixed.images)
    expected = mixed.lam * F.cross_entropy(logits, target) + (1 - mixed.lam) * F.cross_entropy(
        logits, mixed.partner_target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_validation_never_mixes():
    model = ExpressionClassifier(net={"channels": [4, 8], "pool_after": [1, 2], "hidden": [16], "dropout_schedule": [0, 0, 0]},
                                 mixing="cutmix", mixing_alpha=1.0, mixing_prob=1.0).eval()
    images, target = torch.rand(8, 1, 48, 48), torch.randint(0, 7, (8,))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        loss = model._step((images, target), "val")
        assert loss.item() == pytest.approx(F.cross_entropy(model(images), target).item(), rel=1e-6)


@pytest.mark.parametrize(("override", "key"), [("model.mixing=blend", "model.mixing"),
                                               ("model.mixing_alpha=0", "model.mixing_alpha"),
                                               ("model.mixing_prob=1.5", "model.mixing_prob")])
def test_impossible_mixing_settings_are_one_line_errors(override, key, tmp_path):
    cfg = compose_config(["model/mixing=mixup", override, f"paths.log_dir={tmp_path}"])
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        check_train_config(cfg)
