"""Which input pixels a prediction depends on: Captum's Saliency, Integrated Gradients and Grad-CAM.

Attributions are computed on the network in eval mode, in float32 and with autograd on, whatever the
caller's context: Lightning runs validation under ``torch.inference_mode``, where no gradient exists.
Every method returns one non-negative map per image at input resolution, so maps of different
methods can be drawn, compared and measured the same way.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from fer_lightning.classes import IMAGE_SIZE
from fer_lightning.config.choices import ATTRIBUTION_METHODS
from fer_lightning.errors import ConfigError

METHODS: tuple[str, ...] = ATTRIBUTION_METHODS
TARGETS: tuple[str, ...] = ("label", "predicted")
# Grad-CAM's default layer is the last conv whose map is at least this wide: on the report network
# the last conv's 3x3 map upsamples to a few blobs, conv 5's 12x12 map keeps eyes and mouth apart.
GRADCAM_MIN_MAP_SIZE = 12


def check_method(method: str, key: str = "method") -> str:
    if method not in METHODS:
        raise ConfigError(f"{key}={method!r} is not allowed: one of {', '.join(METHODS)}")
    return method


def classifier_network(module: nn.Module) -> nn.Module:
    """The plain network inside a LightningModule (``.net``), without a torch.compile wrapper.

    Hooks (Grad-CAM, filter pictures) need the eager modules; a compiled graph would bypass them.
    """
    net = getattr(module, "net", module)
    return getattr(net, "_orig_mod", net)


def conv_layers(net: nn.Module) -> list[nn.Conv2d]:
    """The network's convolutions in the order they are applied (registration order)."""
    if hasattr(net, "conv_layers"):
        return list(net.conv_layers())
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


def conv_layer(net: nn.Module, index: int = -1, key: str = "layer") -> nn.Conv2d:
    """The ``index``-th convolution (negative counts from the end: -1 is the last one)."""
    layers = conv_layers(net)
    if not layers:
        raise ConfigError(f"{type(net).__name__} has no Conv2d layer")
    if not -len(layers) <= index < len(layers):
        raise ConfigError(
            f"{key}={index} is not allowed: the network has {len(layers)} conv layers "
            f"(0..{len(layers) - 1}, or -1 for the last)"
        )
    return layers[index]


def describe_layer(net: nn.Module, layer: nn.Module, map_size: tuple[int, int] | None = None) -> str:
    """A conv layer as people count them: "conv 7/7 (features.21)", or "conv 7/7 (features.21), 3x3 map"."""
    layers = conv_layers(net)
    names = {module: name for name, module in net.named_modules()}
    number = next((i for i, m in enumerate(layers, start=1) if m is layer), None)
    where = names.get(layer, type(layer).__name__)
    text = f"conv {number}/{len(layers)} ({where})" if number else where
    return f"{text}, {map_size[0]}x{map_size[1]} map" if map_size else text


def _square(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    height, width = (int(v) for v in image_size)
    return height, width


def conv_map_sizes(net: nn.Module, image_size: int | Sequence[int] = IMAGE_SIZE) -> dict[nn.Module, tuple[int, int]]:
    """Each conv layer's output (height, width) for one input of ``image_size``, measured by a forward pass."""
    layers = conv_layers(net)
    if not layers:
        raise ConfigError(f"{type(net).__name__} has no Conv2d layer")
    sizes: dict[nn.Module, tuple[int, int]] = {}
    with gradient_mode(net) as model, torch.no_grad():
        originals = {counterpart(net, model, layer): layer for layer in layers}

        def record(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
            sizes[originals[module]] = (int(output.shape[-2]), int(output.shape[-1]))

        hooks = [module.register_forward_hook(record) for module in originals]
        try:
            probe = torch.zeros(1, layers[0].in_channels, *_square(image_size))
            model(_as_input(probe, model))
        finally:
            for hook in hooks:
                hook.remove()
    return sizes


def gradcam_layer(
    net: nn.Module, index: int | None = None, key: str = "layer", image_size: int | Sequence[int] = IMAGE_SIZE
) -> nn.Conv2d:
    """Grad-CAM's conv layer: the ``index``-th one, or with ``index=None`` the last one whose map is
    at least ``GRADCAM_MIN_MAP_SIZE`` pixels on each side (the first one when none is that large).
    """
    if index is not None:
        return conv_layer(net, index, key)
    sizes = conv_map_sizes(net, image_size)
    fine_enough = [layer for layer in conv_layers(net) if min(sizes[layer]) >= GRADCAM_MIN_MAP_SIZE]
    return fine_enough[-1] if fine_enough else conv_layers(net)[0]


@contextmanager
def gradient_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Yield ``net`` ready for gradients with respect to the input; restore its modes afterwards.

    Eval mode (BatchNorm running statistics, no dropout) so that attributions explain the network as it
    predicts. Inference mode and no_grad are lifted and autocast is switched off, because Lightning's
    validation loop and mixed precision would otherwise hand back no gradient or a bf16 one. A network
    whose weights are not float32 (``*-true`` precisions) is explained through a float32 copy.
    """
    parameter = next(net.parameters(), None)
    device_type = parameter.device.type if parameter is not None else "cpu"
    training = {module: module.training for module in net.modules()}
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast(device_type, enabled=False):
        model = net
        if any(p.dtype != torch.float32 for p in net.parameters()):
            model = copy.deepcopy(net).float()
        model.eval()
        try:
            yield model
        finally:
            for module, mode in training.items():
                module.train(mode)


def counterpart(original: nn.Module, model: nn.Module, layer: nn.Module) -> nn.Module:
    """``layer`` of ``original`` as found in ``model`` (itself, or the same-named module of a copy)."""
    if model is original:
        return layer
    names = {module: name for name, module in original.named_modules()}
    if layer not in names:
        raise ValueError(f"{type(layer).__name__} is not part of {type(original).__name__}")
    return model.get_submodule(names[layer])


def _as_input(images: torch.Tensor, model: nn.Module) -> torch.Tensor:
    """A fresh float32 leaf tensor: inputs made under inference mode cannot take part in autograd."""
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else images.device
    return images.detach().to(device=device, dtype=torch.float32).clone()


def predict_classes(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Predicted class per image (eval mode, no gradient)."""
    with gradient_mode(net) as model, torch.no_grad():
        return model(_as_input(images, model)).argmax(dim=1).cpu()


def attribute(
    net: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor | Sequence[int],
    method: str = "saliency",
    *,
    layer: nn.Module | None = None,
    ig_steps: int = 8,
) -> torch.Tensor:
    """Attribution maps ``(N, H, W)``, float32, non-negative, on the CPU.

    ``images``: ``(N, 1, H, W)`` in the network's input scale. ``targets``: the class explained per image.
    ``saliency``: |d logit / d pixel|. ``integrated_gradients``: |IG| from a black image in ``ig_steps``
    steps. ``gradcam``: positive Grad-CAM at ``layer`` (default: ``gradcam_layer``'s choice), bilinearly
    upsampled.
    """
    from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, Saliency

    check_method(method)
    with gradient_mode(net) as model:
        inputs = _as_input(images, model).requires_grad_(True)
        target = torch.as_tensor(targets, dtype=torch.long, device=inputs.device)
        if method == "saliency":
            maps = Saliency(model).attribute(inputs, target=target, abs=True)
        elif method == "integrated_gradients":
            maps = IntegratedGradients(model).attribute(
                inputs, baselines=0.0, target=target, n_steps=ig_steps, internal_batch_size=max(len(inputs), 256)
            ).abs()
        else:
            chosen = (gradcam_layer(model, image_size=inputs.shape[-2:]) if layer is None
                      else counterpart(net, model, layer))
            coarse = LayerGradCam(model, chosen).attribute(inputs, target=target, relu_attributions=True)
            maps = LayerAttribution.interpolate(coarse, tuple(inputs.shape[-2:]), interpolate_mode="bilinear")
            maps = maps.clamp(min=0.0)  # bilinear upsampling of a ReLU'd map stays >= 0 up to rounding
        return maps.detach().float().sum(dim=1).cpu()


def examples_per_class(labels: np.ndarray, per_class: int, num_classes: int) -> np.ndarray:
    """Indices of the first ``per_class`` items of each class, class by class: the same set every time."""
    labels = np.asarray(labels)
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in range(num_classes)]
    return np.concatenate(chosen).astype(np.int64) if chosen else np.zeros(0, np.int64)


def mass_inside(attributions: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image: (share of attribution mass inside ``masks``) / (share of the image the masks cover).

    1 means attribution is spread as if the masks did not matter; above 1 it concentrates inside them.
    ``attributions``: ``(N, H, W)`` non-negative; ``masks``: ``(N, H, W)`` bool.
    """
    attributions = np.abs(np.asarray(attributions, dtype=np.float64))
    masks = np.asarray(masks, dtype=bool)
    if attributions.shape != masks.shape:
        raise ValueError(f"attributions {attributions.shape} and masks {masks.shape} differ in shape")
    axes = (1, 2)
    area = masks.mean(axis=axes)
    total = attributions.sum(axis=axes)
    inside = (attributions * masks).sum(axis=axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((area > 0) & (total > 0), inside / total / area, np.nan)
