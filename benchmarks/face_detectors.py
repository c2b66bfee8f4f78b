"""Face detectors on a labelled set built from scikit-image's pictures: detection rate, false alarms
and milliseconds per image, for every detector of fer_lightning.inference.faces.

Positives: the 100 faces of ``lfw_subset`` (25x25 crops, scaled to a face of 100 px and set in a
200x200 canvas whose border repeats the crop's edge), and the astronaut portrait at 3 scales and 5
rotations. Negatives: the 100 non-faces of ``lfw_subset`` in the same canvas, and photos without a
person (coffee, cat, rocket, coins, text, page). A face counts as found when a box covers its centre
and is between half and twice its size; every other box is a false alarm.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.report import figure
from benchmarks.sizes import Sizes

CANVAS, FACE = 200, 100
SCALES = (0.5, 1.0, 2.0)
ROTATIONS = (-20, -10, 0, 10, 20)
# The astronaut's face in scikit-image's 512x512 picture (x, y, w, h), drawn by hand.
ASTRONAUT_FACE = (172, 68, 100, 100)
NO_FACE_PICTURES = ("coffee", "chelsea", "rocket", "coins", "text", "page")


@dataclass
class Sample:
    name: str
    gray: np.ndarray
    face: tuple[float, float, float] | None  # centre x, centre y, side; None: no face in it


def in_canvas(crop: np.ndarray) -> np.ndarray:
    face = cv2.resize(crop, (FACE, FACE), interpolation=cv2.INTER_CUBIC)
    pad = (CANVAS - FACE) // 2
    return cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)


def astronaut_variants() -> list[Sample]:
    from skimage import data

    gray = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2GRAY)
    x, y, w, h = ASTRONAUT_FACE
    samples = []
    for scale in SCALES:
        for angle in ROTATIONS:
            height, width = gray.shape
            matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
            size = (int(width * scale), int(height * scale))
            matrix[:, 2] += (size[0] - width) / 2, (size[1] - height) / 2
            image = cv2.warpAffine(gray, matrix, size, borderMode=cv2.BORDER_REPLICATE)
            centre = matrix @ np.array([x + w / 2, y + h / 2, 1.0])
            samples.append(Sample(f"astronaut x{scale} {angle:+d}°", image, (centre[0], centre[1], w * scale)))
    return samples


def labelled_set(limit: int | None = None) -> list[Sample]:
    from skimage import data

    images = data.lfw_subset()  # 100 faces, then 100 non-faces; floats in [0, 1]
    crops = (images * 255).round().astype(np.uint8)
    centre = CANVAS / 2
    samples = [Sample(f"lfw face {i}", in_canvas(c), (centre, centre, FACE)) for i, c in enumerate(crops[:100])]
    samples += [Sample(f"lfw non-face {i}", in_canvas(c), None) for i, c in enumerate(crops[100:])]
    samples += astronaut_variants()
    for name in NO_FACE_PICTURES:
        picture = getattr(data, name)()
        gray = picture if picture.ndim == 2 else cv2.cvtColor(picture[..., :3], cv2.COLOR_RGB2GRAY)
        samples.append(Sample(name, np.ascontiguousarray(gray.astype(np.uint8)), None))
    if limit:
        samples = samples[: limit // 2] + samples[-(limit - limit // 2):]  # faces, then photos without
    return samples


def matches(box: tuple[int, int, int, int], face: tuple[float, float, float]) -> bool:
    x, y, w, h = box
    cx, cy, side = face
    return x <= cx <= x + w and y <= cy <= y + h and side / 2 <= max(w, h) <= side * 2


def score(detector: Any, samples: list[Sample]) -> dict[str, Any]:
    detector(samples[0].gray)  # warm-up: the first call loads or compiles what the detector needs
    found = faces = false_alarms = 0
    seconds = []
    missed = []
    for sample in samples:
        started = time.perf_counter()
        boxes = detector(sample.gray)
        seconds.append(time.perf_counter() - started)
        hits = [box for box in boxes if sample.face is not None and matches(box, sample.face)]
        if sample.face is not None:
            faces += 1
            found += bool(hits)
            if not hits:
                missed.append(sample.name)
        false_alarms += len(boxes) - min(len(hits), 1)
    return {
        "detection_rate": found / faces if faces else float("nan"),
        "faces": faces,
        "false_alarms": false_alarms,
        "images": len(samples),
        "ms_per_image": 1000 * float(np.median(seconds)),
        "ms_mean": 1000 * float(np.mean(seconds)),
        "missed_astronaut": [name for name in missed if name.startswith("astronaut")],
    }


# YuNet's other published size (not shipped), measured beside the shipped one when it is at hand.
YUNET_S = (Path(__file__).resolve().parents[2] / "shared" / "models" / "yunet" / "yunet_s_640_640.onnx",
           "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4")


def detectors() -> list[tuple[str, Any]]:
    """(name, a callable that builds it) of every detector, and YuNet's other size when present."""
    from fer_lightning.inference.faces import FACE_DETECTORS, face_detector
    from fer_lightning.inference.yunet import MODEL_FILE, YuNetDetector

    built = [(name, lambda name=name: face_detector(name, min_size=30)) for name in FACE_DETECTORS]
    if YUNET_S[0].is_file():
        built.append((f"{YUNET_S[0].name} (not shipped; yunet is {MODEL_FILE})",
                      lambda: YuNetDetector(30, model=YUNET_S[0], sha256=YUNET_S[1])))
    return built


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    samples = labelled_set(limit=20 if sizes.quick else None)
    rows = []
    for name, build in detectors():
        try:
            detector = build()
        except Exception as error:  # noqa: BLE001 - an optional detector that is not installed
            rows.append({"detector": name, "note": str(error)})
            continue
        result = score(detector, samples)
        rows.append({"detector": name, **result, "found": round(result["detection_rate"] * result["faces"]),
                     "note": "astronaut missed: " + ", ".join(result["missed_astronaut"]) if result["missed_astronaut"]
                     else ""})
    return figure(
        "Face detectors on scikit-image's labelled pictures (min_face_size=30)",
        [("detector", "detector", "{}"), ("detection_rate", "faces found", "{:.1%}"),
         ("found", "found", "{}"), ("faces", "faces", "{}"), ("false_alarms", "false alarms", "{}"), ("images", "images", "{}"),
         ("ms_per_image", "ms / image (median)", "{:.1f}"), ("ms_mean", "ms / image (mean)", "{:.1f}"),
         ("note", "note", "{}")],
        rows,
        notes=[__doc__.split("\n\n")[1].replace("\n", " ")],
    )
