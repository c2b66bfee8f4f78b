"""This project's model files, read safely: tensors and plain values only, never pickled code.

A path, or ``pretrained[:<name>]`` for a model shipped with the package (its sha256 checked first).
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fer_lightning.checkpoints import resolve
from fer_lightning.classes import CLASS_NAMES
from fer_lightning.errors import CheckpointError, FerError
from fer_lightning.models.architectures import build_network, net_config, with_nested_net

if TYPE_CHECKING:  # Lightning costs 2 s to import: inference builds the plain network instead
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
    """``torch.load(weights_only=True)`` with errors that say what the file is not.

    Whatever ``resolve`` takes: ``pretrained[:<name>]`` reads a model shipped with the package (its
    sha256 checked), a run directory its best checkpoint.
    """
    path = resolve(path)
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
        reason = refusal_reason(error)
        if "global" not in reason.lower():
            # Bytes that merely start like a pickle (an opcode weights_only does not know): not a checkpoint.
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (unreadable pickle data: {reason[:80]})") from None
        # weights_only refuses any object that would run code when unpickled.
        raise CheckpointError(
            f"{path}: refused, it holds objects that loading would have to execute ({reason[:160]})"
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


def checked_parts(data: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(hyper_parameters, state_dict) of a model checkpoint, each of the shape this project writes: a
    dict of plain values, and names mapped to tensors. Anything else is one CheckpointError."""
    hparams = data.get("hyper_parameters")
    if hparams is None:
        hparams = {}
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{source}: its hyper_parameters are not a mapping (found {type(hparams).__name__})")
    state = data.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{source}: its state_dict is not a mapping of weights (found {type(state).__name__})")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{source}: its weight {str(key)[:80]!r} is not a tensor (found {type(value).__name__})")
    return hparams, state


def state_difference(expected: dict[str, torch.Tensor], given: dict[str, Any]) -> str | None:
    """The first way ``given`` weights differ from the ``expected`` network's, in words; None when they fit."""
    wrong = [key for key in expected if key in given and tuple(given[key].shape) != tuple(expected[key].shape)]
    if wrong:
        key = wrong[0]
        return f"{key} is {tuple(given[key].shape)} in the file, {tuple(expected[key].shape)} in the network"
    missing = [key for key in expected if key not in given]
    if missing:
        return f"{missing[0]} is missing from the file" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
    extra = [key for key in given if key not in expected]
    if extra:
        return f"the file has {extra[0]}, which the network has not" + (
            f" (and {len(extra) - 1} more)" if len(extra) > 1 else "")
    return None


def network_from_checkpoint(data: dict[str, Any], source: str = "checkpoint") -> torch.nn.Module:
    """The plain network (no LightningModule) a model checkpoint describes, its weights loaded strictly:
    what inference needs, without importing Lightning."""
    if not is_model_checkpoint(data):
        raise CheckpointError(f"{source}: not a model checkpoint of this project")
    hparams, stored = checked_parts(data, source)
    names = hparams.get("class_names") or CLASS_NAMES
    # fp32 whatever the file stores (a shipped model keeps fp16).
    state = {key.replace("net._orig_mod.", "net.").removeprefix("net."): value.float() if value.is_floating_point()
             else value for key, value in stored.items() if key.startswith("net.")}
    try:
        # Built without memory or random initialisation, then given the stored tensors themselves.
        with torch.device("meta"):
            net = build_network(hparams, num_classes=len(names))
    except (TypeError, ValueError, FerError) as error:
        raise CheckpointError(f"{source}: its hyper_parameters describe no network this project builds "
                              f"({str(error).splitlines()[0][:200]})") from None
    difference = state_difference(net.state_dict(), state)
    if difference:
        raise CheckpointError(f"{source}: weights do not fit the network it describes ({difference})")
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit the network it describes ({first[:200]})") from None
    return net.eval()


def classifier_from_checkpoint(data: dict[str, Any], source: str = "checkpoint") -> ExpressionClassifier:
    """Rebuild the LightningModule from the stored hyperparameters and load its weights strictly."""
    from fer_lightning.models.classifier import ExpressionClassifier

    if not is_model_checkpoint(data):
        raise CheckpointError(f"{source}: not a model checkpoint of this project")
    hparams, stored = checked_parts(data, source)
    known = set(ExpressionClassifier.__init__.__code__.co_varnames)
    try:
        hparams = {k: v for k, v in with_nested_net(hparams).items() if k in known}
        hparams["compile"] = False  # inference never needs the compile step
        model = ExpressionClassifier(**hparams)
    except (TypeError, ValueError, FerError) as error:
        raise CheckpointError(f"{source}: its hyper_parameters describe no network this project builds "
                              f"({str(error).splitlines()[0][:200]})") from None
    state = {k.replace("net._orig_mod.", "net."): v for k, v in stored.items()}
    difference = state_difference(model.state_dict(), state)
    if difference:
        raise CheckpointError(f"{source}: weights do not fit the network it describes ({difference})")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit the network it describes ({first[:200]})") from None
    return model.eval()


def load_classifier(path: str | Path) -> ExpressionClassifier:
    """A trained ExpressionClassifier in eval mode, on the CPU."""
    return classifier_from_checkpoint(read_checkpoint(path), source=str(path))


def load_initial_weights(model: ExpressionClassifier, source: str | Path) -> None:
    """Start training from another model's weights (fine-tuning): ``pretrained[:<name>]`` or a checkpoint.

    Only the network's weights are taken; the optimizer, schedule and epochs start afresh. The two
    networks must have the same layers and widths.
    """
    donor = classifier_from_checkpoint(read_checkpoint(source), source=str(source))
    difference = state_difference(model.net.state_dict(), donor.net.state_dict())
    if difference:
        raise CheckpointError(f"ckpt_path={source}: its network does not fit the one configured here "
                              f"({difference}); {fitting_choice(donor.hparams)}")
    model.net.load_state_dict(donor.net.state_dict(), strict=True)


def fitting_choice(hparams: Any) -> str:
    """What to put on the command line to build the network a checkpoint holds."""
    import yaml

    from fer_lightning.config.paths import config_dir

    net = net_config(hparams)
    architecture = net.get("architecture", "report_cnn")
    channels = list(net.get("channels") or [])
    if architecture != "report_cnn":
        return f"train it with model={architecture} and the same channels (model.net.channels={channels})"
    for width in sorted((Path(config_dir()) / "model" / "width").glob("*.yaml")):
        if (yaml.safe_load(width.read_text()) or {}).get("channels") == channels:
            return f"it fits model/width={width.stem}"
    return f"it fits model.net.channels={channels}"


def check_resume_fits(path: str | Path, model: ExpressionClassifier) -> None:
    """A run's last.ckpt must hold the network this command builds; said in one line, with the way on.

    Otherwise a changed config (another width) or a refused file fails deep inside Lightning.
    """
    way_on = "retrain=true starts the run over (earlier results are archived), or move the file aside"
    try:
        data = read_checkpoint(path)
    except CheckpointError as error:
        raise CheckpointError(f"cannot resume: {error}; {way_on}") from None
    try:
        _, state = checked_parts(data, str(path))
    except CheckpointError as error:
        raise CheckpointError(f"cannot resume: {error}; {way_on}") from None
    state = {key.replace("net._orig_mod.", "net."): value for key, value in state.items()}
    expected = model.state_dict()
    # Keys the network has not (a compiled model's extras) do not stop a resume; missing or reshaped ones do.
    difference = state_difference(expected, {key: value for key, value in state.items() if key in expected})
    if difference:
        raise CheckpointError(f"cannot resume from {path}: it holds another network ({difference}); {way_on}")
