"""What a convolution filter responds to: activation maximisation and feature maps.

Activation maximisation starts from noise and climbs the gradient of one filter's mean response
with respect to the input. Left alone, gradient ascent produces high-frequency patterns no face
has, so each step is regularised the usual way: the image is jittered (rolled a few pixels) before
the forward pass, decays toward mid-gray (an L2 prior), is blurred every few steps and stays in
[0, 1], the range real inputs have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from fer_lightning.classes import IMAGE_SIZE
from fer_lightning.errors import ConfigError
from fer_lightning.explain.attribution import counterpart, gradient_mode


class _StopForward(Exception):
    """Raised by a hook once the wanted layer has produced its output: the rest need not run."""


def layer_output(net: nn.Module, layer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``layer``'s output for ``images``; the layers after it are not evaluated."""
    captured: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        captured.append(output)
        raise _StopForward

    handle = layer.register_forward_hook(keep)
    try:
        net(images)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"{type(layer).__name__} is not used by the network's forward pass")
    return captured[0]


def choose_filters(layer: nn.Conv2d, filters: int | Sequence[int], key: str = "filters") -> list[int]:
    """``filters`` as a count (the first N) or as explicit indices, checked against the layer's width."""
    width = layer.out_channels
    if isinstance(filters, int) and not isinstance(filters, bool):
        if filters < 1:
            raise ConfigError(f"{key}={filters} is not allowed: a count >= 1 or a list of filter indices")
        return list(range(min(filters, width)))
    chosen = [int(f) for f in filters]
    bad = [f for f in chosen if not 0 <= f < width]
    if not chosen or bad:
        raise ConfigError(f"{key}={list(filters)} is not allowed: indices in 0..{width - 1} of a {width}-filter layer")
    return chosen


def _blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each (1, H, W) image with OpenCV (on the CPU; the images are tiny)."""
    array = images.detach().cpu().numpy()
    blurred = np.stack([cv2.GaussianBlur(image[0], (0, 0), sigma)[None] for image in array])
    return torch.from_numpy(blurred).to(images.device)


def ascent_settings(prefix: str, steps: Any, lr: Any, decay: Any, blur_every: Any, blur_sigma: Any,
                    jitter: Any) -> dict[str, Any]:
    """The gradient ascent's settings, checked once for every caller (callback, report): ConfigError
    naming ``<prefix>.<key>`` for the first impossible one."""
    def whole(key: str, value: Any, minimum: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{prefix}.{key}={value!r} is not allowed: a whole number >= {minimum}")
        return value

    def number(key: str, value: Any, low: float, high: float, what: str) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or not (
                low <= value < high):
            raise ConfigError(f"{prefix}.{key}={value!r} is not allowed: {what}")
        return float(value)

    return {"steps": whole("steps", steps, 1), "lr": number("lr", lr, 1e-12, math.inf, "a number > 0"),
            "decay": number("decay", decay, 0.0, 1.0, "a number in [0, 1)"),
            "blur_every": whole("blur_every", blur_every, 0),
            "blur_sigma": number("blur_sigma", blur_sigma, 0.0, math.inf, "a number >= 0"),
            "jitter": whole("jitter", jitter, 0)}


def maximize_filters(
    net: nn.Module,
    layer: nn.Module,
    filters: Sequence[int],
    *,
    steps: int = 40,
    lr: float = 0.05,
    decay: float = 0.01,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    jitter: int = 2,
    seed: int = 0,
    image_size: int = IMAGE_SIZE,
) -> torch.Tensor:
    """One input per filter ``(F, 1, H, W)`` in [0, 1] that makes that filter's mean output large.

    All filters are optimised together as one batch (in eval mode images do not interact).
    Gradients are taken with respect to the images only, so the network's ``.grad`` stays untouched.
    The same ``seed`` gives the same starting noise and jitter, so pictures of successive epochs
    differ only because the network did.
    """
    generator = torch.Generator().manual_seed(seed)
    index = torch.as_tensor(list(filters), dtype=torch.long)
    count = len(index)
    with gradient_mode(net) as model:
        device = next(model.parameters()).device
        layer = counterpart(net, model, layer)
        start = 0.5 + 0.1 * torch.randn(count, 1, image_size, image_size, generator=generator)
        images = start.clamp(0.0, 1.0).to(device).requires_grad_(True)
        optimizer = torch.optim.Adam([images], lr=lr)
        rows = torch.arange(count, device=device)
        shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=generator).tolist()
        for step in range(steps):
            dy, dx = shifts[step]
            response = layer_output(model, layer, torch.roll(images, (dy, dx), dims=(2, 3)))
            objective = response[rows, index.to(device)].mean(dim=(1, 2)).sum()
            (gradient,) = torch.autograd.grad(-objective, images)
            images.grad = gradient
            optimizer.step()
            with torch.no_grad():
                images.sub_(0.5).mul_(1.0 - decay).add_(0.5)
                if blur_every and (step + 1) % blur_every == 0 and step + 1 < steps:
                    images.copy_(_blur(images, blur_sigma))
                images.clamp_(0.0, 1.0)
        return images.detach().cpu()


def filter_response(net: nn.Module, layer: nn.Module, images: torch.Tensor, filters: Sequence[int]) -> torch.Tensor:
    """Mean output of each chosen filter for its own image: ``(F,)``, image i scored by filter i."""
    with gradient_mode(net) as model, torch.no_grad():
        device = next(model.parameters()).device
        response = layer_output(model, counterpart(net, model, layer), images.to(device))
        index = torch.as_tensor(list(filters), device=device)
        return response[torch.arange(len(index), device=device), index].mean(dim=(1, 2)).cpu()


def feature_maps(net: nn.Module, layer: nn.Module, image: torch.Tensor, filters: Sequence[int]) -> torch.Tensor:
    """The chosen filters' output maps ``(F, h, w)`` at ``layer`` for one ``(1, H, W)`` image."""
    with gradient_mode(net) as model, torch.no_grad():
        device = next(model.parameters()).device
        batch = image[None].to(device=device, dtype=torch.float32)
        response = layer_output(model, counterpart(net, model, layer), batch)
        return response[0, list(filters)].float().cpu()
