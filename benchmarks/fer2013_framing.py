"""python -m benchmarks.fer2013_framing [--csv fer2013.csv.gz] [--faces N] [--recut]

Where FER2013's faces have their eyes: YuNet (the shipped detector, its landmarks read as alignment
reads them) on FER2013's Training faces,
each scaled up 4x and set in a replicated border so the detector sees a face of about 190 px with
some surroundings; the medians of the eyes' midpoint and distance, as fractions of the 48-px crop,
are the framing ``fer_lightning/inference/alignment.py`` cuts aligned faces with.

``--recut``: also the shipped model's accuracy on PublicTest with its faces re-cut through detection
(aligned with the measured framing, or upright with the default margin) against the original crops:
how much of the original crops' accuracy a detected face keeps. Only the figures are printed; no
face or crop is written anywhere.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

import cv2
import numpy as np

DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "fer2013" / "fer2013.csv.gz"
SCALE, PAD = 4, 96  # 48 px -> 192 px, inside a 96-px replicated border: a 384-px picture


def read_faces(path: Path, usage: str, limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, 48, 48) uint8 faces and their labels of one Usage, evenly spaced through the file."""
    images, labels = [], []
    with gzip.open(path, "rt", newline="") if path.suffix == ".gz" else path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Usage"] == usage:
                images.append(np.array(row["pixels"].split(), dtype=np.uint8).reshape(48, 48))
                labels.append(int(row["emotion"]))
    step = max(1, len(images) // limit) if limit else 1
    return np.stack(images[::step][:limit]), np.array(labels[::step][:limit])


def in_picture(face: np.ndarray) -> np.ndarray:
    large = cv2.resize(face, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(large, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)


def best_face(detector, picture: np.ndarray):
    """The most confident face whose eyes lie inside the original crop, or None."""
    inside = []
    # Read as alignment reads them: twice, the second time with the face turned upright.
    for box, landmarks, score in detector.detect(picture, second_look=True):
        middle = (landmarks[0] + landmarks[1]) / 2
        if PAD <= middle[0] < PAD + 48 * SCALE and PAD <= middle[1] < PAD + 48 * SCALE:
            inside.append((score, box, landmarks))
    return max(inside, key=lambda found: found[0]) if inside else None


def measure_framing(faces: np.ndarray) -> dict[str, float]:
    from fer_lightning.inference.alignment import eye_angle
    from fer_lightning.inference.yunet import YuNetDetector

    detector = YuNetDetector(min_size=20)
    xs, ys, distances, angles = [], [], [], []
    for face in faces:
        found = best_face(detector, in_picture(face))
        if found is None:
            continue
        landmarks = (found[2] - PAD) / (SCALE * 48)  # fractions of the 48-px crop
        middle = (landmarks[0] + landmarks[1]) / 2
        xs.append(middle[0])
        ys.append(middle[1])
        distances.append(float(np.hypot(*(landmarks[1] - landmarks[0]))))
        angles.append(eye_angle(landmarks))
    return {"faces": len(faces), "found": len(xs), "eyes_x": float(np.median(xs)), "eyes_y": float(np.median(ys)),
            "eye_distance": float(np.median(distances)), "eye_distance_iqr": [float(v) for v in
                                                                               np.percentile(distances, [25, 75])],
            "angle_median": float(np.median(angles)), "angle_abs_p90": float(np.percentile(np.abs(angles), 90))}


def recut_accuracy(faces: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from fer_lightning.inference.alignment import align_face
    from fer_lightning.inference.faces import crop_face, resize_to_model
    from fer_lightning.inference.recognizer import Recognizer
    from fer_lightning.inference.yunet import YuNetDetector

    recognizer = Recognizer.pretrained()
    detector = YuNetDetector(min_size=20)
    aligned, upright, kept = [], [], []
    for index, face in enumerate(faces):
        picture = in_picture(face)
        found = best_face(detector, picture)
        if found is None:
            continue
        kept.append(index)
        aligned.append(resize_to_model(align_face(picture, found[2])))
        upright.append(crop_face(picture, found[1]))

    def accuracy(crops: np.ndarray, truth: np.ndarray) -> float:
        return float((recognizer.predict_faces(crops).argmax(axis=1) == truth).mean())

    truth = labels[kept]
    return {"faces": len(faces), "detected": len(kept),
            "original_crops": accuracy(faces, labels), "original_crops_of_detected": accuracy(faces[kept], truth),
            "aligned": accuracy(np.stack(aligned), truth), "upright": accuracy(np.stack(upright), truth)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fer2013_framing", description=__doc__.split("\n\n")[1])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="Kaggle's fer2013.csv(.gz)")
    parser.add_argument("--faces", type=int, default=3000, help="Training faces to measure the framing on")
    parser.add_argument("--recut", action="store_true", help="also PublicTest re-cut through detection")
    args = parser.parse_args(argv)
    if not args.csv.is_file():
        parser.error(f"{args.csv}: no such file (pass --csv)")
    faces, _ = read_faces(args.csv, "Training", args.faces)
    result = {"framing": measure_framing(faces)}
    if args.recut:
        result["publictest_recut"] = recut_accuracy(*read_faces(args.csv, "PublicTest", None))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
