"""int8 graphs: ONNX Runtime's static quantisation of an exported fp32 graph, its activation ranges
calibrated on faces the caller gives (the shipped int8 graphs: 1,024 FER2013 training faces).

Percentile calibration (the 0.001st to 99.999th percentile of each activation, not its extremes) kept
the narrow network within 0.25 point of fp32 on PublicTest where min-max and entropy ranges lost 0.7
(benchmarks/quantize_shipped.py, docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from fer_lightning.errors import FerError
from fer_lightning.files import atomic_write
from fer_lightning.inference.onnx_backend import INPUT_NAME

CALIBRATION_BATCH = 64


def from_softmax_on(graph: Path) -> list[str]:
    """The names of the softmax nodes of an ONNX graph and of every node that reads their results."""
    import onnx

    nodes = onnx.load(str(graph)).graph.node
    tainted = {output for node in nodes if node.op_type == "Softmax" for output in node.output}
    names = [node.name for node in nodes if node.op_type == "Softmax"]
    for node in nodes:  # ONNX lists nodes in topological order: one pass reaches everything downstream
        if node.op_type != "Softmax" and tainted.intersection(node.input):
            tainted.update(node.output)
            names.append(node.name)
    return names


def quantize_int8(graph: Path, output: Path, calibration: np.ndarray) -> Path:
    """Weights int8 per output channel, activations int8 with ranges from ``calibration``
    ((N, 48, 48) uint8 faces), in QDQ form, which ONNX Runtime's CPU kernels fuse into int8 convolutions."""
    try:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
    except ImportError:
        raise FerError("int8 quantisation needs onnx and onnxruntime: pip install 'fer-lightning[export]'") from None
    if calibration.ndim != 3 or calibration.dtype != np.uint8 or len(calibration) == 0:
        raise FerError(f"calibration faces must be (N, 48, 48) uint8 and not empty; got {calibration.shape} "
                       f"{calibration.dtype}")

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            pixels = calibration.astype(np.float32)[:, None] / np.float32(255.0)
            self.batches = iter([{INPUT_NAME: pixels[i:i + CALIBRATION_BATCH]}
                                 for i in range(0, len(pixels), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self.batches, None)

    staging = output.with_name(f".{output.name}.quantizing")
    root = logging.getLogger()
    level = root.level
    try:
        # The quantiser prints its histogram progress and advises pre-processing, which only renames
        # the BatchNorm folding ONNX Runtime does when it loads the graph anyway.
        root.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            # From the softmax on (the flip's and an ensemble's averaging too) the graph stays in float,
            # so the probabilities still sum to 1 instead of moving in steps of 1/256.
            quantize_static(str(graph), str(staging), Faces(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile,
                            nodes_to_exclude=from_softmax_on(graph))
        with atomic_write(output) as handle:
            handle.write(staging.read_bytes())
    finally:
        root.setLevel(level)
        staging.unlink(missing_ok=True)
    return output
