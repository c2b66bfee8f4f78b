"""The networks a model config or a checkpoint may name, by name: an allow-list, so a stored
``architecture`` value selects one of these classes and never imports anything else.

A model config describes its network as one node, ``model.net: {architecture, <the class's own
arguments>}``; the keys a network takes are read from its constructor's signature. The peak dropout
rate, which every network takes, is ``model.dropout`` (swept on its own: ``model.dropout=0.3,0.5``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from fer_lightning.config.choices import ARCHITECTURES as ARCHITECTURE_NAMES
from fer_lightning.errors import ConfigError
from fer_lightning.models.cnn import ReportCNN
from fer_lightning.models.residual import ResidualCNN
from fer_lightning.models.separable import SeparableCNN

# The classes in the order config/choices.py names them.
ARCHITECTURES: dict[str, type[nn.Module]] = dict(
    zip(ARCHITECTURE_NAMES, (ReportCNN, ResidualCNN, SeparableCNN), strict=True))
DEFAULT_ARCHITECTURE = ARCHITECTURE_NAMES[0]
# Arguments the data decides (48x48 gray faces, 7 classes) or the model config holds apart (dropout).
NOT_NET_KEYS = ("num_classes", "in_channels", "image_size", "dropout")


def network_class(architecture: Any) -> type[nn.Module]:
    name = DEFAULT_ARCHITECTURE if architecture is None else architecture
    if not isinstance(name, str) or name not in ARCHITECTURES:
        raise ConfigError(f"model.net.architecture={name!r} is not allowed: one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def net_keys(cls: type[nn.Module]) -> tuple[str, ...]:
    """What ``model.net`` may set for this network: its constructor's arguments, less NOT_NET_KEYS."""
    return tuple(name for name in inspect.signature(cls).parameters if name not in NOT_NET_KEYS)


def net_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """``model.net`` of a model config or a checkpoint's hyperparameters. Checkpoints written before
    model.net stored every network argument flat, beside the optimizer's (and all networks' arguments,
    whichever was built): the node is gathered from the keys the named network takes."""
    if "net" in values and values["net"] is not None:
        net = values["net"]
        if not isinstance(net, Mapping):
            raise ConfigError(f"model.net is not allowed to be {type(net).__name__}: a mapping of the network's settings")
        return dict(net)
    keys = ("architecture", *net_keys(network_class(values.get("architecture"))))
    return {key: values[key] for key in keys if key in values}


def with_nested_net(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Hyperparameters in today's shape: flat network keys moved into ``net``."""
    if "net" in hparams:
        return dict(hparams)
    flat = {"architecture", *(key for cls in ARCHITECTURES.values() for key in net_keys(cls))}
    return {**{k: v for k, v in hparams.items() if k not in flat}, "net": net_config(hparams)}


def network_arguments(values: Mapping[str, Any]) -> tuple[type[nn.Module], dict[str, Any]]:
    """The class and constructor arguments of the network ``values`` (a model config or
    hyperparameters) describe; a key the network does not take is refused by name."""
    net = net_config(values)
    cls = network_class(net.pop("architecture", None))
    keys = net_keys(cls)
    unknown = [key for key in net if key not in keys]
    if unknown:
        raise ConfigError(f"model.net.{unknown[0]}: not a setting of the {cls.__name__} network "
                          f"({', '.join(keys)})")
    if values.get("dropout") is not None:
        net["dropout"] = values["dropout"]
    return cls, net


def build_network(values: Mapping[str, Any], num_classes: int | None = None) -> nn.Module:
    """The network a model config or a checkpoint's hyperparameters describe (random weights)."""
    cls, arguments = network_arguments(values)
    extra = {} if num_classes is None else {"num_classes": num_classes}
    return cls(**arguments, **extra)
