"""What the demo page shows for one photo, computed without any web library: the photo with each
face boxed and labelled, the main face's probabilities, a panel per face (its crop under the saliency
map, and its seven probabilities as bars), and a message when there is nothing to show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_lightning.errors import FerError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from fer_lightning.inference.recognizer import Recognizer

# Larger photos are shrunk before detection: a phone picture of 4000 px gains nothing but seconds.
MAX_SIDE = 1600


@dataclass
class PhotoAnalysis:
    annotated: np.ndarray | None  # RGB, faces boxed and labelled
    main_face: dict[str, float]  # class -> probability of the largest face ({} without faces)
    panels: Figure | None  # a panel per face: crop with saliency, probabilities as bars
    message: str  # what the page says above the results


def analyze_photo(recognizer: Recognizer, image: Any, method: str = "saliency") -> PhotoAnalysis:
    """The page's answer for one photo: an uploaded file (a Path, decoded as predict decodes files) or
    an RGB numpy array (a webcam snapshot). Messages name an uploaded file by its name alone."""
    import cv2

    from fer_lightning.inference.faces import annotate
    from fer_lightning.inference.images import as_bgr_or_gray
    from fer_lightning.viz.figures import face_panels_figure

    if image is None:
        return PhotoAnalysis(None, {}, None, "Upload a photo or take one with the webcam.")
    try:
        # Once, as the API reads images: (H, W) gray or (H, W, 3) BGR uint8, whatever came in.
        bgr = as_bgr_or_gray(image, "rgb")  # a file is read as predict reads it; an array is the page's RGB
        if max(bgr.shape[:2]) > MAX_SIDE:
            scale = MAX_SIDE / max(bgr.shape[:2])
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        explained = recognizer.explain(bgr, method=method)
    except FerError as error:
        problem = str(error)
        if isinstance(image, Path):  # the server's upload folder is none of the visitor's business
            problem = problem.replace(str(image), image.name)
        return PhotoAnalysis(None, {}, None, f"**Cannot read this image:** {problem}")
    shown = annotate(bgr, [], [])[:, :, ::-1]  # RGB for the page, gray made colour
    if not explained:
        return PhotoAnalysis(shown, {}, None, "**No face found.** Try a photo where the face is frontal, "
                             "well lit and at least 30 pixels wide.")
    faces = [e.face for e in explained]
    drawn = annotate(bgr, [f.box for f in faces], [f"{n + 1}: {f.label} {f.score:.2f}{' uncertain' * f.uncertain}"
                                                   for n, f in enumerate(faces)])
    largest = max(faces, key=lambda f: f.box[2] * f.box[3])
    panels = face_panels_figure([f.crop for f in faces], [e.attribution for e in explained],
                                [f.probabilities for f in faces], method)
    count = f"{len(faces)} face{'s' if len(faces) > 1 else ''}"
    doubt = ", uncertain: below the page's threshold" if largest.uncertain else ""
    return PhotoAnalysis(drawn[:, :, ::-1], largest.probabilities, panels,
                         f"{count} found; the largest looks **{largest.label}** ({largest.score:.0%}{doubt}).")
