"""Augmenting on the device and keeping the data there: the same batches as the loader, split across
ranks without overlap, refused where it would augment twice, and a run trains with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.resident import ResidentBatches
from fer_lightning.errors import ConfigError

SYNTHETIC = {"train": 96, "val": 40, "test": 0, "seed": 0}


class FakeTrainer:
    """What the data module reads of a trainer."""

    def __init__(self, epoch: int = 0, training: bool = True, rank: int = 0, world_size: int = 1) -> None:
        self.current_epoch = epoch
        self.training = training
        self.global_rank = rank
        self.world_size = world_size
        self.strategy = type("Strategy", (), {"root_device": torch.device("cpu")})()


def data_module(**settings) -> FERDataModule:
    module = FERDataModule(synthetic=SYNTHETIC, batch_size=16, eval_batch_size=32, **settings)
    module.setup()
    return module


def batches(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(images.clone(), labels.clone()) for images, labels in loader]


@pytest.mark.parametrize("epoch", [0, 3])
def test_resident_batches_are_the_loader_batches(epoch):
    plain, resident = data_module(), data_module(resident=True)
    for module in (plain, resident):
        module.trainer = FakeTrainer(epoch)
    for make in ("train_dataloader", "val_dataloader"):
        expected, got = batches(getattr(plain, make)()), batches(getattr(resident, make)())
        assert len(got) == len(expected) == len(getattr(resident, make)())
        for (want_images, want_labels), (images, labels) in zip(expected, got):
            assert torch.equal(images, want_images) and torch.equal(labels, want_labels)
    # Another epoch, another order.
    resident.trainer = FakeTrainer(epoch + 1)
    assert not torch.equal(batches(resident.train_dataloader())[0][1], batches(plain.train_dataloader())[0][1])


@pytest.mark.parametrize(("count", "world_size", "batch_size"), [(10, 3, 2), (9, 2, 4), (8, 2, 3)])
def test_ranks_split_one_permutation_and_step_equally_often(count, world_size, batch_size):
    images = np.zeros((count, 2, 2), dtype=np.uint8)
    order = list(np.random.default_rng(0).permutation(count))
    per_rank = []
    for rank in range(world_size):
        loader = ResidentBatches(images, np.arange(count), batch_size=batch_size, device="cpu", order=order,
                                 rank=rank, world_size=world_size)
        batches = [[int(x) for x in labels] for _, labels in loader]
        assert len(batches) == len(loader)
        per_rank.append(batches)
    # Every rank takes as many batches (DDP would hang otherwise), and every image is seen.
    assert len({len(batches) for batches in per_rank}) == 1
    seen = [label for batches in per_rank for batch in batches for label in batch]
    assert set(seen) == set(range(count)) and len(seen) == -(-count // world_size) * world_size
    unlabelled = ResidentBatches(images, None, batch_size=4, device="cpu")
    assert [int(x) for _, batch in unlabelled for x in batch] == [-1] * count


def test_device_augmentation_applies_to_training_batches_only_and_repeats_per_epoch():
    module = data_module(device_augment="strong")
    images = torch.rand(8, 1, 48, 48)
    labels = torch.arange(8)
    module.trainer = FakeTrainer(epoch=2, training=False)
    assert module.on_after_batch_transfer((images, labels), 0)[0] is images
    module.trainer = FakeTrainer(epoch=2)
    first, kept = module.on_after_batch_transfer((images, labels), 0)
    assert not torch.equal(first, images) and torch.equal(kept, labels)
    # A resumed run redraws epoch 2 as the first did; rank 1 draws differently.
    again = data_module(device_augment="strong")
    again.trainer = FakeTrainer(epoch=2)
    assert torch.equal(again.on_after_batch_transfer((images, labels), 0)[0], first)
    other_rank = data_module(device_augment="strong")
    other_rank.trainer = FakeTrainer(epoch=2, rank=1)
    assert not torch.equal(other_rank.on_after_batch_transfer((images, labels), 0)[0], first)


@pytest.mark.parametrize(("settings", "message"), [
    ({"device_augment": "medium"}, "data.device_augment='medium' is not allowed: null, none, light, strong"),
    ({"device_augment": "light", "augmentation": {"train": {"_target_": "albumentations.HorizontalFlip"}}},
     "a second time: use augmentation=none"),
    ({"resident": True, "augmentation": {"train": {"_target_": "albumentations.HorizontalFlip"}}},
     "out of albumentations' reach"),
])
def test_combinations_that_augment_twice_or_not_at_all_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        FERDataModule(**settings)


def test_a_run_trains_with_resident_data_and_device_augmentation(train_config, tmp_path):
    from fer_lightning.runs.training import train

    best = train(train_config("augmentation=none", "data.device_augment=light", "data.resident=true",
                              "trainer.max_epochs=2"))
    assert 0.0 <= best <= 1.0
    metrics = (tmp_path / "run" / "metrics.json").read_text()
    assert '"completed"' in metrics
