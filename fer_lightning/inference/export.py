"""Export a checkpoint or an ensemble as one ONNX or TorchScript graph that outputs probabilities.

Input ``image``: (N, 1, 48, 48) float32 in [0, 1] (gray pixels / 255), N free. Output
``probabilities``: (N, 7), the members' weighted average for an ensemble.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from fer_lightning.checkpoints import resolve
from fer_lightning.classes import IMAGE_SIZE
from fer_lightning.config.checks import check_export_config
from fer_lightning.config.choices import EXPORT_SUFFIXES
from fer_lightning.errors import FerError
from fer_lightning.files import check_output

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "image", "probabilities"
CLASS_NAMES_KEY = "class_names"


def example_batch(size: int = 4, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(size, 1, IMAGE_SIZE, IMAGE_SIZE, generator=generator)


class FlipAverage(torch.nn.Module):
    """A network's probabilities averaged over the faces and their mirror images (``tta=flip``),
    computed as one batch of two: in an exported graph the flip is one call, not two."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = self.inner(torch.cat([x, torch.flip(x, dims=[-1])]))
        count = x.shape[0]
        return (both[:count] + both[count:]) / 2


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
        entry.key, entry.value = CLASS_NAMES_KEY, ",".join(class_names)
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


# ------------------------------------------------------------------------------ safe output
def is_onnx_export(path: Path) -> bool:
    """An ONNX model carrying the class names export writes into every ONNX file."""
    try:
        import onnx
        from google.protobuf.message import DecodeError
    except ImportError:
        return False
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (OSError, ValueError, DecodeError):
        return False
    return any(entry.key == CLASS_NAMES_KEY for entry in model.metadata_props)


def is_torchscript_archive(path: Path) -> bool:
    """A torch.jit.save zip: its compiled code and constants (a checkpoint's zip has neither).
    Only the listing is read; nothing in it is loaded."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any("/code/__torch__/" in name for name in names) and any(
        name.endswith("/constants.pkl") for name in names)


def is_export(path: Path) -> bool:
    return is_onnx_export(path) or is_torchscript_archive(path)


# ---------------------------------------------------------------------------------- command
def export(cfg: DictConfig) -> Path:
    from fer_lightning.checkpoints.predictor import load_predictor
    from fer_lightning.checkpoints.shipped import output_anchor

    check_export_config(cfg)
    fmt = str(cfg.format)
    output = Path(cfg.output) if cfg.get("output") else \
        output_anchor(cfg.ckpt_path).with_suffix(EXPORT_SUFFIXES[fmt][0])
    check_output(output, [("the checkpoint it reads", resolve(cfg.ckpt_path))], is_export,
                 bool(cfg.get("overwrite", False)), kind="an ONNX or TorchScript export")
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401  (export writes the class names with it)
        except ImportError:
            raise FerError("format=onnx needs the onnx package: pip install 'fer-lightning[export]'") from None
    predictor = load_predictor(cfg.ckpt_path)
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
