"""The data module: sources, the stratified split, augmentation only where it belongs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_lightning.classes import CLASS_NAMES
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.settings import current_shape, datamodule_from_settings, is_synthetic
from fer_lightning.data.splits import stratified_split
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import ConfigError
from tests.conftest import compose_config


def write_homework_csv(path, faces) -> None:
    rows = ["label,feature"] + [
        f"{label},{' '.join(map(str, image.ravel()))}" for image, label in zip(faces.images, faces.labels)
    ]
    path.write_text("\n".join(rows) + "\n")


def test_stratified_split_is_seeded_disjoint_and_keeps_rare_classes():
    labels = np.array([0] * 50 + [1] * 3 + [2] * 47)
    train, val = stratified_split(labels, 0.2, seed=7)
    again_train, again_val = stratified_split(labels, 0.2, seed=7)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not set(train) & set(val) and len(train) + len(val) == len(labels)
    assert set(labels[val]) == {0, 1, 2}  # the 3-image class still has a validation image
    assert abs(np.sum(labels[val] == 0) - 10) <= 1
    _, other = stratified_split(labels, 0.2, seed=8)
    assert not np.array_equal(val, other)


def test_homework_csv_gets_a_validation_split_and_batches(tmp_path):
    faces = generate_synthetic_faces(140, seed=3)
    write_homework_csv(tmp_path / "train.csv", faces)
    dm = FERDataModule(path=str(tmp_path / "train.csv"), format="homework_csv",
                       val_fraction=0.25, batch_size=16, augmentation={"train": None})
    dm.setup("fit")
    assert len(dm.splits["train"].images) + len(dm.splits["val"].images) == 140
    assert len(dm.splits["val"].images) == pytest.approx(35, abs=4)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (16, 1, 48, 48) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.dtype == torch.int64 and set(labels.tolist()) <= set(range(len(CLASS_NAMES)))


def test_validation_is_never_augmented_and_training_is(tmp_path):
    cfg = compose_config(["augmentation=strong", "data.synthetic.train=64", "data.synthetic.val=32",
                          "data.synthetic.test=0"])
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.setup("fit")
    first = torch.cat([x for x, _ in dm.val_dataloader()])
    second = torch.cat([x for x, _ in dm.val_dataloader()])
    assert torch.equal(first, second)
    raw = torch.from_numpy(dm.splits["val"].images).float().div(255).unsqueeze(1)
    assert torch.allclose(first, raw)  # exactly the stored pixels
    train_set = dm.train_dataloader().dataset
    assert not torch.equal(train_set[0][0], train_set[0][0]) or not torch.equal(train_set[1][0], train_set[1][0])


def test_random_eval_transform_is_refused():
    dm = FERDataModule(augmentation={"eval": {"_target_": "albumentations.HorizontalFlip", "p": 0.5}},
                       synthetic={"train": 14, "val": 14, "test": 0})
    dm.setup("fit")
    with pytest.raises(ConfigError, match="deterministic"):
        dm.val_dataloader()


def test_balanced_sampler_oversamples_the_rare_class():
    dm = FERDataModule(synthetic={"train": 70, "val": 14, "test": 0}, sampler="balanced", batch_size=70)
    dm.setup("fit")
    keep = np.flatnonzero((dm.splits["train"].labels != 1) | (np.arange(70) < 20))
    dm.splits["train"].images = dm.splits["train"].images[keep]
    dm.splits["train"].labels = dm.splits["train"].labels[keep]
    counts = np.zeros(7)
    for _ in range(20):
        _, labels = next(iter(dm.train_dataloader()))
        counts += np.bincount(labels.numpy(), minlength=7)
    assert counts[1] / counts.sum() > 0.08  # ~1/7 when balanced, far less without


def test_synthetic_splits_are_deterministic_and_distinct():
    a = FERDataModule(synthetic={"train": 28, "val": 14, "test": 14, "seed": 5})
    b = FERDataModule(synthetic={"train": 28, "val": 14, "test": 14, "seed": 5})
    a.setup(), b.setup()
    assert np.array_equal(a.splits["train"].images, b.splits["train"].images)
    assert not np.array_equal(a.splits["val"].images, a.splits["test"].images)


def test_synthetic_faces_are_cached_and_identical(tmp_path):
    first = FERDataModule(synthetic={"train": 28, "val": 14, "test": 0, "seed": 2}, cache_dir=str(tmp_path))
    first.setup()
    cached = sorted(tmp_path.glob("synthetic-*.npz"))
    assert len(cached) == 2
    again = FERDataModule(synthetic={"train": 28, "val": 14, "test": 0, "seed": 2}, cache_dir=str(tmp_path))
    again.setup()
    fresh = FERDataModule(synthetic={"train": 28, "val": 14, "test": 0, "seed": 2})
    fresh.setup()
    for name in ("train", "val"):
        assert np.array_equal(again.splits[name].images, fresh.splits[name].images)
        assert np.array_equal(again.splits[name].labels, fresh.splits[name].labels)


def test_a_kaggle_csv_without_usage_says_its_validation_split_is_cut(tmp_path, caplog):
    import logging

    faces = generate_synthetic_faces(70, seed=2)
    path = tmp_path / "no_usage.csv"
    rows = [f"{label},{' '.join(map(str, face.ravel()))}" for label, face in zip(faces.labels, faces.images)]
    path.write_text("emotion,pixels\n" + "\n".join(rows) + "\n")
    module = FERDataModule(path=str(path), format="kaggle_csv", val_fraction=0.2)
    with caplog.at_level(logging.WARNING):
        module.setup()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(path) in m and "no Usage column" in m and "cut a stratified validation split of 14" in m
               for m in warned), warned
    assert len(module.splits["val"].images) == 14


def test_data_settings_stored_with_a_source_key_still_build_the_same_data(tmp_path):
    # Runs and ensemble files written before data.format said it alone carry source: synthetic|file.
    faces = generate_synthetic_faces(60, seed=4)
    write_homework_csv(tmp_path / "train.csv", faces)
    old_file = {"source": "file", "format": "homework_csv", "path": str(tmp_path / "train.csv"),
                "synthetic": {"train": 4000, "val": 800, "test": 800, "seed": 0}, "cache_dir": None}
    old_synthetic = {"source": "synthetic", "format": "auto", "synthetic": {"train": 20, "val": 10, "test": 0},
                     "cache_dir": None}
    assert current_shape(old_file) == {"format": "homework_csv", "path": str(tmp_path / "train.csv"),
                                       "cache_dir": None}
    assert current_shape(old_synthetic)["format"] == "synthetic" and is_synthetic(old_synthetic)
    for old, new in ((old_file, FERDataModule(format="homework_csv", path=str(tmp_path / "train.csv"))),
                     (old_synthetic, FERDataModule(synthetic={"train": 20, "val": 10, "test": 0}))):
        rebuilt = datamodule_from_settings(old, where="run.yaml")
        rebuilt.setup(), new.setup()
        for split in ("train", "val"):
            np.testing.assert_array_equal(rebuilt.splits[split].images, new.splits[split].images)
