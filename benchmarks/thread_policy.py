"""Figure 11: where one thread stops being the better choice. Milliseconds a batch of faces takes on one
thread and on every core, for PyTorch and ONNX Runtime (int8), with the shipped default model; the
smallest batch where every core wins is where ``threads=auto`` should switch (inference/threads.py)."""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.inference import call_seconds
from benchmarks.report import figure
from benchmarks.sizes import Sizes
from fer_lightning import Recognizer
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.inference.threads import SMALL_BATCH, usable_cores

BATCHES = (1, 4, 16, 32, 64, 256)


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    faces = generate_synthetic_faces(max(BATCHES), seed=0).images
    cores = usable_cores()
    rows = []
    for backend, precision in (("torch", "fp32"), ("onnxruntime", "int8")):
        pinned = {threads: Recognizer.pretrained(backend=backend, precision=precision, tta="flip", threads=threads,
                                                 detect_faces=False) for threads in (1, cores)}
        for size in BATCHES:
            batch = faces[:size]
            repeats = max(3, sizes.latency_repeats // max(1, size // 8))
            one, every = (statistics.median(call_seconds(lambda r=pinned[t]: r.predict_faces(batch), repeats, warmup=3))
                          for t in (1, cores))
            rows.append({"backend": f"{backend} {precision}", "batch": size, "one_ms": one * 1000,
                         "every_ms": every * 1000, "ratio": one / every})
    columns = [("backend", "backend", "{}"), ("batch", "faces", "{}"), ("one_ms", "1 thread: ms", "{:.2f}"),
               ("every_ms", f"{cores} threads: ms", "{:.2f}"), ("ratio", "1 thread / all", "{:.2f}")]
    notes = [f"pretrained:fer2013-narrow-cnn with tta=flip; median of repeated calls. threads=auto uses one thread "
             f"up to {SMALL_BATCH} faces. A ratio above 1 means every core was faster."]
    return figure("11. Threads for inference: one against every core", columns, rows,
                  {"small_batch": SMALL_BATCH, "cores": cores}, notes)
