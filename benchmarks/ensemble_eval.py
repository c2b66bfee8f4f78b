"""Figure 6: evaluating an ensemble of k members costs about k single evaluations."""

from __future__ import annotations

import time
from typing import Any

import torch

from benchmarks.report import figure
from benchmarks.sizes import Sizes
from benchmarks.workload import compose_train_config, faces, net_from_config
from fer_lightning.checkpoints.ensemble_file import SoftmaxAverage
from fer_lightning.inference.scoring import predict_probabilities


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    cfg = compose_train_config(sizes.model())
    members = []
    for seed in range(max(sizes.ensemble_members)):
        torch.manual_seed(seed)
        members.append(net_from_config(cfg.model).eval())
    images, _ = faces(sizes.ensemble_images, sizes.unique_faces, seed=1)
    predict_probabilities(SoftmaxAverage(members[:1]), images[:32])  # warm-up: first-call allocations

    rows = []
    single = None
    for k in sizes.ensemble_members:
        module = SoftmaxAverage(members[:k]).eval()
        started = time.perf_counter()
        predict_probabilities(module, images, batch_size=256)
        seconds = time.perf_counter() - started
        single = single if single is not None else seconds / k
        rows.append({"members": k, "seconds": seconds, "images_per_s": len(images) / seconds,
                     "k_times_single": k * single, "ratio": seconds / (k * single)})
    columns = [
        ("members", "members k", "{}"),
        ("seconds", "seconds", "{:.2f}"),
        ("images_per_s", "images/s", "{:,.0f}"),
        ("k_times_single", "k x single s", "{:.2f}"),
        ("ratio", "time / (k x single)", "{:.2f}"),
    ]
    notes = [
        f"{sizes.ensemble_images} synthetic test faces through fer_lightning.inference.scoring.predict_probabilities "
        f"(batch 256, no test-time augmentation), members of width {sizes.width} averaged by SoftmaxAverage.",
    ]
    summary = {"ratios": {str(r["members"]): r["ratio"] for r in rows},
               "max_ratio": max(r["ratio"] for r in rows)}
    return figure("6. Ensemble evaluation", columns, rows, summary, notes)
