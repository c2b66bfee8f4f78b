"""Average the best runs of a sweep into one ensemble file, chosen on validation accuracy only.

Each member's probabilities on the validation (and test) images are computed once and kept, so
an ensemble of k members costs k single evaluations, and greedy selection tries a larger
ensemble by averaging arrays instead of running networks again.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from fer_lightning.errors import CheckpointError, ConfigError, FerError
from fer_lightning.files import atomic_write, check_output, write_error
from fer_lightning.inference.scoring import (
    LabelledImages,
    accuracy,
    data_files,
    data_identity,
    data_summary,
    load_splits,
    predict_probabilities,
    resolve_device,
)
from fer_lightning.runs.saved_run import run_data_config
from fer_lightning.sweeps.leaderboard import RunRecord, collect_runs, read_json_object

log = logging.getLogger(__name__)

SELECTIONS = ("top_k", "greedy")
# Each selection method has its own files, so a greedy ensemble never replaces the top-k one.
ENSEMBLE_STEMS = {"top_k": "ensemble", "greedy": "ensemble-greedy"}
T = TypeVar("T")
_END = object()  # marks the end of the ranked runs (a run itself is never this object)


# ---------------------------------------------------------------------------------- selection
def average(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Equal-weight mean of the members' probabilities."""
    return np.mean(np.stack(probabilities), axis=0)


def greedy_selection(ranked: Iterable[T], val_probabilities: Callable[[T], np.ndarray],
                     labels: np.ndarray, max_members: int | None = None) -> list[T]:
    """Best run first; add the next-best only while the average's validation accuracy improves.

    ``ranked`` is consumed lazily, so a run that is never considered is never evaluated.
    """
    candidates = iter(ranked)
    first = next(candidates, _END)
    if first is _END:
        return []
    chosen, probabilities = [first], [val_probabilities(first)]
    best = accuracy(probabilities[0], labels)
    while max_members is None or len(chosen) < max_members:
        candidate = next(candidates, _END)
        if candidate is _END:
            break
        trial = probabilities + [val_probabilities(candidate)]
        score = accuracy(average(trial), labels)
        if score <= best:
            break  # no better: the runs after it are weaker still
        chosen.append(candidate)
        probabilities, best = trial, score
    return chosen


# ------------------------------------------------------------------------------------ members
@dataclass
class Member:
    run: RunRecord
    checkpoint: Path
    module: Any  # SoftmaxAverage around the member's network
    hyper_parameters: dict[str, Any]
    state_dict: dict[str, Any]
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)  # split -> (N, classes)

    def split_accuracy(self, split: str, data: dict[str, LabelledImages]) -> float | None:
        """Accuracy on a labelled split it was run on; None for a split it was not."""
        if split not in self.probabilities:
            return None
        return accuracy(self.probabilities[split], data[split].labels)


def member_checkpoint(run: RunRecord) -> Path:
    """The run's own checkpoints/best.ckpt: never a path that its metrics.json names, which may point
    anywhere (in a copied sweep, at another run's file)."""
    return run.path / "checkpoints" / "best.ckpt"


def load_member(run: RunRecord, device: Any = "cpu") -> Member:
    from fer_lightning.checkpoints.ensemble_file import SoftmaxAverage
    from fer_lightning.checkpoints.model_file import classifier_from_checkpoint, read_checkpoint

    path = member_checkpoint(run)
    classifier = classifier_from_checkpoint(read_checkpoint(path), source=str(path))
    state_dict = classifier.state_dict()  # taken before the move: the ensemble file holds CPU tensors
    return Member(run, path, SoftmaxAverage([classifier.net]).eval().to(device), dict(classifier.hparams),
                  state_dict)


def loadable_members(runs: Iterable[RunRecord], skipped: list[dict[str, str]],
                     device: Any = "cpu") -> Iterator[Member]:
    """Members in the given order, each on ``device`` once; a missing or unreadable checkpoint is
    skipped with a warning."""
    for run in runs:
        try:
            yield load_member(run, device)
        except CheckpointError as error:
            log.warning("skipping run %s: %s", run.path, error)
            skipped.append({"run_dir": str(run.path), "reason": str(error)})


def shared_data(runs: list[RunRecord], skipped: list[dict[str, str]]) -> tuple[list[RunRecord], dict[str, Any]]:
    """The data config all candidate runs trained on; runs whose config is unreadable are skipped.

    Validation accuracies are only comparable, and averaging only meaningful, on the same images.
    """
    usable, configs = [], []
    for run in runs:
        try:
            configs.append(run_data_config(run.path))
            usable.append(run)
        except ConfigError as error:
            log.warning("skipping run %s: %s", run.path, error)
            skipped.append({"run_dir": str(run.path), "reason": str(error)})
    if not usable:
        raise FerError("no run with a readable config to take members from")
    reference = data_identity(configs[0])
    for run, config in zip(usable[1:], configs[1:]):
        identity = data_identity(config)
        if identity != reference:
            keys = [k for k in reference if reference[k] != identity[k]]
            details = ", ".join(f"{k}: {reference[k]!r} vs {identity[k]!r}" for k in keys)
            raise FerError(
                f"the runs do not share one data source ({details}; {usable[0].path.name} vs {run.path.name}): "
                "ensemble runs of one data set only"
            )
    log.info("all %d candidate runs share the data: %s", len(usable), data_summary(configs[0]))
    return usable, configs[0]


# ------------------------------------------------------------------------------------- command
ENSEMBLE_SUFFIXES = (".ckpt", ".pt")


def ensemble_paths(sweep_dir: str | Path, selection: str, output: str | Path | None = None) -> tuple[Path, Path]:
    """(ensemble file, its JSON summary): ``<sweep>/ensemble.ckpt`` for top-k and
    ``<sweep>/ensemble-greedy.ckpt`` for greedy, each with a ``.json`` of the same name; with
    ``output``, that file and ``output`` with a ``.json`` suffix beside it.
    """
    if selection not in ENSEMBLE_STEMS:
        raise ConfigError(f"selection={selection!r} is not allowed: one of {', '.join(SELECTIONS)}")
    artifact = Path(output) if output else Path(sweep_dir) / f"{ENSEMBLE_STEMS[selection]}.ckpt"
    if artifact.suffix.lower() not in ENSEMBLE_SUFFIXES:
        raise ConfigError(f"--output {artifact}: an ensemble file's name ends in .ckpt or .pt (its summary "
                          "goes to the .json of the same name)")
    return artifact, artifact.with_suffix(".json")


def is_ensemble_file(path: Path) -> bool:
    from fer_lightning.checkpoints.ensemble_file import is_ensemble_checkpoint
    from fer_lightning.checkpoints.model_file import read_checkpoint

    try:
        return is_ensemble_checkpoint(read_checkpoint(path))
    except FerError:
        return False


def is_ensemble_summary(path: Path) -> bool:
    document = read_json_object(path)
    return document is not None and {"artifact", "members", "selection"} <= set(document)


def check_outputs(artifact: Path, summary: Path, runs: Sequence[RunRecord], data_config: dict[str, Any],
                  overwrite: bool) -> None:
    """Before any work: the ensemble file and its summary replace no input (a run's checkpoints and
    results, the data), and an existing file of another kind only with --overwrite."""
    for path in (artifact, summary):
        for run in runs:
            if path.resolve().is_relative_to(run.path.resolve()):
                raise ConfigError(f"--output {artifact}: {path.name} would be written inside the run {run.path}, "
                                  "whose files the ensemble reads; choose a path outside the sweep's runs")
    inputs = [*data_files(data_config), *(("a member's checkpoint", member_checkpoint(run)) for run in runs)]
    check_output(artifact, inputs, is_ensemble_file, overwrite, kind="an ensemble file", key="--output",
                 overwrite_flag="--overwrite")
    check_output(summary, inputs, is_ensemble_summary, overwrite, kind="an ensemble summary",
                 key=f"--output {artifact}: its summary", overwrite_flag="--overwrite")


def choose_members(ranked: list[RunRecord], val: LabelledImages, top_k: int, greedy: bool, batch_size: int,
                   skipped: list[dict[str, str]], device: Any = "cpu") -> list[Member]:
    """The members, each with its validation probabilities (computed once, in one batched pass)."""

    def val_probabilities(member: Member) -> np.ndarray:
        member.probabilities["val"] = predict_probabilities(member.module, val.images, batch_size,
                                                            transform=val.transform, device=device)
        return member.probabilities["val"]

    in_order = loadable_members(ranked, skipped, device)
    if greedy:
        return greedy_selection(in_order, val_probabilities, val.labels, top_k)
    chosen = list(itertools.islice(in_order, top_k))
    for member in chosen:
        val_probabilities(member)
    return chosen


def describe(member: Member, weight: float, data: dict[str, LabelledImages]) -> dict[str, Any]:
    return {
        "run_dir": str(member.run.path),
        "checkpoint": str(member.checkpoint),
        "overrides": member.run.changed,
        "best_val_acc": member.run.best_val_acc,  # as training recorded it
        "val_acc": member.split_accuracy("val", data),
        "test_acc": member.split_accuracy("test", data),
        "weight": weight,
    }


def build_ensemble(sweep_dir: str | Path, top_k: int = 5, greedy: bool = False, batch_size: int = 256,
                   output: str | Path | None = None, device: str = "cpu", overwrite: bool = False) -> dict[str, Any]:
    """Choose members, evaluate them, save the ensemble file and its JSON summary (``ensemble_paths``).

    ``top_k``: the k best completed runs by best validation accuracy; with ``greedy``, the most
    members to take. Test accuracy is computed only after the choice, for the report. ``device``:
    where members compute their probabilities (``auto``: the GPU when there is one). Returns the
    summary document; its ``artifact`` and ``summary`` say where both went.
    """
    from fer_lightning.checkpoints.ensemble_file import ensemble_artifact, save_ensemble

    if top_k < 1:
        raise ConfigError(f"top_k={top_k}: at least 1")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: at least 1")
    sweep_dir = Path(sweep_dir)
    selection = "greedy" if greedy else "top_k"
    artifact_path, summary_path = ensemble_paths(sweep_dir, selection, output)
    runs, _ = collect_runs(sweep_dir)
    ranked = [r for r in runs if r.status == "completed" and isinstance(r.best_val_acc, (int, float))]
    if not ranked:
        raise FerError(f"{sweep_dir}: no completed run to build an ensemble from")
    skipped: list[dict[str, str]] = []
    ranked, data_config = shared_data(ranked, skipped)
    check_outputs(artifact_path, summary_path, runs, data_config, overwrite)
    try:  # before the members are scored: a folder that cannot be made costs nothing yet
        artifact_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise write_error(artifact_path.parent, error) from None
    data = {name: split for name, split in load_splits(data_config, ("val", "test")).items()
            if split.labels is not None}
    if "val" not in data:
        raise FerError(f"the data ({data_summary(data_config)}) has no labelled validation split to choose members on")

    where = resolve_device(device)
    chosen = choose_members(ranked, data["val"], top_k, greedy, batch_size, skipped, where)
    if not chosen:
        raise FerError(f"{sweep_dir}: none of the completed runs has a readable checkpoint")
    if "test" in data:
        for member in chosen:
            member.probabilities["test"] = predict_probabilities(member.module, data["test"].images, batch_size,
                                                                 transform=data["test"].transform, device=where)
    ensemble_acc = {split: accuracy(average([m.probabilities[split] for m in chosen]), data[split].labels)
                    for split in data}

    weights = [1.0 / len(chosen)] * len(chosen)
    described = [describe(member, weight, data) for member, weight in zip(chosen, weights)]
    save_ensemble(artifact_path, ensemble_artifact(
        [{"hyper_parameters": m.hyper_parameters, "state_dict": m.state_dict, **d} for m, d in zip(chosen, described)],
        weights, selection=selection, data=data_config,
    ))
    document = {
        "sweep_dir": str(sweep_dir),
        "artifact": str(artifact_path),
        "summary": str(summary_path),
        "selection": selection,
        "top_k": top_k,
        "data": data_summary(data_config),
        "members": described,
        "ensemble": {"val_acc": ensemble_acc["val"], "test_acc": ensemble_acc.get("test"),
                     "num_val": len(data["val"].images),
                     "num_test": len(data["test"].images) if "test" in data else 0},
        "skipped": skipped,
    }
    with atomic_write(summary_path, "w") as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
    return document


def render_table(document: dict[str, Any]):
    from rich.table import Table

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.2f}"

    table = Table(title=f"Ensemble of {len(document['members'])} ({document['selection']}) on {document['data']}")
    for name in ("member", "weight", "val acc %", "test acc %"):
        table.add_column(name, justify="left" if name == "member" else "right", overflow="fold")
    for member in document["members"]:
        table.add_row(" ".join(member["overrides"]) or Path(member["run_dir"]).name, f"{member['weight']:.3f}",
                      percent(member["val_acc"]), percent(member["test_acc"]))
    table.add_section()
    table.add_row("[bold]ensemble[/]", "1.000", f"[bold]{percent(document['ensemble']['val_acc'])}[/]",
                  f"[bold]{percent(document['ensemble']['test_acc'])}[/]")
    return table
