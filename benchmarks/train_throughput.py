"""Figure 1 (+ the fraction of peak of figure 2): the project's training path against a plain
PyTorch loop, same network, batch, optimizer and precision, alternating, several repeats.

Both loops then run once more on a tiny network whose step takes milliseconds: what is left is
the loop's own per-step cost, which the large network's timing noise would hide.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.report import figure
from benchmarks.sizes import TINY_NETWORK, Sizes
from benchmarks.workload import (
    FitTiming,
    compose_train_config,
    faces,
    flops_per_image,
    net_from_config,
    plain_loop,
    project_fit,
)

TARGET_RATIO = 0.95
SIDES = (("project", "project: Lightning Trainer + ExpressionClassifier + FERDataModule"),
         ("plain", "plain PyTorch loop"))


def base_overrides(sizes: Sizes) -> list[str]:
    """In-memory data without augmentation: figure 1 compares training loops, not loaders."""
    return ["augmentation=none", *sizes.model(), f"data.batch_size={sizes.batch_size}", "data.num_workers=0"]


def alternate(overrides: Sequence[str], sizes: Sizes, repeats: int, steps: int) -> dict[str, list[FitTiming]]:
    """Both loops ``repeats`` times, taking turns at going first so a drifting machine favours neither."""
    cfg = compose_train_config(overrides)
    images, labels = faces(sizes.batch_size * (sizes.warmup + steps), sizes.unique_faces)
    timings: dict[str, list[FitTiming]] = {"project": [], "plain": []}
    for repeat in range(repeats):
        for side in (("project", "plain") if repeat % 2 == 0 else ("plain", "project")):
            if side == "project":
                timings[side].append(project_fit(overrides, images, labels, sizes.warmup, steps))
            else:
                timings[side].append(plain_loop(cfg, images, labels, sizes.warmup, steps))
    return timings


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    overrides = base_overrides(sizes)
    cfg = compose_train_config(overrides)
    trained_flops = flops_per_image(net_from_config(cfg.model), train=True)
    peak = context["cpu"]["peak_gflops_fp32"]
    timings = alternate(overrides, sizes, sizes.repeats, sizes.train_steps)
    rates = {side: [t.images_per_second for t in runs] for side, runs in timings.items()}

    rows = []
    for side, label in SIDES:
        rate = statistics.median(rates[side])
        gflops = rate * trained_flops / 1e9
        rows.append({
            "loop": label, "network": sizes.width, "images_per_s": rate, "min": min(rates[side]),
            "max": max(rates[side]), "ms_per_step": 1000 * sizes.batch_size / rate, "gflops": gflops,
            "peak_fraction": gflops / peak if peak else None,
        })
    # Each repeat pairs the two loops run back to back: the median of those ratios is the headline
    # (a slow spell of the machine hits both sides of one pair, and the median drops an outlier pair).
    paired = [p / q for p, q in zip(rates["project"], rates["plain"])]
    ratio = statistics.median(paired)
    ratio_of_medians = statistics.median(rates["project"]) / statistics.median(rates["plain"])
    step_ms = [1000 * (end - start) for runs in timings.values() for t in runs
               for start, end in zip(t.starts[t.warmup:], t.ends[t.warmup:])]
    quartiles = statistics.quantiles(step_ms, n=4) if len(step_ms) >= 2 else [float("nan")] * 3
    context["train_images_per_s"] = statistics.median(rates["project"])
    summary: dict[str, Any] = {
        "ratio_project_over_plain": ratio,
        "ratio_of_median_rates": ratio_of_medians,
        "paired_ratios": paired,
        "step_ms_quartiles": quartiles,
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
        f"Ratio project/plain: {ratio:.3f}, the median of the paired repeats (target >= {TARGET_RATIO}); "
        "per repeat: " + ", ".join(f"{r:.3f}" for r in paired)
        + f"; ratio of the median rates: {ratio_of_medians:.3f}.",
        f"Machine noise: a measured step of the {sizes.width} network took {quartiles[0]:.0f} / {quartiles[1]:.0f} / "
        f"{quartiles[2]:.0f} ms (quartiles over both loops); differences smaller than that spread are noise.",
        f"{sizes.repeats} alternating repeats x {sizes.train_steps} steps after {sizes.warmup} warm-up steps, "
        f"batch {sizes.batch_size}, width {sizes.width}, precision {cfg.trainer.precision}, AdamW, "
        "no augmentation, no validation, start-up excluded. "
        f"One trained image costs {trained_flops / 1e9:.3f} GFLOP (forward + backward, counted by "
        f"FlopCounterMode); peak = {context['cpu']['cores']} cores x {context['cpu']['ghz']} GHz x "
        f"{context['cpu']['fp32_flop_per_cycle_per_core']} FLOP/cycle = {peak} GFLOP/s "
        f"({context['cpu'].get('microarchitecture', 'unknown core')}: "
        f"{context['cpu'].get('peak_assumes', 'from the SIMD flags')}).",
    ]

    if sizes.overhead_steps:
        tiny = alternate([*overrides, *TINY_NETWORK], sizes, sizes.repeats, sizes.overhead_steps)
        step_ms = {side: statistics.median(1000 * t.seconds_per_step for t in runs) for side, runs in tiny.items()}
        for side, label in SIDES:
            rows.append({"loop": label, "network": "tiny (" + ", ".join(TINY_NETWORK) + ")",
                         "images_per_s": sizes.batch_size / step_ms[side] * 1000, "ms_per_step": step_ms[side]})
        overhead = step_ms["project"] - step_ms["plain"]
        summary["overhead_ms_per_step"] = overhead
        summary["tiny_ms_per_step"] = step_ms
        notes.append(
            f"Tiny-network rows: the same loops, {sizes.repeats} alternating repeats x {sizes.overhead_steps} "
            f"steps; the project's own cost per step is {overhead:.1f} ms, "
            f"{overhead / rows[0]['ms_per_step']:.1%} of a step of the {sizes.width} network.")
    columns = [
        ("loop", "training loop", "{}"),
        ("network", "network", "{}"),
        ("images_per_s", "images/s (median)", "{:.1f}"),
        ("min", "min", "{:.1f}"),
        ("max", "max", "{:.1f}"),
        ("ms_per_step", "ms/step", "{:.1f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("peak_fraction", "of fp32 peak", "{:.0%}"),
    ]
    return figure("1. Training throughput: project vs plain PyTorch loop", columns, rows, summary, notes)
