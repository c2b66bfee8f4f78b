"""python -m benchmarks.live_stream [--frames N] [--faces 1|2]: frames a second the demo's live webcam
answers at 640x480 with the shipped model (``fer_lightning/web/live.py``: detection, alignment,
classification with tta=flip, tracking, drawing), on the threads it gets here (OMP_NUM_THREADS=1 as the
demo's test runs; YuNet always on one).

The frames: scikit-image's astronaut (one face), or two of her side by side, moving a few pixels a
frame across a 640x480 picture, as a webcam's picture moves.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import cv2
import numpy as np


def frames(count: int, faces: int) -> list[np.ndarray]:
    from skimage import data

    face = cv2.resize(data.astronaut()[20:260, 110:350], (200, 200))  # RGB, head and shoulders
    pictures = []
    for index in range(count):
        canvas = np.full((480, 640, 3), 110, np.uint8)
        shift = abs((index * 4) % 200 - 100)  # back and forth, 4 px a frame
        for number in range(faces):
            x = 20 + shift + number * 300
            canvas[140:340, x:x + 200] = face
        pictures.append(canvas)
    return pictures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.live_stream", description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--faces", type=int, default=1, choices=(1, 2))
    parser.add_argument("--backend", default="torch", choices=("torch", "onnxruntime"))
    parser.add_argument("--precision", default="fp32", choices=("fp32", "int8"))
    args = parser.parse_args(argv)

    from fer_lightning.inference.recognizer import Recognizer
    from fer_lightning.web.live import LiveSession, analyze_frame

    recognizer = Recognizer.pretrained(backend=args.backend, precision=args.precision)
    session = LiveSession()
    pictures = frames(args.frames, args.faces)
    analyze_frame(recognizer, pictures[0], session)  # warm-up: the first call builds the detector
    seconds = []
    found = 0
    for picture in pictures:
        started = time.perf_counter()
        _, probabilities, session = analyze_frame(recognizer, picture, session)
        seconds.append(time.perf_counter() - started)
        found += probabilities is not None
    median = statistics.median(seconds)
    print(json.dumps({"backend": f"{args.backend} {args.precision}", "frames": len(pictures), "faces_per_frame": args.faces, "frames_with_a_face": found,
                      "ms_median": round(1000 * median, 1), "ms_p90": round(1000 * float(np.percentile(seconds, 90)), 1),
                      "fps_median": round(1 / median, 1), "fps_overall": round(len(seconds) / sum(seconds), 1),
                      "tracks": session.tracker.next_number}, indent=2))


if __name__ == "__main__":
    main()
