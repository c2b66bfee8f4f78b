"""Aligned face crops: a face with landmarks (YuNet's) is turned so that its eyes are level, then cut
with FER2013's framing, so a tilted head reaches the 48x48 model as the training faces looked.

The framing is measured, not chosen: benchmarks/fer2013_framing.py runs YuNet on FER2013's own
training faces (scaled up 4x inside a replicated border) and takes the median position of the eyes
in the 48x48 crop. Faces without landmarks (haar, hog, cnn) keep the upright square crop.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Where FER2013's faces have their eyes, as fractions of the crop's side: the point between the eyes,
# and the distance between them. benchmarks/fer2013_framing.py measured the medians over 3,000
# Training faces (YuNet found 2,884): 0.499, 0.385 and 0.367 (half of the faces from 0.325 to 0.402).
EYES_X = 0.499
EYES_Y = 0.385
EYE_DISTANCE = 0.367


def eye_angle(landmarks: np.ndarray) -> float:
    """Degrees the line from the image-left eye to the image-right eye turns clockwise (y points down)."""
    (x1, y1), (x2, y2) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(y2 - y1, x2 - x1))


def align_face(gray: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A square of the photo, its eyes level and where FER2013's eyes are, at the photo's resolution
    (the caller shrinks it to 48x48 with area interpolation, as every crop is shrunk)."""
    (x1, y1), (x2, y2) = (float(v) for v in landmarks[0]), (float(v) for v in landmarks[1])
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    distance = max(math.hypot(x2 - x1, y2 - y1), 1.0)
    side = max(int(round(distance / EYE_DISTANCE)), 1)
    # Turning by the eyes' own angle (OpenCV: positive is counter-clockwise on screen) levels them.
    matrix = cv2.getRotationMatrix2D(centre, eye_angle(landmarks), 1.0)
    matrix[:, 2] += (side * EYES_X - centre[0], side * EYES_Y - centre[1])
    # Replicated border, as the upright crop pads: a face at the photo's edge keeps its place.
    return cv2.warpAffine(gray, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
