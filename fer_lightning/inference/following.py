"""Faces followed through a stream of frames (a video file, the demo's live webcam).

Detecting faces is the costly part of a frame (YuNet: about 18 ms at 640x480 on one core, 10 more a
face for the second look that alignment needs). So the detector runs on every ``detect_every``-th
frame only, and on every frame while no face is known; in between, each known face is looked for
again near where it was: with YuNet, one look at a 160-px square around its eyes (under 2 ms, and it
gives the landmarks the aligned crop needs); with detectors without landmarks, the detector on the
region around the box its track expects. A face that enters between two detections is found at the
next one. ``detect_every=1`` detects on every frame.

Each face keeps a track number (tracking.py), and its probabilities are smoothed over its track.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from fer_lightning.config.checks import check_positive_int
from fer_lightning.inference.faces import Face, cut_face, to_gray
from fer_lightning.inference.tracking import IouTracker, Track, iou, smooth

if TYPE_CHECKING:
    from fer_lightning.inference.recognizer import FaceExpression, Recognizer

# At 30 frames a second a face enters the picture at most a sixth of a second before it is found.
DEFAULT_DETECT_EVERY = 5
# Without landmarks a face is searched for in its expected box grown by this much of its side on every edge.
SEARCH_MARGIN = 0.5
# Two followed faces that overlap this much are one face found twice: the older track keeps it.
SAME_FACE_IOU = 0.5


class FaceFollower:
    """One stream's faces, frame after frame: ``predict(recognizer, frame)`` for each frame in order.

    It holds the stream's state only (tracks, landmarks, the frame count), not the model: a web
    session's state is copied between frames, a model is not."""

    def __init__(self, detect_every: int = DEFAULT_DETECT_EVERY, smoothing: float = 0.5) -> None:
        check_positive_int("detect_every", detect_every)
        self.detect_every = int(detect_every)
        self.smoothing = float(smoothing)
        self.tracker = IouTracker()
        self.frames = 0
        self.landmarks: dict[int, np.ndarray | None] = {}  # each open track's last landmarks

    def predict(self, recognizer: Recognizer, image: Any, color_order: str = "bgr") -> list[FaceExpression]:
        """The next frame's faces, left to right, each with its track number and its track's
        smoothed probabilities. ``image`` as ``Recognizer.predict`` takes it; the same recognizer
        for every frame of a stream."""
        from fer_lightning.inference.images import as_bgr_or_gray

        pixels = as_bgr_or_gray(image, color_order)
        detector = recognizer.detector
        if detector is None or not self.tracker.tracks or self.frames % self.detect_every == 0:
            faces = recognizer.find_faces(pixels)
            tracks = self.tracker.update([face.box for face in faces])
        else:
            faces, tracks = self._follow(recognizer, to_gray(pixels), detector)
        self.frames += 1
        self.landmarks.update((track.number, face.landmarks) for face, track in zip(faces, tracks))
        still_open = {track.number for track in self.tracker.tracks}
        self.landmarks = {number: points for number, points in self.landmarks.items() if number in still_open}
        if not faces:
            return []
        rows = recognizer.predict_faces(np.stack([face.image for face in faces]))
        answers = [recognizer.expression(face.box, smooth(track, row, self.smoothing), face.image, track.number)
                   for face, track, row in zip(faces, tracks, rows)]
        return sorted(answers, key=lambda answer: (answer.box[0], answer.box[1]))

    def _follow(self, recognizer: Recognizer, gray: np.ndarray, detector) -> tuple[list[Face], list[Track]]:
        """Each open track's face looked for near where it is expected; the tracks found, and their faces."""
        found: dict[int, Face] = {}
        for track in sorted(self.tracker.tracks, key=lambda track: track.number):  # older tracks first
            face = self._look(recognizer, gray, detector, track)
            if face is not None and all(iou(face.box, other.box) < SAME_FACE_IOU for other in found.values()):
                found[track.number] = face
        tracks = self.tracker.carry({number: face.box for number, face in found.items()})
        return [found[track.number] for track in tracks], tracks

    def _look(self, recognizer: Recognizer, gray: np.ndarray, detector, track: Track) -> Face | None:
        landmarks = self.landmarks.get(track.number)
        if hasattr(detector, "follow") and landmarks is not None:
            x, y, _, _ = track.expected()
            seen = detector.follow(gray, landmarks + np.float32([x - track.box[0], y - track.box[1]]))
            if seen is None:
                return None
            box, landmarks, _ = seen
            return cut_face(gray, box, landmarks, recognizer.align, recognizer.margin)
        box = search_near(gray, detector, track.expected())
        return None if box is None else cut_face(gray, box, None, recognizer.align, recognizer.margin)


def search_near(gray: np.ndarray, detector, expected: tuple[float, float, float, float]):
    """The face box the detector finds nearest the centre of the region around ``expected``, in the
    frame's pixels; None when it finds none there."""
    x, y, w, h = expected
    height, width = gray.shape[:2]
    left, top = max(0, int(x - SEARCH_MARGIN * w)), max(0, int(y - SEARCH_MARGIN * h))
    right, bottom = min(width, int(x + w + SEARCH_MARGIN * w)), min(height, int(y + h + SEARCH_MARGIN * h))
    if right - left < 2 or bottom - top < 2:
        return None
    boxes = detector(np.ascontiguousarray(gray[top:bottom, left:right]))
    if not boxes:
        return None
    centre = np.array([x + w / 2 - left, y + h / 2 - top])
    bx, by, bw, bh = min(boxes, key=lambda b: float(np.hypot(*(np.array([b[0] + b[2] / 2, b[1] + b[3] / 2]) - centre))))
    return (bx + left, by + top, bw, bh)
