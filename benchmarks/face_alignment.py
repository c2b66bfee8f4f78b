"""python -m benchmarks.face_alignment: what aligned crops change for the shipped model.

The astronaut (scikit-image's 512x512 portrait) turned from -30 to +30 degrees in 10-degree steps:
how far YuNet's landmarks miss the eyes' true tilt (read once, and read twice as alignment reads
them: the second time with the face turned by the first reading), then the label and its probability
with YuNet's aligned crop, YuNet's upright crop (align=false) and the Haar cascade's upright crop
("missed" where no face is found). Then the 100 faces of ``lfw_subset``
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


def tilt_error(detector, gray: np.ndarray, true_angle: float, second_look: bool) -> str:
    """Degrees between the eye line YuNet reads and the true one."""
    from fer_lightning.inference.alignment import eye_angle

    found = detector.detect(gray, second_look=second_look)
    if not found:
        return "missed"
    box, landmarks, _ = max(found, key=lambda f: f[0][2] * f[0][3])
    return f"{eye_angle(landmarks) - true_angle:+.1f}°"


def rotation_table(recognizers) -> list[dict]:
    from skimage import data

    from fer_lightning.inference.alignment import eye_angle
    from fer_lightning.inference.yunet import YuNetDetector

    astronaut = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    detector = YuNetDetector()
    # The upright photo's own eye line (read twice) is the reference the turned ones are compared with;
    # turning the photo counter-clockwise by a degrees turns the eye line by -a.
    ((_, landmarks, _),) = detector.detect(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY), second_look=True)
    upright = eye_angle(landmarks)
    rows = []
    for angle in ANGLES:
        gray = cv2.cvtColor(rotated(astronaut, angle), cv2.COLOR_BGR2GRAY)
        row = {"angle": angle, "tilt once": tilt_error(detector, gray, upright - angle, False),
               "tilt twice": tilt_error(detector, gray, upright - angle, True)}
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
    columns = ["tilt once", "tilt twice", *SETTINGS]
    print("| angle | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in rows:
        print(f"| {row['angle']:+d}° | " + " | ".join(row[name] for name in columns) + " |")
    print(json.dumps({"lfw_subset": lfw_agreement(recognizers), "seconds": round(time.perf_counter() - started, 1)},
                     indent=2))


if __name__ == "__main__":
    main()
