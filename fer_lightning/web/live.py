"""The demo's live webcam: each frame the browser streams gets its faces boxed and labelled, each face
followed from frame to frame with a track number and its probabilities smoothed over the track, as a
video's faces are (inference/following.py: detection every few frames, a small look in between). No
saliency map: a frame must be answered within the stream's interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from fer_lightning.inference.following import FaceFollower
    from fer_lightning.inference.recognizer import Recognizer

# The weight of a track's past in the stream (as predict's track_smoothing for videos).
LIVE_SMOOTHING = 0.5
# Frames wider than this are shrunk first: the stream asks for 640x480, a browser may send more.
LIVE_MAX_SIDE = 640


@dataclass
class LiveSession:
    """One visitor's stream: what follows their faces from frame to frame, and the model it was for."""

    follower: FaceFollower | None = None
    model: str | None = None
    frames: int = 0
    faces: list[Any] = field(default_factory=list)


def analyze_frame(recognizer: Recognizer, frame: Any, session: LiveSession | None = None, model: str | None = None):
    """(the RGB frame with faces boxed and labelled, the largest face's probabilities or None, the
    session) for one streamed RGB frame; ``model`` names the recognizer's model (another one than the
    session's last starts new tracks)."""
    import cv2

    from fer_lightning.inference.faces import annotate, caption
    from fer_lightning.inference.following import FaceFollower
    from fer_lightning.inference.images import as_bgr_or_gray

    session = session or LiveSession()
    if frame is None:
        return None, None, session
    bgr = as_bgr_or_gray(frame, "rgb")
    if max(bgr.shape[:2]) > LIVE_MAX_SIDE:
        scale = LIVE_MAX_SIDE / max(bgr.shape[:2])
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if session.follower is None or session.model != model:
        session.follower, session.model = FaceFollower(smoothing=LIVE_SMOOTHING), model
    faces = session.follower.predict(recognizer, bgr)
    session.frames += 1
    session.faces = faces
    drawn = annotate(bgr, [f.box for f in faces], [f"{f.track}: {caption(vars(f))}" for f in faces])
    largest = max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None
    return np.ascontiguousarray(drawn[:, :, ::-1]), (largest.probabilities if largest else None), session
