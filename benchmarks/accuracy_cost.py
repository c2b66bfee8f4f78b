"""PublicTest accuracy against cost per face for every shipped model and the members of an ensemble
sweep: one point per model, drawn into docs/figures/accuracy_cost.png.

    python -m benchmarks.accuracy_cost --data ../shared/datasets/fer2013/fer2013.csv.gz \\
        [--sweep outputs/multiruns/cpu_ensemble/experiment=cpu_ensemble]

Accuracy: PublicTest (Kaggle's rows, the validation split of data=fer2013), no test-time augmentation.
Cost: the median milliseconds of one face through ``Recognizer.predict_faces`` on one PyTorch thread
(and on ONNX Runtime int8 where the model ships such a graph). Say which CPU the figure was made on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from fer_lightning import Recognizer
from fer_lightning.checkpoints.shipped import read_registry
from fer_lightning.data.readers import read_dataset
from fer_lightning.runs.provenance import cpu_name

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "figures" / "accuracy_cost.png"


def one_face_ms(recognizer: Recognizer, faces: np.ndarray, repeats: int = 200) -> float:
    for face in faces[:10]:
        recognizer.predict_faces(face[None])
    times = []
    for index in range(repeats):
        started = time.perf_counter()
        recognizer.predict_faces(faces[index % len(faces)][None])
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(label: str, source: str, kind: str, images: np.ndarray, labels: np.ndarray,
            backend: str = "torch", precision: str = "fp32") -> dict:
    recognizer = Recognizer.from_checkpoint(source, backend=backend, precision=precision, tta="none", threads=1,
                                            detect_faces=False)
    accuracy = float(np.mean(recognizer.predict_faces(images).argmax(1) == labels))
    row = {"model": label, "kind": kind, "backend": f"{backend} {precision}", "public_test": accuracy,
           "ms_per_face": one_face_ms(recognizer, images)}
    print(f"{label:40} {row['backend']:17} {accuracy:.2%}  {row['ms_per_face']:.2f} ms")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="FER2013: Kaggle's fer2013.csv(.gz)")
    parser.add_argument("--sweep", type=Path, help="a sweep directory whose runs are ensemble members")
    parser.add_argument("--figure", type=Path, default=FIGURE)
    args = parser.parse_args()
    public = read_dataset(args.data)["val"]
    rows = []
    registry = read_registry()
    for name, entry in sorted(registry["models"].items()):
        kind = "ensemble" if "ensemble" in name else "shipped"
        rows.append(measure(name, f"pretrained:{name}", kind, public.images, public.labels))
        if entry.get("onnx_int8", {}).get("none"):
            rows.append(measure(name, f"pretrained:{name}", kind, public.images, public.labels,
                                backend="onnxruntime", precision="int8"))
    if args.sweep:
        for best in sorted(args.sweep.glob("*/checkpoints/best.ckpt")):
            rows.append(measure(best.parents[1].name, str(best), "member", public.images, public.labels))
    draw(rows, args.figure)
    print(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=2))


def draw(rows: list[dict], path: Path) -> None:
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullLocator

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    markers = {"shipped": "o", "member": "s", "ensemble": "*"}
    colors = {"shipped": "C0", "member": "C1", "ensemble": "C3"}
    # Members are labelled on the left, the rest on the right; a label near one on its side moves down.
    labelled: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for row in sorted(rows, key=lambda r: -r["public_test"]):
        filled = row["backend"] == "torch fp32"  # hollow: the same model's int8 graph
        color = colors[row["kind"]]
        x, y = row["ms_per_face"], row["public_test"] * 100
        axes.scatter(x, y, marker=markers[row["kind"]], s=70, facecolors=color if filled else "none", edgecolors=color)
        if not filled:  # below its point: the int8 graphs sit left of the members' labels
            axes.annotate(f"{row['model']} (int8)", (x, y), fontsize=7, xytext=(-6, -13), textcoords="offset points")
            continue
        left = row["kind"] == "member"
        crowd = sum(abs(math.log10(x / lx)) < 0.1 and abs(y - ly) < 0.25 for lx, ly in labelled[left])
        labelled[left].append((x, y))
        axes.annotate(row["model"].removeprefix("ensemble_member="), (x, y), fontsize=7,
                      xytext=(-6 if left else 6, 2 - 9 * crowd), textcoords="offset points", ha="right" if left else "left")
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(FixedLocator([0.25, 0.5, 1, 2, 4, 8]))
    axes.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    axes.xaxis.set_minor_locator(NullLocator())
    axes.set_xlabel("ms a face, one at a time, one thread (log scale)")
    axes.set_ylabel("PublicTest accuracy, % (no TTA)")
    axes.set_title(f"Accuracy against cost per face ({cpu_name()})", fontsize=9)
    axes.legend(handles=[
        Line2D([], [], marker=markers[kind], color=colors[kind], linestyle="", label=label)
        for kind, label in (("shipped", "shipped model"), ("ensemble", "shipped ensemble"),
                            ("member", "ensemble sweep member"))
    ] + [Line2D([], [], marker="o", markerfacecolor="none", color="C0", linestyle="",
                label="ONNX Runtime int8 graph")], fontsize=7, loc="lower left")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


if __name__ == "__main__":
    main()
