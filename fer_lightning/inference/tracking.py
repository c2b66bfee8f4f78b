"""Faces followed through a video: an IoU tracker gives each face a track number that it keeps from
frame to frame, and each track's probabilities are smoothed by an exponential moving average so the
label does not flicker with every frame's noise.

The tracker compares each face with where each track is expected next (its last box moved by its
last step), so two faces that pass each other keep their numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

Box = tuple[int, int, int, int]

# A face continues a track when its box overlaps the track's expected box at least this much.
MIN_IOU = 0.3
# A track unseen for this many analysed frames is closed: a face that comes back later gets a new one.
MAX_MISSED = 5


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    width = min(ax + aw, bx + bw) - max(ax, bx)
    height = min(ay + ah, by + bh) - max(ay, by)
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / (aw * ah + bw * bh - inter)


@dataclass
class Track:
    number: int
    box: tuple[float, float, float, float]
    step: tuple[float, float] = (0.0, 0.0)  # the last move of the box's corner, per analysed frame
    missed: int = 0
    smoothed: np.ndarray | None = field(default=None, repr=False)

    def moved_to(self, box: Sequence[float]) -> Track:
        """The track seen again at ``box``: its step is the move since it was last seen, per frame."""
        ahead = self.missed + 1
        self.step = ((box[0] - self.box[0]) / ahead, (box[1] - self.box[1]) / ahead)
        self.box, self.missed = tuple(float(v) for v in box), 0
        return self

    def expected(self) -> tuple[float, float, float, float]:
        x, y, w, h = self.box
        ahead = self.missed + 1
        return (x + self.step[0] * ahead, y + self.step[1] * ahead, w, h)


class IouTracker:
    """Track numbers for the faces of successive frames (0, 1, ... in order of first appearance)."""

    def __init__(self, min_iou: float = MIN_IOU, max_missed: int = MAX_MISSED) -> None:
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self.next_number = 0

    def update(self, boxes: Sequence[Box]) -> list[Track]:
        """The track of each box, in the order given; greedy matching, best overlap first."""
        pairs = sorted(((iou(track.expected(), box), t, b) for t, track in enumerate(self.tracks)
                        for b, box in enumerate(boxes)), reverse=True)
        assigned: dict[int, Track] = {}
        used: set[int] = set()
        for overlap, t, b in pairs:
            if overlap < self.min_iou:
                break
            if t in used or b in assigned:
                continue
            assigned[b] = self.tracks[t].moved_to(boxes[b])
            used.add(t)
        self._miss_all_but(used)
        for b, box in enumerate(boxes):
            if b not in assigned:
                assigned[b] = Track(self.next_number, tuple(float(v) for v in box))
                self.next_number += 1
                self.tracks.append(assigned[b])
        return [assigned[b] for b in range(len(boxes))]

    def carry(self, found: dict[int, Box]) -> list[Track]:
        """A frame in which the known faces were looked for near where they were instead of detected:
        ``found`` maps a track's number to its new box; the other tracks count a miss. The tracks
        found, in the order given."""
        open_tracks = {track.number: track for track in self.tracks}
        moved = [open_tracks[number].moved_to(box) for number, box in found.items() if number in open_tracks]
        self._miss_all_but({t for t, track in enumerate(self.tracks) if track.number in found})
        return moved

    def _miss_all_but(self, seen: set[int]) -> None:
        for t, track in enumerate(self.tracks):
            if t not in seen:
                track.missed += 1
        self.tracks = [track for track in self.tracks if track.missed <= self.max_missed]


def smooth(track: Track, probabilities: np.ndarray, weight: float) -> np.ndarray:
    """The track's moving average after this frame: ``weight`` of the past, the rest from now
    (weight 0: this frame alone). Still a probability distribution, as an average of them."""
    now = np.asarray(probabilities, dtype=np.float64)
    track.smoothed = now if track.smoothed is None else weight * track.smoothed + (1 - weight) * now
    return track.smoothed
