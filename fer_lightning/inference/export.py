"""Export a checkpoint or an ensemble as one ONNX or TorchScript graph that outputs probabilities.

Input ``image``: (N, 1, 48, 48) float32 in [0, 1] (gray pixels / 255), N free. Output
``probabilities``: (N, 7), the members' weighted average for an ensemble.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from fer_lightning.classes import IMAGE_SIZE
from fer_lightning.errors import ConfigError, FerError

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
INPUT_NAME, OUTPUT_NAME = "image", "probabilities"


def example_batch(size: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)


def export_onnx(module: torch.nn.Module, path: Path, opset: int = 17, class_names: tuple[str, ...] = ()) -> Path:
    """The TorchScript-based exporter (``dynamo=False``): the dynamo one needs onnxscript, which
    this project does not depend on, and gains nothing for a plain CNN."""
    with warnings.catch_warnings():
        # It announces its own deprecation in favour of the dynamo exporter; nothing to act on here.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        torch.onnx.export(
            module.eval(), (example_batch(2),), str(path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        )
    if class_names:
        import onnx

        # The class order travels with the model, for whoever runs it without this package.
        model = onnx.load(str(path))
        entry = model.metadata_props.add()
        entry.key, entry.value = "class_names", ",".join(class_names)
        onnx.save(model, str(path))
    return path


def export_torchscript(module: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but is still what C++ and mobile load.
        warnings.filterwarnings("ignore", message=".*torch.jit.*deprecated.*")
        traced = torch.jit.trace(module.eval(), example_batch(2))
        torch.jit.save(traced, str(path))
    return path


def onnx_difference(module: torch.nn.Module, path: Path, batch: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime's and PyTorch's probabilities."""
    try:
        import onnxruntime
    except ImportError:
        raise FerError("checking the ONNX file needs onnxruntime: pip install 'fer-lightning[export]', "
                       "or pass check=false") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (exported,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    with torch.inference_mode():
        expected = module(batch).numpy()
    return float(np.abs(exported - expected).max())


def torchscript_difference(module: torch.nn.Module, path: Path, batch: torch.Tensor) -> float:
    loaded = torch.jit.load(str(path))
    with torch.inference_mode():
        return float((loaded(batch) - module(batch)).abs().max())


def export(cfg: DictConfig) -> Path:
    from fer_lightning.inference.checkpoint import load_predictor
    from fer_lightning.models.pretrained import output_anchor

    fmt = str(cfg.format)
    if fmt not in FORMATS:
        raise ConfigError(f"format={fmt!r}: allowed values are {', '.join(FORMATS)}")
    predictor = load_predictor(cfg.ckpt_path)
    output = Path(cfg.output) if cfg.get("output") else output_anchor(cfg.ckpt_path).with_suffix(FORMATS[fmt])
    output.parent.mkdir(parents=True, exist_ok=True)
    module = predictor.module.eval()
    if fmt == "onnx":
        export_onnx(module, output, int(cfg.opset), predictor.class_names)
    else:
        export_torchscript(module, output)
    log.info("exported %s (%d member(s)) to %s", predictor.kind, predictor.member_count, output)
    if cfg.check:
        # A batch size other than the tracing example's checks that the batch axis stayed free.
        batch = example_batch(5, seed=1)
        difference = (onnx_difference if fmt == "onnx" else torchscript_difference)(module, output, batch)
        if difference > float(cfg.check_tolerance):
            raise FerError(f"{output}: the exported model differs from PyTorch by {difference:.2e} "
                           f"(> {cfg.check_tolerance})")
        log.info("checked: largest difference from PyTorch on a batch of %d is %.1e", len(batch), difference)
    return output
