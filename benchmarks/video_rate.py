"""Figure 12: frames a second at 640x480, through the two paths that follow faces through frames:
the demo's live webcam (``web/live.py``: each frame as the browser sends it) and ``analyze_video`` on
an MP4 clip (decoding included). Detection (YuNet) on every frame, or every 5th with the faces
followed in between (``detect_every``); one face or two; the shipped model on torch (predict's default),
ONNX Runtime fp32 (the demo's live default) and int8, tta=flip. Everything runs on one thread, as the demo's answers do.

The frames: scikit-image's astronaut (one face), or two of her side by side, moving 4 px a frame back
and forth across a grey 640x480 picture, as a webcam's picture moves.

``python -m benchmarks.video_rate [--frames N]`` prints the same table on its own.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.report import figure, render_markdown
from benchmarks.sizes import FULL, Sizes

VARIANTS = tuple(  # path, backend, precision, faces, detect_every
    (path, backend, precision, faces, detect_every)
    for path, backend, precision, face_counts in (("live", "torch", "fp32", (1, 2)),
                                                  ("live", "onnxruntime", "fp32", (1, 2)),  # the demo's default
                                                  ("video", "torch", "fp32", (2,)),  # predict's default
                                                  ("video", "onnxruntime", "int8", (2,)))
    for faces in face_counts for detect_every in (1, 5))
TARGET_FPS = 30


def frames(count: int, faces: int) -> list[np.ndarray]:
    """``count`` RGB 640x480 frames with ``faces`` astronauts moving 4 px a frame."""
    from skimage import data

    face = cv2.resize(data.astronaut()[20:260, 110:350], (200, 200))  # RGB, head and shoulders
    pictures = []
    for index in range(count):
        canvas = np.full((480, 640, 3), 110, np.uint8)
        shift = abs((index * 4) % 200 - 100)  # back and forth
        for number in range(faces):
            x = 20 + shift + number * 300
            canvas[140:340, x:x + 200] = face
        pictures.append(canvas)
    return pictures


def write_clip(pictures: list[np.ndarray], path: Path, fps: float = 30.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    for picture in pictures:
        writer.write(np.ascontiguousarray(picture[:, :, ::-1]))
    writer.release()
    return path


def live_seconds(recognizer, pictures: list[np.ndarray], detect_every: int) -> tuple[list[float], int, list]:
    """Seconds each frame took through the live stream's path, the tracks it opened, each frame's probabilities."""
    from fer_lightning.inference.following import FaceFollower
    from fer_lightning.web.live import LIVE_SMOOTHING, LiveSession, analyze_frame

    session = LiveSession(follower=FaceFollower(detect_every, LIVE_SMOOTHING))
    analyze_frame(recognizer, pictures[0], LiveSession())  # warm-up: the first call builds the detector
    seconds, probabilities = [], []
    for picture in pictures:
        started = time.perf_counter()
        analyze_frame(recognizer, picture, session)
        seconds.append(time.perf_counter() - started)
        probabilities.append([list(face.probabilities.values()) for face in session.faces])
    return seconds, session.follower.tracker.next_number, probabilities


def video_seconds(recognizer, clip: Path, detect_every: int) -> tuple[list[float], int, list]:
    """The whole clip through analyze_video (decoding included) as one mean time a frame, its tracks,
    each frame's probabilities."""
    recognizer.analyze_video(clip, detect_every=detect_every)  # warm-up
    started = time.perf_counter()
    analysed = recognizer.analyze_video(clip, detect_every=detect_every)
    total = time.perf_counter() - started
    tracks = {face.track for frame in analysed for face in frame.faces}
    probabilities = [[list(face.probabilities.values()) for face in frame.faces] for frame in analysed]
    return [total / max(len(analysed), 1)] * max(len(analysed), 1), len(tracks), probabilities


def difference(frames_a: list, frames_b: list) -> float:
    """Mean total variation distance, in points, between the faces of two runs over the same frames
    (faces in the same left-to-right order); NaN when a frame's faces differ in number."""
    distances = []
    for faces_a, faces_b in zip(frames_a, frames_b):
        if len(faces_a) != len(faces_b):
            return float("nan")
        distances += [50 * float(np.abs(np.subtract(a, b)).sum()) for a, b in zip(faces_a, faces_b)]
    return float(np.mean(distances)) if distances else float("nan")


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    from fer_lightning.inference.recognizer import Recognizer

    count = sizes.video_frames
    rows = []
    every_frame: dict[tuple, list] = {}  # the probabilities found with detection on every frame
    with tempfile.TemporaryDirectory() as scratch:
        clips = {faces: write_clip(frames(count, faces), Path(scratch) / f"{faces}.mp4") for faces in (1, 2)}
        pictures = {faces: frames(count, faces) for faces in (1, 2)}
        recognizers: dict[tuple[str, str], Recognizer] = {}
        for path, backend, precision, faces, detect_every in VARIANTS:
            key = (backend, precision)
            if key not in recognizers:
                recognizers[key] = Recognizer.pretrained(backend=backend, precision=precision, threads=1)
            recognizer = recognizers[key]
            if path == "live":
                seconds, tracks, found = live_seconds(recognizer, pictures[faces], detect_every)
            else:
                seconds, tracks, found = video_seconds(recognizer, clips[faces], detect_every)
            reference = every_frame.setdefault((path, key, faces), found)
            median = statistics.median(seconds)
            rows.append({"path": f"{path}, {backend} {precision}", "faces": faces, "detect_every": detect_every,
                         "ms_median": 1000 * median, "ms_p90": 1000 * float(np.percentile(seconds, 90)),
                         "fps": len(seconds) / sum(seconds), "tracks": tracks,
                         "difference": difference(found, reference)})
    columns = [
        ("path", "path", "{}"), ("faces", "faces", "{}"), ("detect_every", "detect every", "{}"),
        ("ms_median", "ms a frame (median)", "{:.1f}"), ("ms_p90", "p90 ms", "{:.1f}"),
        ("fps", "frames/s", "{:.1f}"), ("tracks", "tracks opened", "{}"),
        ("difference", "probabilities off detecting every frame, points", "{:.2f}"),
    ]
    notes = [(
        f"{count} frames of 640x480 a row; frames/s = frames / total time (the video rows: the whole clip "
        "through analyze_video, decoding included, so their median and p90 are that mean). One track a face "
        "means the faces were followed without a break; the last column is the mean total variation distance "
        "(half the summed absolute differences, in points of probability) between each face's smoothed "
        "probabilities and those of the same path's run that detects on every frame. "
        f"Target: {TARGET_FPS} frames/s."
    )]
    summary = {f"{row['path']}, {row['faces']} face(s), detect every {row['detect_every']}": round(row["fps"], 1)
               for row in rows}
    return figure("12. Video and the live webcam at 640x480: frames a second", columns, rows, summary, notes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.video_rate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=FULL.video_frames)
    args = parser.parse_args(argv)
    from dataclasses import replace

    print(render_markdown("video_rate", run(replace(FULL, video_frames=args.frames), {})))


if __name__ == "__main__":
    main()
