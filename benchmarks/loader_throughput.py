"""Can the data loader keep a GPU fed? Images per second of each stage, on this machine.

    python benchmarks/loader_throughput.py [--images 2048] [--seconds 3] [--workers 0 1 2]

Measures, on the synthetic faces:
  * the training data loader (FERDataModule.train_dataloader, as training builds it) for each
    augmentation preset (none, light, strong) and worker count;
  * batched on-device augmentation (fer_lightning.data.gpu_augment) on this machine's device;
  * a training step (forward, backward, AdamW) of the report's CNN on this machine.
A GPU trains this small CNN at roughly 20-50k images/s; the loader must match that or the GPU waits.
Numbers on a shared machine are noisy: compare orders of magnitude, not digits.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from fer_lightning.data.datamodule import FERDataModule  # noqa: E402
from fer_lightning.data.gpu_augment import PRESETS, augment_batch  # noqa: E402

BATCH = 128
GPU_IMAGES_PER_SECOND = 20_000  # the low end of what a modern GPU trains this network at


def timed_rate(batches: Iterable, seconds: float, count: Callable[[object], int]) -> float:
    """Images per second over the batches after the first (which pays for worker start-up)."""
    iterator = iter(batches)
    next(iterator)
    images, started = 0, time.perf_counter()
    for batch in iterator:
        images += count(batch)
        if time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    return images / elapsed if elapsed > 0 else float("nan")


def endless(loader) -> Iterable:
    while True:
        yield from loader


def loader_rate(preset: str, workers: int, images: int, seconds: float) -> float:
    augmentation = OmegaConf.load(ROOT / "conf" / "augmentation" / f"{preset}.yaml")
    datamodule = FERDataModule(format="synthetic", synthetic={"train": images, "val": 64, "test": 0},
                               batch_size=BATCH, num_workers=workers,
                               augmentation=OmegaConf.to_container(augmentation))
    datamodule.setup("fit")
    loader = datamodule.train_dataloader()
    rate = timed_rate(endless(loader), seconds, lambda batch: len(batch[1]))
    del loader  # stops persistent workers
    return rate


def device_augment_rate(preset: str, device: torch.device, seconds: float) -> float:
    batch = torch.rand(512, 1, 48, 48, device=device)
    config = PRESETS[preset]

    def batches():
        while True:
            augment_batch(batch, config)
            if device.type == "cuda":
                torch.cuda.synchronize()
            yield batch

    return timed_rate(batches(), seconds, len)


def training_rate(width: str, device: torch.device, seconds: float) -> float:
    from hydra.utils import instantiate

    widths = OmegaConf.load(ROOT / "conf" / "model" / "width" / f"{width}.yaml")
    model = instantiate({"_target_": "fer_lightning.models.cnn.ReportCNN", **OmegaConf.to_container(widths)})
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images = torch.rand(BATCH, 1, 48, 48, device=device)
    labels = torch.randint(0, 7, (BATCH,), device=device)

    def steps():
        while True:
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(images), labels).backward()
            optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            yield images

    return timed_rate(steps(), seconds, len)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2048, help="synthetic training images")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per row")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, device {device}, batch {BATCH}")

    print("\ndata loader (albumentations in the workers), images/s")
    print(f"{'augmentation':<13}" + "".join(f"{f'workers={w}':>12}" for w in args.workers))
    loader: dict[str, dict[int, float]] = {}
    for preset in ("none", "light", "strong"):
        loader[preset] = {w: loader_rate(preset, w, args.images, args.seconds) for w in args.workers}
        print(f"{preset:<13}" + "".join(f"{r:>12,.0f}" for r in loader[preset].values()), flush=True)

    print(f"\nbatched augmentation on {device} (gpu_augment, batch 512), images/s")
    on_device = {p: device_augment_rate(p, device, args.seconds) for p in ("light", "strong")}
    for preset, rate in on_device.items():
        print(f"{preset:<13}{rate:>12,.0f}")

    print(f"\ntraining step on {device} (forward + backward + AdamW, fp32), images/s")
    for width in ("narrow", "report"):
        print(f"{width:<13}{training_rate(width, device, args.seconds):>12,.0f}", flush=True)

    print(f"\nagainst a GPU at ~{GPU_IMAGES_PER_SECOND:,} images/s:")
    for preset in ("light", "strong"):
        rates = loader[preset]
        per_worker = rates.get(1) or max(rates.values()) / max(max(rates), 1)
        print(f"  {preset}: the best loader here gives {max(rates.values()) / GPU_IMAGES_PER_SECOND:.0%} of it; "
              f"one worker core gives {per_worker:,.0f}/s, so about {math.ceil(GPU_IMAGES_PER_SECOND / per_worker)} "
              "free cores would be needed, or on-device augmentation (augmentation=none + gpu_augment)")


if __name__ == "__main__":
    main()
