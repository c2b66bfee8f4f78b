"""Faces followed through frames (inference/following.py): the detector runs on every n-th frame only,
each face is found again near where it was in between, entering and leaving faces are handled, and the
answers stay those of detecting on every frame. Frames are drawn from scikit-image's astronaut."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_lightning import Recognizer
from fer_lightning.inference.following import FaceFollower
from fer_lightning.inference.tracking import IouTracker, iou
from tests.helpers import run_cli
from tests.test_evaluate_predict import astronaut_bgr


def frame(*lefts: int | None, side: int = 160) -> np.ndarray:
    """A grey 560x360 frame with an astronaut's head, ``side`` pixels, at each given left edge (None:
    that face is absent), the second one lower."""
    face = cv2.resize(astronaut_bgr()[20:260, 110:350], (side, side))
    canvas = np.full((360, 560, 3), 110, np.uint8)
    for number, left in enumerate(lefts):
        if left is not None:
            top = 20 + (340 - side) * (number % 2)
            canvas[top:top + side, left:left + side] = face
    return canvas


@pytest.fixture(scope="module")
def shipped() -> Recognizer:
    return Recognizer.pretrained(detect_faces=True)


def counting_detections(recognizer: Recognizer) -> list[int]:
    """Counts the detector's full-frame detections from now on (the real detector still runs)."""
    recognizer.find_faces(frame(10))  # builds the detector
    detector, calls = recognizer.detector, []
    original = detector.detect
    detector.detect = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    return calls


def test_faces_are_detected_every_nth_frame_and_followed_in_between_with_the_same_answers():
    frames = [frame(20 + 6 * i, 380 - 6 * i) for i in range(12)]  # two faces, 6 px a frame
    every = Recognizer.pretrained(detect_faces=True)
    sparse = Recognizer.pretrained(detect_faces=True)
    calls = counting_detections(sparse)
    each, followed = FaceFollower(detect_every=1), FaceFollower(detect_every=5)
    for index, picture in enumerate(frames):
        reference, faces = each.predict(every, picture), followed.predict(sparse, picture)
        assert [f.track for f in faces] == [0, 1], index
        for a, b in zip(reference, faces):
            assert iou(a.box, b.box) > 0.6, (index, a.box, b.box)  # one look at 160 px: a looser box
            distance = 0.5 * sum(abs(a.probabilities[n] - b.probabilities[n]) for n in a.probabilities)
            assert distance < 0.05, (index, distance)
    assert len(calls) == 3  # frames 0, 5 and 10


def test_a_face_entering_is_found_at_the_next_detection_and_a_face_leaving_is_gone_at_once(shipped):
    follower = FaceFollower(detect_every=5)
    counts = []
    for index in range(12):
        second = 380 if index >= 2 else None  # enters at frame 2, between detections
        first = 20 if index < 7 else None  # leaves at frame 7, between detections
        counts.append(len(follower.predict(shipped, frame(first, second))))
    assert counts[:2] == [1, 1]
    assert counts[2:5] == [1, 1, 1]  # not yet detected...
    assert counts[5:7] == [2, 2]  # ... found by the detection at frame 5
    assert counts[7:] == [1] * 5  # the first face is not reported where it was
    assert follower.tracker.next_number == 2


def test_a_detector_without_landmarks_searches_near_where_the_face_should_be():
    recognizer = Recognizer.pretrained(detect_faces=True, face_detector="haar")
    calls = counting_detections(recognizer) if hasattr(recognizer.detector, "detect") else None
    assert calls is None  # the cascade has no landmarks: a search near the box follows the face
    follower = FaceFollower(detect_every=4)
    lefts = []
    for index in range(8):
        (face,) = follower.predict(recognizer, frame(40 + 10 * index, side=240))
        assert face.track == 0
        lefts.append(face.box[0])
    assert lefts == sorted(lefts) and lefts[-1] - lefts[0] > 50  # the box moved with the face


def test_carry_moves_the_tracks_found_and_closes_those_missed_too_long():
    tracker = IouTracker(max_missed=2)
    first, second = tracker.update([(0, 0, 50, 50), (200, 0, 50, 50)])
    (moved,) = tracker.carry({0: (10, 0, 50, 50)})
    assert moved is first and moved.box == (10.0, 0.0, 50.0, 50.0) and moved.step == (10.0, 0.0)
    assert second.missed == 1
    tracker.carry({0: (20, 0, 50, 50)})
    tracker.carry({0: (30, 0, 50, 50)})
    assert [track.number for track in tracker.tracks] == [0]  # missed 3 times: closed
    assert tracker.carry({1: (200, 0, 50, 50)}) == []  # a closed track is not revived


def test_detect_every_is_checked_in_one_line(tmp_path):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut_bgr())
    result = run_cli("fer_lightning.predict", f"input={tmp_path / 'astronaut.png'}", f"output={tmp_path / 'f.csv'}",
                     "detect_every=0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: detect_every=0 is not allowed"), line
