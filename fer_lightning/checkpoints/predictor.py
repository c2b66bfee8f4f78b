"""A model checkpoint or an ensemble file as one predictor: the networks, their weights in the
average, their class names and (for an ensemble) the data it was chosen on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fer_lightning.checkpoints.ensemble_file import SoftmaxAverage, is_ensemble_checkpoint, member_checkpoints
from fer_lightning.checkpoints.model_file import is_model_checkpoint, network_from_checkpoint, read_checkpoint
from fer_lightning.checkpoints.shipped import shipped_temperature
from fer_lightning.classes import CLASS_NAMES
from fer_lightning.data.settings import data_settings
from fer_lightning.errors import CheckpointError


@dataclass(frozen=True)
class Predictor:
    """A checkpoint or an ensemble file, ready for inference, and what it says about itself."""

    module: SoftmaxAverage  # (N, 1, 48, 48) in [0, 1] -> (N, classes) probabilities; eval mode, CPU
    kind: str  # "model" or "ensemble"
    source: Path
    class_names: tuple[str, ...]
    weights: tuple[float, ...]  # one per member, summing to 1
    hyper_parameters: tuple[dict[str, Any], ...]  # one per member
    data: dict[str, Any] | None = None  # the data config an ensemble was chosen on (plain values)
    # Divides the log-probabilities before the softmax (inference/calibration.py): a shipped model's is
    # in its registry entry; 1.0 leaves the probabilities as the network gives them.
    temperature: float = 1.0

    @property
    def member_count(self) -> int:
        return len(self.weights)


def _class_names(hyper_parameters: dict[str, Any]) -> tuple[str, ...]:
    return tuple(hyper_parameters.get("class_names") or CLASS_NAMES)


def load_predictor(path: str | Path) -> Predictor:
    """A single model checkpoint or an ensemble file as one probability-averaging module.

    Loading is weights-only: a file that would run code when unpickled is refused, and anything
    that is not a checkpoint of this project raises a one-line CheckpointError.
    """
    path = Path(path)  # as given: a shipped model keeps its pretrained[:name]
    data = read_checkpoint(path)
    if is_ensemble_checkpoint(data):
        kind, checkpoints = "ensemble", member_checkpoints(data, source=str(path))
        weights = [float(w) for w in data["weights"]]
        stored_data = data["fer_lightning"].get("data")
    elif is_model_checkpoint(data):
        kind, checkpoints, weights, stored_data = "model", [data], [1.0], None
    else:
        raise CheckpointError(f"{path}: not a checkpoint of this project (no fer_lightning model or ensemble marker)")
    networks = [
        network_from_checkpoint(checkpoint, source=f"{path} (member {index})" if kind == "ensemble" else str(path))
        for index, checkpoint in enumerate(checkpoints)
    ]
    hparams = tuple(dict(checkpoint.get("hyper_parameters") or {}) for checkpoint in checkpoints)
    names = {_class_names(h) for h in hparams}
    if len(names) != 1:
        raise CheckpointError(f"{path}: members disagree on the class names: {sorted(names)}")
    try:
        module = SoftmaxAverage(networks, weights)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    # Convolution weights kept channels-last, whatever layout the file stored them in: oneDNN's CPU
    # kernels take 1.4 ms a face in it against 2.2 in the contiguous layout (narrow network, one thread).
    module.to(memory_format=torch.channels_last)
    return Predictor(
        module=module.eval(),
        kind=kind,
        source=path,
        class_names=names.pop(),
        weights=tuple(float(w) for w in module.weights),
        hyper_parameters=hparams,
        # Checked now: an ensemble file is data, and its data settings must not name code.
        data=data_settings(stored_data, where=str(path)) if stored_data is not None else None,
        temperature=shipped_temperature(path),
    )
