"""Predict expressions with a checkpoint or an ensemble file.

Three kinds of input: a Kaggle or homework test CSV (48x48 pixel rows) gives a submission CSV
``id,label``; image files or a folder of photos go through face detection, and each face found
gets its seven class probabilities and label (CSV or JSON, by the output's suffix); a video gives
the same per face of every n-th frame, with the frame's time (inference/video.py).
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

from fer_lightning.checkpoints import resolve
from fer_lightning.config.checks import check_predict_config
from fer_lightning.config.choices import DETECT_FACES
from fer_lightning.errors import ConfigError, DataFormatError
from fer_lightning.files import atomic_write, check_output, same_file, write_bytes, write_text
from fer_lightning.inference.following import DEFAULT_DETECT_EVERY
from fer_lightning.inference.video import (
    VIDEO_COLUMNS,
    TrackSummary,
    analyze_video,
    is_video,
    summarize_tracks,
    track_table_path,
    write_track_table,
    write_video_table,
)

if TYPE_CHECKING:
    from fer_lightning.inference.recognizer import Recognizer

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".csv.gz")
NO_FACE = "no face found"
SUBMISSION_HEADER = ["id", "label"]
# The face table's columns around the class probabilities (whose names come from the model).
FACE_COLUMNS, FACE_LAST_COLUMN = ["file", "face", "x", "y", "w", "h", "label"], "note"
UNCERTAIN_COLUMN = "uncertain"


def is_table(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(TABLE_SUFFIXES)


def detect_option(value: Any) -> bool | None:
    """detect_faces=true|false|auto -> True, False or None (decide per image by its size)."""
    if value is None or str(value).lower() == "auto":
        return None
    if isinstance(value, bool):
        return value
    raise ConfigError(f"detect_faces={value!r}: allowed values are {', '.join(str(v).lower() for v in DETECT_FACES)}")


# ---------------------------------------------------------------------------------- CSV input
def predict_table(recognizer: Recognizer, source: Path, output: Path) -> int:
    """A test CSV -> ``id,label`` (ids from the file: the homework id column, else row numbers)."""
    from fer_lightning.data.readers import read_all_rows

    rows = read_all_rows(source)
    probabilities = recognizer.predict_faces(rows.images)
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUBMISSION_HEADER)
        writer.writerows(zip(rows.ids.tolist(), probabilities.argmax(axis=1).tolist()))
    return len(rows.images)


# ------------------------------------------------------------------------------- photo input
@dataclass
class ImageResult:
    file: str  # relative to the input folder
    faces: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None  # why there are no faces


def image_faces(paths: list[Path], root: Path, recognizer: Recognizer):
    """Every face crop of every image (in order) and the results to fill in."""
    from fer_lightning.inference.faces import read_color_image

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
        faces = recognizer.find_faces(image)
        if not faces:
            result.note = NO_FACE
            log.warning("%s: no face found (listed without faces)", path)
        for index, face in enumerate(faces):
            result.faces.append({"face": index, "box": list(face.box)})
            crops.append(face.image)
    return results, crops


def write_image_results(results: list[ImageResult], class_names: tuple[str, ...], output: Path) -> None:
    if output.suffix.lower() == ".json":
        write_text(output, json.dumps([vars(r) for r in results], indent=2) + "\n")
        return
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*FACE_COLUMNS, *class_names, UNCERTAIN_COLUMN, FACE_LAST_COLUMN])
        for result in results:
            if not result.faces:
                writer.writerow([result.file, "", "", "", "", "", "", *[""] * len(class_names), "", result.note or ""])
            for face in result.faces:
                probabilities = [f"{face['probabilities'][name]:.6f}" for name in class_names]
                writer.writerow([result.file, face["face"], *face["box"], face["label"], *probabilities,
                                 int(face["uncertain"]), ""])


def recognizer_for(cfg: DictConfig) -> Recognizer:
    """The command's model on its backend, with its face options."""
    from fer_lightning.config.choices import FACE_DETECTORS
    from fer_lightning.inference.recognizer import Recognizer

    return Recognizer.from_checkpoint(
        cfg.ckpt_path, backend=str(cfg.get("backend", "torch")), precision=str(cfg.get("precision", "fp32")),
        threads=cfg.get("threads", "auto"), detect_faces=detect_option(cfg.detect_faces),
        face_detector=str(cfg.get("face_detector", FACE_DETECTORS[0])), align=cfg.get("align", True),
        margin=float(cfg.margin), min_face_size=int(cfg.min_face_size),
        uncertain_below=float(cfg.get("uncertain_below", 0.0)), tta=str(cfg.tta), batch_size=int(cfg.batch_size))


def predict_images(recognizer: Recognizer, source: Path, output: Path, cfg: DictConfig) -> list[ImageResult]:
    from fer_lightning.inference.faces import annotate, caption, list_images, read_color_image

    paths = list_images(source)
    root = image_root(source)
    folder = annotation_folder(cfg, output)
    if cfg.annotate:
        check_annotation_targets(folder, root, paths)
    results, crops = image_faces(paths, root, recognizer)
    if all(r.note and r.note != NO_FACE for r in results):
        raise DataFormatError(f"{source}: none of its {len(paths)} image(s) could be read")
    names = recognizer.class_names
    if crops:
        # The API's own batched pass: the command and Recognizer.predict give the same numbers.
        probabilities = iter(recognizer.predict_faces(np.stack(crops)))
        # Crops were collected image by image, face by face: the same order fills them back in.
        for result in results:
            for face in result.faces:
                row = next(probabilities)
                face["label"] = names[int(row.argmax())]
                face["probabilities"] = {name: float(p) for name, p in zip(names, row)}
                face["uncertain"] = recognizer.is_uncertain(float(row.max()))
    write_image_results(results, names, output)
    if cfg.annotate:
        for result in results:
            if result.note == NO_FACE or not result.note:  # every image that could be read
                target = folder / result.file
                target.parent.mkdir(parents=True, exist_ok=True)
                drawn = annotate(read_color_image(root / result.file), [tuple(f["box"]) for f in result.faces],
                                 [caption(f) for f in result.faces])
                write_image(target, drawn)
        log.info("annotated images in %s", folder)
    return results


def write_image(path: Path, image: np.ndarray) -> None:
    import cv2

    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise DataFormatError(f"{path}: OpenCV cannot write this image type")
    write_bytes(path, encoded.tobytes())


# -------------------------------------------------------------------------------- safe output
def image_root(source: Path) -> Path:
    """The folder result and annotated file names are relative to."""
    return source if source.is_dir() else source.parent


def annotation_folder(cfg: DictConfig, output: Path) -> Path:
    return Path(cfg.annotate_dir) if cfg.get("annotate_dir") else output.with_name(f"{output.stem}_annotated")


def is_prediction_output(path: Path) -> bool:
    """A submission or face table (by its header) or a face list (JSON) that predict wrote."""
    if path.suffix.lower() == ".json":
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return False
        return isinstance(document, list) and bool(document) and all(
            isinstance(entry, dict) and set(entry) == set(vars(ImageResult(""))) for entry in document)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            header = next(csv.reader([handle.readline(1 << 16)]), [])
    except (OSError, ValueError):
        return False
    return header == SUBMISSION_HEADER or header[:len(VIDEO_COLUMNS)] == VIDEO_COLUMNS or (
        header[:len(FACE_COLUMNS)] == FACE_COLUMNS and header[-1:] == [FACE_LAST_COLUMN])


def check_annotation_targets(folder: Path, root: Path, images: list[Path]) -> None:
    """No annotated copy may replace a photo it was drawn from."""
    for image in images:
        target = folder / (image.relative_to(root) if image != root else image.name)
        if same_file(target, image):
            raise ConfigError(f"annotate_dir={folder}: its copy of {image.name} would replace the photo {image}; "
                              "choose another annotate_dir")


def check_prediction_outputs(cfg: DictConfig, source: Path, output: Path) -> None:
    if is_table(source) and output.suffix.lower() != ".csv":
        raise ConfigError(f"output={output}: a test CSV gives a submission CSV, so the output must end in .csv")
    if is_video(source) and output.suffix.lower() != ".csv":
        raise ConfigError(f"output={output}: a video gives a per-frame table, so the output must end in .csv")
    if cfg.annotate and is_video(source) and same_file(annotation_folder(cfg, output) / f"{source.stem}.mp4", source):
        raise ConfigError(f"annotate_dir={annotation_folder(cfg, output)}: the annotated video would replace "
                          f"{source}; choose another annotate_dir")
    check_output(output, [("the checkpoint it reads", resolve(cfg.ckpt_path)), ("its input", source)],
                 is_prediction_output, bool(cfg.get("overwrite", False)), kind="a predict result")
    if cfg.annotate and not is_table(source) and same_file(annotation_folder(cfg, output), image_root(source)):
        raise ConfigError(f"annotate_dir={annotation_folder(cfg, output)} is the input folder: the annotated "
                          "copies would replace the photos; choose another annotate_dir")


# ------------------------------------------------------------------------------------ command
@dataclass
class Prediction:
    """What predict wrote, and what the command shows on screen."""

    output: Path
    images: list[ImageResult] | None = None  # photos: every face of every image
    tracks: list[TrackSummary] | None = None  # a video: every track
    track_table: Path | None = None


def predict(cfg: DictConfig) -> Prediction:
    check_predict_config(cfg)
    source, output = Path(cfg.input), Path(cfg.output)
    check_prediction_outputs(cfg, source, output)
    recognizer = recognizer_for(cfg)
    output.parent.mkdir(parents=True, exist_ok=True)
    if is_table(source):
        count = predict_table(recognizer, source, output)
        log.info("predicted %d rows of %s -> %s", count, source, output)
    elif is_video(source):
        annotated = annotation_folder(cfg, output) / f"{source.stem}.mp4" if cfg.annotate else None
        frames = analyze_video(recognizer, source, int(cfg.every_n_frames), annotated,
                               float(cfg.get("track_smoothing", 0.5)),
                               int(cfg.get("detect_every", DEFAULT_DETECT_EVERY)))
        write_video_table(frames, recognizer.class_names, output)
        tracks = summarize_tracks(frames, recognizer.class_names)
        write_track_table(tracks, recognizer.class_names, track_table_path(output))
        faces = sum(len(f.faces) for f in frames)
        log.info("found %d face(s) in %d track(s) in %d frame(s) of %s -> %s", faces, len(tracks), len(frames),
                 source, output)
        if annotated is not None:
            log.info("annotated video: %s", annotated)
        return Prediction(output, tracks=tracks, track_table=track_table_path(output))
    else:
        results = predict_images(recognizer, source, output, cfg)
        faces = sum(len(r.faces) for r in results)
        log.info("found %d face(s) in %d image(s) -> %s", faces, len(results), output)
        return Prediction(output, images=results)
    return Prediction(output)
