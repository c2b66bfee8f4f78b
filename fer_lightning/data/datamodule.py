"""LightningDataModule: reads a source once into uint8 arrays, splits, augments, batches.

Sources: the embedded synthetic faces, or a file/folder in any format the readers know
(Kaggle fer2013.csv[.gz], the homework's train.csv/test.csv, image folders, packed .npz).

Augmentation runs in one of two places: albumentations per image in the loader (``augmentation=``),
or whole batches on the training device after the transfer (``data.device_augment=light|strong``,
data/gpu_augment.py). ``data.resident=true`` keeps the splits on the device (data/resident.py),
so a GPU epoch needs no CPU loader at all.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from fer_lightning.classes import NUM_CLASSES
from fer_lightning.config.choices import DATA_FORMATS, FILE_FORMATS, SAMPLERS, SYNTHETIC, allowed
from fer_lightning.data.augmentation import build_transform
from fer_lightning.data.datasets import ImageArrayDataset
from fer_lightning.data.epoch_sampler import EpochSeededSampler
from fer_lightning.data.resident import ResidentBatches
from fer_lightning.data.splits import stratified_folds, stratified_split
from fer_lightning.errors import ConfigError, DataFormatError
from fer_lightning.files import atomic_write

log = logging.getLogger(__name__)


@dataclass
class Split:
    images: np.ndarray
    labels: np.ndarray | None


class FERDataModule(pl.LightningDataModule):
    def __init__(
        self,
        format: str = SYNTHETIC,
        path: str | None = None,
        test_path: str | None = None,
        synthetic: Mapping[str, int] | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        folds: int | None = None,
        fold: int = 0,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        num_workers: int = 0,
        pin_memory: bool = False,
        sampler: str | None = None,
        on_bad_rows: str = "raise",
        cache_dir: str | None = None,
        augmentation: Mapping[str, Any] | None = None,
        device_augment: str | None = None,
        resident: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.format = format
        self.path = path
        self.test_path = test_path
        self.synthetic = dict(synthetic or {})
        self.val_fraction = val_fraction
        self.split_seed = split_seed
        self.folds = folds
        self.fold = fold
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.sampler = sampler
        self.on_bad_rows = on_bad_rows
        self.cache_dir = cache_dir
        self.augmentation = dict(augmentation or {})
        self.device_augment = device_augment
        self.resident = bool(resident)
        self.seed = seed
        self.splits: dict[str, Split] = {}
        self._device_preset = self._check_device_options()
        # The device augmentation's random stream and the (device, epoch) it was seeded for.
        self._augment_stream: tuple[tuple[torch.device, int], torch.Generator] | None = None

    def _check_device_options(self):
        """The device preset, after refusing combinations that would augment twice or not at all."""
        from fer_lightning.data.gpu_augment import PRESETS, preset_config

        if self.device_augment not in (None, *PRESETS):
            raise ConfigError(f"data.device_augment={self.device_augment!r} is not allowed: "
                              f"null, {', '.join(PRESETS)}")
        preset = preset_config(self.device_augment) if self.device_augment else None
        pipelines = self.augmentation
        if preset is not None and pipelines.get("train"):
            raise ConfigError(f"data.device_augment={self.device_augment} augments on the device, and "
                              "data.augmentation.train would augment every image a second time: use augmentation=none")
        if self.resident and (pipelines.get("train") or pipelines.get("eval")):
            raise ConfigError("data.resident=true keeps the images on the training device, out of "
                              "albumentations' reach: use augmentation=none and data.device_augment=light|strong")
        return preset

    # --------------------------------------------------------------- reading
    def _read_synthetic(self) -> dict[str, Split]:
        from fer_lightning.data.synthetic import generate_synthetic_faces

        seed = int(self.synthetic.get("seed", 0))
        splits = {}
        # Distinct seeds per split: validation faces are never copies of training faces.
        for offset, name in enumerate(("train", "val", "test")):
            count = int(self.synthetic.get(name, 0))
            if count > 0:
                images, labels = self._cached_faces(count, seed * 1000 + offset, generate_synthetic_faces)
                splits[name] = Split(images, labels)
        return splits

    def _cached_faces(self, count: int, seed: int, generate) -> tuple[np.ndarray, np.ndarray]:
        """Drawing faces costs 0.3 to 1 ms each; reruns and sweeps load them from cache_dir instead.

        The key includes a hash of the generator's source, so a changed generator never serves
        stale faces.
        """
        if not self.cache_dir:
            faces = generate(count, seed=seed, with_masks=False)
            return faces.images, faces.labels
        import hashlib
        import inspect
        import sys

        source = inspect.getsource(sys.modules[generate.__module__]).encode()
        key = hashlib.sha1(source + f"{count}:{seed}".encode()).hexdigest()[:16]
        path = Path(self.cache_dir) / f"synthetic-{key}.npz"
        if path.is_file():
            with np.load(path) as cached:
                return cached["images"], cached["labels"]
        faces = generate(count, seed=seed, with_masks=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as handle:  # parallel sweep jobs never read half a file
            np.savez(handle, images=faces.images, labels=faces.labels)
        return faces.images, faces.labels

    def _read_files(self) -> dict[str, Split]:
        from fer_lightning.data.readers import read_all_rows, read_dataset

        if not self.path:
            raise ConfigError(f"data.path: a file or folder is needed when data.format={self.format}")
        sets = read_dataset(self.path, fmt=self.format, on_bad_rows=self.on_bad_rows, cache_dir=self.cache_dir)
        splits = {name: Split(s.images, s.labels) for name, s in sets.items()}
        if self.test_path:
            extra = read_all_rows(self.test_path, fmt="auto", on_bad_rows=self.on_bad_rows,
                                  cache_dir=self.cache_dir)
            splits["test"] = Split(extra.images, extra.labels)
        return splits

    def _read(self) -> dict[str, Split]:
        if self.format == SYNTHETIC:
            splits = self._read_synthetic()
        elif self.format in FILE_FORMATS:
            splits = self._read_files()
        else:
            raise ConfigError(f"data.format={self.format!r} is not allowed: {allowed(DATA_FORMATS)}")
        if "train" not in splits and "test" not in splits:
            raise ConfigError(f"data.path={self.path}: no train or test split found")
        train = splits.get("train")
        if self.folds:
            return self._fold_of(splits)
        if train is not None and "val" not in splits and train.labels is not None:
            train_idx, val_idx = stratified_split(train.labels, self.val_fraction, self.split_seed)
            splits["train"] = Split(train.images[train_idx], train.labels[train_idx])
            splits["val"] = Split(train.images[val_idx], train.labels[val_idx])
            # A warning, not news: a Kaggle CSV without its Usage column must not pass for FER2013's own splits.
            where = "the synthetic faces" if self.format == SYNTHETIC else self.path
            log.warning("%s holds no validation rows (in a Kaggle CSV: no PublicTest rows, or no Usage column): "
                        "cut a stratified validation split of %d from its %d training rows "
                        "(data.val_fraction=%s, data.split_seed=%d)",
                        where, len(val_idx), len(train.labels), self.val_fraction, self.split_seed)
        return splits

    def _fold_of(self, splits: dict[str, Split]) -> dict[str, Split]:
        """k-fold cross-validation: the training rows cut into ``folds`` stratified folds (seeded by
        data.split_seed); fold ``fold`` validates, the others train. The data's own validation rows
        (FER2013's PublicTest) are left out, so every fold's number comes from training rows only."""
        folds, fold = self.folds, self.fold
        if not isinstance(folds, int) or isinstance(folds, bool) or folds < 2 or not isinstance(fold, int) \
                or isinstance(fold, bool) or not 0 <= fold < folds:
            raise ConfigError(f"data.folds={folds!r} data.fold={fold!r} is not allowed: folds a whole number >= 2, "
                              "fold one of 0 .. folds-1")
        train = splits.get("train")
        if train is None or train.labels is None:
            raise ConfigError(f"data.folds={self.folds}: the data has no labelled training rows to cut into folds")
        held_out = stratified_folds(train.labels, self.folds, self.split_seed)[self.fold]
        kept = np.setdiff1d(np.arange(len(train.labels)), held_out)
        log.info("fold %d of %d: %d training rows validate, %d train%s", self.fold, self.folds, len(held_out),
                 len(kept), " (the data's own validation rows are left out)" if "val" in splits else "")
        splits["train"] = Split(train.images[kept], train.labels[kept])
        splits["val"] = Split(train.images[held_out], train.labels[held_out])
        return splits

    def setup(self, stage: str | None = None) -> None:
        if not self.splits:
            self.splits = self._read()
            for name, split in self.splits.items():
                log.info("%s: %d images", name, len(split.images))
        if stage == "fit":
            for name in ("train", "val"):
                split = self.splits.get(name)
                if split is None or split.labels is None:
                    where = "the synthetic faces" if self.format == SYNTHETIC else self.path
                    what = "no" if split is None else "an unlabelled"
                    raise DataFormatError(f"{where}: {what} {name} split; training needs labelled train and "
                                          "validation faces")

    # ------------------------------------------------------------- summaries
    @property
    def class_counts(self) -> list[int]:
        labels = self.splits["train"].labels
        return np.bincount(labels, minlength=NUM_CLASSES).tolist()

    def has_split(self, name: str, labelled: bool = True) -> bool:
        split = self.splits.get(name)
        return split is not None and len(split.images) > 0 and (not labelled or split.labels is not None)

    # ----------------------------------------------------------- dataloaders
    def _eval_transform(self):
        transform = build_transform(self.augmentation.get("eval"))
        if transform is not None:
            # Evaluation must be repeatable: a random eval pipeline would make val accuracy noise.
            probe = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
            first = transform(image=probe)["image"]
            # 32 draws: a transform applied with any probability 0 < p < 1 differs at least once.
            if not all(np.array_equal(first, transform(image=probe)["image"]) for _ in range(32)):
                raise ConfigError("augmentation.eval: validation/test transforms must be deterministic")
        return transform

    def _device_and_rank(self) -> tuple[torch.device, int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return torch.device("cpu"), 0, 1
        return trainer.strategy.root_device, int(trainer.global_rank), int(trainer.world_size)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Augment a training batch where it now is (GPU or CPU), a whole batch per call."""
        trainer = getattr(self, "trainer", None)
        if self._device_preset is None or trainer is None or not trainer.training:
            return batch
        from fer_lightning.data.gpu_augment import augment_batch
        from fer_lightning.seeds import epoch_seed

        images, *rest = batch
        key = (images.device, int(trainer.current_epoch))
        if self._augment_stream is None or self._augment_stream[0] != key:
            # A stream per (seed, epoch, rank): a resumed run redraws an epoch exactly, and DDP
            # ranks do not warp their images alike.
            seed = epoch_seed(self.seed, key[1]) + int(trainer.global_rank)
            self._augment_stream = (key, torch.Generator(device=images.device).manual_seed(seed))
        return (augment_batch(images, self._device_preset, self._augment_stream[1]), *rest)

    def _loader(self, dataset, batch_size: int, shuffle: bool, sampler=None) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
            # Its own generator: creating an iterator then draws no number from torch's global
            # stream, which seeds dropout (see ExpressionClassifier.on_train_epoch_start).
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _current_epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def train_dataloader(self) -> DataLoader | ResidentBatches:
        split = self.splits["train"]
        transform = build_transform(self.augmentation.get("train"), seed=self.seed)
        weights = None
        if self.sampler == "balanced":
            counts = np.bincount(split.labels, minlength=NUM_CLASSES).astype(np.float64)
            weights = torch.as_tensor(1.0 / np.maximum(counts, 1)[split.labels])
        elif self.sampler not in SAMPLERS:
            raise ConfigError(f"data.sampler={self.sampler!r} is not allowed: {allowed(SAMPLERS)}")
        reseed = getattr(transform, "set_random_seed", None)
        sampler = EpochSeededSampler(len(split.images), self.seed, self._current_epoch, weights, on_epoch=reseed)
        if self.resident:
            device, rank, world_size = self._device_and_rank()
            return ResidentBatches(split.images, split.labels, self.batch_size, device, order=sampler,
                                   rank=rank, world_size=world_size)
        # Built only for the loader: without augmentation it converts every image to float up front.
        dataset = ImageArrayDataset(split.images, split.labels, transform)
        return self._loader(dataset, self.batch_size, shuffle=False, sampler=sampler)

    def _eval_loader(self, name: str) -> DataLoader | ResidentBatches:
        split = self.splits[name]
        if self.resident:
            # Every rank evaluates the whole split: the same numbers everywhere, and no rank waits
            # on another with fewer batches.
            return ResidentBatches(split.images, split.labels, self.eval_batch_size, self._device_and_rank()[0])
        dataset = ImageArrayDataset(split.images, split.labels, self._eval_transform())
        return self._loader(dataset, self.eval_batch_size, shuffle=False)

    def val_dataloader(self) -> DataLoader | ResidentBatches:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | ResidentBatches:
        return self._eval_loader("test")

    def describe(self) -> str:
        where = "synthetic faces" if self.format == SYNTHETIC else str(Path(self.path or "?"))
        sizes = ", ".join(f"{k}={len(v.images)}" for k, v in self.splits.items())
        return f"{where} ({sizes})"
