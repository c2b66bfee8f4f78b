"""One seed per (run seed, epoch): shuffling, augmentation and dropout of an epoch depend on these
two numbers alone, so a resumed run repeats what the uninterrupted run would have done."""


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919) % 2**31
