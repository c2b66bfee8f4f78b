"""Figure 3: how fast the data module delivers training batches for each augmentation preset and
worker count (``benchmarks/loader_throughput.py``'s measurement), against how fast the model
consumes them; then the presets inside training, where loader and model share the cores."""

from __future__ import annotations

from typing import Any

from benchmarks.loader_throughput import BATCH, loader_rate
from benchmarks.report import figure
from benchmarks.sizes import Sizes
from benchmarks.train_throughput import base_overrides
from benchmarks.workload import faces, project_fit

PRESETS = ("none", "light", "strong")
# Training with these presets and workers, timed inside the training loop.
IN_LOOP = (("light", 0), ("light", 1), ("strong", 0))


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    train_rate = context.get("train_images_per_s")
    rows: list[dict[str, Any]] = []
    for preset in PRESETS:
        for workers in sizes.loader_workers:
            rate = loader_rate(preset, workers, sizes.loader_images, sizes.loader_seconds)
            rows.append({
                "where": "loader alone", "preset": preset, "workers": workers, "images_per_s": rate,
                "headroom": rate / train_rate if train_rate else None,
                "bottleneck": None if not train_rate else ("yes" if rate < train_rate else "no"),
            })

    batches = sizes.warmup + sizes.option_steps
    images, labels = faces(sizes.batch_size * batches, sizes.unique_faces)
    for preset, workers in IN_LOOP[: 2 if sizes.quick else None]:
        if workers not in sizes.loader_workers:
            continue
        overrides = [*base_overrides(sizes), f"augmentation={preset}", f"data.num_workers={workers}"]
        timing = project_fit(overrides, images, labels, sizes.warmup, sizes.option_steps)
        rows.append({
            "where": "training", "preset": preset, "workers": workers, "images_per_s": timing.images_per_second,
            "vs_no_augmentation": timing.images_per_second / train_rate if train_rate else None,
        })

    alone = {(r["preset"], r["workers"]): r["images_per_s"] for r in rows if r["where"] == "loader alone"}
    slowest = min(alone[(preset, 0)] for preset in PRESETS)
    summary = {
        "train_images_per_s": train_rate,
        "slowest_loader_images_per_s_workers_0": slowest,
        "loader_is_bottleneck_at_workers_0": bool(train_rate and slowest < train_rate),
        "loader_images_per_s": {f"{p}/workers={w}": r for (p, w), r in alone.items()},
    }
    columns = [
        ("where", "measured", "{}"),
        ("preset", "augmentation", "{}"),
        ("workers", "workers", "{}"),
        ("images_per_s", "images/s", "{:,.0f}"),
        ("headroom", "loader / training rate", "{:,.0f}x"),
        ("bottleneck", "bottleneck?", "{}"),
        ("vs_no_augmentation", "vs training without augmentation", "{:.2f}x"),
    ]
    notes = [
        f"Loader alone: FERDataModule.train_dataloader over {sizes.loader_images} synthetic faces, batch {BATCH}, "
        f"timed for {sizes.loader_seconds} s after the first batch (worker start-up excluded). Training rows: "
        f"the project path with that preset and worker count, {sizes.option_steps} steps after {sizes.warmup}, "
        f"against figure 1's {train_rate or float('nan'):.1f} images/s without augmentation.",
    ]
    return figure("3. Data loading", columns, rows, summary, notes)
