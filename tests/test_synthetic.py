"""The embedded synthetic faces: format, determinism, balance, and that masks hold the class evidence."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_lightning.classes import IMAGE_SIZE, NUM_CLASSES
from fer_lightning.data.synthetic import PART_NAMES, SyntheticFaces, generate_synthetic_faces


@pytest.fixture(scope="module")
def faces() -> SyntheticFaces:
    return generate_synthetic_faces(700, seed=3)


def test_arrays_have_the_documented_shapes_and_types(faces: SyntheticFaces) -> None:
    assert faces.images.shape == (700, IMAGE_SIZE, IMAGE_SIZE) and faces.images.dtype == np.uint8
    assert faces.labels.shape == (700,) and faces.labels.dtype == np.int64
    assert faces.part_masks.shape == (700, len(PART_NAMES), IMAGE_SIZE, IMAGE_SIZE)
    assert faces.part_masks.dtype == np.bool_
    assert PART_NAMES == ("mouth", "eyes", "brows")


def test_images_use_a_wide_range_of_grey_levels(faces: SyntheticFaces) -> None:
    # Lighting nuisance: image means spread widely, and each face has real contrast.
    means = faces.images.reshape(len(faces.images), -1).mean(axis=1)
    assert means.max() - means.min() > 60
    assert np.all(faces.images.reshape(len(faces.images), -1).std(axis=1) > 5)


def test_same_seed_gives_identical_arrays_whatever_the_global_numpy_state() -> None:
    np.random.seed(1)
    first = generate_synthetic_faces(30, seed=11)
    np.random.seed(2)
    np.random.random(100)
    second = generate_synthetic_faces(30, seed=11)
    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.part_masks, second.part_masks)


def test_faces_drawn_without_their_part_masks_are_the_same_faces() -> None:
    full, bare = generate_synthetic_faces(60, seed=5), generate_synthetic_faces(60, seed=5, with_masks=False)
    assert bare.part_masks is None
    assert np.array_equal(full.images, bare.images) and np.array_equal(full.labels, bare.labels)


def test_different_seeds_give_different_faces() -> None:
    a, b = generate_synthetic_faces(30, seed=0), generate_synthetic_faces(30, seed=1)
    assert not np.array_equal(a.images, b.images)
    assert not np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("n", [7, 70, 75])
def test_classes_are_balanced_and_shuffled(n: int) -> None:
    labels = generate_synthetic_faces(n, seed=5).labels
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    assert counts.sum() == n and counts.max() - counts.min() <= 1
    if n >= 70:
        assert not np.array_equal(labels, np.arange(n) % NUM_CLASSES)


def test_zero_faces_and_invalid_arguments() -> None:
    empty = generate_synthetic_faces(0)
    assert empty.images.shape == (0, IMAGE_SIZE, IMAGE_SIZE) and empty.part_masks.shape[0] == 0
    with pytest.raises(ValueError):
        generate_synthetic_faces(-1)
    with pytest.raises(ValueError):
        generate_synthetic_faces(5, difficulty=-0.5)
    with pytest.raises(ValueError):
        generate_synthetic_faces(3, labels=np.array([0, 1, NUM_CLASSES]))


def test_every_part_mask_is_a_small_non_empty_region(faces: SyntheticFaces) -> None:
    areas = faces.part_masks.mean(axis=(2, 3))  # (N, parts) fraction of the image
    assert np.all(areas > 0.005)
    assert np.all(areas < 0.2)


def test_parts_are_stacked_brows_over_eyes_over_mouth(faces: SyntheticFaces) -> None:
    rows = np.arange(IMAGE_SIZE)[:, None]
    mean_row = (faces.part_masks * rows).sum(axis=(2, 3)) / faces.part_masks.sum(axis=(2, 3))
    mouth, eyes, brows = (mean_row[:, PART_NAMES.index(p)] for p in ("mouth", "eyes", "brows"))
    assert np.all(brows < eyes) and np.all(eyes < mouth)


def test_eyes_and_brows_come_in_pairs(faces: SyntheticFaces) -> None:
    for masks in faces.part_masks[:50]:
        for part in ("eyes", "brows"):
            count, _ = cv2.connectedComponents(masks[PART_NAMES.index(part)].astype(np.uint8))
            assert count - 1 == 2, part  # the background is label 0


def test_changing_the_expression_changes_pixels_only_inside_the_part_masks() -> None:
    # Same seed, other labels: identical nuisance, so every pixel that differs is class evidence.
    n = 140
    labels = np.arange(n) % NUM_CLASSES
    other = (labels + 1 + np.arange(n) // NUM_CLASSES % (NUM_CLASSES - 1)) % NUM_CLASSES
    a = generate_synthetic_faces(n, seed=9, labels=labels)
    b = generate_synthetic_faces(n, seed=9, labels=other)
    assert np.array_equal(a.labels, labels) and np.array_equal(b.labels, other)
    changed = a.images != b.images
    inside = a.part_masks.any(axis=1) | b.part_masks.any(axis=1)
    assert changed.any(axis=(1, 2)).all()  # the expression is visible in every face
    assert not (changed & ~inside).any()
    # The masks hug the parts rather than covering the whole face.
    assert changed.sum() > 0.3 * inside.sum()
    assert inside.mean() < 0.35
