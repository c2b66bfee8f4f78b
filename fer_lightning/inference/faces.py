"""Faces in ordinary photos: find them (YuNet by default, with five landmarks a face; OpenCV's Haar
cascade, dlib's HOG or CNN detector as options) and crop each to 48x48 gray.

The network was trained on FER2013-style crops (a face filling a square 48x48 gray image), so a
photo is cut the same way: a face with landmarks is turned upright and framed as FER2013 frames its
faces (alignment.py); one without is cut as a square around its box with a small margin. Either is
resized with area interpolation. Images that already are such crops are used whole.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_lightning.classes import IMAGE_SIZE
from fer_lightning.config.choices import FACE_DETECTORS as FACE_DETECTOR_NAMES
from fer_lightning.data.readers.image_decode import (
    IMAGE_EXTENSIONS,
    ImageDecodeError,
    decode_image,
    quiet_opencv,
)
from fer_lightning.errors import DataFormatError, FerError
from fer_lightning.inference.alignment import align_face
from fer_lightning.inference.yunet import YuNetDetector

CASCADE_NAME = "haarcascade_frontalface_default.xml"
# Images this small are taken to be face crops already: the cascade cannot find faces in them.
FACE_CROP_MAX_SIDE = 64
# FER2013 crops show a little forehead and chin around the face the cascade outlines.
DEFAULT_MARGIN = 0.1
# A photo larger than these is refused before it is decoded: a 12,000 x 8,000 camera picture is
# 96 million pixels, and decoding 100 million takes 300 MB.
MAX_PHOTO_BYTES = 256 * 2**20
MAX_PHOTO_PIXELS = 100_000_000


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, width, height in the original image's pixels
    image: np.ndarray  # (48, 48) uint8 gray crop
    # (5, 2) x, y: the eyes (image-left first), nose tip, mouth corners; None from detectors without them
    landmarks: np.ndarray | None = None


def load_cascade() -> cv2.CascadeClassifier:
    """OpenCV's frontal-face Haar cascade (shipped with opencv-python 4.x, dropped in OpenCV 5)."""
    path = Path(getattr(getattr(cv2, "data", None), "haarcascades", "")) / CASCADE_NAME
    if not path.is_file():
        raise FerError(
            f"face detection needs OpenCV's {CASCADE_NAME}, not found at {path}: install "
            "opencv-python-headless 4.x (OpenCV 5 no longer ships the Haar cascades), or pass "
            "detect_faces=false for images that are face crops already"
        )
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise FerError(f"OpenCV could not load the face cascade {path}")
    return cascade


def list_images(path: Path) -> list[Path]:
    """An image file, or every image below a folder (sorted, so outputs are in a stable order)."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataFormatError(f"{path}: no such file or folder")
    images = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not images:
        raise DataFormatError(f"{path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")
    return images


def read_color_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 BGR; reading the bytes first also reads paths OpenCV's imread cannot.

    An empty, cut-off, undecodable or unreadable file raises DataFormatError naming it, never
    OpenCV's own exception: one bad photo must not stop a whole batch. So does anything that is not
    a regular file (a device such as /dev/zero never ends), a file over MAX_PHOTO_BYTES, and an image
    whose header claims more than MAX_PHOTO_PIXELS (checked before decoding allocates it).
    """
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            raise DataFormatError(f"{path}: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_PHOTO_BYTES + 1)
    except OSError as error:
        raise DataFormatError(f"{path}: cannot be read ({error.strerror or error})") from None
    if len(data) > MAX_PHOTO_BYTES:
        raise DataFormatError(f"{path}: larger than {MAX_PHOTO_BYTES // 2**20} MiB, too large for a photo")
    try:
        check_pixel_count(data)
        with quiet_opencv():
            return decode_image(data, path.suffix, cv2.IMREAD_COLOR)
    except ImageDecodeError as error:
        raise DataFormatError(f"{path}: {error}") from None


def check_pixel_count(data: bytes) -> None:
    """ImageDecodeError when the image's header claims more than MAX_PHOTO_PIXELS pixels.

    Pillow reads only the header here; a format it does not know is left to OpenCV's decoder.
    """
    import io
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit below is ours
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except Image.DecompressionBombError:
        raise ImageDecodeError(f"more than the {MAX_PHOTO_PIXELS // 10**6} million pixels a photo may have") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return
    if width * height > MAX_PHOTO_PIXELS:
        raise ImageDecodeError(f"{width}x{height} pixels, more than the {MAX_PHOTO_PIXELS // 10**6} million "
                               "a photo may have")


def to_gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


Box = tuple[int, int, int, int]


class HaarDetector:
    """OpenCV's Haar cascade (Viola-Jones): the default, shipped with opencv-python."""

    name = "haar"

    def __init__(self, min_size: int = 30) -> None:
        self.cascade = load_cascade()
        self.min_size = min_size

    def __call__(self, gray: np.ndarray) -> list[Box]:
        # Histogram equalisation first: the cascade misses faces in dim or low-contrast photos otherwise.
        found = self.cascade.detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
                                              minSize=(self.min_size, self.min_size))
        return [tuple(int(v) for v in box) for box in (found if len(found) else [])]  # type: ignore[misc]


class HogDetector:
    """dlib's HOG + linear SVM frontal-face detector: its weights are inside dlib itself (the
    ``faces`` extra installs the prebuilt ``dlib-bin``); tilted faces it finds where the cascade
    does not (benchmarks/face_detectors.py)."""

    name = "hog"

    def __init__(self, min_size: int = 30) -> None:
        try:
            import dlib
        except ImportError:
            raise FerError('face_detector=hog needs dlib: pip install -e ".[faces]" (or pip install dlib-bin)') from None
        self.detector = dlib.get_frontal_face_detector()
        self.min_size = min_size
        # dlib finds faces from about 80 px; upsampling the photo once finds them from about 40 px.
        self.upsample = 1 if min_size < 80 else 0

    def __call__(self, gray: np.ndarray) -> list[Box]:
        height, width = gray.shape
        boxes = []
        for rect in self.detector(np.ascontiguousarray(gray), self.upsample):
            left, top = max(0, rect.left()), max(0, rect.top())
            right, bottom = min(width, rect.right() + 1), min(height, rect.bottom() + 1)
            if min(right - left, bottom - top) >= self.min_size:
                boxes.append((left, top, right - left, bottom - top))
        return boxes


class CnnDetector:
    """dlib's MMOD convolutional face detector, with the weights the ``face_recognition_models``
    package ships (the ``faces`` extra): the most faces and the fewest false alarms of the three,
    at about a second a photo on a CPU."""

    name = "cnn"
    WEIGHTS = "mmod_human_face_detector.dat"
    # Photos are shrunk to this side first: the detector's cost grows with the pixel count.
    MAX_SIDE = 800

    def __init__(self, min_size: int = 30) -> None:
        import importlib.util

        try:
            import dlib
        except ImportError:
            raise FerError('face_detector=cnn needs dlib: pip install -e ".[faces]" (or pip install dlib-bin)') from None
        # Found without importing the package, whose __init__ needs setuptools' pkg_resources.
        spec = importlib.util.find_spec("face_recognition_models")
        weights = Path(list(spec.submodule_search_locations)[0]) / "models" / self.WEIGHTS if spec else None
        if weights is None or not weights.is_file():
            raise FerError('face_detector=cnn needs the face_recognition_models package: pip install -e ".[faces]"')
        self.detector = dlib.cnn_face_detection_model_v1(str(weights))
        self.min_size = min_size

    def __call__(self, gray: np.ndarray) -> list[Box]:
        height, width = gray.shape
        scale = min(1.0, self.MAX_SIDE / max(height, width))
        small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
        # The detector's window is about 80 px: small photos are upsampled once to find smaller faces.
        upsample = 1 if max(small.shape) <= 400 else 0
        boxes = []
        for found in self.detector(np.ascontiguousarray(small), upsample):
            rect = found.rect
            left, top = max(0, int(rect.left() / scale)), max(0, int(rect.top() / scale))
            right, bottom = min(width, int((rect.right() + 1) / scale)), min(height, int((rect.bottom() + 1) / scale))
            if min(right - left, bottom - top) >= self.min_size:
                boxes.append((left, top, right - left, bottom - top))
        return boxes


FACE_DETECTORS = dict(zip(FACE_DETECTOR_NAMES, (YuNetDetector, HaarDetector, HogDetector, CnnDetector)))
DEFAULT_DETECTOR = FACE_DETECTOR_NAMES[0]
Detector = YuNetDetector | HaarDetector | HogDetector | CnnDetector


def face_detector(name: str = DEFAULT_DETECTOR, min_size: int = 30) -> Detector:
    if name not in FACE_DETECTORS:
        raise FerError(f"face_detector={name!r}: one of {', '.join(FACE_DETECTORS)}")
    return FACE_DETECTORS[name](min_size)


def detect_face_boxes(gray: np.ndarray, detector) -> list[Box]:
    """Face boxes (x, y, w, h), left to right."""
    return [box for box, _ in detect_with_landmarks(gray, detector)]


def detect_with_landmarks(gray: np.ndarray, detector, align: bool = False) -> list[tuple[Box, np.ndarray | None]]:
    """(box, landmarks or None) of each face, left to right; ``align``: landmarks precise enough to
    turn the face by (YuNet looks twice)."""
    if hasattr(detector, "detect"):
        found = [(box, landmarks) for box, landmarks, _ in detector.detect(gray, second_look=align)]
    else:
        found = [(box, None) for box in detector(gray)]
    return sorted(found, key=lambda f: (f[0][0], f[0][1]))


def crop_face(gray: np.ndarray, box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """A square crop centred on ``box``, ``margin`` of its side larger on every edge, as 48x48.

    Parts of the square outside the photo are filled by replicating the border, so a face at the
    edge keeps its place in the crop instead of being stretched.
    """
    x, y, w, h = box
    side = int(round(max(w, h) * (1 + 2 * margin)))
    left = int(round(x + w / 2 - side / 2))
    top = int(round(y + h / 2 - side / 2))
    height, width = gray.shape
    pad = max(0, -left, -top, left + side - width, top + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    square = gray[top:top + side, left:left + side]
    return resize_to_model(square)


def resize_to_model(gray: np.ndarray) -> np.ndarray:
    """Any gray image -> (48, 48) uint8 (area interpolation, as the readers resize)."""
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
        gray = cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray, dtype=np.uint8)


def is_face_crop(gray: np.ndarray) -> bool:
    return max(gray.shape[:2]) <= FACE_CROP_MAX_SIDE


def find_faces(
    image: np.ndarray,
    detect: bool | None = None,
    detector: Detector | None = None,
    margin: float = DEFAULT_MARGIN,
    min_size: int = 30,
    align: bool = True,
) -> list[Face]:
    """The faces of one image (BGR or gray).

    ``detect``: True runs the detector (default: YuNet); False uses the whole image as one face;
    None decides by size (images up to 64 px a side are taken as crops already). ``align``: faces
    with landmarks are turned upright and framed as FER2013's (``margin`` is for the others).
    """
    gray = to_gray(image)
    if detect is None:
        detect = not is_face_crop(gray)
    height, width = gray.shape
    if not detect:
        return [Face((0, 0, width, height), resize_to_model(gray))]
    detector = detector if detector is not None else face_detector(DEFAULT_DETECTOR, min_size)
    return [cut_face(gray, box, landmarks, align, margin)
            for box, landmarks in detect_with_landmarks(gray, detector, align)]


def cut_face(gray: np.ndarray, box: Box, landmarks: np.ndarray | None, align: bool = True,
             margin: float = DEFAULT_MARGIN) -> Face:
    """A found face cut to 48x48: turned upright and framed as FER2013's when ``align`` and it has
    landmarks, else a square ``margin`` larger than its box."""
    crop = resize_to_model(align_face(gray, landmarks)) if align and landmarks is not None else \
        crop_face(gray, box, margin)
    return Face(box, crop, landmarks)


def annotate(image: np.ndarray, boxes: list[tuple[int, int, int, int]], labels: list[str]) -> np.ndarray:
    """A copy of ``image`` (BGR) with each box drawn and its label (any caption) written above it."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 300))
    for (x, y, w, h), label in zip(boxes, labels):
        cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), thickness)
        scale = max(0.4, w / 160)
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y - text_h - baseline - 2)
        cv2.rectangle(canvas, (x, top), (x + text_w, top + text_h + baseline + 2), (0, 255, 0), cv2.FILLED)
        cv2.putText(canvas, label, (x, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                    thickness, cv2.LINE_AA)
    return canvas


def caption(face: dict[str, Any]) -> str:
    """What an annotated photo shows above a face: its label and that label's probability, and
    "uncertain" below the recognizer's uncertain_below."""
    text = f"{face['label']} {face['probabilities'][face['label']]:.2f}"
    return f"{text} uncertain" if face.get("uncertain") else text
