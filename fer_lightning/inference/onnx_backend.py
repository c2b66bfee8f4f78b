"""Inference through ONNX Runtime: a model's graph run without PyTorch.

A checkpoint, an ensemble or a shipped model is exported once to an ONNX graph and kept in the cache
folder under the sha256 of the file it came from, so the next process finds it without importing
torch. ``tta=flip`` is part of the graph (the faces and their mirror images as one batch of two,
averaged inside), so one call does it. int8 graphs are not made here: they are quantised against
FER2013 training faces and ship with the models they keep accurate (``pretrained/models.json``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fer_lightning.config.checks import check_backend
from fer_lightning.errors import CheckpointError, FerError
from fer_lightning.inference.threads import threads_for

# Bumped when the graph export changes, so that graphs cached by an older version are not reused.
GRAPH_VERSION = 1
INPUT_NAME, OUTPUT_NAME, CLASS_NAMES_KEY = "image", "probabilities", "class_names"


def cache_dir() -> Path:
    """``$FER_CACHE``, else ``$XDG_CACHE_HOME/fer-lightning``, else ``~/.cache/fer-lightning``."""
    if os.environ.get("FER_CACHE"):
        return Path(os.environ["FER_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fer-lightning"


def source_digest(source: Any) -> tuple[Path, str]:
    """The file a model name or path reads, and its sha256 (a shipped model's is checked against
    its registry entry on the way)."""
    from fer_lightning.checkpoints import resolve
    from fer_lightning.checkpoints.shipped import sha256_of

    path = resolve(source)
    if not path.is_file():
        raise CheckpointError(f"{source}: no such model file")
    return path, sha256_of(path)


def shipped_int8_graph(source: Any, tta: str) -> Path:
    """The int8 graph a shipped model carries for ``tta``, checked by its sha256."""
    from fer_lightning.checkpoints.shipped import (
        PRETRAINED_DIR,
        is_pretrained,
        model_name,
        pretrained_file,
        read_registry,
        sha256_of,
    )

    if not is_pretrained(source):
        raise CheckpointError(f"precision=int8: only shipped models carry int8 graphs, and {source} is not one "
                              "(use precision=fp32, or ckpt_path=pretrained[:name])")
    registry = read_registry()
    name = model_name(source, registry)
    pretrained_file(source)  # the model itself is there and intact
    entry = (registry["models"][name].get("onnx_int8") or {}).get(tta)
    if not entry:
        with_int8 = sorted(n for n, m in registry["models"].items() if m.get("onnx_int8"))
        raise CheckpointError(f"pretrained:{name} ships no int8 graph (int8 lost too much accuracy or was not made): "
                              f"use precision=fp32" + (f", or one of {', '.join(with_int8)}" if with_int8 else ""))
    path = PRETRAINED_DIR / str(entry["file"])
    if not path.is_file() or sha256_of(path) != entry.get("sha256"):
        raise CheckpointError(f"pretrained:{name}: its int8 graph {path} is missing or damaged; reinstall the package")
    return path


def cached_graph(source: Any, tta: str) -> Path:
    """The fp32 graph of a model for ``tta`` (none or flip): from the cache, or exported into it now."""
    path, digest = source_digest(source)
    graph = cache_dir() / "onnx" / f"{digest[:32]}-{tta}-v{GRAPH_VERSION}.onnx"
    if not graph.is_file():
        export_graph(path, tta, graph)
    return graph


def export_graph(checkpoint: Path, tta: str, graph: Path) -> Path:
    """Export a checkpoint or ensemble (PyTorch needed this once) to ``graph``, written atomically."""
    import torch

    from fer_lightning.checkpoints.predictor import load_predictor
    from fer_lightning.inference.export import FlipAverage, export_onnx

    predictor = load_predictor(checkpoint)
    module = FlipAverage(predictor.module) if tta == "flip" else predictor.module
    graph.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the graph and renamed into place: a process that finds the graph finds all of it.
    staging = graph.with_name(f".{graph.name}.{os.getpid()}.export")
    try:
        with torch.inference_mode(False):
            export_onnx(module.eval(), staging, class_names=predictor.class_names)
        os.replace(staging, graph)
    except OSError as error:
        raise FerError(f"{graph}: cannot write the ONNX graph ({error.strerror or error})") from None
    finally:
        staging.unlink(missing_ok=True)
    return graph


class OnnxGraph:
    """One ONNX graph: (N, 48, 48) uint8 faces -> (N, classes) probabilities, on a thread count chosen
    per batch (inference/threads.py), one ONNX Runtime session per thread count."""

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise FerError("backend=onnxruntime needs onnxruntime: pip install 'fer-lightning[export]'") from None
        self._ort = onnxruntime
        self.path = Path(path)
        self._sessions: dict[int, Any] = {}
        metadata = self.session(1).get_modelmeta().custom_metadata_map
        names = metadata.get(CLASS_NAMES_KEY, "")
        if not names:
            raise CheckpointError(f"{path}: an ONNX graph without its class names (not one this package exported)")
        self.class_names = tuple(names.split(","))

    def session(self, threads: int) -> Any:
        if threads not in self._sessions:
            options = self._ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            # Waiting threads sleep instead of spinning: a spinning pool steals the cores that other
            # work on a busy machine needs, and one-face calls gain nothing from it.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                self._sessions[threads] = self._ort.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"])
            except Exception as error:  # onnxruntime raises its own exception types for a bad file
                raise CheckpointError(f"{self.path}: onnxruntime cannot load it ({str(error).splitlines()[0]})") \
                    from None
        return self._sessions[threads]

    def probabilities(self, faces: np.ndarray, batch_size: int = 256, threads: int | str = "auto") -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        pixels = np.ascontiguousarray(faces, dtype=np.float32)[:, None] / np.float32(255.0)
        rows = []
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start:start + batch_size]
            rows.append(self.session(threads_for(len(batch), threads)).run([OUTPUT_NAME], {INPUT_NAME: batch})[0])
        return np.concatenate(rows).astype(np.float32, copy=False)


class OnnxClassifier:
    """A model name or path run by ONNX Runtime: the graph for each test-time augmentation is found
    (cached or shipped) on its first use."""

    backend = "onnxruntime"

    def __init__(self, source: Any, precision: str = "fp32", tta: str = "none") -> None:
        check_backend("onnxruntime", precision, tta)
        from fer_lightning.checkpoints.shipped import shipped_temperature

        self.source, self.precision = source, precision
        # The graph gives the network's probabilities: the recognizer applies the temperature, as for torch.
        self.temperature = shipped_temperature(source)
        self._graphs: dict[str, OnnxGraph] = {}
        # The graph of the augmentation first asked for: a wrong model stops here, in one line.
        self.class_names = self.graph(tta).class_names

    def graph(self, tta: str) -> OnnxGraph:
        if tta not in self._graphs:
            check_backend("onnxruntime", self.precision, tta)
            path = shipped_int8_graph(self.source, tta) if self.precision == "int8" else cached_graph(self.source, tta)
            self._graphs[tta] = OnnxGraph(path)
        return self._graphs[tta]

    def probabilities(self, faces: np.ndarray, batch_size: int = 256, tta: str = "none",
                      threads: int | str = "auto") -> np.ndarray:
        return self.graph(tta).probabilities(faces, batch_size, threads)
