"""The networks a model config or a checkpoint may name, by name: an allow-list, so a stored
``architecture`` value selects one of these classes and never imports anything else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from fer_lightning.models.cnn import ReportCNN
from fer_lightning.models.residual import ResidualCNN
from fer_lightning.models.separable import SeparableCNN

ARCHITECTURES: dict[str, type[nn.Module]] = {
    "report_cnn": ReportCNN,
    "resnet": ResidualCNN,
    "separable": SeparableCNN,
}
DEFAULT_ARCHITECTURE = "report_cnn"


def network_class(architecture: str | None) -> type[nn.Module]:
    name = DEFAULT_ARCHITECTURE if architecture is None else architecture
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def network_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments of the network ``values`` (a model config or hyperparameters) names."""
    cls = network_class(values.get("architecture"))
    return {key: values[key] for key in cls.ARGUMENTS if key in values}


def build_network(values: Mapping[str, Any], num_classes: int | None = None) -> nn.Module:
    """The network a model config or a checkpoint's hyperparameters describe (random weights)."""
    extra = {} if num_classes is None else {"num_classes": num_classes}
    return network_class(values.get("architecture"))(**network_arguments(values), **extra)
