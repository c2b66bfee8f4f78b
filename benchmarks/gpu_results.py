"""python -m benchmarks.gpu_results --data FER2013 [--minutes 8.5] [--output-dir DIR] [--dry-run]

The README's three GPU rows in one prepared run on one GPU: trains experiment=report and
experiment=best_single one after the other, then the ensemble sweep's members all at once on the
same GPU (Hydra's submitit launcher, one process each), builds the ensemble of the sweep's best,
and writes results.json and the README table's rows (rows.md) to the output folder.

Each training stage gets a share of the time (trainer.max_time), so a recipe whose configured
epochs do not fit is cut short, and the rows say how many epochs it ran. Every run keeps its data
and its augmentation on the GPU (data.resident=true, data.device_augment=<the recipe's preset>).
--dry-run does all of it on the CPU with the synthetic faces and a tiny network, in about a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.sizes import FER2013_TRAIN_IMAGES

ROOT = Path(__file__).resolve().parents[1]
# Shares of the time limit; the rest goes to start-ups, the ensemble and writing.
SHARES = {"report": 0.2, "best_single": 0.25, "ensemble_sweep": 0.35}
# The albumentations preset each recipe uses, done on the GPU instead.
DEVICE_PRESETS = {"report": "light", "best_single": "strong", "ensemble_sweep": "strong"}
ENSEMBLE_TOP_K = 5
SWEEP_MEMBERS = 12  # conf/experiment/ensemble_sweep.yaml: 2 widths x 3 dropout peaks x 2 seeds
# Figures now and then, not every epoch of a second; members draw none. No saliency maps: they need
# Captum, which a GPU machine without a package index may lack (make report draws them afterwards).
QUIET = ("print_config=false", "callbacks.progress_bar=null", "callbacks.confusion_matrix.every_n_epochs=25",
         "callbacks.saliency=null")
MEMBER_QUIET = ("callbacks.confusion_matrix=null", "callbacks.saliency=null", "callbacks.filter_pictures=null",
                "callbacks.train_val_charts=null", "test=false")
# --dry-run: the synthetic faces, a network whose step takes milliseconds, two epochs, two members.
DRY_RUN = ("data=synthetic", "data.synthetic.train=256", "data.synthetic.val=128", "data.synthetic.test=0",
           "model.net.channels=[4,4,8,8,8,8,8]", "model.net.hidden=[16,8]", "trainer.max_epochs=2")
DRY_RUN_SWEEP = ("model/width=narrow", "model.dropout=0.4,0.5", "seed=1")
# Dense bf16 tensor-core peaks (TFLOP/s) of the GPUs this is likely to meet, by name.
BF16_PEAKS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}


@dataclass
class Stage:
    name: str
    seconds: float
    runs: list[dict[str, Any]] = field(default_factory=list)
    wall_seconds: float = 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_results", description=__doc__.split("\n\n")[1])
    parser.add_argument("--data", type=Path, help="FER2013: Kaggle's fer2013.csv(.gz) or its packed .npz "
                                                   "(python -m fer_lightning.pack); not needed with --dry-run")
    parser.add_argument("--minutes", type=float, default=8.5, help="the whole run's time limit (default 8.5)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "outputs" / "gpu-results",
                        help="where runs, results.json and rows.md go (default outputs/gpu-results)")
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, synthetic faces, tiny sizes")
    return parser.parse_args(argv)


def check_machine(args: argparse.Namespace) -> dict[str, Any]:
    """What runs it: the GPU (refused without one unless --dry-run), torch, the CPU cores."""
    import torch

    machine = {"torch": torch.__version__, "cpu_cores": os.cpu_count(), "gpu": None}
    if args.dry_run:
        return machine
    if not torch.cuda.is_available():
        raise SystemExit("error: no GPU that torch can use (torch.cuda.is_available() is false); "
                         "--dry-run runs everything on the CPU at tiny sizes")
    if args.data is None or not args.data.is_file():
        raise SystemExit(f"error: --data {args.data}: no such file (FER2013's CSV or its packed .npz)")
    properties = torch.cuda.get_device_properties(0)
    machine["gpu"] = properties.name
    machine["gpu_memory_gib"] = round(properties.total_memory / 2**30, 1)
    machine["bf16_peak_tflops"] = next((peak for key, peak in BF16_PEAKS.items() if key in properties.name), None)
    return machine


def max_time(seconds: float) -> str:
    seconds = max(int(seconds), 30)
    return f"00:{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def stage_overrides(stage: Stage, args: argparse.Namespace) -> list[str]:
    common = [f"experiment={stage.name}", f"paths.log_dir={args.output_dir}", *QUIET,
              "augmentation=none", f"data.device_augment={DEVICE_PRESETS[stage.name]}", "data.resident=true",
              "data.num_workers=0", f"++trainer.max_time={max_time(stage.seconds)}"]
    if args.dry_run:
        common += [*DRY_RUN, "trainer=default"]
    else:
        common += ["trainer=gpu", f"data.path={args.data.resolve()}"]
    if stage.name == "ensemble_sweep":
        # Every member at once, each in its own process on the same GPU.
        common += ["hydra/launcher=local", *MEMBER_QUIET, *(DRY_RUN_SWEEP if args.dry_run else ())]
    return common


def run_logged(command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    """Runs a command with its output in ``log``; a failure is one line naming the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as handle:
        result = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"error: {' '.join(command[2:4])} failed ({result.returncode}); see {log}:\n"
                         + "\n".join(tail))


def run_summary(run_dir: Path) -> dict[str, Any]:
    """What the README row needs from a finished run: accuracy, epochs, time, epoch seconds."""
    from fer_lightning.runs.saved_run import read_epoch_log

    metrics = json.loads((run_dir / "metrics.json").read_text())
    epochs = read_epoch_log(run_dir)
    seconds = [record.seconds for record in epochs]
    # The first epoch carries cuDNN autotuning and compilation of kernels: the median is the pace.
    return {
        "run_dir": str(run_dir),
        "status": metrics.get("status"),
        "val_acc": metrics.get("best_val_acc"),
        "best_epoch": metrics.get("best_epoch"),
        "epochs": metrics.get("epochs_completed"),
        "train_seconds": metrics.get("train_seconds"),
        "median_epoch_seconds": statistics.median(seconds) if seconds else None,
    }


def run_config(run_dir: Path):
    from omegaconf import OmegaConf

    return OmegaConf.load(run_dir / ".hydra" / "config.yaml")


def training_tflops(run_dir: Path, epoch_seconds: float) -> float:
    """TFLOP/s of a FER2013 training epoch: forward + backward FLOPs of an image times its Training rows."""
    from benchmarks.workload import flops_per_image, net_from_config

    net = net_from_config(run_config(run_dir).model)
    return flops_per_image(net, train=True) * FER2013_TRAIN_IMAGES / epoch_seconds / 1e12


def train_stage(stage: Stage, args: argparse.Namespace) -> None:
    command = [sys.executable, "-m", "fer_lightning.train"]
    env = dict(os.environ)
    if stage.name == "ensemble_sweep":
        command.append("-m")
        # The members share the CPU cores: each its share of threads, instead of all of them each.
        members = 2 if args.dry_run else SWEEP_MEMBERS
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // members))
    started = time.monotonic()
    run_logged([*command, *stage_overrides(stage, args)], args.output_dir / "logs" / f"{stage.name}.log", env)
    stage.wall_seconds = time.monotonic() - started
    pattern = f"multiruns/{stage.name}/*/*/metrics.json" if stage.name == "ensemble_sweep" \
        else f"runs/{stage.name}/*/metrics.json"
    stage.runs = [run_summary(path.parent) for path in sorted(args.output_dir.glob(pattern))]
    for run in stage.runs:
        config = run_config(Path(run["run_dir"]))
        run["configured_epochs"] = config.trainer.max_epochs
        run["channels"] = list(config.model.net.channels)
    if not stage.runs:
        raise SystemExit(f"error: {stage.name} left no run under {args.output_dir}")


def concurrency_gain(alone: dict[str, Any], members: list[dict[str, Any]]) -> float | None:
    """Epochs a second of the members of ``alone``'s network trained together (the others ran
    beside them), over ``alone``'s epochs a second when it had the GPU to itself."""
    same = [m for m in members if m.get("channels") == alone.get("channels") and m.get("median_epoch_seconds")]
    if not alone.get("median_epoch_seconds") or not same:
        return None
    return sum(1.0 / m["median_epoch_seconds"] for m in same) * alone["median_epoch_seconds"]


def build_ensemble(sweep_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    output = args.output_dir / "ensemble.ckpt"
    run_logged([sys.executable, "-m", "fer_lightning.ensemble", str(sweep_dir), "--top-k", str(ENSEMBLE_TOP_K),
                "--output", str(output), "--device", "auto"], args.output_dir / "logs" / "ensemble.log")
    return json.loads(output.with_suffix(".json").read_text())


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def readme_rows(results: dict[str, Any]) -> str:
    """The README results table's rows: model | recipe | epochs | wall time | PublicTest | command."""
    where = results["machine"]["gpu"] or "CPU (dry run)"
    command = "`python -m benchmarks.gpu_results --data <fer2013>`"
    lines = []
    for name, label in (("report", "the report's CNN"), ("best_single", "wide variant (32…768 channels)")):
        run = results["stages"][name]["runs"][0]
        cut = "" if run["epochs"] == run["configured_epochs"] else f" of {run['configured_epochs']} (time limit)"
        lines.append(f"| {label} | `{name}`, data and augmentation on the device | {run['epochs']}{cut} | "
                     f"{run['train_seconds'] / 60:.1f} min on {where}, {run['median_epoch_seconds']:.1f} s an epoch | "
                     f"{percent(run['val_acc'])} | {command} |")
    ensemble = results["ensemble"]
    stage = results["stages"]["ensemble_sweep"]
    epochs = sorted(m["epochs"] for m in stage["runs"] if m["epochs"] is not None)
    configured = stage["runs"][0]["configured_epochs"]
    span = f"{epochs[0]}–{epochs[-1]}" if epochs and epochs[0] != epochs[-1] else str(epochs[0] if epochs else "–")
    cut = "" if epochs and epochs[0] == configured else f" of {configured} (time limit)"
    lines.append(f"| ensemble of the sweep's best | `ensemble_sweep`: {len(stage['runs'])} members trained at once "
                 f"on one device, the best {ensemble['members']} averaged | {span}{cut} a member | "
                 f"{stage['wall_seconds'] / 60:.1f} min on {where} | {percent(ensemble['val_acc'])} | {command} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.monotonic()
    machine = check_machine(args)
    budget = args.minutes * 60
    args.output_dir.mkdir(parents=True, exist_ok=True)
    stages = {name: Stage(name, share * budget) for name, share in SHARES.items()}
    for stage in stages.values():
        train_stage(stage, args)
        print(f"{stage.name}: {len(stage.runs)} run(s), best val acc "
              f"{max(r['val_acc'] or 0 for r in stage.runs):.4f}, {stage.wall_seconds:.0f} s", flush=True)
    sweep_dir = Path(stages["ensemble_sweep"].runs[0]["run_dir"]).parent
    ensemble = build_ensemble(sweep_dir, args)
    single = stages["best_single"].runs[0]
    results = {
        "machine": machine,
        "dry_run": args.dry_run,
        "minutes_limit": args.minutes,
        "stages": {name: {"seconds_limit": stage.seconds, "wall_seconds": stage.wall_seconds, "runs": stage.runs}
                   for name, stage in stages.items()},
        "ensemble": {"val_acc": ensemble["ensemble"]["val_acc"], "members": len(ensemble["members"]),
                     "file": ensemble["artifact"]},
        # best_single's network: its members' epochs a second together, against best_single alone.
        "concurrent_speedup": concurrency_gain(single, stages["ensemble_sweep"].runs),
        "wall_minutes": (time.monotonic() - started) / 60,
    }
    report = stages["report"].runs[0]
    if machine.get("bf16_peak_tflops") and report["median_epoch_seconds"]:
        achieved = training_tflops(Path(report["run_dir"]), report["median_epoch_seconds"])
        results["report_epoch"] = {"seconds": report["median_epoch_seconds"], "tflops": achieved,
                                   "fraction_of_bf16_peak": achieved / machine["bf16_peak_tflops"]}
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output_dir / "rows.md").write_text(readme_rows(results))
    print(readme_rows(results), end="")
    print(f"wrote {args.output_dir / 'results.json'} and rows.md in {results['wall_minutes']:.1f} min")
    return results


if __name__ == "__main__":
    main()
