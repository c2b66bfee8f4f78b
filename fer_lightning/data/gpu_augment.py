"""Batched augmentation on the training device: one affine warp per image, a whole batch per call.

Albumentations augments one image at a time in the data-loader workers, which a few CPU cores cannot
do fast enough to feed a GPU training this small network (tens of thousands of images a second).
Here the flip, zoom, shift, rotation and shear of each image become one 2x3 matrix, and a single
``affine_grid`` + ``grid_sample`` warps the whole batch where it already is, followed by the
``strong`` preset's brightness/contrast change and random erasing as tensor arithmetic.

The presets mirror conf/augmentation/{light,strong}.yaml (reflected borders like BORDER_REFLECT_101,
bilinear sampling instead of OpenCV's), so a run can move its augmentation to the GPU with
``augmentation=none`` plus ``DeviceAugmentation("light")``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class DeviceAugmentConfig:
    flip_p: float = 0.5
    affine_p: float = 0.7
    scale: tuple[float, float] = (0.9, 1.1)  # zoom factor (>1 enlarges the face)
    translate: float = 0.05  # +- fraction of the image size
    rotate: float = 10.0  # +- degrees
    shear: float = 0.0  # +- degrees
    color_p: float = 0.0
    brightness: float = 0.0  # +- added, in units of the maximum (1.0)
    contrast: float = 0.0  # +- relative change of the pixel values
    erase_p: float = 0.0
    erase_size: tuple[float, float] = (0.1, 0.3)  # hole side as a fraction of the image side
    max_holes: int = 2


PRESETS: dict[str, DeviceAugmentConfig | None] = {
    "none": None,
    "light": DeviceAugmentConfig(),
    "strong": DeviceAugmentConfig(
        affine_p=0.9, scale=(0.8, 1.2), translate=0.1, rotate=15.0, shear=5.0,
        color_p=0.5, brightness=0.3, contrast=0.3, erase_p=0.5,
    ),
}


def preset_config(name: str) -> DeviceAugmentConfig | None:
    if name not in PRESETS:
        raise ValueError(f"unknown device augmentation {name!r}: one of {', '.join(PRESETS)}")
    return PRESETS[name]


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=like.device, dtype=like.dtype, generator=generator) * (high - low) + low


def _happens(n: int, p: float, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(n, device=like.device, generator=generator) < p


def sampling_matrices(n: int, config: DeviceAugmentConfig, like: torch.Tensor,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2, 3) matrices for ``affine_grid``: for each output pixel, where to read in the input.

    The forward transform is built as flip, then shear, rotation and zoom about the centre, then
    shift, in normalised coordinates ([-1, 1] across the image); sampling needs its inverse.
    """
    one = torch.ones(n, device=like.device, dtype=like.dtype)
    zero = torch.zeros_like(one)
    flip = torch.where(_happens(n, config.flip_p, like, generator), -one, one)
    warp = _happens(n, config.affine_p, like, generator)
    scale = torch.where(warp, _uniform(n, *config.scale, like, generator), one)
    angle = torch.where(warp, _uniform(n, -config.rotate, config.rotate, like, generator), zero) * math.pi / 180
    shear = torch.where(warp, _uniform(n, -config.shear, config.shear, like, generator), zero) * math.pi / 180
    # A shift by a fraction f of the image is 2f in normalised coordinates.
    shift = torch.where(warp[:, None], _uniform(2 * n, -config.translate, config.translate, like, generator)
                        .view(n, 2) * 2, torch.zeros(n, 2, device=like.device, dtype=like.dtype))

    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    # rotation @ shear(x += tan * y) @ flip(x -> -x), then zoom
    forward = torch.zeros(n, 3, 3, device=like.device, dtype=like.dtype)
    forward[:, 0, 0] = scale * cos * flip
    forward[:, 0, 1] = scale * (cos * tan - sin)
    forward[:, 1, 0] = scale * sin * flip
    forward[:, 1, 1] = scale * (sin * tan + cos)
    forward[:, :2, 2] = shift
    forward[:, 2, 2] = 1.0
    return torch.linalg.inv(forward.float()).to(like.dtype)[:, :2, :]


def _adjust_brightness_contrast(images: torch.Tensor, config: DeviceAugmentConfig,
                                generator: torch.Generator | None) -> torch.Tensor:
    n = images.shape[0]
    apply = _happens(n, config.color_p, images, generator).view(n, 1, 1, 1)
    alpha = 1.0 + _uniform(n, -config.contrast, config.contrast, images, generator).view(n, 1, 1, 1)
    beta = _uniform(n, -config.brightness, config.brightness, images, generator).view(n, 1, 1, 1)
    return torch.where(apply, (images * alpha + beta).clamp_(0.0, 1.0), images)


def _erase(images: torch.Tensor, config: DeviceAugmentConfig, generator: torch.Generator | None) -> torch.Tensor:
    """Zero 1..max_holes rectangles per chosen image (albumentations' CoarseDropout with fill 0)."""
    n, _, height, width = images.shape
    rows = torch.arange(height, device=images.device, dtype=images.dtype).view(1, height, 1) / height
    cols = torch.arange(width, device=images.device, dtype=images.dtype).view(1, 1, width) / width
    chosen = _happens(n, config.erase_p, images, generator)
    holes = torch.randint(1, config.max_holes + 1, (n,), device=images.device, generator=generator)
    keep = torch.ones(n, height, width, dtype=torch.bool, device=images.device)
    for hole in range(config.max_holes):
        active = (chosen & (holes > hole)).view(n, 1, 1)
        size_y = _uniform(n, *config.erase_size, images, generator).view(n, 1, 1)
        size_x = _uniform(n, *config.erase_size, images, generator).view(n, 1, 1)
        top = torch.rand(n, 1, 1, device=images.device, dtype=images.dtype, generator=generator) * (1 - size_y)
        left = torch.rand(n, 1, 1, device=images.device, dtype=images.dtype, generator=generator) * (1 - size_x)
        inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
        keep &= ~(inside & active)
    return images * keep.unsqueeze(1).to(images.dtype)


@torch.no_grad()
def augment_batch(images: torch.Tensor, config: DeviceAugmentConfig | None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment an (N, C, H, W) float batch in [0, 1] on its own device; a new tensor, same shape."""
    if config is None or images.shape[0] == 0:
        return images
    theta = sampling_matrices(images.shape[0], config, images, generator)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    if config.color_p > 0:
        out = _adjust_brightness_contrast(out, config, generator)
    if config.erase_p > 0:
        out = _erase(out, config, generator)
    return out


class DeviceAugmentation(pl.Callback):
    """Augments each training batch on the training device, after Lightning moved it there.

    Use it with ``augmentation=none`` so that the loader workers only decode and batch:
    ``+callbacks.device_augmentation={_target_: fer_lightning.data.gpu_augment.DeviceAugmentation, preset: light}``
    """

    def __init__(self, preset: str = "light", seed: int | None = None) -> None:
        self.preset_name = preset
        self.config = preset_config(preset)
        self.seed = seed
        self._generators: dict[torch.device, torch.Generator] = {}

    def _generator(self, device: torch.device, rank: int) -> torch.Generator | None:
        if self.seed is None:
            return None
        if device not in self._generators:
            # Each DDP rank its own stream, or every rank would warp its images identically.
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed + rank)
        return self._generators[device]

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        images = batch[0]
        # In place: Lightning hands the same batch object on to training_step.
        images.copy_(augment_batch(images, self.config, self._generator(images.device, trainer.global_rank)))
