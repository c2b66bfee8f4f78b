"""Figure 2: speed options of the training path, each measured against the default (fp32,
contiguous NCHW, eager, AdamW's default implementation, all cores)."""

from __future__ import annotations

import math
from typing import Any

import torch

from benchmarks.report import figure, verdict
from benchmarks.sizes import Sizes
from benchmarks.train_throughput import base_overrides
from benchmarks.workload import faces, project_fit

# (name, overrides) of the options that only change how the same work is done.
OPTIONS = (
    ("channels-last (trainer.memory_format=channels_last)", ["trainer.memory_format=channels_last"]),
    ("fused AdamW (+model.optimizer.fused=true)", ["+model.optimizer.fused=true"]),
    ("foreach AdamW (+model.optimizer.foreach=true)", ["+model.optimizer.foreach=true"]),
)


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    base = base_overrides(sizes)
    batches = sizes.warmup + sizes.option_steps
    images, labels = faces(sizes.batch_size * max(batches, sizes.warmup + sizes.train_steps), sizes.unique_faces)
    default_rate = context.get("train_images_per_s")
    rows: list[dict[str, Any]] = []
    if default_rate is None:
        default_rate = project_fit(base, images, labels, sizes.warmup, sizes.option_steps).images_per_second
    rows.append({"option": "default: fp32, NCHW, eager, AdamW defaults", "images_per_s": default_rate,
                 "speedup": 1.0, "recommendation": "the reference"})

    def add(option: str, rate: float, reference: float, advice: str | None = None, **extra: Any) -> float:
        speedup = rate / reference
        rows.append({"option": option, "images_per_s": rate, "speedup": speedup,
                     "recommendation": advice or verdict(speedup), **extra})
        return speedup

    # Precision: bf16 autocast against fp32, both at a small batch (emulated bf16 is very slow here).
    small = [*base, f"data.batch_size={sizes.bf16_batch_size}"]
    fp32 = project_fit([*small, "trainer.precision=32-true"], images, labels, 1, sizes.bf16_steps)
    bf16 = project_fit([*small, "trainer.precision=bf16-mixed"], images, labels, 1, sizes.bf16_steps)
    native = context["cpu"]["native_bf16"]
    bf16_speedup = bf16.images_per_second / fp32.images_per_second
    add(f"fp32 at batch {sizes.bf16_batch_size} (reference for bf16)", fp32.images_per_second,
        fp32.images_per_second, "the reference for the next row")
    add(f"bf16-mixed at batch {sizes.bf16_batch_size} (trainer.precision=bf16-mixed)", bf16.images_per_second,
        fp32.images_per_second,
        ("use it (the config picks it on this CPU)" if bf16_speedup > 1 else
         "keep fp32 (trainer.precision=32-true): not faster despite native bf16")
        if native else
        "avoid: bf16 is emulated on this CPU (no avx512_bf16/amx); the config picks fp32 here")

    for option, overrides in OPTIONS:
        timing = project_fit([*base, *overrides], images, labels, sizes.warmup, sizes.option_steps)
        add(option, timing.images_per_second, default_rate)

    # torch.compile: the first step pays the compilation; report it and when it pays back.
    if sizes.compile:
        timing = project_fit([*base, "model.compile=true"], images, labels, sizes.warmup, sizes.option_steps)
        compile_seconds = timing.first_step_seconds - timing.seconds_per_step
        speedup = timing.images_per_second / default_rate
        saved_per_step = sizes.batch_size / default_rate - timing.seconds_per_step
        break_even = compile_seconds / saved_per_step if saved_per_step > 0 else math.inf
        if speedup >= 1.03 and math.isfinite(break_even):
            advice = f"use it for runs longer than ~{math.ceil(break_even)} steps (compile {compile_seconds:.0f} s)"
        else:
            advice = f"avoid: compile costs {compile_seconds:.0f} s and the steady state is not faster"
        add("torch.compile (model.compile=true), steady state", timing.images_per_second, default_rate, advice,
            compile_seconds=compile_seconds, break_even_steps=break_even if math.isfinite(break_even) else None)
    else:
        rows.append({"option": "torch.compile (model.compile=true)", "recommendation": "not measured in --quick"})

    # Intra-op threads: one thread against the default (all cores).
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = project_fit(base, images, labels, sizes.warmup, sizes.option_steps)
    finally:
        torch.set_num_threads(threads)
    speedup = one.images_per_second / default_rate
    if speedup < 1:
        advice = f"keep {threads} threads (torch's default: one per core)"
    elif speedup >= 1.03:
        advice = "1 thread is faster here: typical when other processes share the cores"
    else:
        advice = verdict(speedup)
    add("torch.set_num_threads(1)", one.images_per_second, default_rate, advice)
    rows[0]["option"] += f", {threads} thread{'s' if threads != 1 else ''}"

    columns = [
        ("option", "option", "{}"),
        ("images_per_s", "images/s", "{:.1f}"),
        ("speedup", "vs reference", "{:.2f}x"),
        ("compile_seconds", "compile s", "{:.1f}"),
        ("recommendation", "recommendation", "{}"),
    ]
    notes = [
        f"Project training path, width {sizes.width}, batch {sizes.batch_size} (bf16 rows: batch "
        f"{sizes.bf16_batch_size}), {sizes.option_steps} steps after {sizes.warmup} warm-up steps per option "
        f"(bf16 rows: {sizes.bf16_steps} after 1). The default row is figure 1's project median.",
    ]
    summary = {"bf16_speedup": bf16_speedup, "native_bf16": native, "threads": threads,
               "config_precision": context.get("config_precision")}
    return figure("2. Training speed options", columns, rows, summary, notes)
