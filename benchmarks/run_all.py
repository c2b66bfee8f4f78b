"""python -m benchmarks.run_all [--quick] [--only FIGURE ...] [--wait-quiet SECONDS] [--output FILE]

Measures every figure, prints them as Markdown tables and writes the numbers to
benchmarks/results/<host>-<date>.json (``--render FILE`` prints the tables of a saved result).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.sizes import FULL, QUICK, Sizes

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Run order matters: later figures compare against figure 1's training rate.
FIGURES = ("train_throughput", "train_options", "data_loading", "startup", "inference", "ensemble_eval", "scaling",
           "face_detectors", "augmentation_match", "recognizer_speed", "thread_policy", "video_rate")
QUIET_LOAD = 0.8  # 1-minute load average below which the machine counts as quiet
POLL_SECONDS = 30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that everything runs (seconds)")
    parser.add_argument("--only", nargs="+", choices=FIGURES, metavar="FIGURE",
                        help=f"measure only these figures ({', '.join(FIGURES)})")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help=f"first wait up to SECONDS for the 1-minute load to fall below {QUIET_LOAD}")
    parser.add_argument("--output", type=Path, metavar="FILE",
                        help="where to write the JSON (default benchmarks/results/<host>-<date>[-quick].json)")
    parser.add_argument("--render", type=Path, metavar="FILE", help="print the tables of a saved result and exit")
    return parser.parse_args(argv)


def wait_until_quiet(limit_seconds: float) -> float:
    """Seconds waited for the 1-minute load average to drop below QUIET_LOAD (gives up at the limit)."""
    from benchmarks.hardware import load_average

    started = time.monotonic()
    while load_average()[0] >= QUIET_LOAD and time.monotonic() - started < limit_seconds:
        print(f"waiting for a quiet machine: load {load_average()[0]}", file=sys.stderr, flush=True)
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def render(document: dict[str, Any]) -> str:
    from benchmarks.report import render_markdown

    meta = document["meta"]
    cpu = meta["cpu"]
    lines = [
        f"{cpu['model']}, {cpu['cores']} cores at {cpu['ghz']} GHz ({', '.join(cpu['simd_flags'])}; fp32 peak "
        f"{cpu['peak_gflops_fp32']} GFLOP/s, {cpu.get('microarchitecture', 'unknown core')}: "
        f"{cpu.get('peak_assumes', 'from the SIMD flags')}), torch {meta['torch']} ({meta['torch_threads']} threads), "
        f"{meta['date']}, load before/after {meta['load_before']}/{meta['load_after']}"
        + (" — TAKEN UNDER LOAD: the numbers are not representative" if meta["under_load"] else "")
        + (" — QUICK MODE (tiny sizes, not measurements)" if meta["sizes"]["quick"] else ""),
    ]
    for name, fig in document["figures"].items():
        lines += ["", render_markdown(name, fig)]
    return "\n".join(lines)


def default_output(quick: bool) -> Path:
    host = socket.gethostname().split(".")[0] or "host"
    return RESULTS_DIR / f"{host}-{time.strftime('%Y-%m-%d')}{'-quick' if quick else ''}.json"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.render:
        print(render(json.loads(args.render.read_text())))
        return
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    waited = wait_until_quiet(args.wait_quiet) if args.wait_quiet > 0 else 0.0

    import torch

    sizes = QUICK if args.quick else FULL
    threads = torch.get_num_threads()
    if args.quick:
        # A dry run must finish in seconds even on a busy machine, where several threads per
        # process fight over the cores.
        torch.set_num_threads(1)
    try:
        document = measure(args.only or FIGURES, sizes, waited)
    finally:
        torch.set_num_threads(threads)
    output = args.output or default_output(args.quick)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1, default=float))
    print(render(document))
    print(f"\nwritten to {output}", file=sys.stderr)


def measure(names: Sequence[str], sizes: Sizes, waited: float) -> dict[str, Any]:
    """Every figure in ``names``, with what the machine was and how busy it was."""
    import torch

    from benchmarks.hardware import cpu_description, load_average
    from fer_lightning.config.resolvers import cpu_precision

    cpu = cpu_description()
    load_before = load_average()
    context: dict[str, Any] = {"cpu": cpu, "config_precision": cpu_precision()}
    figures: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    for name in names:
        print(f"measuring {name} ...", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            figures[name] = importlib.import_module(f"benchmarks.{name}").run(sizes, context)
        except Exception as error:  # one broken figure must not cost the others' measurements
            traceback.print_exc()
            figures[name] = {"title": name, "error": f"{type(error).__name__}: {error}", "columns": [], "rows": []}
        seconds[name] = round(time.perf_counter() - began, 1)
    load_after = load_average()
    document = {
        "meta": {
            "host": socket.gethostname(),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "cpu": cpu,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "config_precision": context["config_precision"],
            "load_before": load_before,
            "load_after": load_after,
            "waited_for_quiet_s": round(waited, 1),
            "under_load": load_before[0] >= QUIET_LOAD,
            "seconds_per_figure": seconds,
            "total_seconds": round(time.perf_counter() - started, 1),
            "sizes": sizes.as_dict(),
        },
        "figures": figures,
    }
    return document


if __name__ == "__main__":
    main()
