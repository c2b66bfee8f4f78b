"""python -m benchmarks.cpu_levers [--experiment cpu_hour_narrow] [--images 2048] [--repeats 2]

Training speed of one CPU-hour recipe under the throughput levers PyTorch's CPU performance guide
names: batch size, torch.compile, another memory allocator (jemalloc, tcmalloc, by LD_PRELOAD),
intra-op threads. Each lever runs in a fresh process (an allocator can only be chosen at start),
trains the same number of images through the project's path after two warm-up batches, and is
compared with the recipe as it is. Run it on an idle machine: it prints the table and the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = Path("/usr/lib/x86_64-linux-gnu")
# (lever, overrides, environment)
LEVERS = (
    ("the recipe as it is (batch 64)", [], {}),
    ("batch 32", ["data.batch_size=32"], {}),
    ("batch 128", ["data.batch_size=128"], {}),
    ("batch 256", ["data.batch_size=256"], {}),
    ("torch.compile (model.compile=true)", ["model.compile=true"], {}),
    ("jemalloc (LD_PRELOAD)", [], {"LD_PRELOAD": str(LIBRARIES / "libjemalloc.so.2")}),
    ("tcmalloc (LD_PRELOAD)", [], {"LD_PRELOAD": str(LIBRARIES / "libtcmalloc_minimal.so.4")}),
    ("1 intra-op thread", [], {"OMP_NUM_THREADS": "1"}),
)
WARMUP = 2


def measure_here(experiment: str, overrides: list[str], images: int) -> float:
    """Images a second of training steps in this process (after the warm-up batches)."""
    from benchmarks.workload import compose_train_config, faces, project_fit

    config = [f"experiment={experiment}", "augmentation=none", "data.num_workers=0", *overrides]
    batch = int(compose_train_config(config).data.batch_size)
    steps = max(1, images // batch)
    data, labels = faces(batch * (WARMUP + steps), 1024)
    return project_fit(config, data, labels, WARMUP, steps).images_per_second


def measure(experiment: str, overrides: list[str], env: dict[str, str], images: int) -> float:
    command = [sys.executable, "-m", "benchmarks.cpu_levers", "--experiment", experiment, "--images", str(images),
               "--one", json.dumps(overrides)]
    missing = [value for key, value in env.items() if key == "LD_PRELOAD" and not Path(value).is_file()]
    if missing:
        raise FileNotFoundError(f"{missing[0]}: not installed (Debian: libjemalloc2, libtcmalloc-minimal4)")
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_levers", description=__doc__.split("\n\n")[1])
    parser.add_argument("--experiment", default="cpu_hour_narrow")
    parser.add_argument("--images", type=int, default=2048, help="trained images timed per lever (default 2048)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per lever; the best is kept (default 2)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process: measure these overrides
    args = parser.parse_args(argv)
    if args.one is not None:
        print(measure_here(args.experiment, json.loads(args.one), args.images))
        return

    from benchmarks.hardware import cpu_description

    cpu = cpu_description()
    print(f"{args.experiment}, {args.images} images a lever, best of {args.repeats}; {cpu['model']} "
          f"({cpu['microarchitecture']}), {cpu['cores']} cores, native bf16: {cpu['native_bf16']}")
    print("| lever | images/s | against the recipe |\n|---|---|---|")
    reference = None
    for lever, overrides, env in LEVERS:
        try:
            rate = max(measure(args.experiment, overrides, env, args.images) for _ in range(args.repeats))
        except (FileNotFoundError, subprocess.CalledProcessError) as error:
            print(f"| {lever} | – | not measured: {str(error).splitlines()[0][:80]} |", flush=True)
            continue
        reference = reference or rate
        print(f"| {lever} | {rate:.0f} | {rate / reference:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
