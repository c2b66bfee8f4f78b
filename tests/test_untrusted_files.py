"""Files from elsewhere are data: an ensemble file or a run directory that names code in its stored
settings is refused in one line, and nothing it names runs (no file appears or changes on disk)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from fer_lightning.checkpoints.ensemble_file import ensemble_artifact
from fer_lightning.cli.entry import command
from fer_lightning.cli.report import report
from fer_lightning.data.augmentation import build_transform
from fer_lightning.errors import FerError
from fer_lightning.inference.evaluation import evaluate
from fer_lightning.models.classifier import ExpressionClassifier
from tests.conftest import compose_config
from tests.test_ensemble import TINY, write_checkpoint

PLAIN_DATA = {
    "_target_": "fer_lightning.data.datamodule.FERDataModule", "source": "synthetic",
    "synthetic": {"train": 0, "val": 16, "test": 16, "seed": 0}, "cache_dir": None,
    "augmentation": {"train": None, "eval": None},
}


class WritesAFile:
    """A pickle that, if ever unpickled without weights_only, creates the file it names."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def hostile_data(kind: str, marker: Path, bait: Path) -> dict:
    """Data settings that would create ``marker`` (or load ``bait``) if anything instantiated them."""
    opener = {"_target_": "builtins.open", "file": str(marker), "mode": "w"}
    saver = {"_target_": "torch.save", "obj": [1], "f": str(marker)}
    loader = {"_target_": "torch.load", "f": str(bait), "weights_only": False}
    compose = {"_target_": "albumentations.Compose"}
    cases = {
        "stdlib target": opener,
        "torch.save target": {**saver},
        "torch.load of a pickle": {**loader},
        "nested in a setting": {**PLAIN_DATA, "synthetic": {"train": 0, "val": opener, "test": 16}},
        "eval transform target": {**PLAIN_DATA, "augmentation": {"train": None, "eval": opener}},
        "inside a composition": {**PLAIN_DATA, "augmentation": {
            "train": None, "eval": {**compose, "transforms": [{"_target_": "albumentations.HorizontalFlip", "p": 0.0},
                                                             saver]}}},
        "in a transform argument": {**PLAIN_DATA, "augmentation": {
            "train": None, "eval": {"_target_": "albumentations.Affine", "rotate": loader}}},
        "partial hydra call": {**PLAIN_DATA, "augmentation": {
            "train": {"_target_": "pathlib.Path.touch", "_args_": [str(marker)]}, "eval": None}},
    }
    return cases[kind]


HOSTILE_KINDS = ["stdlib target", "torch.save target", "torch.load of a pickle", "nested in a setting",
                 "eval transform target", "inside a composition", "in a transform argument",
                 "partial hydra call"]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def scene(tmp_path):
    """Where a hostile file would write (marker) and a pickle it would load (bait)."""
    root = tmp_path / "files"  # the commands' own job directories go beside it, in tmp_path
    root.mkdir()
    marker, bait = root / "pwned", root / "bait.pkl"
    bait.write_bytes(pickle.dumps(WritesAFile(root / "pwned-by-pickle")))
    return root, marker, bait


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_an_ensemble_file_naming_code_is_refused_and_nothing_runs(scene, kind, capsys):
    root, marker, bait = scene
    torch.manual_seed(0)
    member = ExpressionClassifier(**TINY)
    artifact = ensemble_artifact([{"hyper_parameters": dict(member.hparams), "state_dict": member.state_dict()}],
                                 [1.0], selection="top_k", data=hostile_data(kind, marker, bait))
    path = root / "ensemble.ckpt"
    torch.save(artifact, path)
    before = snapshot(root)

    cfg = compose_config([f"ckpt_path={path}", "split=val"], config_name="evaluate", output_dir=root.parent / "eval")
    with pytest.raises(SystemExit) as exit_info:
        evaluate_command(cfg)

    assert exit_info.value.code == 2
    line = one_error_line(capsys)
    assert str(path) in line and ("refused" in line or "allowed" in line)
    assert snapshot(root) == before  # nothing created, nothing changed


@pytest.mark.parametrize("kind", ["stdlib target", "eval transform target", "in a transform argument"])
def test_a_run_directory_naming_code_is_refused_by_evaluate_and_report(scene, kind, capsys):
    root, marker, bait = scene
    run = root / "run"
    (run / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"data": hostile_data(kind, marker, bait), "paths": {"output_dir": "x"}}),
                   run / ".hydra" / "config.yaml")
    (run / "metrics.json").write_text('{"status": "completed"}')
    write_checkpoint(run / "checkpoints" / "best.ckpt", seed=0)
    before = snapshot(root)

    cfg = compose_config([f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "split=val"], config_name="evaluate",
                         output_dir=root.parent / "eval")
    with pytest.raises(SystemExit):
        evaluate_command(cfg)
    assert "config.yaml" in one_error_line(capsys)
    assert snapshot(root) == before

    cfg = compose_config([f"run_dir={run}", "split=val"], config_name="report", output_dir=root.parent / "report-job")
    with pytest.raises(SystemExit):
        command(report)(cfg)
    assert "config.yaml" in one_error_line(capsys)
    assert snapshot(root) == before


def evaluate_command(cfg):
    """The evaluate command as its entry point runs it: errors are one line, exit status 2."""
    from fer_lightning.cli.entry import command

    return command(evaluate)(cfg)


def test_plain_pipelines_still_build_and_unknown_transforms_are_named():
    pipeline = build_transform({"_target_": "albumentations.Compose", "transforms": [
        {"_target_": "albumentations.Affine", "rotate": [-10, 10], "translate_percent": {"x": [-0.1, 0.1]}, "p": 1.0},
    ]})
    assert type(pipeline).__name__ == "Compose"
    with pytest.raises(FerError, match=r"augmentation\.transforms\[0\]\._target_='albumentations.FDA'.*allowed"):
        build_transform({"_target_": "albumentations.Compose", "transforms": [{"_target_": "albumentations.FDA"}]})


def test_stored_settings_choose_no_folder_to_write_in(tmp_path):
    from fer_lightning.data.settings import data_settings, local_cache_dir

    elsewhere = data_settings({**PLAIN_DATA, "cache_dir": str(tmp_path / "their-cache")}, where="ensemble.ckpt")
    assert elsewhere["cache_dir"] is None
    assert data_settings({**PLAIN_DATA, "cache_dir": local_cache_dir()}, where="x")["cache_dir"] == local_cache_dir()


def test_a_saved_config_with_a_python_tag_is_one_line_for_evaluate_report_and_publish(tmp_path):
    from fer_lightning.errors import ConfigError
    from fer_lightning.runs.saved_run import load_run_config

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text('data: !!python/object/apply:os.system ["touch pwned"]\n')
    with pytest.raises(ConfigError, match=r"config.yaml: cannot be read \(could not determine a constructor"):
        load_run_config(tmp_path)  # what evaluate, report and publish read a run's data settings with
    assert not (tmp_path / "pwned").exists()
