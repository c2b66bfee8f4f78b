"""Parse and check single CSV fields: the pixel string, a label, an id.

Each parser returns the value or raises ``FieldError`` whose text says what is wrong, for the
reader to report with the line number.
"""

from __future__ import annotations

import numpy as np

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.data.readers.problems import short_repr

PIXEL_COUNT = IMAGE_SIZE * IMAGE_SIZE
_PIXEL_CHARS = b"0123456789 \t"


class FieldError(ValueError):
    """One field of one row is unusable; the message says why."""


def _describe_bad_pixel(field: bytes) -> str:
    for position, token in enumerate(field.split(), start=1):
        if not token.isdigit():
            return f"pixel {position} is {short_repr(token)}, not an integer 0..255"
    return "the pixel string holds characters other than digits and spaces"


def parse_pixels(field: bytes) -> np.ndarray:
    """A space-separated string of 2304 integers 0..255 -> (2304,) uint8."""
    if not field.strip():
        raise FieldError("the pixels field is empty")
    # Only digits and whitespace may remain: then np.fromstring can neither stop early at a
    # stray character nor read "1.5" or "-3" as a number.
    if field.translate(None, _PIXEL_CHARS):
        raise FieldError(_describe_bad_pixel(field))
    # int64 holds any digit run without wrapping round (huge values saturate), so the range
    # check below sees them; a narrower dtype could turn 65536+5 into a valid-looking 5.
    values = np.fromstring(field, dtype=np.int64, sep=" ")
    if values.size != PIXEL_COUNT:
        raise FieldError(f"expected {PIXEL_COUNT} pixel values ({IMAGE_SIZE}x{IMAGE_SIZE}), found {values.size}")
    if values.max() > 255:
        position = int(np.argmax(values > 255))
        raise FieldError(f"pixel {position + 1} is {values[position]}, outside 0..255")
    return values.astype(np.uint8)


def parse_label(field: bytes) -> int:
    """A class index 0..6 (surrounding spaces allowed; "3.0" or "happy" are not labels)."""
    text = field.strip()
    if not text.isdigit() or len(text) > 2 or int(text) >= NUM_CLASSES:
        raise FieldError(f"label {short_repr(field)} is not an integer 0..{NUM_CLASSES - 1}")
    return int(text)


def parse_id(field: bytes) -> int:
    text = field.strip()
    if not text.isdigit() or len(text) > 18:  # 18 digits always fit in int64
        raise FieldError(f"id {short_repr(field)} is not a non-negative integer below 10**18")
    return int(text)
