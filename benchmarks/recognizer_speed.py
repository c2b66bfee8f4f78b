"""Figure 10: the shipped default model as users run it, through ``Recognizer.predict_faces``: one
face at a time and a batch of 256, on each backend, precision, test-time augmentation and thread
policy; and ``predict`` from the command to the answer for one photo, beside ``import cv2, numpy``.
The peer rows are the ``fer`` package's figures measured on a 2-core Zen 3 VM (it is not a dependency)."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.inference import call_seconds
from benchmarks.report import figure
from benchmarks.sizes import Sizes
from fer_lightning import Recognizer
from fer_lightning.data.synthetic import generate_synthetic_faces

# The fer package (mini-Xception), 1,000 FER2013 crops, 2-core AMD EPYC Zen 3 VM, torch 2.13.0 beside it.
PEER_ROWS = (
    {"path": "fer peer, TFLite int8 (its default)", "one_ms": 0.54, "batch_ms": 0.58},
    {"path": "fer peer, Keras", "one_ms": 3.8, "batch_ms": 3.15},
)
VARIANTS = (  # backend, precision, tta, threads
    ("torch", "fp32", "none", 1), ("torch", "fp32", "flip", 1), ("torch", "fp32", "none", "auto"),
    ("onnxruntime", "fp32", "none", 1), ("onnxruntime", "fp32", "flip", 1),
    ("onnxruntime", "int8", "none", 1), ("onnxruntime", "int8", "flip", 1), ("onnxruntime", "int8", "flip", "auto"),
)


def command_seconds(command: list[str], repeats: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, env=env, timeout=300)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def photo_to_answer(repeats: int) -> list[dict[str, Any]]:
    """``predict input=photo.jpg`` for one photo of one face (the graphs already cached)."""
    import cv2
    from skimage import data

    rows = []
    with tempfile.TemporaryDirectory(prefix="fer-bench-predict-") as scratch:
        photo = Path(scratch) / "astronaut.jpg"
        cv2.imwrite(str(photo), data.astronaut()[:, :, ::-1])
        env = {**os.environ, "FER_OUTPUTS": scratch}
        base = [sys.executable, "-m", "fer_lightning.predict", f"input={photo}", f"output={scratch}/faces.csv",
                "overwrite=true"]
        rows.append({"path": "python -c 'import cv2, numpy' (the floor)",
                     "answer_s": command_seconds([sys.executable, "-c", "import cv2, numpy"], repeats, env)})
        for label, extra in (("predict, backend=torch", []),
                             ("predict, backend=onnxruntime", ["backend=onnxruntime"]),
                             ("predict, backend=onnxruntime precision=int8",
                              ["backend=onnxruntime", "precision=int8"])):
            subprocess.run(base + extra, check=True, capture_output=True, env=env, timeout=300)  # caches the graph
            rows.append({"path": label, "answer_s": command_seconds(base + extra, repeats, env)})
    return rows


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    faces = generate_synthetic_faces(max(sizes.inference_batch_size, 64), seed=0).images
    batch = faces[:sizes.inference_batch_size]
    rows = [dict(row) for row in PEER_ROWS]
    for backend, precision, tta, threads in VARIANTS:
        recognizer = Recognizer.pretrained(backend=backend, precision=precision, tta=tta, threads=threads,
                                           detect_faces=False)
        one = [faces[i:i + 1] for i in range(len(faces))]
        index = iter(range(10**9))
        single = call_seconds(lambda: recognizer.predict_faces(one[next(index) % len(one)]), sizes.latency_repeats * 4,
                              warmup=10)
        batched = call_seconds(lambda: recognizer.predict_faces(batch), sizes.throughput_repeats, warmup=1)
        rows.append({"path": f"{backend} {precision}, tta={tta}, threads={threads}",
                     "one_ms": statistics.median(single) * 1000,
                     "one_p90_ms": sorted(single)[int(0.9 * (len(single) - 1))] * 1000,
                     "batch_ms": statistics.median(batched) * 1000 / len(batch),
                     "faces_per_s": len(batch) / statistics.median(batched)})
    rows += photo_to_answer(repeats=sizes.throughput_repeats)
    columns = [
        ("path", "path", "{}"),
        ("one_ms", "1 face: median ms", "{:.2f}"),
        ("one_p90_ms", "p90 ms", "{:.2f}"),
        ("batch_ms", f"batch {len(batch)}: ms a face", "{:.3f}"),
        ("faces_per_s", "faces/s", "{:,.0f}"),
        ("answer_s", "command to answer, s", "{:.2f}"),
    ]
    notes = [
        "The shipped default model (pretrained:fer2013-narrow-cnn) through Recognizer.predict_faces on synthetic "
        "48x48 faces; threads=1 pins one thread, threads=auto is the default policy (one thread up to 32 faces, "
        f"every core above). The command rows: median of {sizes.throughput_repeats} runs of predict on "
        "one photo with one face (the ONNX graphs cached by an earlier run).",
    ]
    summary = {row["path"]: {k: v for k, v in row.items() if k != "path"} for row in rows}
    return figure("10. The shipped model in use: backends, int8, threads, predict", columns, rows, summary, notes)
