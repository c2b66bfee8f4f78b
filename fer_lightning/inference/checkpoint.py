"""Load this project's checkpoints safely: tensors and plain values only, never pickled code."""

from __future__ import annotations

import pickle
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from fer_lightning.classes import CLASS_NAMES
from fer_lightning.data.settings import data_settings
from fer_lightning.errors import CheckpointError
from fer_lightning.inference.ensemble_file import SoftmaxAverage, is_ensemble_checkpoint, member_checkpoints
from fer_lightning.models.classifier import ExpressionClassifier

PICKLE_PROTOCOL_MARK = b"\x80"  # the first byte of a pickle (protocol 2 or later): torch's legacy format


def refusal_reason(error: Exception) -> str:
    """The line of torch's weights-only refusal that names what was refused."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("Trying to load", "Unsupported")) or "WeightsUnpickler error:" in line and line[-1] != ":":
            return line
    return lines[0] if lines else "unsupported object"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that say what the file is not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with path.open("rb") as handle:
            head = handle.read(1)
    except OSError as error:
        raise CheckpointError(f"{path}: cannot be read ({error.strerror})") from None
    if not zipfile.is_zipfile(path) and head != PICKLE_PROTOCOL_MARK:
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither torch.save's zip format nor a pickle)")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Detected pickle protocol.*")
            warnings.filterwarnings("ignore", message=".*looks like a TorchScript archive.*")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses any object that would run code when unpickled.
        raise CheckpointError(
            f"{path}: refused, it holds objects that loading would have to execute ({refusal_reason(error)[:160]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
        if "TorchScript" in str(error):
            raise CheckpointError(f"{path}: a TorchScript export, not a checkpoint: pass the checkpoint "
                                  "or ensemble file it was exported from") from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({type(error).__name__})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a checkpoint of this project (holds a {type(data).__name__})")
    return data


def is_model_checkpoint(data: dict[str, Any]) -> bool:
    marker = data.get("fer_lightning")
    return isinstance(marker, dict) and marker.get("kind") == "model" and "state_dict" in data


def classifier_from_checkpoint(data: dict[str, Any], source: str = "checkpoint") -> ExpressionClassifier:
    """Rebuild the network from the stored hyperparameters and load its weights strictly."""
    if not is_model_checkpoint(data):
        raise CheckpointError(f"{source}: not a model checkpoint of this project")
    hparams = dict(data.get("hyper_parameters") or {})
    known = set(ExpressionClassifier.__init__.__code__.co_varnames)
    hparams = {k: v for k, v in hparams.items() if k in known}
    hparams["compile"] = False  # inference never needs the compile step
    try:
        model = ExpressionClassifier(**hparams)
        state = {k.replace("net._orig_mod.", "net."): v for k, v in data["state_dict"].items()}
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit the network it describes ({first[:200]})") from None
    return model.eval()


def load_classifier(path: str | Path) -> ExpressionClassifier:
    """A trained ExpressionClassifier in eval mode, on the CPU."""
    return classifier_from_checkpoint(read_checkpoint(path), source=str(path))


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
    path = Path(path)
    data = read_checkpoint(path)
    if is_ensemble_checkpoint(data):
        kind, checkpoints = "ensemble", member_checkpoints(data, source=str(path))
        weights = [float(w) for w in data["weights"]]
        stored_data = data["fer_lightning"].get("data")
    elif is_model_checkpoint(data):
        kind, checkpoints, weights, stored_data = "model", [data], [1.0], None
    else:
        raise CheckpointError(f"{path}: not a checkpoint of this project (no fer_lightning model or ensemble marker)")
    classifiers = [
        classifier_from_checkpoint(checkpoint, source=f"{path} (member {index})" if kind == "ensemble" else str(path))
        for index, checkpoint in enumerate(checkpoints)
    ]
    hparams = tuple(dict(classifier.hparams) for classifier in classifiers)
    names = {_class_names(h) for h in hparams}
    if len(names) != 1:
        raise CheckpointError(f"{path}: members disagree on the class names: {sorted(names)}")
    try:
        module = SoftmaxAverage([classifier.net for classifier in classifiers], weights)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from None
    return Predictor(
        module=module.eval(),
        kind=kind,
        source=path,
        class_names=names.pop(),
        weights=tuple(float(w) for w in module.weights),
        hyper_parameters=hparams,
        # Checked now: an ensemble file is data, and its data settings must not name code.
        data=data_settings(stored_data, where=str(path)) if stored_data is not None else None,
    )
