"""Any image the API takes, as OpenCV works with it: a file path, a PIL image or a numpy array (gray,
colour in BGR or RGB order, with or without alpha; uint8, uint16, bool or floats) becomes (H, W) gray
or (H, W, 3) BGR uint8. Values outside an image's range are refused in one line, never clipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_lightning.errors import ConfigError, DataFormatError

COLOR_ORDERS = ("bgr", "rgb")


def as_gray_uint8(face: np.ndarray) -> np.ndarray:
    """A face crop as (H, W) uint8 gray: colour crops are taken as BGR, floats as [0, 1]."""
    array = np.asarray(face)
    if array.ndim == 3:
        array = as_bgr_or_gray(array, "bgr")
        if array.ndim == 3:
            import cv2

            array = cv2.cvtColor(array, cv2.COLOR_BGR2GRAY)
    if array.ndim != 2 or min(array.shape) < 1:
        raise DataFormatError(f"a face crop must be a gray (H, W) image; got shape {np.asarray(face).shape}")
    return to_uint8(array)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 pixels from what an image array may hold: uint16 scaled as 16-bit files are read, floats
    in [0, 1] (or in [0, 255] when a value exceeds 1), other integers in 0..255. Values outside
    those ranges are refused, never clipped: a clipped image is silently another image."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        from fer_lightning.data.readers.image_decode import from_16_bit

        return from_16_bit(array)
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataFormatError(f"an image must hold numbers; got {array.dtype}")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise DataFormatError("the image holds NaN or infinite values")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise DataFormatError(f"{array.dtype} pixels from {low:g} to {high:g}: expected 0..255 (or 0..65535 "
                              "as uint16, or floats in [0, 1])")
    if np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if high <= 1.0 else 1.0
        return np.rint(array * scale).astype(np.uint8)
    return array.astype(np.uint8)


def as_bgr_or_gray(image: Any, color_order: str = "bgr") -> np.ndarray:
    """Any image the API takes -> (H, W) gray or (H, W, 3) BGR uint8, as OpenCV works."""

    from fer_lightning.inference.faces import read_color_image

    if color_order not in COLOR_ORDERS:
        raise ConfigError(f"color_order={color_order!r}: bgr or rgb")
    if isinstance(image, (str, Path)):
        return read_color_image(Path(image))
    if hasattr(image, "convert") and hasattr(image, "mode"):  # a PIL image: its mode says its colours
        image, color_order = np.asarray(image.convert("L" if image.mode in ("L", "I", "F", "1") else "RGB")), "rgb"
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)) or min(array.shape[:2]) < 1:
        raise DataFormatError(f"an image must be (H, W), (H, W, 3) or (H, W, 4); got shape {array.shape}")
    array = to_uint8(array)
    if array.ndim == 2:
        return array
    if array.shape[2] == 4:
        array = array[:, :, :3]
    return np.ascontiguousarray(array[:, :, ::-1] if color_order == "rgb" else array)
