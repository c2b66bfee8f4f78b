"""python -m fer_lightning.publish RUN_DIR|ENSEMBLE_FILE --name NAME [--directory DIR] [--replace]

Ship a finished run's best checkpoint, or an ensemble file, as a model of the package
(``ckpt_path=pretrained:NAME``): fp16 weights in DIR/NAME.pt, listed in DIR/models.json with their
sha256, the validation accuracy of the stored file, macro F1, per-class recall, the confusion matrix
and the training history (an ensemble: each member's name, weight and validation accuracy, and how
they were chosen). Refused when the stored file's validation accuracy differs from the original's by
0.1 point or more, or when the file would exceed the 12 MB a shipped model may weigh.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from typing import Any

from fer_lightning.cli.entry import command, parse_options
from fer_lightning.config.resolvers import register_resolvers
from fer_lightning.errors import FerError
from fer_lightning.runs.provenance import cpu_name

register_resolvers()
TOLERANCE = 0.001  # accuracy, as a fraction: 0.1 point
MAX_BYTES = 12 * 1024 * 1024  # what one shipped model file may weigh


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from fer_lightning.checkpoints.shipped import PRETRAINED_DIR

    parser = argparse.ArgumentParser(prog="python -m fer_lightning.publish", description=__doc__.split("\n\n")[1])
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR|ENSEMBLE_FILE",
                        help="a finished training run, or an ensemble file (make ensemble writes one)")
    parser.add_argument("--name", required=True, help="the model's name: ckpt_path=pretrained:NAME")
    parser.add_argument("--directory", type=Path, default=PRETRAINED_DIR,
                        help=f"where the package keeps its models (default {PRETRAINED_DIR})")
    parser.add_argument("--evaluate-data", default="data=fer2013 data.path=<fer2013.csv.gz>",
                        help="the overrides that name its data, shown to users of evaluate and report")
    parser.add_argument("--hardware", default=None,
                        help="where it was trained, for the model card (default: this machine's CPU)")
    parser.add_argument("--not-default", action="store_true", help="keep the current default model")
    parser.add_argument("--replace", action="store_true", help="replace a model of the same name")
    return parse_options(parser, argv)


def publish_run(args: argparse.Namespace) -> dict[str, Any]:
    import os

    import torch

    from fer_lightning.checkpoints.model_file import read_checkpoint
    from fer_lightning.checkpoints.predictor import load_predictor
    from fer_lightning.checkpoints.shipped import check_model_name, compact_checkpoint, publish
    from fer_lightning.inference.scoring import classification_metrics, load_splits, predict_probabilities
    from fer_lightning.runs.saved_run import open_finished_run, read_history, run_data_config

    replaced = check_model_name(args.name, args.directory, args.replace)  # before the minutes of scoring
    if replaced:
        logging.info("replacing the model %s", replaced)
    if args.run_dir.is_file():  # an ensemble file: its members and the data they were chosen on
        checkpoint, run, metrics = args.run_dir, None, {}
        original = load_predictor(checkpoint)
        if original.kind != "ensemble" or original.data is None:
            raise FerError(f"{checkpoint}: publish takes a run directory or an ensemble file (with its data settings)")
        data = original.data
    else:
        run = open_finished_run(args.run_dir)
        checkpoint, metrics = run.checkpoint("best"), run.metrics
        data = run_data_config(run.path)
    splits = load_splits(data, ("train", "val"))
    val = splits["val"]
    logging.info("scoring %s and its fp16 copy on %s", checkpoint, val.description)
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        compact = Path(scratch) / "compact.pt"
        torch.save(compact_checkpoint(read_checkpoint(checkpoint)), compact)
        if compact.stat().st_size > MAX_BYTES:
            raise FerError(f"{checkpoint}: its fp16 copy weighs {compact.stat().st_size / 2**20:.1f} MB, more than the "
                           f"{MAX_BYTES // 2**20} MB a shipped model may: choose fewer or smaller members")
        for kind, path in (("checkpoint", checkpoint), ("stored", compact)):
            predictor = load_predictor(path)
            probabilities = predict_probabilities(predictor.module, val.images, transform=val.transform)
            results[kind] = classification_metrics(probabilities, val.labels, predictor.class_names)
    difference = abs(results["stored"]["accuracy"] - results["checkpoint"]["accuracy"])
    if difference >= TOLERANCE:
        raise FerError(f"the fp16 copy scores {difference:.2%} away from {checkpoint}: not published")
    stored = results["stored"]
    details = {
        # The file's name and split sizes: where it lay on the publishing machine is no one's business.
        "trained_on": f"{Path(str(data.get('path') or 'synthetic faces')).name}: "
                      + ", ".join(f"{name} {len(split.images)}" for name, split in splits.items()),
        "evaluate_data": args.evaluate_data,
        "hardware": args.hardware or f"{cpu_name()}, {os.cpu_count()} cores",
        "val_images": len(val.images),
        "val_accuracy": stored["accuracy"],
        "val_accuracy_of_checkpoint": results["checkpoint"]["accuracy"],
        "val_macro_f1": stored["macro_f1"],
        "val_recall": {name: row["recall"] for name, row in stored["per_class"].items()},
        "val_confusion_matrix": stored["confusion_matrix"],
    }
    if run is None:
        artifact = compact_checkpoint(read_checkpoint(checkpoint))
        details["selection"] = artifact["fer_lightning"].get("selection")
        details["members"] = [{key: member.get(key) for key in ("run", "overrides", "weight", "val_acc")}
                              for member in artifact["members"]]
    else:
        details.update({
            "command": "python -m fer_lightning.train " + " ".join(
                o for o in metrics.get("overrides") or [] if not o.startswith("paths.")),
            "epochs": metrics.get("epochs_completed"),
            "best_epoch": metrics.get("best_epoch"),
            "training_time": f"{metrics['train_seconds'] / 60:.0f} min" if metrics.get("train_seconds") else None,
            "history": {tag: [[epoch, round(value, 5)] for epoch, value in rows]
                        for tag, rows in read_history(run.path / "tensorboard").items()},
        })
    path = publish(read_checkpoint(checkpoint), args.name, details, args.directory, default=not args.not_default,
                   replace=args.replace)
    return {"path": str(path), **{k: v for k, v in details.items() if k != "history"}}


@command
def main(argv: list[str] | None = None) -> None:
    import json

    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    summary = publish_run(args)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
