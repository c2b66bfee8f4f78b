"""A per-layer table of output shapes and parameter counts, computed without running the model.

Shapes come from the formulas in :mod:`fer_lightning.theory.conv_arithmetic`, so the table is a
check on the shape arithmetic in docs/math.md rather than a record of one forward pass.
Walk order: for a model with ``features`` and ``classifier`` sequences (every network of
models/architectures.py), those two in that order; otherwise the leaf modules of an ``nn.Sequential``
tree in registration order, which is the order a Sequential applies them. A residual sum
(models/blocks.py) lists its body, then its shortcut, and both must give the same shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from fer_lightning.classes import IMAGE_SIZE
from fer_lightning.models.blocks import Residual
from fer_lightning.theory.conv_arithmetic import conv2d_output_shape, maxpool2d_output_shape

Shape = tuple[int, ...]  # one sample's shape, without the batch axis


@dataclass(frozen=True)
class LayerRow:
    name: str  # dotted path inside the model, e.g. "features.0"
    kind: str  # class name, e.g. "Conv2d"
    output_shape: Shape
    params: int
    flops: int = 0  # per face, forward


# Layers that leave the shape unchanged. Dropout is an identity in shape in train and eval mode alike.
SHAPE_PRESERVING: tuple[type[nn.Module], ...] = (
    nn.Identity,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softmax,
    nn.LogSoftmax,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
)


def _image(shape: Shape, layer: nn.Module) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"{type(layer).__name__} needs a (C, H, W) input, got {shape}")
    return shape[0], shape[1], shape[2]


def _conv2d(layer: nn.Conv2d, shape: Shape) -> Shape:
    channels, h, w = _image(shape, layer)
    if channels != layer.in_channels:
        raise ValueError(f"Conv2d expects {layer.in_channels} input channels, got {channels}")
    if layer.padding == "same":  # torch pads so that the size is kept (stride must be 1)
        return layer.out_channels, h, w
    padding = 0 if layer.padding == "valid" else layer.padding
    out_h, out_w = conv2d_output_shape((h, w), layer.kernel_size, layer.stride, padding, layer.dilation)
    return layer.out_channels, out_h, out_w


def _pool2d(layer: nn.MaxPool2d | nn.AvgPool2d, shape: Shape) -> Shape:
    channels, h, w = _image(shape, layer)
    dilation = getattr(layer, "dilation", 1)  # average pooling has none
    out_h, out_w = maxpool2d_output_shape(
        (h, w), layer.kernel_size, layer.stride, layer.padding, dilation, layer.ceil_mode
    )
    return channels, out_h, out_w


def _adaptive_pool2d(layer: nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d, shape: Shape) -> Shape:
    channels, h, w = _image(shape, layer)
    size = layer.output_size
    out_h, out_w = (size, size) if isinstance(size, int) or size is None else size
    # None keeps that axis as it is.
    return channels, h if out_h is None else out_h, w if out_w is None else out_w


def _batchnorm(layer: nn.BatchNorm1d | nn.BatchNorm2d, shape: Shape) -> Shape:
    expected_rank = (3,) if isinstance(layer, nn.BatchNorm2d) else (1, 2)
    if len(shape) not in expected_rank or shape[0] != layer.num_features:
        raise ValueError(
            f"{type(layer).__name__}({layer.num_features}) cannot normalise an input of shape {shape}"
        )
    return shape


def _flatten(layer: nn.Flatten, shape: Shape) -> Shape:
    batched = (1, *shape)  # Flatten's dims count the batch axis
    start, end = layer.start_dim % len(batched), layer.end_dim % len(batched)
    if start == 0:
        raise ValueError("Flatten with start_dim=0 merges the batch axis; no per-sample shape describes that")
    out = (*batched[:start], math.prod(batched[start : end + 1]), *batched[end + 1 :])
    return out[1:]


def _linear(layer: nn.Linear, shape: Shape) -> Shape:
    if not shape or shape[-1] != layer.in_features:
        raise ValueError(f"Linear expects {layer.in_features} input features, got shape {shape}")
    return (*shape[:-1], layer.out_features)


ShapeRule = Callable[[nn.Module, Shape], Shape]
SHAPE_RULES: tuple[tuple[tuple[type[nn.Module], ...], ShapeRule], ...] = (
    ((nn.Conv2d,), _conv2d),
    ((nn.MaxPool2d, nn.AvgPool2d), _pool2d),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive_pool2d),
    ((nn.BatchNorm1d, nn.BatchNorm2d), _batchnorm),
    ((nn.Flatten,), _flatten),
    ((nn.Linear,), _linear),
    (SHAPE_PRESERVING, lambda layer, shape: shape),
)


def output_shape(layer: nn.Module, shape: Shape) -> Shape:
    """Per-sample output shape of one leaf layer for a per-sample input ``shape``."""
    for kinds, rule in SHAPE_RULES:
        if isinstance(layer, kinds):
            return rule(layer, shape)
    supported = sorted({kind.__name__ for kinds, _ in SHAPE_RULES for kind in kinds})
    raise TypeError(
        f"no shape rule for layer type {type(layer).__name__}; supported: {', '.join(supported)}"
    )


def _walk(module: nn.Module, prefix: str, shape: Shape, rows: list[LayerRow]) -> Shape:
    """Append one row per leaf of ``module`` in the order it applies them; return the output shape."""
    if isinstance(module, Residual):
        # Both branches read the same input; the sum needs them to agree.
        body = _walk(module.body, f"{prefix}.body", shape, rows)
        shortcut = _walk(module.shortcut, f"{prefix}.shortcut", shape, rows)
        if body != shortcut:
            raise ValueError(f"{prefix}: the residual branches give {body} and {shortcut}, which cannot be added")
        return body
    if not isinstance(module, nn.Sequential) and not any(True for _ in module.children()):
        name = prefix or type(module).__name__
        try:
            out = output_shape(module, shape)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from error
        rows.append(LayerRow(name=name, kind=type(module).__name__, output_shape=out,
                             params=sum(p.numel() for p in module.parameters()), flops=layer_flops(module, out)))
        return out
    if not isinstance(module, nn.Sequential):
        # Only a Sequential's (or Residual's) forward is known to apply its children in order.
        raise TypeError(
            f"cannot walk {prefix or type(module).__name__} ({type(module).__name__}): only nn.Sequential "
            "containers and residual sums are supported"
        )
    for name, child in module.named_children():
        shape = _walk(child, f"{prefix}.{name}" if prefix else name, shape, rows)
    return shape


def layer_flops(layer: nn.Module, out: Shape) -> int:
    """Floating-point operations of one face through a conv or linear layer (2 per multiply-add);
    normalisation, activations and pooling are left out, as FLOP counts usually do."""
    if isinstance(layer, nn.Conv2d):
        kh, kw = layer.kernel_size
        return 2 * math.prod(out) * (layer.in_channels // layer.groups) * kh * kw
    if isinstance(layer, nn.Linear):
        return 2 * math.prod(out) * layer.in_features
    return 0


def summarize(model: nn.Module, input_shape: Shape = (1, IMAGE_SIZE, IMAGE_SIZE)) -> list[LayerRow]:
    """One row per leaf layer: its output shape (without batch), parameter count and FLOPs."""
    rows: list[LayerRow] = []
    shape = tuple(input_shape)
    features, classifier = getattr(model, "features", None), getattr(model, "classifier", None)
    if isinstance(features, nn.Sequential) and isinstance(classifier, nn.Sequential) and not isinstance(
        model, nn.Sequential
    ):
        _walk(classifier, "classifier", _walk(features, "features", shape, rows), rows)
    elif not any(True for _ in model.children()) or isinstance(model, nn.Sequential):
        _walk(model, "", shape, rows)
    else:
        # A custom forward may apply its children in any order, or not at all.
        raise TypeError(
            f"cannot walk {type(model).__name__}: expected an nn.Sequential or a model with "
            "'features' and 'classifier' Sequentials"
        )
    return rows


def format_summary(rows: list[LayerRow]) -> str:
    """A plain-text table of the rows with a total parameter count."""
    header = ("Layer", "Kind", "Output shape", "Params")
    body = [(r.name, r.kind, " x ".join(map(str, r.output_shape)), f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in (header, *body)) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        left = [cell.ljust(width) for cell, width in zip(cells[:-1], widths)]
        return "  ".join([*left, cells[-1].rjust(widths[-1])])

    rule = "-" * len(line(header))
    total = f"Total parameters: {sum(r.params for r in rows):,}"
    flops = f"Forward FLOPs per face: {sum(r.flops for r in rows) / 1e9:.3f} G (convolutions and linear layers)"
    return "\n".join([line(header), rule, *map(line, body), rule, total, flops])


def model_config_table(model_config: Any) -> str:
    """The table of the network a ``model`` config describes, after checking its values."""
    from fer_lightning.config.checks import check_model
    from fer_lightning.models.architectures import build_network

    check_model(model_config)
    return format_summary(summarize(build_network(model_config)))
