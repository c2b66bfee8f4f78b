"""Figure 5: inference latency (one image) and throughput (a large batch), PyTorch eager against
ONNX Runtime running the file ``python -m fer_lightning.export format=onnx`` writes."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.report import figure
from benchmarks.sizes import Sizes
from benchmarks.workload import compose_train_config, flops_per_image, net_from_config
from fer_lightning.checkpoints.ensemble_file import SoftmaxAverage
from fer_lightning.inference.export import INPUT_NAME, OUTPUT_NAME, export_onnx


def call_seconds(call: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def inference_module(sizes: Sizes) -> SoftmaxAverage:
    """What evaluate, predict and export run: the network behind a (one-member) softmax average."""
    cfg = compose_train_config(sizes.model())
    torch.manual_seed(0)
    return SoftmaxAverage([net_from_config(cfg.model)]).eval()


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    import onnxruntime

    module = inference_module(sizes)
    forward_flops = flops_per_image(module.members[0], train=False)
    one = torch.rand(1, 1, 48, 48)
    batch = torch.rand(sizes.inference_batch_size, 1, 48, 48)

    def eager(images: torch.Tensor) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return module(images)
        return call

    with tempfile.TemporaryDirectory(prefix="fer-bench-onnx-") as scratch:
        path = export_onnx(module, Path(scratch) / "model.onnx")
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def ort(images: torch.Tensor) -> Callable[[], object]:
        feed = {INPUT_NAME: images.numpy()}
        return lambda: session.run([OUTPUT_NAME], feed)

    # Both runtimes must compute the same thing, or their speeds are not comparable.
    difference = float(np.abs(ort(batch)()[0] - eager(batch)().numpy()).max())
    rows = []
    for runtime, make in (("PyTorch eager", eager), ("ONNX Runtime", ort)):
        latency = call_seconds(make(one), sizes.latency_repeats, warmup=5)
        throughput = call_seconds(make(batch), sizes.throughput_repeats, warmup=1)
        rate = sizes.inference_batch_size / statistics.median(throughput)
        rows.append({
            "runtime": runtime,
            "latency_ms": statistics.median(latency) * 1000,
            "latency_p90_ms": sorted(latency)[int(0.9 * (len(latency) - 1))] * 1000,
            "images_per_s": rate,
            "gflops": rate * forward_flops / 1e9,
        })
    rows[1]["vs_eager"] = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    rows[1]["latency_vs_eager"] = rows[0]["latency_ms"] / rows[1]["latency_ms"]
    columns = [
        ("runtime", "runtime", "{}"),
        ("latency_ms", "1 image: median ms", "{:.2f}"),
        ("latency_p90_ms", "p90 ms", "{:.2f}"),
        ("images_per_s", f"batch {sizes.inference_batch_size}: images/s", "{:,.0f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("vs_eager", "throughput vs eager", "{:.2f}x"),
        ("latency_vs_eager", "latency vs eager", "{:.2f}x"),
    ]
    notes = [
        f"Width {sizes.width}, fp32, {torch.get_num_threads()} PyTorch threads, ONNX Runtime's default "
        f"threads; {sizes.latency_repeats} single-image calls, {sizes.throughput_repeats} batches. "
        f"Forward pass: {forward_flops / 1e9:.3f} GFLOP per image. Largest difference between the two "
        f"runtimes' probabilities: {difference:.1e}.",
    ]
    summary = {"forward_gflop_per_image": forward_flops / 1e9, "max_abs_difference": difference,
               "onnx_speedup_batch": rows[1]["vs_eager"], "onnx_speedup_latency": rows[1]["latency_vs_eager"]}
    return figure("5. Inference: PyTorch eager vs ONNX Runtime", columns, rows, summary, notes)
