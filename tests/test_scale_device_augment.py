"""Batched on-device augmentation: the geometry is right, values stay images, runs are repeatable,
and it draws what the albumentations preset it mirrors draws."""

from __future__ import annotations

import pytest
import torch

from fer_lightning.data.gpu_augment import (
    PRESETS,
    DeviceAugmentConfig,
    augment_batch,
    preset_config,
    sampling_matrices,
)
from fer_lightning.data.synthetic import generate_synthetic_faces

STILL = dict(flip_p=0.0, affine_p=1.0, scale=(1.0, 1.0), translate=0.0, rotate=0.0, shear=0.0)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    images = generate_synthetic_faces(32, seed=3).images
    return torch.from_numpy(images).float().div(255).unsqueeze(1)


def test_no_transform_and_flip_are_exact(faces):
    identity = DeviceAugmentConfig(flip_p=0.0, affine_p=0.0)
    assert torch.allclose(augment_batch(faces, identity), faces, atol=1e-5)
    assert torch.allclose(augment_batch(faces, DeviceAugmentConfig(flip_p=1.0, affine_p=0.0)), faces.flip(-1),
                          atol=1e-5)
    assert augment_batch(faces, None) is faces


def blob(row: int, col: int) -> torch.Tensor:
    """A 48x48 image, black but for a bright 3x3 square centred on pixel (row, col)."""
    image = torch.zeros(1, 1, 48, 48)
    image[..., row - 1:row + 2, col - 1:col + 2] = 1.0
    return image


def centre_of_mass(images: torch.Tensor) -> torch.Tensor:
    """(x, y) per image in pixels from the image centre, x to the right and y down."""
    weights = images[:, 0]
    coords = torch.arange(48, dtype=torch.float32) + 0.5 - 24.0  # pixel centres
    total = weights.sum(dim=(1, 2))
    return torch.stack([(weights.sum(dim=1) * coords).sum(dim=1) / total,
                        (weights.sum(dim=2) * coords).sum(dim=1) / total], dim=1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_flip_shift_rotation_and_zoom_move_content_where_the_matrix_says(seed):
    config = DeviceAugmentConfig(flip_p=0.5, affine_p=1.0, scale=(0.8, 1.25), translate=0.1, rotate=30.0)
    image = blob(24, 34)
    theta = sampling_matrices(1, config, image, torch.Generator().manual_seed(seed))
    out = augment_batch(image, config, torch.Generator().manual_seed(seed))  # the same random draws
    forward = torch.linalg.inv(torch.cat([theta[0], torch.tensor([[0.0, 0.0, 1.0]])]))
    start = centre_of_mass(image)[0] / 24.0  # in normalised coordinates
    expected = (forward[:2, :2] @ start + forward[:2, 2]) * 24.0
    assert torch.allclose(centre_of_mass(out)[0], expected, atol=0.6)
    zoom = float(torch.linalg.det(forward[:2, :2]).abs().sqrt())
    assert 0.8 - 1e-4 <= zoom <= 1.25 + 1e-4 and float(forward[:2, 2].abs().max()) <= 0.2 + 1e-6


def test_zoom_scales_distances_from_the_centre():
    config = DeviceAugmentConfig(**{**STILL, "scale": (2.0, 2.0)})
    image = blob(24, 32)
    out = augment_batch(image, config)
    assert torch.allclose(centre_of_mass(out)[0], 2 * centre_of_mass(image)[0], atol=0.3)
    assert torch.allclose(sampling_matrices(1, config, image), torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]]))


@pytest.mark.parametrize("name", ["light", "strong"])
def test_presets_keep_shape_range_and_are_repeatable_per_seed(name, faces):
    config = preset_config(name)
    first = augment_batch(faces, config, torch.Generator().manual_seed(7))
    again = augment_batch(faces, config, torch.Generator().manual_seed(7))
    other = augment_batch(faces, config, torch.Generator().manual_seed(8))
    assert first.shape == faces.shape and first.dtype == faces.dtype
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert torch.equal(first, again) and not torch.equal(first, other)
    changed = (first - faces).abs().flatten(1).amax(dim=1) > 1e-3
    assert int(changed.sum()) > len(faces) // 2


def test_erasing_zeroes_whole_rectangles(faces):
    config = DeviceAugmentConfig(flip_p=0.0, affine_p=0.0, erase_p=1.0, erase_size=(0.25, 0.25), max_holes=1)
    out = augment_batch(faces + 0.1, config, torch.Generator().manual_seed(0))
    zeros = (out == 0).flatten(1).sum(dim=1)
    assert (zeros == 12 * 12).all()  # one 12x12 hole (a quarter of 48) in every image


def test_unknown_preset_is_refused_in_one_line():
    with pytest.raises(ValueError, match="one of none, light, strong"):
        preset_config("medium")
    assert PRESETS["none"] is None


@pytest.mark.parametrize("preset", ["light", "strong"])
def test_device_presets_draw_what_their_albumentations_presets_draw(preset, one_thread):
    """Where the patch lands, how far it spreads per axis, brightness and erasing, 2,000 draws a side.

    A KS distance above 0.06 has under 0.1% chance between two samples of one distribution; an
    isotropic zoom, a shift in fractions of a pixel or a shear on one axis only each exceed it.
    """
    from benchmarks.augmentation_match import FEATURES, compare

    result = compare(preset, draws=2000)
    assert set(result["ks"]) == set(FEATURES)
    worst = max(result["ks"], key=result["ks"].get)
    assert result["ks"][worst] < 0.06, (worst, result["ks"])
