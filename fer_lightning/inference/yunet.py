"""YuNet (``face_detector=yunet``): a small convolutional face detector run by OpenCV's
``cv2.FaceDetectorYN`` (OpenCV >= 4.8) that also returns five landmarks per face, so a face can be
turned upright before it is cut (alignment.py).

Its ONNX file ships inside the package (``face_models/yunet/``, Apache-2.0, provenance in the
README beside it) and is checked by its sha256 before OpenCV reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.errors import FerError

MODEL_DIR = Path(__file__).parent / "face_models" / "yunet"
MODEL_FILE = "yunet_s_640_640.onnx"
MODEL_SHA256 = "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4"
# One thread: on 2 shared cores the network ran several times slower on 2 threads than on 1, and
# a photo's few milliseconds gain nothing from more.
THREADS = 1
# A face below this score is not reported. OpenCV's own default, 0.9, misses blurred faces; on
# benchmarks/face_detectors.py 0.5 found the most faces (112 of 115) with no false alarm.
SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.3
# Photos are shrunk to this long side first: the network's cost grows with the pixel count, and it
# finds faces from about 10 px, far below min_face_size.
MAX_SIDE = 800
# Small photos are enlarged to this long side: blurred faces in a 200-px picture are found more often
# (benchmarks/face_detectors.py).
MIN_SIDE = 400


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def checked_model(path: Path | None = None, sha256: str = MODEL_SHA256) -> Path:
    """The shipped model file, refused in one line when missing or not the file that was shipped."""
    path = path or MODEL_DIR / MODEL_FILE
    if not path.is_file():
        raise FerError(f"face_detector=yunet: its model {path} is missing; reinstall the package")
    if file_sha256(path) != sha256:
        raise FerError(f"face_detector=yunet: {path} is damaged or was replaced (its sha256 does not match the "
                       "one shipped); reinstall the package")
    return path


@contextmanager
def opencv_threads(count: int) -> Iterator[None]:
    """OpenCV's thread count is global to the process: set for the call, then given back."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class YuNetDetector:
    """Faces with five landmarks each: eyes (the one on the image's left first), nose tip, mouth corners."""

    name = "yunet"

    def __init__(self, min_size: int = 30, model: Path | None = None, sha256: str = MODEL_SHA256) -> None:
        if not hasattr(cv2, "FaceDetectorYN"):
            raise FerError(f"face_detector=yunet needs OpenCV >= 4.8 (cv2.FaceDetectorYN); this is {cv2.__version__}")
        path = checked_model(model, sha256)
        try:
            self.detector = cv2.FaceDetectorYN.create(str(path), "", (320, 320), SCORE_THRESHOLD, NMS_THRESHOLD)
        except cv2.error:
            raise FerError(f"face_detector=yunet: OpenCV cannot read the model {path}") from None
        self.min_size = min_size

    def detect(self, gray: np.ndarray) -> list[tuple[tuple[int, int, int, int], np.ndarray, float]]:
        """(box, landmarks (5, 2) in the photo's pixels, score) of each face."""
        height, width = gray.shape[:2]
        scale = min(max(1.0, MIN_SIDE / max(height, width)), MAX_SIDE / max(height, width))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=interpolation) if scale != 1 else gray
        bgr = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR) if small.ndim == 2 else small
        with opencv_threads(THREADS):
            self.detector.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, found = self.detector.detect(np.ascontiguousarray(bgr))
        faces = []
        for row in found if found is not None else []:
            x, y, w, h = (float(v) / scale for v in row[:4])
            left, top = max(0, int(round(x))), max(0, int(round(y)))
            right, bottom = min(width, int(round(x + w))), min(height, int(round(y + h)))
            if min(right - left, bottom - top) >= self.min_size:
                landmarks = (row[4:14].reshape(5, 2) / scale).astype(np.float32)
                faces.append(((left, top, right - left, bottom - top), landmarks, float(row[14])))
        return faces

    def __call__(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [box for box, _, _ in self.detect(gray)]
