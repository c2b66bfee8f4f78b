"""Procedural 48x48 grayscale faces whose seven expressions differ only in mouth, eyes and brows.

This is the project's default data: training, tests and saliency checks run on it without any
download. Everything a class does not decide (pose, scale, face shape, hair, skin, lighting, noise)
is drawn at random per image, so a model has to look at the expression parts to classify. Because
the generator knows where it drew each part, it also returns per-image part masks, which lets
saliency maps be checked against where the class evidence really is.

Faces are drawn with OpenCV at twice the output size (sub-pixel, anti-aliased), posed with one
affine warp and downsampled with area interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

from fer_lightning.classes import CLASS_NAMES, IMAGE_SIZE, NUM_CLASSES

PART_NAMES: tuple[str, ...] = ("mouth", "eyes", "brows")

_SUPERSAMPLE = 2  # drawing canvas is this many times the output size
_SHIFT_BITS = 4  # OpenCV fixed-point bits: coordinates are drawn to 1/16 of a canvas pixel
_CANVAS = IMAGE_SIZE * _SUPERSAMPLE
_CENTER = IMAGE_SIZE / 2.0
_MOUTH_KNOTS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])  # where mouth offsets are given, in half widths
_MOUTH_SAMPLES = np.linspace(-1.0, 1.0, 17)
# The degree-4 polynomial through the five knots (smooth, exact at the knots) is linear in the knot
# values, so interpolating is one matrix product: Vandermonde(samples) @ inverse(Vandermonde(knots)).
_MOUTH_INTERPOLATION = np.vander(_MOUTH_SAMPLES, 5) @ np.linalg.inv(np.vander(_MOUTH_KNOTS, 5))
_BROW_STEPS = np.linspace(0.0, 1.0, 9)  # inner (0) to outer (1) brow end
_MASK_THRESHOLD = 40  # of 255: an output pixel belongs to a part when the part covers ~1/6 of it


@dataclass(frozen=True)
class Expression:
    """The shape of the expression parts, in output pixels (+y is down).

    Brow offsets move the inner / outer brow end from its resting height; ``brow_arch`` lifts the
    middle. Mouth offsets give the upper and lower lip heights at ``_MOUTH_KNOTS`` (left to right);
    where the lower lip lies below the upper one the mouth is open.
    """

    eye_open: float  # eye half-height as a fraction of the eye half-width
    brow_inner: float
    brow_outer: float
    brow_arch: float
    mouth_half_width: float
    mouth_upper: tuple[float, float, float, float, float]
    mouth_lower: tuple[float, float, float, float, float]


def _lip(corner: float, middle: float) -> tuple[float, float, float, float, float]:
    """A symmetric parabolic lip through its corners and its middle."""
    values = middle + (corner - middle) * _MOUTH_KNOTS**2
    return tuple(float(v) for v in values)  # type: ignore[return-value]


EXPRESSIONS: dict[str, Expression] = {
    # Brows pulled down toward the middle, narrowed eyes, tight flat mouth with lowered corners.
    "angry": Expression(0.32, 2.2, -1.0, 0.0, 4.2, _lip(0.9, 0.0), _lip(0.9, 0.0)),
    # Squint, lowered brows, upper lip raised on one side: an asymmetric, wavy, slightly open mouth.
    "disgust": Expression(
        0.28, 1.3, 0.4, 0.0, 6.0, (-2.2, -2.2, -0.4, 0.4, 0.8), (-0.6, 0.2, 0.4, 0.6, 0.8)
    ),
    # Brows raised (inner ends most), wide eyes, mouth stretched sideways and open.
    "fear": Expression(0.85, -2.4, -1.0, 0.2, 7.2, _lip(0.8, -0.8), _lip(0.8, 2.4)),
    # Smile: mouth corners up, open crescent; eyes slightly narrowed by the cheeks.
    "happy": Expression(0.45, -0.2, -0.2, 0.6, 6.6, _lip(-2.6, 0.2), _lip(-2.6, 2.4)),
    # Inner brow ends raised, corners of the mouth turned down.
    "sad": Expression(0.45, -2.4, 0.9, 0.0, 5.4, _lip(2.4, -0.4), _lip(2.4, -0.4)),
    # High arched brows, wide eyes, round open mouth.
    "surprise": Expression(
        0.90, -2.8, -2.4, 1.8, 3.3, (0.0, -2.6, -3.1, -2.6, 0.0), (0.0, 3.0, 3.6, 3.0, 0.0)
    ),
    # Flat brows, normal eyes, straight closed mouth.
    "neutral": Expression(0.55, 0.0, 0.0, 0.4, 5.4, _lip(0.0, 0.0), _lip(0.0, 0.0)),
}
assert tuple(EXPRESSIONS) == CLASS_NAMES


@dataclass(frozen=True)
class SyntheticFaces:
    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64 in 0..6
    part_masks: np.ndarray | None  # (N, 3, 48, 48) bool, order PART_NAMES; None when not asked for


@dataclass(frozen=True)
class _Face:
    """Everything needed to draw one face, in output pixel units before the pose warp."""

    expression: Expression
    mirror: bool  # mirror the mouth (asymmetric expressions happen on either side)
    background: float
    skin: float
    hair: float
    feature_darkness: float  # brows, lid lines and lips as a fraction of the skin tone
    center_y: float
    face_rx: float
    face_ry: float
    fringe_y: float
    eye_y: float
    eye_dx: float
    eye_rx: float
    eye_open_delta: tuple[float, float]  # left / right eye
    brow_gap: float
    brow_thickness: float
    nose_length: float
    mouth_y: float
    lip_thickness: float
    angle: float
    scale: float
    shift: tuple[float, float]
    contrast: float
    brightness: float
    gradient: float
    gradient_angle: float
    noise_sigma: float


def _fixed(value: float) -> int:
    return int(round(value * _SUPERSAMPLE * (1 << _SHIFT_BITS)))


def _points(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    pts = np.empty((len(xs), 1, 2), np.float64)
    pts[:, 0, 0], pts[:, 0, 1] = xs, ys
    return np.rint(pts * (_SUPERSAMPLE * (1 << _SHIFT_BITS))).astype(np.int32)


def _thickness(px: float) -> int:
    return max(1, int(round(px * _SUPERSAMPLE)))


def _ellipse(
    canvas: np.ndarray, cx: float, cy: float, rx: float, ry: float, color: float, thickness: int = -1
) -> None:
    cv2.ellipse(
        canvas, (_fixed(cx), _fixed(cy)), (_fixed(max(rx, 0.05)), _fixed(max(ry, 0.05))),
        0.0, 0.0, 360.0, float(color), thickness, cv2.LINE_AA, _SHIFT_BITS,
    )


def _polyline(canvas: np.ndarray, pts: np.ndarray, color: float, thickness_px: float) -> None:
    cv2.polylines(canvas, [pts], False, float(color), _thickness(thickness_px), cv2.LINE_AA, _SHIFT_BITS)


def _lip_curves(face: _Face) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x positions and upper / lower lip heights of the mouth, smoothly interpolated."""
    expression = face.expression
    upper, lower = np.asarray(expression.mouth_upper), np.asarray(expression.mouth_lower)
    if face.mirror:
        upper, lower = upper[::-1], lower[::-1]
    ys_upper = _MOUTH_INTERPOLATION @ upper
    ys_lower = np.maximum(_MOUTH_INTERPOLATION @ lower, ys_upper)  # lips never cross
    xs = _CENTER + _MOUTH_SAMPLES * expression.mouth_half_width
    return xs, face.mouth_y + ys_upper, face.mouth_y + ys_lower


def _draw_mouth(canvas: np.ndarray, face: _Face, ink: float, inside: float, grow: float = 0.0) -> None:
    xs, upper, lower = _lip_curves(face)
    if float(np.max(lower - upper)) > 0.4:
        outline = np.concatenate([_points(xs, upper), _points(xs[::-1], lower[::-1])])
        cv2.fillPoly(canvas, [outline], float(inside), cv2.LINE_AA, _SHIFT_BITS)
        _polyline(canvas, _points(xs, lower), ink, face.lip_thickness + grow)
    _polyline(canvas, _points(xs, upper), ink, face.lip_thickness + grow)


def _draw_eyes(canvas: np.ndarray, face: _Face, ink: float, white: float, grow: float = 0.0) -> None:
    for side, delta in zip((-1.0, 1.0), face.eye_open_delta):
        cx = _CENTER + side * face.eye_dx
        ry = face.eye_rx * max(face.expression.eye_open + delta, 0.12)
        _ellipse(canvas, cx, face.eye_y, face.eye_rx + grow, ry + grow, white)
        # The iris is cut by the lids: its height never exceeds the eye opening.
        _ellipse(canvas, cx, face.eye_y, min(1.5, face.eye_rx * 0.5) + grow, min(1.5, ry) + grow, ink)
        _ellipse(canvas, cx, face.eye_y, face.eye_rx + grow, ry + grow, ink, _thickness(0.6 + grow))


def _draw_brows(canvas: np.ndarray, face: _Face, ink: float, grow: float = 0.0) -> None:
    e = face.expression
    t = _BROW_STEPS
    rest_y = face.eye_y - face.brow_gap
    ys = rest_y + e.brow_inner * (1 - t) + e.brow_outer * t - e.brow_arch * 4 * t * (1 - t)
    for side in (-1.0, 1.0):
        inner_x = _CENTER + side * (face.eye_dx - face.eye_rx * 0.9)
        outer_x = _CENTER + side * (face.eye_dx + face.eye_rx * 1.25)
        xs = inner_x + (outer_x - inner_x) * t
        _polyline(canvas, _points(xs, ys), ink, face.brow_thickness + grow)


def _draw_head(canvas: np.ndarray, face: _Face) -> None:
    """Class-independent parts: neck, ears, hair, face outline, nose."""
    neck_top = face.center_y + face.face_ry * 0.6
    cv2.rectangle(
        canvas, (_fixed(_CENTER - face.face_rx * 0.55), _fixed(neck_top)),
        (_fixed(_CENTER + face.face_rx * 0.55), _fixed(IMAGE_SIZE + 2)),
        float(face.skin * 0.85), -1, cv2.LINE_AA, _SHIFT_BITS,
    )
    hair_y = face.center_y - face.face_ry * 0.25
    _ellipse(canvas, _CENTER, hair_y, face.face_rx + 1.8, face.face_ry * 0.9, face.hair)
    for side in (-1.0, 1.0):
        _ellipse(canvas, _CENTER + side * face.face_rx, face.eye_y + 2.5, 2.2, 3.5, face.skin * 0.92)
    _ellipse(canvas, _CENTER, face.center_y, face.face_rx, face.face_ry, face.skin)
    # Fringe: hair over the forehead, always ending above the highest a brow can go.
    top = face.center_y - face.face_ry
    fringe_ry = max((face.fringe_y - top) / 2.0, 0.5)
    _ellipse(canvas, _CENTER, top + fringe_ry, face.face_rx * 0.9, fringe_ry, face.hair)
    nose_top = face.eye_y + 2.0
    nose = _points(np.array([_CENTER, _CENTER + 0.8, _CENTER - 1.2]),
                   np.array([nose_top, nose_top + face.nose_length, nose_top + face.nose_length + 0.6]))
    _polyline(canvas, nose, face.skin * 0.75, 0.8)


def _pose_matrix(face: _Face) -> np.ndarray:
    c = _CANVAS / 2.0
    matrix = cv2.getRotationMatrix2D((c, c), face.angle, face.scale)
    matrix[:, 2] += np.asarray(face.shift) * _SUPERSAMPLE
    return matrix


_DILATE = np.ones((3, 3), np.uint8)
_GRID = np.arange(IMAGE_SIZE, dtype=np.float32) - _CENTER + 0.5


def _render(face: _Face, noise: np.ndarray, with_masks: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    background = round(face.background)
    canvas = np.full((_CANVAS, _CANVAS), background, np.uint8)  # LINE_AA needs 8-bit
    _draw_head(canvas, face)
    ink = face.skin * face.feature_darkness
    _draw_brows(canvas, face, ink)
    _draw_eyes(canvas, face, ink, min(face.skin * 1.25 + 25.0, 250.0))
    _draw_mouth(canvas, face, ink, ink * 0.5)

    # Each part again, alone and a little thicker, on its own channel: one warp poses all four.
    # (The warp and the resize work channel by channel: the face is the same without them.)
    parts = []
    if with_masks:
        parts = [np.zeros((_CANVAS, _CANVAS), np.uint8) for _ in PART_NAMES]
        _draw_mouth(parts[0], face, 255.0, 255.0, grow=0.5)
        _draw_eyes(parts[1], face, 255.0, 255.0, grow=0.5)
        _draw_brows(parts[2], face, 255.0, grow=0.5)
    posed = cv2.warpAffine(
        cv2.merge([canvas, *parts]), _pose_matrix(face), (_CANVAS, _CANVAS), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(background, 0, 0, 0),
    )
    small = cv2.resize(posed, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA).reshape(
        IMAGE_SIZE, IMAGE_SIZE, 1 + len(parts))

    # Lighting: global contrast / brightness and a linear gradient in a random direction.
    ramp = np.cos(face.gradient_angle) * _GRID[None, :] + np.sin(face.gradient_angle) * _GRID[:, None]
    image = small[..., 0].astype(np.float32)
    image = (image - 128.0) * face.contrast + 128.0 + face.brightness + face.gradient * ramp / _CENTER
    image += noise * face.noise_sigma
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)

    if not with_masks:
        return image, None
    covered = (small[..., 1:] > _MASK_THRESHOLD).astype(np.uint8)
    masks = cv2.dilate(covered, _DILATE).astype(bool).transpose(2, 0, 1)
    return image, masks


def _jitter(expression: Expression, rng: np.random.Generator, intensity: float, spread: float) -> Expression:
    """Scale the expression toward neutral by ``intensity`` and perturb each part's shape a little."""
    neutral = EXPRESSIONS["neutral"]
    blended = {}
    for field in fields(Expression):
        own, base = np.asarray(getattr(expression, field.name)), np.asarray(getattr(neutral, field.name))
        blended[field.name] = base + intensity * (own - base)
    mouth_shift = rng.normal(0.0, 0.3 * spread)  # whole mouth curve shared offset of the corners
    corner_weight = _MOUTH_KNOTS**2
    upper = blended["mouth_upper"] + rng.normal(0.0, 0.2 * spread, 5) + mouth_shift * corner_weight
    lower = blended["mouth_lower"] + rng.normal(0.0, 0.2 * spread, 5) + mouth_shift * corner_weight
    return replace(
        expression,
        eye_open=float(blended["eye_open"] + rng.normal(0.0, 0.07 * spread)),
        brow_inner=float(blended["brow_inner"] + rng.normal(0.0, 0.45 * spread)),
        brow_outer=float(blended["brow_outer"] + rng.normal(0.0, 0.45 * spread)),
        brow_arch=float(blended["brow_arch"] + rng.normal(0.0, 0.35 * spread)),
        mouth_half_width=float(max(blended["mouth_half_width"] + rng.normal(0.0, 0.5 * spread), 2.0)),
        mouth_upper=tuple(float(v) for v in upper),  # type: ignore[arg-type]
        mouth_lower=tuple(float(v) for v in lower),  # type: ignore[arg-type]
    )


def _sample_face(label: int, rng: np.random.Generator, difficulty: float) -> _Face:
    u = rng.uniform
    # Weak expressions overlap with neutral; the harder the data, the weaker they can get.
    intensity = u(max(1.0 - 0.45 * difficulty, 0.0), 1.1)
    expression = _jitter(EXPRESSIONS[CLASS_NAMES[label]], rng, intensity, difficulty)
    skin = u(95.0, 215.0)
    center_y = u(24.0, 26.0)
    face_ry = u(18.5, 21.5)
    eye_y = center_y - u(3.5, 5.5)
    top = center_y - face_ry
    return _Face(
        expression=expression,
        mirror=bool(rng.random() < 0.5),
        background=u(0.0, 255.0),
        skin=skin,
        hair=u(10.0, 0.8 * skin),
        feature_darkness=u(0.2, 0.5),
        center_y=center_y,
        face_rx=u(14.0, 18.0),
        face_ry=face_ry,
        fringe_y=u(top + 1.0, max(eye_y - 12.5, top + 1.5)),
        eye_y=eye_y,
        eye_dx=u(7.0, 8.5),
        eye_rx=u(2.8, 3.6),
        eye_open_delta=tuple(rng.normal(0.0, 0.03 * difficulty, 2)),  # type: ignore[arg-type]
        brow_gap=u(4.6, 5.8),
        brow_thickness=u(1.3, 2.1),
        nose_length=u(3.5, 6.0),
        mouth_y=center_y + u(9.0, 11.0),
        lip_thickness=u(0.9, 1.5),
        angle=u(-15.0, 15.0),
        scale=u(0.85, 1.15),
        shift=tuple(u(-3.0, 3.0, 2)),  # type: ignore[arg-type]
        contrast=u(0.6, 1.2),
        brightness=u(-30.0, 30.0),
        gradient=u(-40.0, 40.0),
        gradient_angle=u(0.0, 2.0 * np.pi),
        noise_sigma=u(2.0, 9.0) * difficulty,
    )


def generate_synthetic_faces(
    n: int, seed: int = 0, *, difficulty: float = 1.0, labels: np.ndarray | None = None, with_masks: bool = True
) -> SyntheticFaces:
    """Draw ``n`` faces with balanced, shuffled labels; the same seed gives identical arrays.

    ``difficulty`` scales part-shape jitter, how weak an expression may be and the pixel noise:
    0 gives clean prototypes, the default 1 is learnable but not trivial, 2 is much harder.
    ``labels`` (length ``n``) picks the expressions instead. Every random draw is made whatever the
    labels are, so the same seed with other labels gives the same faces with other expressions.
    ``with_masks=False`` skips the part masks (a third of the drawing; training needs none): the
    faces are the same.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if difficulty < 0:
        raise ValueError(f"difficulty must be >= 0, got {difficulty}")
    rng = np.random.default_rng(seed)
    balanced = rng.permutation(np.arange(n, dtype=np.int64) % NUM_CLASSES)
    if labels is None:
        labels = balanced
    else:
        labels = np.asarray(labels, dtype=np.int64)
        if labels.shape != (n,) or (n and (labels.min() < 0 or labels.max() >= NUM_CLASSES)):
            raise ValueError(f"labels must be {n} class indices in 0..{NUM_CLASSES - 1}")
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    masks = np.empty((n, len(PART_NAMES), IMAGE_SIZE, IMAGE_SIZE), bool) if with_masks else None
    for i, label in enumerate(labels):
        face = _sample_face(int(label), rng, difficulty)
        noise = rng.standard_normal((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        images[i], face_masks = _render(face, noise, with_masks)
        if masks is not None:
            masks[i] = face_masks
    return SyntheticFaces(images=images, labels=labels, part_masks=masks)
