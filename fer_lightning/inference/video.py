"""Expressions in a video, frame by frame: the Recognizer on every n-th frame, faces detected on every
``detect_every``-th of those and followed in between (following.py), each with a track number and its
probabilities smoothed over the track; a per-frame table, a per-track summary, and optionally a copy of
the video with each face boxed and labelled."""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fer_lightning.errors import ConfigError, DataFormatError
from fer_lightning.files import atomic_write
from fer_lightning.inference.following import DEFAULT_DETECT_EVERY, FaceFollower

if TYPE_CHECKING:
    from fer_lightning.inference.recognizer import FaceExpression, Recognizer

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
# The per-frame table's columns before and after the class probabilities.
VIDEO_COLUMNS = ["time", "frame", "face", "x", "y", "w", "h", "label"]
VIDEO_LAST_COLUMNS = ["uncertain", "track"]
# The per-track summary's columns before the mean probabilities.
TRACK_COLUMNS = ["track", "first_time", "last_time", "frames", "label"]


def is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


@dataclass(frozen=True)
class FrameFaces:
    frame: int  # 0-based index in the video
    time: float  # seconds from the start
    faces: list[FaceExpression]


def read_frames(path: Path, every_n_frames: int = 1) -> Iterator[tuple[int, float, float, np.ndarray]]:
    """(frame index, seconds, frame rate, BGR frame) of every n-th frame, decoded by OpenCV (FFmpeg)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise DataFormatError(f"{path}: OpenCV cannot open this video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
    announced = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every_n_frames == 0:
                yield index, (index / fps if fps > 0 else float(index)), fps, frame
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise DataFormatError(f"{path}: no frame could be decoded")
    if 0 < index < announced:
        # A cut-off file: what was read is reported, and said to be only part of the video.
        log.warning("%s: only %d of the %d frames its header announces could be decoded (a truncated or "
                    "damaged file?); the table covers those %d", path, index, announced, index)


def analyze_video(recognizer: Recognizer, path: str | Path, every_n_frames: int = 1,
                  annotated: str | Path | None = None, track_smoothing: float = 0.5,
                  detect_every: int = DEFAULT_DETECT_EVERY) -> list[FrameFaces]:
    """Every n-th frame's faces, tracked and smoothed (``track_smoothing``: the weight of a track's
    past, 0 for none), detected on every ``detect_every``-th analysed frame and followed in between;
    with ``annotated``, also write the video with the faces drawn (every frame is written; frames
    between two analysed ones keep the last boxes)."""
    from fer_lightning.inference.faces import annotate, caption

    path = Path(path)
    if every_n_frames < 1:
        raise DataFormatError(f"every_n_frames={every_n_frames}: a whole number >= 1")
    if isinstance(track_smoothing, bool) or not isinstance(track_smoothing, (int, float)) or \
            not 0 <= track_smoothing < 1:
        raise ConfigError(f"track_smoothing={track_smoothing!r}: a number from 0 (no smoothing) up to, not "
                          "including, 1")
    results: list[FrameFaces] = []
    follower = FaceFollower(detect_every, float(track_smoothing))
    writer = AnnotatedVideo(Path(annotated)) if annotated is not None else None
    finished = False
    try:
        for index, seconds, fps, frame in read_frames(path, 1 if writer else every_n_frames):
            if index % every_n_frames == 0:
                results.append(FrameFaces(index, seconds, follower.predict(recognizer, frame)))
            if writer is not None:
                faces = results[-1].faces
                writer.write(fps, annotate(frame, [f.box for f in faces],
                                           [f"{f.track}: {caption(vars(f))}" for f in faces]))
        finished = True
    finally:
        if writer is not None:
            writer.close(keep=finished)
    return results


class AnnotatedVideo:
    """An MP4 (MPEG-4 part 2, which every OpenCV build writes) at the source's frame rate."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.partial = target.with_name(f".{target.stem}.partial{target.suffix}")
        self.writer = None

    def write(self, fps: float, frame: np.ndarray) -> None:
        import cv2

        if self.writer is None:  # opened on the first frame: its size and the source's rate are known then
            self.target.parent.mkdir(parents=True, exist_ok=True)
            height, width = frame.shape[:2]
            self.writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*"mp4v"), fps or 25.0,
                                          (width, height))
            if not self.writer.isOpened():
                raise DataFormatError(f"{self.target}: OpenCV cannot write an MP4 video here")
        self.writer.write(frame)

    def close(self, keep: bool) -> None:
        if self.writer is not None:
            self.writer.release()
        # Whole or not at all, like every other output.
        if keep and self.partial.exists():
            self.partial.replace(self.target)
        else:
            self.partial.unlink(missing_ok=True)


def write_video_table(frames: list[FrameFaces], class_names: tuple[str, ...], output: Path) -> None:
    """One row per face per analysed frame (a frame without faces: one row with empty cells); the
    probabilities are the track's smoothed ones."""
    empty = len(VIDEO_COLUMNS) - 2 + len(class_names) + len(VIDEO_LAST_COLUMNS)
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*VIDEO_COLUMNS, *class_names, *VIDEO_LAST_COLUMNS])
        for frame in frames:
            if not frame.faces:
                writer.writerow([f"{frame.time:.3f}", frame.frame, *[""] * empty])
            for number, face in enumerate(frame.faces):
                writer.writerow([f"{frame.time:.3f}", frame.frame, number, *face.box, face.label,
                                 *[f"{face.probabilities[name]:.6f}" for name in class_names],
                                 int(face.uncertain), face.track])


@dataclass
class TrackSummary:
    track: int
    first_time: float
    last_time: float
    frames: int  # analysed frames the face was found in
    label: str  # the label it had in most of them
    probabilities: dict[str, float]  # the mean over those frames


def summarize_tracks(frames: list[FrameFaces], class_names: tuple[str, ...]) -> list[TrackSummary]:
    from collections import Counter

    seen: dict[int, list[tuple[float, FaceExpression]]] = {}
    for frame in frames:
        for face in frame.faces:
            seen.setdefault(int(face.track if face.track is not None else -1), []).append((frame.time, face))
    summaries = []
    for track, entries in sorted(seen.items()):
        labels = Counter(face.label for _, face in entries)
        mean = np.mean([[face.probabilities[name] for name in class_names] for _, face in entries], axis=0)
        summaries.append(TrackSummary(track, entries[0][0], entries[-1][0], len(entries), labels.most_common(1)[0][0],
                                      {name: float(p) for name, p in zip(class_names, mean)}))
    return summaries


def track_table_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_tracks.csv")


def write_track_table(summaries: list[TrackSummary], class_names: tuple[str, ...], output: Path) -> None:
    """One row per track: when it was first and last seen, its most frequent label, mean probabilities."""
    with atomic_write(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*TRACK_COLUMNS, *class_names])
        for summary in summaries:
            writer.writerow([summary.track, f"{summary.first_time:.3f}", f"{summary.last_time:.3f}", summary.frames,
                             summary.label, *[f"{summary.probabilities[name]:.6f}" for name in class_names]])
