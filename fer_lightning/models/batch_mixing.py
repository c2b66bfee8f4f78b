"""Mixup and CutMix: train on blends of two faces, with the loss blended in the same proportion.

Both draw lam ~ Beta(alpha, alpha) once per batch and pair every image with another image of the
same batch (a random permutation). Mixup blends whole images; CutMix pastes a box of the partner
whose area is (1 - lam) of the image, and lam is recomputed from the box as clipped by the border.
The loss is lam * CE(logits, target) + (1 - lam) * CE(logits, partner_target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fer_lightning.config.choices import MIXING_MODES

MODES = MIXING_MODES


@dataclass(frozen=True)
class MixedBatch:
    images: torch.Tensor
    target: torch.Tensor
    partner_target: torch.Tensor
    lam: float  # weight of `target` in the loss


def cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
    """A box (top, bottom, left, right) of area about (1 - lam), centred anywhere, clipped to the image."""
    cut = math.sqrt(1.0 - lam)
    box_h, box_w = int(round(height * cut)), int(round(width * cut))
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - box_h // 2, 0), min(cy + (box_h + 1) // 2, height)
    left, right = max(cx - box_w // 2, 0), min(cx + (box_w + 1) // 2, width)
    return top, bottom, left, right


def mix_batch(images: torch.Tensor, target: torch.Tensor, mode: str, alpha: float) -> MixedBatch:
    """Blend (mixup) or paste into (cutmix) each image a partner from the same batch.

    Draws from torch's global generator, which the module reseeds every epoch.
    """
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(images)).to(images.device)
    partner_images, partner_target = images[order], target[order]
    if mode == "mixup":
        mixed = images * lam + partner_images * (1.0 - lam)
    elif mode == "cutmix":
        height, width = images.shape[-2:]
        top, bottom, left, right = cutmix_box(height, width, lam)
        mixed = images.clone()
        mixed[..., top:bottom, left:right] = partner_images[..., top:bottom, left:right]
        lam = 1.0 - (bottom - top) * (right - left) / (height * width)
    else:
        raise ValueError(f"unknown mixing mode {mode!r}: choose one of {', '.join(MODES)}")
    return MixedBatch(mixed, target, partner_target, lam)
