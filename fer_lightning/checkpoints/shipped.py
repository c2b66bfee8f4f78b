"""Trained models that ship inside the package: ``ckpt_path=pretrained`` or ``pretrained:<name>``.

Each model is one compact file in ``fer_lightning/pretrained/`` (the network's hyperparameters and
its weights as fp16 tensors, upcast to fp32 when loaded) listed in ``models.json`` with its sha256.
Loading checks the hash first, then reads the file weights-only like any checkpoint, so a damaged
or replaced file is refused in one line and never executed.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from fer_lightning.config.paths import PACKAGE_DIR
from fer_lightning.errors import CheckpointError, ConfigError
from fer_lightning.files import atomic_write

PRETRAINED_DIR = PACKAGE_DIR / "pretrained"
REGISTRY_FILE = "models.json"
PRETRAINED = "pretrained"
# Only what rebuilds the network: training settings (optimizer, schedule, mixing) stay with the run.
NETWORK_KEYS = ("net", "dropout", "class_names")


def is_pretrained(ckpt_path: Any) -> bool:
    text = str(ckpt_path)
    return text == PRETRAINED or text.startswith(PRETRAINED + ":")


def read_registry(directory: Path | None = None) -> dict[str, Any]:
    """``{"default": name, "models": {name: {"file", "sha256", ...}}}``."""
    path = (directory or PRETRAINED_DIR) / REGISTRY_FILE
    try:
        registry = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: the list of shipped models cannot be read ({error})") from None
    if not isinstance(registry, dict) or not isinstance(registry.get("models"), dict):
        raise CheckpointError(f"{path}: not a list of shipped models")
    return registry


def write_registry(registry: dict[str, Any], directory: Path | None = None) -> None:
    with atomic_write((directory or PRETRAINED_DIR) / REGISTRY_FILE, "w") as handle:
        handle.write(json.dumps(registry, indent=2, sort_keys=True) + "\n")


def model_name(ckpt_path: Any, registry: dict[str, Any]) -> str:
    """``pretrained`` -> the default model's name; ``pretrained:<name>`` -> ``<name>``, if shipped."""
    name = str(ckpt_path).partition(":")[2] or registry.get("default")
    if name not in registry["models"]:
        shipped = ", ".join(f"pretrained:{n}" for n in sorted(registry["models"])) or "none"
        raise CheckpointError(f"ckpt_path={ckpt_path}: no such shipped model (shipped: {shipped})")
    return name


# (file, size, modification time) -> sha256: a command that resolves a shipped model several times
# (predict checks the output, then loads the model) hashes it once.
_DIGESTS: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def pretrained_file(ckpt_path: Any = PRETRAINED, directory: Path | None = None) -> Path:
    """The verified file of a shipped model: present, and with the sha256 the registry names."""
    registry = read_registry(directory)
    name = model_name(ckpt_path, registry)
    entry = registry["models"][name]
    path = (directory or PRETRAINED_DIR) / str(entry.get("file", ""))
    if not path.is_file():
        raise CheckpointError(f"pretrained:{name}: its weights {path} are missing; reinstall the package")
    if sha256_of(path) != entry.get("sha256"):
        raise CheckpointError(f"pretrained:{name}: {path} is damaged or was replaced (its sha256 does not "
                              "match the one shipped); reinstall the package")
    return path


def pretrained_entry(ckpt_path: Any = PRETRAINED, directory: Path | None = None) -> dict[str, Any]:
    """What the registry says of a shipped model (accuracy, data, command), with its name."""
    registry = read_registry(directory)
    name = model_name(ckpt_path, registry)
    return {"name": name, **registry["models"][name]}


# What a shipped ensemble keeps of each member besides its network: plain values that describe it.
MEMBER_KEYS = ("overrides", "best_val_acc", "val_acc", "weight")


def shipped_temperature(path: Any) -> float:
    """A shipped model's fitted temperature (models.json ``temperature``), named as ``pretrained[:name]``
    or by its file (as the demo's catalog resolves it); 1.0 for any other file."""
    if is_pretrained(path):
        entry = pretrained_entry(str(path))
    elif Path(path).resolve().parent == PRETRAINED_DIR.resolve():
        entries = [e for e in read_registry()["models"].values() if e.get("file") == Path(path).name]
        entry = entries[0] if entries else {}
    else:
        return 1.0
    value = entry.get("temperature", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 100:
        raise CheckpointError(f"{path}: its temperature in models.json must be a positive number, not {value!r}")
    return float(value)


def compact_network(member: dict[str, Any]) -> dict[str, Any]:
    """A model checkpoint (or ensemble member) reduced to what inference needs: the network's settings
    and fp16 weights."""
    from fer_lightning.models.architectures import with_nested_net

    hparams = with_nested_net(member.get("hyper_parameters") or {})
    return {
        "hyper_parameters": {key: hparams[key] for key in NETWORK_KEYS if key in hparams},
        "state_dict": {key: value.half() if value.is_floating_point() else value
                       for key, value in member["state_dict"].items()},
    }


def compact_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """A model checkpoint or an ensemble file reduced to what inference needs. An ensemble keeps its
    weights, selection, class names and data settings, and of each member its network and the plain
    values that describe it (never where its run lay on the machine that built it)."""
    marker = checkpoint.get("fer_lightning") or {}
    if marker.get("kind") != "ensemble":
        return {"fer_lightning": {"kind": "model", "format": 1}, **compact_network(checkpoint)}
    members = [{**compact_network(member), "run": Path(str(member.get("run_dir", f"member {index}"))).name,
                **{key: member[key] for key in MEMBER_KEYS if key in member}}
               for index, member in enumerate(checkpoint["members"])]
    return {"fer_lightning": dict(marker), "weights": list(checkpoint["weights"]), "members": members}


MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def check_model_name(name: Any, directory: Path | None = None, replace: bool = False) -> str | None:
    """A shipped model's name is a plain file name (letters, digits, '.', '_', '-'; no path, no hidden
    file). An existing name is replaced only with ``replace``; returns what it replaces (or None)."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name) or name.endswith(".pt"):
        raise ConfigError(f"--name {name!r}: a model name is 1 to 64 letters, digits, '.', '_' or '-', starting "
                          "with a letter or digit (no folders, no .pt)")
    try:
        existing = read_registry(directory or PRETRAINED_DIR)["models"].get(name)
    except CheckpointError:
        existing = None
    if existing is None:
        return None
    accuracy = existing.get("val_accuracy") if isinstance(existing, dict) else None
    what = f"{name} ({accuracy:.2%} on validation)" if isinstance(accuracy, float) else name
    if not replace:
        raise ConfigError(f"--name {name}: the model {what} already exists; pass --replace to replace it")
    return what


def publish(checkpoint: dict[str, Any], name: str, details: dict[str, Any], directory: Path | None = None,
            default: bool = True, replace: bool = False) -> Path:
    """Write ``<name>.pt`` and its registry entry (sha256 and ``details``) into ``directory``."""
    directory = directory or PRETRAINED_DIR
    check_model_name(name, directory, replace)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.pt"
    import torch  # here, not above: resolving a shipped model's file (the ONNX path) needs no torch

    with atomic_write(path) as handle:
        torch.save(compact_checkpoint(checkpoint), handle)
    try:
        registry = read_registry(directory)
    except CheckpointError:
        registry = {"models": {}}
    registry["models"][name] = {"file": path.name, "sha256": sha256_of(path), **details}
    if default or not registry.get("default"):
        registry["default"] = name
    write_registry(registry, directory)
    return path


def add_graph(name: str, key: str, variant: str, graph: Path, details: dict[str, Any],
              directory: Path | None = None) -> Path:
    """Ship ``graph`` (an ONNX file) beside model ``name`` as ``<name>.<variant>.<format>.onnx`` (``key``
    ``onnx_int8``: ``fer2013-narrow-cnn.flip.int8.onnx``), listed in its registry entry under ``key``
    with its sha256 and ``details``."""
    directory = directory or PRETRAINED_DIR
    registry = read_registry(directory)
    name = model_name(f"{PRETRAINED}:{name}", registry)
    target = directory / f"{name}.{variant}.{key.rpartition('_')[2]}.onnx"
    with atomic_write(target) as handle:
        handle.write(graph.read_bytes())
    registry["models"][name].setdefault(key, {})[variant] = {"file": target.name, "sha256": sha256_of(target),
                                                              **details}
    write_registry(registry, directory)
    return target


def output_anchor(ckpt_path: Any) -> Path:
    """Where a command's outputs go by default: beside a checkpoint file, or, for a shipped model
    (whose folder is part of the installed package), ``outputs/pretrained/<name>.pt`` of the project."""
    if not is_pretrained(ckpt_path):
        return Path(ckpt_path)
    from fer_lightning.config.paths import outputs_dir

    name = model_name(ckpt_path, read_registry())
    return Path(outputs_dir()) / "pretrained" / f"{name}.pt"
