"""Test-time augmentation: the views of a batch whose predicted probabilities are averaged.

- ``none``: the faces as they are.
- ``flip``: the faces and their mirror images (expressions are left-right symmetric enough).
- ``ten_crop``: the FER2013 papers' ten crops for a 48x48 model: pad 4 px (mirrored, as
  ``augmentation=crop`` pads), take the 48x48 crops at the four corners and the centre, each also
  mirrored. The corner crops shift the face by 4 px, the centre crop is the face itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from fer_lightning.config.checks import check_choice
from fer_lightning.config.choices import TTA_CHOICES

CROP_PAD = 4


def check_tta(tta: str) -> str:
    check_choice("tta", tta, TTA_CHOICES)
    return tta


def shifted_crops(batch: torch.Tensor, pad: int = CROP_PAD) -> Iterator[torch.Tensor]:
    """The centre crop (the batch itself) and the four corner crops of the mirror-padded batch."""
    height, width = batch.shape[-2:]
    padded = F.pad(batch, (pad, pad, pad, pad), mode="reflect")
    yield batch
    for top in (0, 2 * pad):
        for left in (0, 2 * pad):
            yield padded[..., top:top + height, left:left + width]


def tta_views(batch: torch.Tensor, tta: str) -> Iterator[torch.Tensor]:
    """(N, C, H, W) -> the views to average, in order; ``tta`` must be one of TTA_CHOICES."""
    crops = shifted_crops(batch) if tta == "ten_crop" else iter((batch,))
    for crop in crops:
        yield crop
        if tta in ("flip", "ten_crop"):
            yield torch.flip(crop, dims=[-1])
