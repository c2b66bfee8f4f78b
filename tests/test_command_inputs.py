"""Every option of every command is checked before any work starts: a wrong value ends in one line
naming the key and what is allowed, never a traceback. A photo that cannot be read and a damaged
metrics file in a sweep are reported where they are, and the rest of the work goes on."""

from __future__ import annotations

import importlib
import json
import logging
import socket
from pathlib import Path

import cv2
import pytest

from fer_lightning.cli.leaderboard import main as leaderboard_main
from fer_lightning.config.checks import check_train_config
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import ConfigError, DataFormatError
from fer_lightning.inference.faces import read_color_image
from fer_lightning.inference.prediction import predict
from fer_lightning.sweeps.leaderboard import collect_runs
from tests.helpers import run_cli
from tests.test_ensemble import saved_run_config, write_checkpoint, write_run
from tests.test_evaluate_predict import command_config, run_hydra_entry


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.ckpt"
    write_checkpoint(path, seed=1)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    cv2.imwrite(str(folder / "face.png"), generate_synthetic_faces(1, seed=1).images[0])
    return folder


# ------------------------------------------------------------------------------ bad options
# Each command runs with a checkpoint that does not exist: the option must be refused before the
# checkpoint is even opened, so the one line is about the option.
BAD_OPTIONS = [
    ("evaluate", ["batch_size=0"], "batch_size=0 is not allowed: a whole number >= 1"),
    ("evaluate", ["seed=abc"], "seed='abc' is not allowed: a whole number in 0..4294967295"),
    ("evaluate", ["overwrite=yes"], "overwrite='yes' is not allowed: true or false"),
    ("evaluate", ["data.test_path=/no/such/test.csv"], "data.test_path=/no/such/test.csv: no such file or folder"),
    ("predict", ["batch_size=0"], "batch_size=0 is not allowed: a whole number >= 1"),
    ("predict", ["margin=-5"], "margin=-5 is not allowed: a number from 0 to 1"),
    ("predict", ["margin=abc"], "margin='abc' is not allowed: a number from 0 to 1"),
    ("predict", ["margin=inf"], "margin=inf is not allowed: a number from 0 to 1"),
    ("predict", ["margin=5"], "margin=5 is not allowed: a number from 0 to 1"),
    ("predict", ["min_face_size=0"], "min_face_size=0 is not allowed: a whole number >= 1"),
    ("predict", ["detect_faces=1"], "detect_faces=1: allowed values are true, false, auto"),
    ("predict", ["annotate=yes"], "annotate='yes' is not allowed: true or false"),
    ("predict", ["output=faces.txt"], "output=faces.txt: predictions are written as .csv or .json"),
    ("export", ["opset=3"], "opset=3 is not allowed: a whole number in 7..23"),
    ("export", ["opset=abc"], "opset='abc' is not allowed: a whole number in 7..23"),
    ("export", ["check=maybe"], "check='maybe' is not allowed: true or false"),
    ("export", ["check_tolerance=-1"], "check_tolerance=-1 is not allowed: a number > 0"),
    ("export", ["format=torchscript", "output=model.onnx"],
     "output=model.onnx is a name for format=onnx, not format=torchscript: name it *.torchscript.pt or pass format=onnx"),
    ("export", ["format=onnx", "output=model.torchscript.pt"],
     "output=model.torchscript.pt is a name for format=torchscript, not format=onnx"),
]


@pytest.mark.parametrize(("command", "overrides", "expected"), BAD_OPTIONS,
                         ids=[f"{c}-{' '.join(o)}" for c, o, _ in BAD_OPTIONS])
def test_a_bad_option_is_one_line_before_any_work(command, overrides, expected, photos, tmp_path, monkeypatch,
                                                   capsys):
    extra = [f"input={photos}", f"output={tmp_path / 'faces.csv'}"] if command == "predict" else []
    with pytest.raises(SystemExit) as exit_info:
        run_hydra_entry(importlib.import_module(f"fer_lightning.{command}").main, monkeypatch,
                        f"ckpt_path={tmp_path / 'absent.ckpt'}", *extra, *overrides)
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {expected}"), lines
    assert "Traceback" not in captured.err + captured.out
    assert not list(tmp_path.iterdir()), "a refused command wrote something"


def test_training_takes_only_a_seed_that_is_a_whole_number_numpy_accepts(train_config):
    cfg = train_config()
    for seed in ("abc", 1.5, -1, 2**32, None):
        cfg.seed = seed
        with pytest.raises(ConfigError, match=rf"^seed={seed!r} is not allowed: a whole number in 0\.\.4294967295$"):
            check_train_config(cfg)
    for seed in (0, 42, 2**32 - 1):
        cfg.seed = seed
        check_train_config(cfg)


# ----------------------------------------------------------------------- unreadable photos
def test_an_empty_photo_is_skipped_with_a_warning_and_the_others_are_predicted(checkpoint, photos, tmp_path,
                                                                               caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "face.png").write_bytes((photos / "face.png").read_bytes())
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "empty.png").write_bytes(b"")
    (folder / "text.png").write_text("not a picture")
    output = tmp_path / "faces.json"
    with caplog.at_level(logging.WARNING):
        predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={folder}", f"output={output}",
                               "annotate=true"))
    results = {entry["file"]: entry for entry in json.loads(output.read_text())}
    assert len(results["face.png"]["faces"]) == 1
    for name in ("empty.jpg", "empty.png"):
        assert results[name]["faces"] == []
        assert results[name]["note"] == f"{folder / name}: the file is empty (0 bytes)"
        assert any(str(folder / name) in record.getMessage() for record in caplog.records)
    assert "cannot decode" in results["text.png"]["note"]
    annotated = tmp_path / "faces_annotated"
    assert (annotated / "face.png").is_file() and not (annotated / "empty.jpg").exists()


def test_reading_an_empty_image_names_it_in_one_line(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match=rf"^{empty}: the file is empty \(0 bytes\)$"):
        read_color_image(empty)
    with pytest.raises(DataFormatError, match=rf"^{tmp_path}: not a regular file$"):
        read_color_image(tmp_path)  # a folder where a file was expected
    with pytest.raises(DataFormatError, match=rf"^{tmp_path / 'gone.jpg'}: cannot be read \(No such file"):
        read_color_image(tmp_path / "gone.jpg")


def test_a_single_empty_photo_is_one_line_not_a_traceback(checkpoint, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataFormatError, match="none of its 1 image"):
        predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={empty}",
                               f"output={tmp_path / 'faces.csv'}"))


# -------------------------------------------------------------------- damaged metrics files
@pytest.fixture
def sweep(tmp_path) -> Path:
    """One finished run beside which the tests put damaged ones."""
    sweep = tmp_path / "sweep"
    write_run(sweep / "good", saved_run_config(tmp_path), ["model.dropout=0.3"], best_val_acc=0.6, seed=1)
    return sweep


def damaged_run(sweep: Path, name: str, metrics: bytes) -> Path:
    run = sweep / name
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text(f"- model.dropout=0.{len(name)}\n")
    (run / "metrics.json").write_bytes(metrics)
    return run


@pytest.mark.parametrize("metrics", [b"[1, 2]", b'"x"', b"3", b"null", b"\xff\xfe\x00not text", b"{broken"])
def test_a_metrics_file_that_is_not_a_json_object_lists_its_run_as_failed(sweep, metrics, capsys, monkeypatch):
    damaged_run(sweep, "damaged", metrics)
    runs, _ = collect_runs(sweep)
    assert [(r.path.name, r.status) for r in runs] == [("good", "completed"), ("damaged", "failed")]
    assert runs[1].error == "metrics.json is unreadable (not a JSON object)"

    monkeypatch.setenv("COLUMNS", "200")
    leaderboard_main([str(sweep)])
    printed = capsys.readouterr().out
    assert "metrics.json is unreadable" in printed and "completed" in printed


def test_metrics_of_the_wrong_types_are_shown_as_unknown_not_a_traceback(sweep, capsys, monkeypatch):
    damaged_run(sweep, "odd", json.dumps({
        "status": "completed", "best_val_acc": "high", "best_epoch": "x", "test_acc": [1],
        "train_seconds": {"s": 1}, "best_checkpoint": 5, "overrides": "abc"}).encode())
    running = damaged_run(sweep, "running", json.dumps({"status": "running"}).encode())
    (running / "run.lock").write_text(json.dumps([{"pid": 1, "host": socket.gethostname()}]))
    runs = {run.path.name: run for run in collect_runs(sweep)[0]}
    odd = runs["odd"]
    assert (odd.best_val_acc, odd.best_epoch, odd.test_acc, odd.train_seconds, odd.best_checkpoint) == \
        (None, None, None, None, None)
    assert runs["running"].status == "unfinished"  # a lock that is not an object holds nothing

    monkeypatch.setenv("COLUMNS", "200")
    leaderboard_main([str(sweep)])
    assert "unfinished" in capsys.readouterr().out


def test_a_run_name_never_leaves_the_runs_folder(tmp_path):
    outputs = tmp_path / "deep" / "outputs"
    for name in ("../../../escape", "/tmp/abs", "a/b", "..", "my run"):
        result = run_cli("fer_lightning.train", f"name={name}", f"paths.log_dir={outputs}", timeout=120)
        assert result.returncode == 2 and "is not allowed: one folder name" in result.stderr, name
    assert list(tmp_path.rglob("*")) == []  # no run directory made, inside or outside


def test_paths_with_spaces_are_read_as_paths(tmp_path):
    spaced = tmp_path / "my outputs"
    result = run_cli("fer_lightning.train", f"paths.log_dir={spaced}", "--cfg", "job", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"log_dir: {spaced}" in result.stdout


@pytest.mark.parametrize("option", [["--budget", "nan"], ["--budget", "-5"], ["--target", "inf"], ["--target", "2"]])
def test_curves_refuses_guides_that_cannot_be_drawn(tmp_path, option, capsys):
    from fer_lightning.cli.curves import main as curves_main

    with pytest.raises(SystemExit) as stopped:
        curves_main([str(tmp_path), "--output", str(tmp_path / "c.png"), *option])
    assert stopped.value.code == 2 and option[1] in capsys.readouterr().err


def test_a_new_top_level_key_is_refused_by_train_and_predict(tmp_path):
    for module in ("fer_lightning.train", "fer_lightning.predict"):
        result = run_cli(module, "+bogus=1", f"paths.log_dir={tmp_path}" if "train" in module else "input=x.jpg",
                         timeout=120)
        assert result.returncode == 2 and "'bogus'" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
