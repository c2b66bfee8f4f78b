"""How much each figure measures: the full run (``make bench``) and a quick dry run (``--quick``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# FER2013's Training usage: the size the scaling figure extrapolates to.
FER2013_TRAIN_IMAGES = 28_709  # the Training rows
FER2013_VAL_IMAGES = 3_589  # the PublicTest rows: data=fer2013's validation split
# A network whose step takes milliseconds: what is left of a step's time is the loop's own cost.
TINY_NETWORK = ("model.net.channels=[4,4,8,8,8,8,8]", "model.net.hidden=[16,8]")


@dataclass(frozen=True)
class Sizes:
    quick: bool = False
    width: str = "report"  # model/width of every figure except the width sweep
    # Extra model overrides everywhere; --quick shrinks the network so that a step takes milliseconds.
    model_overrides: tuple[str, ...] = ()
    batch_size: int = 64
    # Figure 1: project vs plain loop, alternating, `repeats` times `train_steps` steps after `warmup`.
    # On a shared VM single steps of the report network vary by +-20 %: many short paired repeats
    # give a steadier ratio than a few long ones.
    warmup: int = 2
    train_steps: int = 8
    repeats: int = 6
    # Then both loops again on TINY_NETWORK, to isolate the per-step overhead (0: skip).
    overhead_steps: int = 30
    # Figure 2: each speed option, steps after warm-up (compile gets the same after its compile step).
    option_steps: int = 6
    compile: bool = True
    # bf16 is emulated on AVX2 CPUs (~20x slower): a small batch and two steps tell enough.
    bf16_batch_size: int = 16
    bf16_steps: int = 2
    # Figure 3: faces in the loader's data set, and seconds each loader configuration is timed.
    loader_images: int = 512
    loader_seconds: float = 2.0
    loader_workers: tuple[int, ...] = (0, 1, 2)
    # Figure 4: the default synthetic data sizes (None) or tiny ones for the start-up run.
    startup_synthetic: tuple[int, int, int] | None = None
    startup_runs: int = 2  # 1 = one run under -X importtime (timing includes its overhead)
    startup_overrides: tuple[str, ...] = ()  # extra overrides of the timed training command
    # Figure 5
    latency_repeats: int = 50
    inference_batch_size: int = 256
    throughput_repeats: int = 3
    # Figure 6
    ensemble_images: int = 1024
    ensemble_members: tuple[int, ...] = (1, 2, 4)
    # Figure 7
    scaling_fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    scaling_steps: int = 4
    scaling_val_batches: int = 2
    widths: tuple[str, ...] = ("narrow", "report", "wide")
    width_steps: int = 3
    # Figure 12: frames of 640x480 a row (live stream and video clip)
    video_frames: int = 150
    # Distinct synthetic faces generated (then tiled): content does not change speed.
    unique_faces: int = 1024

    def model(self, width: str | None = None) -> list[str]:
        """The overrides that choose the network measured."""
        return [f"model/width={width or self.width}", *self.model_overrides]

    def as_dict(self) -> dict:
        return asdict(self)


FULL = Sizes()

QUICK = Sizes(
    quick=True,
    width="narrow",
    model_overrides=TINY_NETWORK,
    batch_size=16,
    warmup=1,
    train_steps=2,
    repeats=1,
    overhead_steps=0,  # the quick network is already the tiny one
    option_steps=1,
    compile=False,
    bf16_batch_size=4,
    bf16_steps=1,
    loader_images=64,
    loader_seconds=0.1,
    loader_workers=(0, 1),
    startup_synthetic=(64, 32, 0),
    startup_runs=1,
    startup_overrides=("logger=none", "callbacks.model_checkpoint=null"),
    latency_repeats=3,
    inference_batch_size=16,
    throughput_repeats=1,
    ensemble_images=32,
    scaling_fractions=(0.25, 1.0),
    scaling_steps=1,
    scaling_val_batches=1,
    widths=("narrow",),
    width_steps=1,
    unique_faces=128,
    video_frames=8,
)
