"""Load this project's checkpoints safely: tensors and plain values only, never pickled code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from fer_lightning.errors import CheckpointError
from fer_lightning.model.module import ExpressionClassifier


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with errors that say what the file is not."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # weights_only refuses any object that would run code when unpickled.
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unsupported object"
        raise CheckpointError(
            f"{path}: refused, it holds objects that loading would have to execute ({first[:160]})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as error:
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
