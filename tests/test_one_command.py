"""One installed command, `fer <command>`: every command under it, the main input on its own, the
--options commands also in key=value form, and --help that explains each setting from the configs."""

from __future__ import annotations

import importlib.metadata
import json

import cv2
import pytest

from fer_lightning.cli.entry import main_input_as_override
from fer_lightning.cli.main import COMMANDS
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import FerError
from tests.helpers import run_cli


def test_fer_is_installed_and_lists_every_command():
    scripts = {entry.name: entry.value for entry in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("fer") == "fer_lightning.cli.main:main"
    result = run_cli("fer_lightning.cli.main", "--help", timeout=60)
    assert result.returncode == 0
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout
    wrong = run_cli("fer_lightning.cli.main", "trian", timeout=60)
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: trian: not a command of fer")


def test_the_main_input_may_stand_alone(tmp_path):
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), generate_synthetic_faces(1, seed=0).images[0])
    result = run_cli("fer_lightning.cli.main", "predict", str(photo), f"output={tmp_path / 'faces.json'}",
                     "tta=none", timeout=180)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "faces.json").read_text())
    assert rows and rows[0]["file"].endswith("face.png")


def test_what_stands_alone_becomes_the_main_input_and_nothing_else(tmp_path):
    run_dir = tmp_path / "model.dropout=0.3"  # run directories hold '=' in their names
    run_dir.mkdir()
    assert main_input_as_override(["photo.jpg", "tta=none"], "input") == ["input=photo.jpg", "tta=none"]
    assert main_input_as_override([str(run_dir)], "run_dir") == [f"run_dir={run_dir}"]
    assert main_input_as_override(["model/width=narrow"], "ckpt_path") == ["model/width=narrow"]
    with pytest.raises(FerError, match="b.jpg: one input at a time"):
        main_input_as_override(["a.jpg", "b.jpg"], "input")
    with pytest.raises(FerError, match="input is given twice"):
        main_input_as_override(["input=a.jpg", "b.jpg"], "input")


def test_option_commands_take_key_value_settings_too(tmp_path):
    from fer_lightning.cli.ensemble import parse_args

    sweep = str(tmp_path / "experiment=cpu_ensemble")
    as_options = parse_args([sweep, "--top-k", "3", "--greedy", "--batch-size", "64"])
    as_settings = parse_args([sweep, "top_k=3", "greedy=true", "batch_size=64"])
    assert vars(as_options) == vars(as_settings) and as_settings.top_k == 3 and as_settings.greedy
    assert not parse_args([sweep, "greedy=false"]).greedy
    assert str(parse_args([sweep]).sweep_dir) == sweep  # a path holding '=' is not a setting


def test_help_explains_each_setting_from_the_config_comments():
    result = run_cli("fer_lightning.cli.main", "predict", "--help", timeout=60)
    assert result.returncode == 0
    text = result.stdout
    assert "  tta=flip" in text and "# Test-time augmentation: flip" in text
    assert text.index("# Test-time augmentation") < text.index("  tta=flip")
    assert "  face_detector=yunet" in text and "hog: dlib's HOG detector" in text


def test_train_help_is_a_page_not_a_dump():
    result = run_cli("fer_lightning.cli.main", "train", "--help", timeout=60)
    assert result.returncode == 0 and len(result.stdout.splitlines()) < 120
    assert "   * synthetic" in result.stdout and "     fer2013 " in result.stdout  # options, the default marked
    assert "  ckpt_path=null\n      Start from trained weights" in result.stdout


