"""python -m benchmarks.face_alignment: what aligned crops change for the shipped model.

The astronaut (scikit-image's 512x512 portrait) turned from -30 to +30 degrees in 10-degree steps:
the label and its probability with YuNet's aligned crop, YuNet's upright crop (align=false) and the
Haar cascade's upright crop ("missed" where no face is found). Then the 100 faces of ``lfw_subset``
(25x25 crops scaled to 100 px in a 200-px canvas, as benchmarks/face_detectors.py sets them): how
often the aligned and the upright crop of the same detection get the same label.
"""

from __future__ import annotations

import json
import time

import cv2
import numpy as np

ANGLES = tuple(range(-30, 31, 10))
SETTINGS = {"yunet aligned": {"face_detector": "yunet", "align": True},
            "yunet upright": {"face_detector": "yunet", "align": False},
            "haar upright": {"face_detector": "haar", "align": False}}


def rotated(image: np.ndarray, angle: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def largest(faces):
    return max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None


def rotation_table(recognizers) -> list[dict]:
    from skimage import data

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    rows = []
    for angle in ANGLES:
        row = {"angle": angle}
        for name, recognizer in recognizers.items():
            face = largest(recognizer.predict(rotated(astronaut, angle)))
            row[name] = f"{face.label} {face.score:.2f}" if face else "missed"
        rows.append(row)
    return rows


def lfw_agreement(recognizers) -> dict[str, float]:
    from skimage import data

    from benchmarks.face_detectors import in_canvas

    crops = (data.lfw_subset()[:100] * 255).round().astype(np.uint8)
    aligned, upright = recognizers["yunet aligned"], recognizers["yunet upright"]
    same = both = 0
    for crop in crops:
        picture = in_canvas(crop)
        a, u = largest(aligned.predict(picture)), largest(upright.predict(picture))
        if a and u:
            both += 1
            same += a.label == u.label
    return {"faces": len(crops), "detected": both, "same_label": same, "agreement": same / both if both else float("nan")}


def main() -> None:
    from fer_lightning.inference.recognizer import Recognizer

    started = time.perf_counter()
    recognizers = {name: Recognizer.pretrained(detect_faces=True, **options) for name, options in SETTINGS.items()}
    rows = rotation_table(recognizers)
    print("| angle | " + " | ".join(SETTINGS) + " |")
    print("|---|" + "---|" * len(SETTINGS))
    for row in rows:
        print(f"| {row['angle']:+d}° | " + " | ".join(row[name] for name in SETTINGS) + " |")
    print(json.dumps({"lfw_subset": lfw_agreement(recognizers), "seconds": round(time.perf_counter() - started, 1)},
                     indent=2))


if __name__ == "__main__":
    main()
