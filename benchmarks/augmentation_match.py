"""Figure 9: batched device augmentation draws what the albumentations preset it mirrors draws.

A probe face (grey, with one bright off-centre patch) is augmented ``draws`` times by each preset's
albumentations pipeline (conf/augmentation/<preset>.yaml) and by ``data.device_augment=<preset>``
(data/gpu_augment.py). Six numbers describe each result: where the patch went (x, y), how far it
spreads along each axis (zoom and shear), the mean brightness (lighting changes) and the share of
black pixels (erasing). The two samples of each number are compared by the Kolmogorov-Smirnov
distance (the largest gap between the two cumulative distributions): 0 means identical, and with
2,000 draws each side gaps under ~0.05 are what two samples of one distribution show.
Speed: faces a second on this machine's CPU, one thread, albumentations image by image against
one batched call.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.report import figure
from benchmarks.sizes import Sizes

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ("x", "y", "spread_x", "spread_y", "brightness", "black")
PRESETS = ("light", "strong")


def probe_face(size: int = 48) -> np.ndarray:
    """uint8 (size, size): mid-grey, a bright 6x10 patch up and right of the centre."""
    image = np.full((size, size), 128, np.uint8)
    image[16:22, 26:36] = 230
    return image


def features(images: np.ndarray) -> dict[str, np.ndarray]:
    """The six numbers of each (N, H, W) float image in [0, 1]."""
    n, height, width = images.shape
    background = np.median(images.reshape(n, -1), axis=1)[:, None, None]
    weight = np.abs(images - background)
    total = weight.sum(axis=(1, 2)) + 1e-9
    cols = np.arange(width) + 0.5 - width / 2
    rows = np.arange(height) + 0.5 - height / 2
    x = (weight.sum(axis=1) * cols).sum(axis=1) / total
    y = (weight.sum(axis=2) * rows).sum(axis=1) / total
    spread_x = np.sqrt((weight.sum(axis=1) * (cols - x[:, None]) ** 2).sum(axis=1) / total)
    spread_y = np.sqrt((weight.sum(axis=2) * (rows - y[:, None]) ** 2).sum(axis=1) / total)
    return {"x": x, "y": y, "spread_x": spread_x, "spread_y": spread_y,
            "brightness": images.mean(axis=(1, 2)), "black": (images <= 1 / 255).mean(axis=(1, 2))}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a, b = np.sort(a), np.sort(b)
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(b, points, side="right") / len(b)
    return float(np.abs(gap).max())


def albumentations_preset(preset: str):
    """The preset's training pipeline, built from its YAML file as a run builds it."""
    from omegaconf import OmegaConf

    from fer_lightning.data.augmentation import build_transform

    config = OmegaConf.load(ROOT / "conf" / "augmentation" / f"{preset}.yaml")
    return build_transform(OmegaConf.to_container(config.train), seed=0)


def albumentations_draws(preset: str, draws: int) -> tuple[np.ndarray, float]:
    """(draws, 48, 48) floats in [0, 1], and the seconds they took."""
    transform = albumentations_preset(preset)
    face = probe_face()
    started = time.perf_counter()
    out = np.stack([transform(image=face)["image"] for _ in range(draws)])
    return out.astype(np.float32) / 255.0, time.perf_counter() - started


def device_draws(preset: str, draws: int, seed: int = 0) -> tuple[np.ndarray, float]:
    from fer_lightning.data.gpu_augment import augment_batch, preset_config

    batch = torch.from_numpy(probe_face()).float().div(255).expand(draws, 1, 48, 48).contiguous()
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    out = augment_batch(batch, preset_config(preset), generator)
    seconds = time.perf_counter() - started
    # The device path keeps floats; round to 8 bits as albumentations' uint8 output is.
    return (out[:, 0].numpy() * 255).round() / 255, seconds


def compare(preset: str, draws: int) -> dict[str, Any]:
    """KS distance per feature, each side's median, and each side's faces a second."""
    reference, reference_seconds = albumentations_draws(preset, draws)
    ours, our_seconds = device_draws(preset, draws)
    a, b = features(reference), features(ours)
    return {
        "preset": preset,
        "ks": {name: ks_distance(a[name], b[name]) for name in FEATURES},
        "mean_albumentations": {name: float(np.mean(a[name])) for name in FEATURES},
        "mean_device": {name: float(np.mean(b[name])) for name in FEATURES},
        "faces_per_second_albumentations": draws / reference_seconds,
        "faces_per_second_device": draws / our_seconds,
    }


def run(sizes: Sizes, context: dict[str, Any]) -> dict[str, Any]:
    draws = 200 if sizes.quick else 2000
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = [compare(preset, draws) for preset in PRESETS]
    finally:
        torch.set_num_threads(threads)
    rows = []
    for result in results:
        for name in FEATURES:
            rows.append({"preset": result["preset"], "feature": name, "ks": result["ks"][name],
                         "albumentations": result["mean_albumentations"][name],
                         "device": result["mean_device"][name]})
        rows.append({"preset": result["preset"], "feature": "faces / s (1 thread)",
                     "albumentations": result["faces_per_second_albumentations"],
                     "device": result["faces_per_second_device"]})
    columns = [("preset", "preset", "{}"), ("feature", "number", "{}"), ("ks", "KS distance", "{:.3f}"),
               ("albumentations", "albumentations (mean)", "{:.3g}"), ("device", "device (mean)", "{:.3g}")]
    notes = [f"{draws:,} draws a side of one probe face; x, y and spreads in pixels from the centre; "
             "brightness in [0, 1]; black = share of pixels at 0 (erasing)."]
    return figure("9. Device augmentation against albumentations: the same distributions", columns, rows,
                  {"draws": draws, "results": results}, notes)
