"""Decode one image file of any size, depth or channel count to a 48x48 grayscale uint8 face."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from fer_lightning.classes import IMAGE_SIZE

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
_JPEG_END = b"\xff\xd9"
# ANYDEPTH keeps 16-bit data 16-bit (scaled below, not cut to the high byte); ANYCOLOR keeps gray
# as one channel and drops alpha. Unlike IMREAD_UNCHANGED it applies the EXIF orientation.
_DECODE_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


class ImageDecodeError(ValueError):
    """The file cannot be turned into a face image; the message says why."""


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log lines about broken files: the reader reports them itself."""
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(previous)


def from_16_bit(image: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 with rounding (65535 / 257 = 255 exactly)."""
    return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return from_16_bit(image)
    raise ImageDecodeError(f"unsupported pixel type {image.dtype} (expected 8- or 16-bit)")


def _to_gray(image: np.ndarray) -> np.ndarray:
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 1:
        return image.reshape(image.shape[:2])
    if channels == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    raise ImageDecodeError(f"unsupported channel count {channels}")


def decode_image(data: bytes, suffix: str, flags: int = _DECODE_FLAGS) -> np.ndarray:
    """Encoded image bytes -> the image as OpenCV decodes it with ``flags``; ImageDecodeError for an
    empty, cut-off or undecodable file (never OpenCV's own exception)."""
    if not data:
        raise ImageDecodeError("the file is empty (0 bytes)")
    # Some OpenCV builds decode a cut-off JPEG with a grey bottom and only log a warning. The
    # end-of-image marker cannot occur inside compressed data, so its absence from the file's
    # tail means the file was cut (the window allows for padding some writers append).
    if suffix.lower() in (".jpg", ".jpeg") and _JPEG_END not in data[-1024:]:
        raise ImageDecodeError("truncated JPEG (no end-of-image marker)")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error as exc:
        raise ImageDecodeError(f"OpenCV cannot decode it ({exc.err})") from exc
    if image is None or image.size == 0:
        raise ImageDecodeError("OpenCV cannot decode it: truncated, corrupt or not a PNG/JPEG/BMP image")
    return image


def decode_face(data: bytes, suffix: str) -> np.ndarray:
    """Encoded image bytes -> (48, 48) uint8 gray, resized with INTER_AREA (the aspect ratio is not kept)."""
    gray = _to_gray(_to_uint8(decode_image(data, suffix)))
    if gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
        gray = cv2.resize(gray, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(gray)
