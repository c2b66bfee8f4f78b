"""Figure 7: how an epoch's cost grows with the data set's size and with the network's width.

Method: training batches cost the same whatever the data set's size (the images sit in memory and
are indexed per batch), so each size trains a fixed number of batches through the project's path
with the default augmentation, and the epoch time is extrapolated:
    epoch = ceil(train / batch) x seconds per training batch + ceil(val / 256) x seconds per val batch
Measuring the same per-batch cost at every size is the check that this holds.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.report import figure
from benchmarks.sizes import FER2013_TRAIN_IMAGES, FER2013_VAL_IMAGES, Sizes
from benchmarks.workload import compose_train_config, faces, flops_per_image, net_from_config, project_fit


def default_overrides(sizes: Sizes, width: str) -> list[str]:
    """The default training config (light augmentation, no workers) at this width and batch."""
    return [*sizes.model(width), f"data.batch_size={sizes.batch_size}"]


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    eval_batch = int(compose_train_config([]).data.eval_batch_size)
    largest = max(sizes.scaling_fractions)
    rows: list[dict[str, Any]] = []
    val_batch_seconds = math.nan
    per_step: dict[float, float] = {}
    for fraction in sorted(sizes.scaling_fractions, reverse=True):
        # data=fer2013 trains on (a fraction of) Training and validates on all of PublicTest.
        train_count, val_count = round(FER2013_TRAIN_IMAGES * fraction), FER2013_VAL_IMAGES
        images, labels = faces(train_count + val_count, sizes.unique_faces)
        measure_val = fraction == largest
        timing = project_fit(
            default_overrides(sizes, sizes.width), images[:train_count], labels[:train_count],
            sizes.warmup, sizes.scaling_steps,
            val=(images[train_count:], labels[train_count:]),
            val_batches=sizes.scaling_val_batches if measure_val else 0,
        )
        if measure_val:
            val_batch_seconds = min(timing.val_seconds)
        per_step[fraction] = timing.seconds_per_step
        rows.append({"data": f"{fraction:g} x FER2013 Training", "train_images": train_count,
                     "val_images": val_count, "steps_per_epoch": math.ceil(train_count / sizes.batch_size),
                     "seconds_per_step": timing.seconds_per_step, "_val_batches": math.ceil(val_count / eval_batch)})
    for row in rows:
        row["train_epoch_s"] = row["steps_per_epoch"] * row["seconds_per_step"]
        row["val_s"] = row.pop("_val_batches") * val_batch_seconds
        row["epoch_s"] = row["train_epoch_s"] + row["val_s"]
    rows.sort(key=lambda r: r["train_images"])

    full_train = FER2013_TRAIN_IMAGES
    steps = math.ceil(full_train / sizes.batch_size)
    width_rows = []
    batches = sizes.warmup + sizes.width_steps
    images, labels = faces(sizes.batch_size * batches, sizes.unique_faces)
    for width in sizes.widths:
        cfg = compose_train_config(sizes.model(width))
        trained_flops = flops_per_image(net_from_config(cfg.model), train=True)
        if width == sizes.width and largest in per_step:
            seconds = per_step[largest]
        else:
            seconds = project_fit(default_overrides(sizes, width), images, labels, sizes.warmup,
                                  sizes.width_steps).seconds_per_step
        rate = sizes.batch_size / seconds
        width_rows.append({
            "data": f"width {width} ({'-'.join(str(c) for c in cfg.model.net.channels)})",
            "train_images": full_train, "steps_per_epoch": steps, "seconds_per_step": seconds,
            "train_epoch_s": steps * seconds, "gflop_per_image": trained_flops / 1e9,
            "images_per_s": rate, "gflops": rate * trained_flops / 1e9,
        })
    columns = [
        ("data", "data set / width", "{}"),
        ("train_images", "train images", "{:,}"),
        ("steps_per_epoch", "steps/epoch", "{:,}"),
        ("seconds_per_step", "s/step", "{:.3f}"),
        ("gflop_per_image", "GFLOP/image", "{:.3f}"),
        ("gflops", "GFLOP/s", "{:.1f}"),
        ("train_epoch_s", "train s/epoch", "{:,.0f}"),
        ("val_s", "val s", "{:,.0f}"),
        ("epoch_s", "epoch s", "{:,.0f}"),
    ]
    spread = max(per_step.values()) / min(per_step.values())
    notes = [
        f"Each size trains {sizes.scaling_steps} batches after {sizes.warmup} (batch {sizes.batch_size}, width "
        f"{sizes.width}, light augmentation, no workers); validation is PublicTest's {FER2013_VAL_IMAGES:,} images "
        f"at every size, timed on {sizes.scaling_val_batches} batches of {eval_batch}. "
        f"Synthetic faces stand in for FER2013 (the same count; speed does not depend on content). "
        f"Per-step time varies {spread:.2f}x across sizes: "
        + ("the cost per batch does not depend on the size, so epoch time is linear in it."
           if spread < 1.15 else "more than timing noise should allow; rerun on a quiet machine."),
        f"Width rows: training only, one FER2013 epoch ({full_train:,} images, {steps:,} steps) from "
        f"{sizes.width_steps} measured batches after {sizes.warmup}.",
    ]
    summary = {"seconds_per_step_by_fraction": {f"{k:g}": v for k, v in per_step.items()},
               "per_step_spread": spread, "val_batch_seconds": val_batch_seconds,
               "epoch_seconds_largest": rows[-1]["epoch_s"],
               "train_epoch_seconds_by_width": {r["data"]: r["train_epoch_s"] for r in width_rows}}
    return figure("7. How cost grows: data set size and width", columns, rows + width_rows, summary, notes)
