"""Predict expressions with a checkpoint or an ensemble file.

Two kinds of input: a Kaggle or homework test CSV (48x48 pixel rows) gives a submission CSV
``id,label``; image files or a folder of photos go through face detection, and each face found
gets its seven class probabilities and label (CSV or JSON, by the output's suffix).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from omegaconf import DictConfig

from fer_lightning.errors import ConfigError, DataFormatError
from fer_lightning.inference.evaluation import predict_probabilities
from fer_lightning.inference.test_time_augmentation import check_tta

if TYPE_CHECKING:
    from fer_lightning.inference.checkpoint import Predictor

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".csv.gz")
IMAGE_OUTPUT_SUFFIXES = (".csv", ".json")
NO_FACE = "no face found"


def is_table(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(TABLE_SUFFIXES)


def detect_option(value: Any) -> bool | None:
    """detect_faces=true|false|auto -> True, False or None (decide per image by its size)."""
    if value is None or str(value).lower() == "auto":
        return None
    if isinstance(value, bool):
        return value
    raise ConfigError(f"detect_faces={value!r}: allowed values are true, false, auto")


# ---------------------------------------------------------------------------------- CSV input
def predict_table(predictor: Predictor, source: Path, output: Path, batch_size: int, tta: str) -> int:
    """A test CSV -> ``id,label`` (ids from the file: the homework id column, else row numbers)."""
    from fer_lightning.data.readers import read_all_rows

    if output.suffix.lower() != ".csv":
        raise ConfigError(f"output={output}: a test CSV gives a submission CSV, so the output must end in .csv")
    rows = read_all_rows(source)
    probabilities = predict_probabilities(predictor.module, rows.images, batch_size, tta)
    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        writer.writerows(zip(rows.ids.tolist(), probabilities.argmax(axis=1).tolist()))
    return len(rows.images)


# ------------------------------------------------------------------------------- photo input
@dataclass
class ImageResult:
    file: str  # relative to the input folder
    faces: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None  # why there are no faces


def image_faces(paths: list[Path], root: Path, detect: bool | None, margin: float, min_face_size: int):
    """Every face crop of every image (in order) and the results to fill in."""
    from fer_lightning.data.faces import find_faces, load_cascade, read_color_image

    cascade = None
    results: list[ImageResult] = []
    crops: list[np.ndarray] = []
    for path in paths:
        result = ImageResult(str(path.relative_to(root)) if path != root else path.name)
        results.append(result)
        try:
            image = read_color_image(path)
        except DataFormatError as error:
            result.note = str(error)
            log.warning("%s", error)
            continue
        if cascade is None and detect is not False:
            cascade = load_cascade()
        faces = find_faces(image, detect, cascade, margin, min_face_size)
        if not faces:
            result.note = NO_FACE
            log.warning("%s: no face found (listed without faces)", path)
        for index, face in enumerate(faces):
            result.faces.append({"face": index, "box": list(face.box)})
            crops.append(face.image)
    return results, crops


def write_image_results(results: list[ImageResult], class_names: tuple[str, ...], output: Path) -> None:
    if output.suffix.lower() == ".json":
        output.write_text(json.dumps([vars(r) for r in results], indent=2) + "\n")
        return
    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "face", "x", "y", "w", "h", "label", *class_names, "note"])
        for result in results:
            if not result.faces:
                writer.writerow([result.file, "", "", "", "", "", "", *[""] * len(class_names), result.note or ""])
            for face in result.faces:
                probabilities = [f"{face['probabilities'][name]:.6f}" for name in class_names]
                writer.writerow([result.file, face["face"], *face["box"], face["label"], *probabilities, ""])


def predict_images(predictor: Predictor, source: Path, output: Path, cfg: DictConfig) -> list[ImageResult]:
    from fer_lightning.data.faces import annotate, list_images, read_color_image

    if output.suffix.lower() not in IMAGE_OUTPUT_SUFFIXES:
        raise ConfigError(f"output={output}: write predictions for images as .csv or .json")
    paths = list_images(source)
    root = source if source.is_dir() else source.parent
    results, crops = image_faces(paths, root, detect_option(cfg.detect_faces), float(cfg.margin),
                                 int(cfg.min_face_size))
    if all(r.note and r.note != NO_FACE for r in results):
        raise DataFormatError(f"{source}: none of its {len(paths)} image(s) could be read")
    names = predictor.class_names
    if crops:
        probabilities = iter(predict_probabilities(predictor.module, np.stack(crops), int(cfg.batch_size),
                                                   str(cfg.tta)))
        # Crops were collected image by image, face by face: the same order fills them back in.
        for result in results:
            for face in result.faces:
                row = next(probabilities)
                face["label"] = names[int(row.argmax())]
                face["probabilities"] = {name: float(p) for name, p in zip(names, row)}
    write_image_results(results, names, output)
    if cfg.annotate:
        folder = Path(cfg.annotate_dir) if cfg.get("annotate_dir") else output.with_name(f"{output.stem}_annotated")
        for result in results:
            if result.note == NO_FACE or not result.note:  # every image that could be read
                target = folder / result.file
                target.parent.mkdir(parents=True, exist_ok=True)
                drawn = annotate(read_color_image(root / result.file), [tuple(f["box"]) for f in result.faces],
                                 [f["label"] for f in result.faces])
                write_image(target, drawn)
        log.info("annotated images in %s", folder)
    return results


def write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DataFormatError(f"{path}: OpenCV cannot write this image type")
    path.write_bytes(encoded.tobytes())


# ------------------------------------------------------------------------------------ command
def predict(cfg: DictConfig) -> Path:
    from fer_lightning.inference.checkpoint import load_predictor

    tta = check_tta(str(cfg.tta))
    source, output = Path(cfg.input), Path(cfg.output)
    if not source.exists():
        raise DataFormatError(f"input={source}: no such file or folder")
    predictor = load_predictor(cfg.ckpt_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    if is_table(source):
        count = predict_table(predictor, source, output, int(cfg.batch_size), tta)
        log.info("predicted %d rows of %s -> %s", count, source, output)
    else:
        results = predict_images(predictor, source, output, cfg)
        faces = sum(len(r.faces) for r in results)
        log.info("found %d face(s) in %d image(s) -> %s", faces, len(results), output)
    return output
