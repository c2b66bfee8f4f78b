"""Batched augmentation on the training device: one affine warp per image, a whole batch per call.

Albumentations augments one image at a time in the data-loader workers, which a few CPU cores cannot
do fast enough to feed a GPU training this small network (tens of thousands of images a second).
Here the flip, zoom, shift, rotation and shear of each image become one 2x3 matrix, and a single
``affine_grid`` + ``grid_sample`` warps the whole batch where it already is, followed by the
``strong`` preset's brightness/contrast change and random erasing as tensor arithmetic.

The presets mirror conf/augmentation/{light,strong}.yaml and draw their parameters from the same
distributions (benchmarks/augmentation_match.py measures it; reflected borders repeat the edge pixel,
where BORDER_REFLECT_101 does not, and sampling is bilinear as OpenCV's). A run moves its augmentation
to the device with ``augmentation=none data.device_augment=light`` (the data module applies it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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

    Draws what albumentations' ``HorizontalFlip`` then ``Affine`` draw: x and y zoom independently
    (``keep_ratio=False``), x and y shear independently, the shift truncated to whole pixels, and
    composes them in its order (flip, zoom, rotation, shear, shift about the centre), in normalised
    coordinates ([-1, 1] across the image). Sampling needs the inverse of that forward transform.
    """
    height, width = (like.shape[-2], like.shape[-1]) if like.dim() >= 2 else (48, 48)
    one = torch.ones(n, device=like.device, dtype=like.dtype)
    zero = torch.zeros_like(one)
    flip = torch.where(_happens(n, config.flip_p, like, generator), -one, one)
    warp = _happens(n, config.affine_p, like, generator)

    def draw(low: float, high: float, rest: torch.Tensor) -> torch.Tensor:
        return torch.where(warp, _uniform(n, low, high, like, generator), rest)

    scale_x, scale_y = draw(*config.scale, one), draw(*config.scale, one)
    angle = draw(-config.rotate, config.rotate, zero) * math.pi / 180
    shear_x = draw(-config.shear, config.shear, zero) * math.pi / 180
    shear_y = draw(-config.shear, config.shear, zero) * math.pi / 180
    # Whole pixels, truncated towards zero as albumentations does; f pixels are 2f/size normalised.
    shift_x = draw(-config.translate, config.translate, zero).mul(width).trunc().mul(2.0 / width)
    shift_y = draw(-config.translate, config.translate, zero).mul(height).trunc().mul(2.0 / height)

    def matrix(a, b, c, d) -> torch.Tensor:
        return torch.stack([torch.stack([a, b], -1), torch.stack([c, d], -1)], -2)

    cos, sin = torch.cos(angle), torch.sin(angle)
    linear = (matrix(one, torch.tan(shear_x), torch.tan(shear_y), one)
              @ matrix(cos, sin, -sin, cos)
              @ matrix(scale_x * flip, zero, zero, scale_y))
    forward = torch.zeros(n, 3, 3, device=like.device, dtype=like.dtype)
    forward[:, :2, :2] = linear
    forward[:, 0, 2] = shift_x
    forward[:, 1, 2] = shift_y
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
