"""The ensemble artifact: several trained networks whose softmax probabilities are averaged.

One file holds everything: each member's hyperparameters and weights, the members' weights in
the average, how they were chosen and the data they were chosen on. It contains only tensors
and plain values, so ``torch.load(weights_only=True)`` reads it like a single model checkpoint,
and evaluate, predict and export accept it wherever they accept one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_lightning.classes import CLASS_NAMES
from fer_lightning.errors import CheckpointError
from fer_lightning.files import atomic_write

ENSEMBLE_KIND = "ensemble"
ENSEMBLE_FORMAT = 1
# Checked before any member is built: twelve members of the wide network hold about 130 million values.
MAX_MEMBERS = 64
MAX_PARAMETERS = 500_000_000


class SoftmaxAverage(nn.Module):
    """(N, 1, 48, 48) images in [0, 1] -> (N, classes) probabilities: the weighted mean of each
    member's softmax. A single model is the one-member case, so every command and the exported
    graph handle one network and an ensemble alike."""

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        weights = [1.0] * len(members) if weights is None else [float(w) for w in weights]
        if len(weights) != len(members):
            raise ValueError(f"{len(members)} members but {len(weights)} weights")
        total = sum(weights)
        if not all(math.isfinite(w) and w >= 0 for w in weights) or total <= 0:
            raise ValueError(f"weights must be finite, non-negative and not all zero: {weights}")
        self.members = nn.ModuleList(members)
        # A buffer, not a Python list: it travels with .to(device) and into the exported graph.
        self.register_buffer("weights", torch.tensor([w / total for w in weights], dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.softened(images, 1.0)

    def softened(self, images: torch.Tensor, temperature: float) -> torch.Tensor:
        """The average of each member's softmax at ``temperature`` (> 1 softens: a distillation teacher)."""
        probabilities = torch.stack([torch.softmax(member(images).float() / temperature, dim=1)
                                     for member in self.members])
        return (probabilities * self.weights.view(-1, 1, 1)).sum(dim=0)


def is_ensemble_checkpoint(data: Mapping[str, Any]) -> bool:
    marker = data.get("fer_lightning")
    return isinstance(marker, dict) and marker.get("kind") == ENSEMBLE_KIND


def ensemble_artifact(
    members: Sequence[Mapping[str, Any]],
    weights: Sequence[float],
    selection: str,
    data: Mapping[str, Any] | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, Any]:
    """The dict saved as the ensemble file.

    ``members``: one mapping per member with ``hyper_parameters`` and ``state_dict`` (as in the
    member's Lightning checkpoint) plus any plain descriptive values (run dir, overrides, accuracy).
    ``data``: the (resolved, plain) data config the members were trained and chosen on.
    """
    if len(members) != len(weights):
        raise ValueError(f"{len(members)} members but {len(weights)} weights")
    stored = []
    for member in members:
        entry = dict(member)
        # Only the network's tensors: optimizer and loop state are of no use to inference.
        entry["state_dict"] = {k: v.detach().cpu() for k, v in member["state_dict"].items()}
        stored.append(entry)
    return {
        "fer_lightning": {
            "kind": ENSEMBLE_KIND,
            "format": ENSEMBLE_FORMAT,
            "selection": selection,
            "class_names": list(class_names),
            "data": dict(data) if data is not None else None,
        },
        "weights": [float(w) for w in weights],
        "members": stored,
    }


def save_ensemble(path: str | Path, artifact: Mapping[str, Any]) -> Path:
    """Write the artifact atomically (a crash never leaves half an ensemble behind)."""
    path = Path(path)
    with atomic_write(path) as handle:
        torch.save(dict(artifact), handle)
    return path


def member_checkpoints(data: Mapping[str, Any], source: str = "ensemble") -> list[dict[str, Any]]:
    """Each member as a single-model checkpoint dict, for the usual single-model loader."""
    members, weights = data.get("members"), data.get("weights")
    if not isinstance(members, list) or not members:
        raise CheckpointError(f"{source}: an ensemble file without members")
    if not isinstance(weights, list) or len(weights) != len(members):
        raise CheckpointError(f"{source}: an ensemble file whose weights do not match its {len(members)} members")
    if not all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights):
        raise CheckpointError(f"{source}: its weights must be numbers; found {str(weights)[:80]}")
    if len(members) > MAX_MEMBERS:
        raise CheckpointError(f"{source}: {len(members)} members, more than the {MAX_MEMBERS} an ensemble file may hold")
    checkpoints, parameters = [], 0
    for index, member in enumerate(members):
        if not isinstance(member, dict) or not isinstance(member.get("state_dict"), dict):
            raise CheckpointError(f"{source}: member {index} has no weights")
        for key, value in member["state_dict"].items():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(f"{source}: member {index}'s weight {key!r} is not a tensor")
            # Members may share one stored tensor: counted as each member will hold it once built.
            parameters += value.numel()
        if parameters > MAX_PARAMETERS:
            raise CheckpointError(f"{source}: its members hold more than {MAX_PARAMETERS:,} values in all, more "
                                  "than an ensemble file may (the file may be small: members can share tensors)")
        if not isinstance(member.get("hyper_parameters") or {}, dict):
            raise CheckpointError(f"{source}: member {index}'s hyper_parameters are not a mapping")
        checkpoints.append({
            "fer_lightning": {"kind": "model", "format": 1},
            "hyper_parameters": member.get("hyper_parameters") or {},
            "state_dict": member["state_dict"],
        })
    return checkpoints
