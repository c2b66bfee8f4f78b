"""Figure 1 (+ the fraction of peak of figure 2): the project's training path against a plain
PyTorch loop, same network, batch, optimizer and precision, alternating, several repeats."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.report import figure
from benchmarks.sizes import Sizes
from benchmarks.workload import compose_train_config, faces, flops_per_image, net_from_config, plain_loop, project_fit

TARGET_RATIO = 0.95


def base_overrides(sizes: Sizes) -> list[str]:
    """In-memory data without augmentation: figure 1 compares training loops, not loaders."""
    return ["augmentation=none", *sizes.model(), f"data.batch_size={sizes.batch_size}", "data.num_workers=0"]


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    overrides = base_overrides(sizes)
    cfg = compose_train_config(overrides)
    batches = sizes.warmup + sizes.train_steps
    images, labels = faces(sizes.batch_size * batches, sizes.unique_faces)
    trained_flops = flops_per_image(net_from_config(cfg.model), train=True)
    peak = context["cpu"]["peak_gflops_fp32"]

    rates: dict[str, list[float]] = {"project": [], "plain": []}
    for repeat in range(sizes.repeats):
        # Alternate which side goes first, so a drifting machine does not favour either.
        order = ("project", "plain") if repeat % 2 == 0 else ("plain", "project")
        for side in order:
            if side == "project":
                timing = project_fit(overrides, images, labels, sizes.warmup, sizes.train_steps)
            else:
                timing = plain_loop(cfg, images, labels, sizes.warmup, sizes.train_steps)
            rates[side].append(timing.images_per_second)

    rows = []
    for side, label in (("project", "project: Lightning Trainer + ExpressionClassifier + FERDataModule"),
                        ("plain", "plain PyTorch loop")):
        rate = statistics.median(rates[side])
        gflops = rate * trained_flops / 1e9
        rows.append({
            "loop": label,
            "images_per_s": rate,
            "min": min(rates[side]),
            "max": max(rates[side]),
            "gflops": gflops,
            "peak_fraction": gflops / peak if peak else None,
        })
    paired = [p / q for p, q in zip(rates["project"], rates["plain"])]
    ratio = statistics.median(rates["project"]) / statistics.median(rates["plain"])
    context["train_images_per_s"] = statistics.median(rates["project"])
    context["train_flops_per_image"] = trained_flops
    summary = {
        "ratio_project_over_plain": ratio,
        "paired_ratios": paired,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "trained_gflop_per_image": trained_flops / 1e9,
        "peak_gflops_fp32": peak,
        "precision": str(cfg.trainer.precision),
        "batch_size": sizes.batch_size,
        "width": sizes.width,
        "repeats": sizes.repeats,
        "steps_per_repeat": sizes.train_steps,
        "warmup_steps": sizes.warmup,
        "rates": rates,
    }
    notes = [
        f"Ratio project/plain: {ratio:.3f} (target >= {TARGET_RATIO}); per repeat: "
        + ", ".join(f"{r:.3f}" for r in paired) + ".",
        f"{sizes.repeats} alternating repeats x {sizes.train_steps} steps after {sizes.warmup} warm-up steps, "
        f"batch {sizes.batch_size}, width {sizes.width}, precision {cfg.trainer.precision}, AdamW, "
        "no augmentation, no validation, start-up excluded. "
        f"One trained image costs {trained_flops / 1e9:.3f} GFLOP (forward + backward, counted by "
        f"FlopCounterMode); peak = {context['cpu']['cores']} cores x {context['cpu']['ghz']} GHz x "
        f"{context['cpu']['fp32_flop_per_cycle_per_core']} FLOP/cycle = {peak} GFLOP/s.",
    ]
    columns = [
        ("loop", "training loop", "{}"),
        ("images_per_s", "images/s (median)", "{:.1f}"),
        ("min", "min", "{:.1f}"),
        ("max", "max", "{:.1f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("peak_fraction", "of fp32 peak", "{:.0%}"),
    ]
    return figure("1. Training throughput: project vs plain PyTorch loop", columns, rows, summary, notes)
