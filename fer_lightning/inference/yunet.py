"""YuNet (``face_detector=yunet``): a small convolutional face detector run by OpenCV's
``cv2.FaceDetectorYN`` (OpenCV >= 4.8) that also returns five landmarks per face, so a face can be
turned upright before it is cut (alignment.py).

Its ONNX file ships inside the package (``face_models/yunet/``, Apache-2.0, provenance in the
README beside it) and is checked by its sha256 before OpenCV reads it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from fer_lightning.errors import FerError
from fer_lightning.inference.alignment import eye_angle

MODEL_DIR = Path(__file__).parent / "face_models" / "yunet"
MODEL_FILE = "yunet_n_640_640.onnx"
MODEL_SHA256 = "25a606a145a5b6d7271ae138fbd00eba91dad8b83222ae3f2c7ecd0f4a7b0e31"
# One thread: on 2 shared cores the network ran several times slower on 2 threads than on 1, and
# a photo's few milliseconds gain nothing from more.
THREADS = 1
# A face below this score is not reported. OpenCV's own default, 0.9, misses blurred faces; on
# benchmarks/face_detectors.py 0.5 found 111 of 115 faces with no false alarm
# (0.6: 110, 0.7: 109).
SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.3
# Photos are shrunk to this long side first: the network's cost grows with the pixel count, and it
# finds faces from about 10 px, far below min_face_size.
MAX_SIDE = 800
# Small photos are enlarged to this long side: blurred faces in a 200-px picture are found more often
# (benchmarks/face_detectors.py).
MIN_SIDE = 400
# The landmarks of a tilted face come out pulled toward an upright face's (a 20-degree tilt reads as
# about 10). A second look at a square of this many eye distances around the eyes, turned by the first
# reading, leaves under 5 degrees from -30 to +30 (benchmarks/face_alignment.py).
SECOND_LOOK_SIDE = 3.0
# ... looked at in this many pixels a side (at least): enough for the landmarks, and a quarter of the
# cost of a 400-px look.
SECOND_LOOK_PIXELS = 320
# A face followed through a video between two detections is looked for in the same square around its
# last landmarks at this many pixels: a face moves little from one frame to the next, and the look
# costs under 2 ms (a full 640x480 detection: about 18 ms).
FOLLOW_LOOK_PIXELS = 160


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
            self.second = cv2.FaceDetectorYN.create(str(path), "", (SECOND_LOOK_PIXELS,) * 2, SCORE_THRESHOLD,
                                                    NMS_THRESHOLD)
            self.follower = cv2.FaceDetectorYN.create(str(path), "", (FOLLOW_LOOK_PIXELS,) * 2, SCORE_THRESHOLD,
                                                      NMS_THRESHOLD)
        except cv2.error:
            raise FerError(f"face_detector=yunet: OpenCV cannot read the model {path}") from None
        self.min_size = min_size

    def detect(self, gray: np.ndarray,
               second_look: bool = False) -> list[tuple[tuple[int, int, int, int], np.ndarray, float]]:
        """(box, landmarks (5, 2) in the photo's pixels, score) of each face; ``second_look`` reads
        each face's landmarks again with the face turned upright (for alignment)."""
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
                if second_look:
                    landmarks = self.look_again(gray, landmarks)
                faces.append(((left, top, right - left, bottom - top), landmarks, float(row[14])))
        return faces

    def look_again(self, gray: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The landmarks read from the face turned by their first reading's eye angle, in the photo's pixels."""
        found = self._look(gray, landmarks, self.second, SECOND_LOOK_PIXELS)
        return landmarks if found is None else found[1]

    def follow(self, gray: np.ndarray,
               landmarks: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray, float] | None:
        """(box, landmarks, score) of the face near ``landmarks`` (where it was a frame ago) in a new
        frame, from one small look around them; None when no face of min_size is there."""
        found = self._look(gray, landmarks, self.follower, FOLLOW_LOOK_PIXELS)
        if found is None:
            return None
        corners, again, score = found
        height, width = gray.shape[:2]
        left, top = np.clip(corners.min(axis=0), 0, (width, height)).round().astype(int)
        right, bottom = np.clip(corners.max(axis=0), 0, (width, height)).round().astype(int)
        if min(right - left, bottom - top) < self.min_size:
            return None
        return (int(left), int(top), int(right - left), int(bottom - top)), again, score

    def _look(self, gray: np.ndarray, landmarks: np.ndarray, detector,
              side: int) -> tuple[np.ndarray, np.ndarray, float] | None:
        """One look at a square of SECOND_LOOK_SIDE eye distances around ``landmarks``' eyes, turned by
        their eye angle and drawn at ``side`` pixels: (the found box's corners (4, 2), its landmarks (5, 2),
        score), in the photo's pixels, of the face whose eyes are nearest the square's centre."""
        (x1, y1), (x2, y2) = (float(v) for v in landmarks[0]), (float(v) for v in landmarks[1])
        centre = ((x1 + x2) / 2, (y1 + y2) / 2)
        zoom = side / max(SECOND_LOOK_SIDE * math.hypot(x2 - x1, y2 - y1), 1.0)
        matrix = cv2.getRotationMatrix2D(centre, eye_angle(landmarks), zoom)
        matrix[:, 2] += (side / 2 - centre[0], side / 2 - centre[1])
        patch = cv2.warpAffine(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        with opencv_threads(THREADS):
            _, found = detector.detect(np.ascontiguousarray(cv2.cvtColor(patch, cv2.COLOR_GRAY2BGR)))
        if found is None or not len(found):
            return None
        row = min(found, key=lambda row: float(np.hypot(*(row[4:14].reshape(5, 2)[:2].mean(axis=0) - side / 2))))
        x, y, w, h = (float(v) for v in row[:4])
        points = np.vstack([[[x, y], [x + w, y], [x, y + h], [x + w, y + h]], row[4:14].reshape(5, 2)])
        back = cv2.invertAffineTransform(matrix)
        points = np.hstack([points, np.ones((len(points), 1))]) @ back.T
        return points[:4], points[4:].astype(np.float32), float(row[14])

    def __call__(self, gray: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [box for box, _, _ in self.detect(gray)]
