"""The Python API: faces in, expressions out.

    from fer_lightning import Recognizer
    recognizer = Recognizer.pretrained()
    for face in recognizer.predict("photo.jpg"):
        print(face.box, face.label, face.probabilities[face.label])

The ``predict`` command goes through the same object, so the API and the command give the same
answer for the same photo.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_lightning.config.checks import check_backend, check_face_settings, check_positive_int, check_threads
from fer_lightning.errors import ConfigError
from fer_lightning.inference.following import DEFAULT_DETECT_EVERY
from fer_lightning.inference.images import as_bgr_or_gray, as_gray_uint8

if TYPE_CHECKING:
    from fer_lightning.checkpoints.predictor import Predictor
    from fer_lightning.inference.faces import Face
    from fer_lightning.inference.onnx_backend import OnnxClassifier
    from fer_lightning.inference.torch_backend import TorchClassifier
    from fer_lightning.inference.video import FrameFaces

# Averaging each face with its mirror image: +0.6 to +1.1 points on PublicTest for the shipped models.
DEFAULT_TTA = "flip"


@dataclass(frozen=True)
class FaceExpression:
    """One face of an image: where it is and what the model sees in it."""

    box: tuple[int, int, int, int]  # x, y, width, height in the image's pixels
    label: str  # the most probable class
    probabilities: dict[str, float]  # every class, summing to 1 (calibrated by the model's temperature)
    crop: np.ndarray  # the (48, 48) uint8 gray face the model was given
    uncertain: bool = False  # the label's probability is below the recognizer's uncertain_below
    track: int | None = None  # in a video: the same number for the same face across frames

    @property
    def score(self) -> float:
        """The probability of ``label``."""
        return self.probabilities[self.label]


@dataclass(frozen=True)
class FaceExplanation:
    """A face and the pixels its predicted class depends on most."""

    face: FaceExpression
    attribution: np.ndarray  # (48, 48) float32, non-negative: how strongly each pixel of the crop counts
    method: str


class Recognizer:
    """A trained model (or ensemble) with a face finder in front of it.

    Build one with :meth:`pretrained` or :meth:`from_checkpoint`. Options:

    - ``detect_faces``: ``None`` (default) finds faces in images larger than 64 px a side and takes
      smaller ones as face crops; ``True`` always runs OpenCV's face detector; ``False`` uses each
      whole image as one face.
    - ``face_detector``: ``yunet`` (the default: YuNet through OpenCV, shipped inside the package,
      with five landmarks a face), ``haar`` (OpenCV's cascade), ``hog`` (dlib's HOG detector) or
      ``cnn`` (dlib's CNN, about a second a photo); ``hog`` and ``cnn`` need the ``faces`` extra.
    - ``align``: faces with landmarks (``yunet``) are turned so the eyes are level and framed as
      FER2013's faces are; False cuts them upright like the other detectors' faces.
    - ``margin``: border around each face cut upright, as a fraction of its size (FER2013 crops show
      a little forehead and chin), from 0 to 1.
    - ``min_face_size``: the smallest face looked for, in pixels.
    - ``uncertain_below``: a face whose label has a lower probability is marked ``uncertain``
      (probabilities are calibrated by the model's temperature, 1.0 when it has none).
    - ``tta``: ``flip`` (the default: average with the mirrored face, +0.6 to +1.1 points on PublicTest
      for the shipped models), ``none`` or ``ten_crop``.
    - ``threads``: ``auto`` (one thread for up to 32 faces, every core for more) or a number.

    ``from_checkpoint`` and ``pretrained`` also take ``backend`` (``torch``, or ``onnxruntime``: the
    model's ONNX graph, exported once and cached, run without PyTorch) and ``precision`` (``fp32``, or
    ``int8`` for the shipped models' quantised graphs with ``backend="onnxruntime"``).
    """

    def __init__(self, model: Predictor | TorchClassifier | OnnxClassifier, *, detect_faces: bool | None = None,
                 face_detector: str = "yunet", align: bool = True, margin: float = 0.1, min_face_size: int = 30,
                 uncertain_below: float = 0.5, tta: str = DEFAULT_TTA, batch_size: int = 256,
                 threads: int | str = "auto") -> None:
        if detect_faces not in (None, True, False):
            raise ConfigError(f"detect_faces={detect_faces!r}: None (auto), True or False")
        check_face_settings(detect_faces, face_detector, margin, min_face_size, tta, align, uncertain_below)
        check_positive_int("batch_size", batch_size)
        check_threads(threads)
        if not hasattr(model, "probabilities"):  # a loaded checkpoint: PyTorch runs it
            from fer_lightning.inference.torch_backend import TorchClassifier

            model = TorchClassifier(model)
        check_backend(model.backend, getattr(model, "precision", "fp32"), tta)
        self.model = model
        self.detect_faces = detect_faces
        self.face_detector = face_detector
        self.align = align
        self.margin = float(margin)
        self.min_face_size = int(min_face_size)
        self.uncertain_below = float(uncertain_below)
        self.tta = tta
        self.batch_size = int(batch_size)
        self.threads = threads
        self._detector = None  # built on first use: a folder of face crops needs none

    # ---------------------------------------------------------------------------- construction
    @classmethod
    def pretrained(cls, name: str | None = None, **options: Any) -> Recognizer:
        """The model shipped with the package (its default one, or ``name``)."""
        from fer_lightning.checkpoints.shipped import PRETRAINED

        return cls.from_checkpoint(PRETRAINED if name is None else f"{PRETRAINED}:{name}", **options)

    @classmethod
    def from_checkpoint(cls, path: str | Path, backend: str = "torch", precision: str = "fp32",
                        **options: Any) -> Recognizer:
        """A model checkpoint (``best.ckpt``), an ensemble file (``ensemble.ckpt``), a run directory or
        ``pretrained[:name]``. Loading is weights-only: a file never runs code."""
        tta = options.get("tta", DEFAULT_TTA)
        check_backend(backend, precision, tta)
        if backend == "onnxruntime":
            from fer_lightning.inference.onnx_backend import OnnxClassifier

            return cls(OnnxClassifier(path, precision, tta), **options)
        from fer_lightning.checkpoints.predictor import load_predictor

        return cls(load_predictor(path), **options)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.model.class_names

    @property
    def backend(self) -> str:
        return self.model.backend

    @property
    def detector(self):
        """The face detector, built by the first image that needed one (None until then)."""
        return self._detector

    @property
    def predictor(self) -> Predictor:
        """The loaded PyTorch model (networks, weights, what the file says of itself)."""
        if self.model.backend != "torch":
            raise ConfigError(f"backend={self.model.backend} runs an ONNX graph: explaining a prediction or "
                              "reading the networks needs backend=torch")
        return self.model.predictor

    # ------------------------------------------------------------------------------- faces
    def find_faces(self, image: Any, color_order: str = "bgr") -> list[Face]:
        """The faces of one image, each cut to a (48, 48) gray crop as the model saw in training.

        ``image``: a file path, a PIL image, or a numpy array: (H, W) gray, (H, W, 3) colour in
        ``color_order`` (``bgr`` as OpenCV reads, or ``rgb``), or (H, W, 4) with alpha; uint8, uint16,
        or floats in [0, 1] (in [0, 255] when a value exceeds 1); other values are refused in one line.
        """
        from fer_lightning.inference.faces import face_detector, find_faces, is_face_crop

        pixels = as_bgr_or_gray(image, color_order)
        if self._detector is None and self.detect_faces is not False and (
                self.detect_faces or not is_face_crop(pixels)):
            self._detector = face_detector(self.face_detector, self.min_face_size)
        return find_faces(pixels, self.detect_faces, self._detector, self.margin, self.min_face_size, self.align)

    def predict_faces(self, faces: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities ``(N, classes)`` of face crops: (N, 48, 48) uint8 gray, or a
        sequence of gray images of any size (each resized to 48x48), in one batched pass; scaled by
        the model's temperature (calibration.py)."""
        from fer_lightning.inference.calibration import apply_temperature
        from fer_lightning.inference.faces import resize_to_model

        if isinstance(faces, np.ndarray) and faces.ndim == 2:
            faces = faces[None]
        crops = [resize_to_model(as_gray_uint8(face)) for face in faces]
        if not crops:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        probabilities = self.model.probabilities(np.stack(crops), self.batch_size, self.tta, self.threads)
        return apply_temperature(probabilities, self.model.temperature)

    def is_uncertain(self, probability: float) -> bool:
        return probability < self.uncertain_below

    def predict(self, image: Any, color_order: str = "bgr") -> list[FaceExpression]:
        """Every face of one image (left to right) with its label and seven probabilities; an
        empty list when no face is found. ``image`` as :meth:`find_faces` takes it."""
        return self.predict_many([image], color_order)[0]

    def predict_many(self, images: Iterable[Any], color_order: str = "bgr") -> list[list[FaceExpression]]:
        """:meth:`predict` for several images, their faces classified in one batched pass."""
        found = [self.find_faces(image, color_order) for image in images]
        crops = [face.image for faces in found for face in faces]
        rows = iter(self.predict_faces(np.stack(crops)) if crops else [])
        return [[self._expression(face, next(rows)) for face in faces] for faces in found]

    def explain(self, image: Any, method: str = "saliency", color_order: str = "bgr") -> list[FaceExplanation]:
        """Each face of ``image`` with an attribution map of its predicted class over its 48x48 crop.

        ``method``: ``saliency`` (gradient magnitude), ``integrated_gradients``, or ``gradcam``
        (a single model only: an ensemble has no one layer to look at).
        """
        import torch

        from fer_lightning.explain.attribution import attribute, check_method

        check_method(method)
        faces = self.predict(image, color_order)
        if not faces:
            return []
        module = self.predictor.module
        if self.predictor.kind == "model":
            network = module.members[0]  # logits, as the training-time saliency maps explain
        elif method == "gradcam":
            raise ConfigError("method=gradcam explains one network; an ensemble takes saliency or integrated_gradients")
        else:
            network = module
        crops = torch.from_numpy(np.stack([face.crop for face in faces])).float().div(255.0).unsqueeze(1)
        targets = [self.class_names.index(face.label) for face in faces]
        maps = attribute(network, crops, targets, method).numpy()
        return [FaceExplanation(face, attribution, method) for face, attribution in zip(faces, maps)]

    def analyze_video(self, path: str | Path, every_n_frames: int = 1, annotated: str | Path | None = None,
                      track_smoothing: float = 0.5,
                      detect_every: int = DEFAULT_DETECT_EVERY) -> list[FrameFaces]:
        """The faces of every n-th frame of a video file, with each frame's time in seconds. Each face
        keeps a ``track`` number across frames, its probabilities smoothed over the track
        (``track_smoothing``: the weight of the past, 0 for none). Faces are detected on every
        ``detect_every``-th analysed frame and followed in between (1: detected on every frame). With
        ``annotated``, also write the video (MP4) with every face boxed and labelled."""
        from fer_lightning.inference.video import analyze_video

        return analyze_video(self, path, every_n_frames, annotated, track_smoothing, detect_every)

    def expression(self, box: Any, probabilities: np.ndarray, crop: np.ndarray,
                   track: int | None = None) -> FaceExpression:
        """A face's answer from its (calibrated) probabilities, marked uncertain as this recognizer marks."""
        names = self.class_names
        best = int(np.argmax(probabilities))
        return FaceExpression(
            box=tuple(int(v) for v in box),  # type: ignore[arg-type]
            label=names[best],
            probabilities={name: float(p) for name, p in zip(names, probabilities)},
            crop=crop,
            uncertain=self.is_uncertain(float(probabilities[best])),
            track=track,
        )

    def _expression(self, face: Face, probabilities: np.ndarray) -> FaceExpression:
        return self.expression(face.box, probabilities, face.image)


__all__ = ["FaceExplanation", "FaceExpression", "Recognizer"]
