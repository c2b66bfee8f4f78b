"""int8 graphs for the shipped models: each model's fp32 ONNX graph (tta none and flip) quantised by
ONNX Runtime, calibrated on 1,024 FER2013 Training faces, and shipped only where PublicTest accuracy
drops by at most 0.3 point against the fp32 graph with the same test-time augmentation.

    python -m benchmarks.quantize_shipped --data ../shared/datasets/fer2013/fer2013.csv.gz [--write] [--model NAME ...]

Without --write it only measures; with it, the kept graphs go to fer_lightning/pretrained/ and
models.json (``onnx_int8``), and a graph no longer kept is removed from both.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from fer_lightning.checkpoints.shipped import PRETRAINED_DIR, add_graph, read_registry, write_registry
from fer_lightning.data.readers import read_dataset
from fer_lightning.inference.onnx_backend import OnnxGraph, cached_graph
from fer_lightning.inference.quantize import quantize_int8

CALIBRATION_FACES = 1024
MAX_DROP = 0.003  # of PublicTest accuracy, as a fraction


def accuracy(graph: Path, images: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(OnnxGraph(graph).probabilities(images, threads=1).argmax(1) == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="FER2013: Kaggle's fer2013.csv(.gz)")
    parser.add_argument("--write", action="store_true", help="ship the graphs that keep the accuracy")
    parser.add_argument("--seed", type=int, default=0, help="which Training faces calibrate")
    parser.add_argument("--model", action="append", metavar="NAME",
                        help="only this shipped model (repeatable; default: every one)")
    args = parser.parse_args()
    names = sorted(read_registry()["models"])
    unknown = sorted(set(args.model or ()) - set(names))
    if unknown:
        parser.error(f"--model {unknown[0]}: no shipped model of that name (shipped: {', '.join(names)})")
    splits = read_dataset(args.data)
    train, public = splits["train"], splits["val"]  # Kaggle's Training and PublicTest rows
    rng = np.random.default_rng(args.seed)
    calibration = train.images[rng.choice(len(train.images), CALIBRATION_FACES, replace=False)]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.model or names:
            for tta in ("none", "flip"):
                fp32 = cached_graph(f"pretrained:{name}", tta)
                int8 = Path(scratch) / f"{name}-{tta}.onnx"
                started = time.perf_counter()
                quantize_int8(fp32, int8, calibration)
                seconds = time.perf_counter() - started
                row = {"model": name, "tta": tta, "public_test_fp32": accuracy(fp32, public.images, public.labels),
                       "public_test_int8": accuracy(int8, public.images, public.labels),
                       "fp32_mb": fp32.stat().st_size / 1e6, "int8_mb": int8.stat().st_size / 1e6,
                       "quantise_seconds": seconds}
                row["kept"] = row["public_test_fp32"] - row["public_test_int8"] <= MAX_DROP + 1e-9
                rows.append(row)
                print(f"{name:24} tta={tta:5} fp32 {row['public_test_fp32']:.2%}  int8 {row['public_test_int8']:.2%}  "
                      f"{row['int8_mb']:.2f} MB  {'kept' if row['kept'] else 'not kept'}")
                if args.write:
                    ship(name, tta, int8, row)
    print(json.dumps(rows, indent=2))


def ship(name: str, tta: str, graph: Path, row: dict) -> None:
    if row["kept"]:
        details = {key: round(row[key], 4) for key in ("public_test_fp32", "public_test_int8")}
        add_graph(name, "onnx_int8", tta, graph, {**details, "calibration": f"{CALIBRATION_FACES} Training faces"})
        return
    registry = read_registry()
    entry = registry["models"][name].get("onnx_int8") or {}
    if tta in entry:  # an earlier graph that this measurement no longer keeps
        (PRETRAINED_DIR / entry.pop(tta)["file"]).unlink(missing_ok=True)
        write_registry(registry)


if __name__ == "__main__":
    main()
