"""No command writes over one of its own inputs (compared on disk: through symlinks too), and a file
that is not the command's own kind of output is replaced only with overwrite=true. Annotated photos
show each face's label with its probability."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
from pathlib import Path

import cv2
import pytest

import fer_lightning.inference.faces as faces_module
from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import ConfigError, WriteError
from fer_lightning.evaluate import main as evaluate_main
from fer_lightning.files import atomic_write
from fer_lightning.inference.evaluation import evaluate
from fer_lightning.inference.export import export
from fer_lightning.inference.prediction import predict
from fer_lightning.predict import main as predict_main
from tests.test_ensemble import saved_run_config, write_checkpoint, write_run
from tests.test_evaluate_predict import (
    command_config,
    run_hydra_entry,
    write_homework_test_csv,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished run (untrained weights) whose data is 32 synthetic test faces."""
    root = tmp_path_factory.mktemp("safety")
    return write_run(root / "run", saved_run_config(root), ["model.dropout=0.3"], best_val_acc=0.5, seed=3)


@pytest.fixture(scope="module")
def checkpoint(run) -> Path:
    return run / "checkpoints" / "best.ckpt"


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(2):
        cv2.imwrite(str(folder / f"face{index}.png"), generate_synthetic_faces(1, seed=index).images[0])
    return folder


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------- evaluate
def test_evaluate_never_writes_over_the_checkpoint_it_reads(checkpoint, tmp_path, monkeypatch, capsys):
    original = checkpoint.read_bytes()
    link = tmp_path / "result.json"
    link.symlink_to(checkpoint)
    for output in (checkpoint, link):
        for overwrite in ("false", "true"):
            with pytest.raises(ConfigError, match=f"^output={output} is the checkpoint it reads; choose another"):
                evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"output={output}",
                                        f"overwrite={overwrite}"))
    with pytest.raises(SystemExit) as exit_info:
        run_hydra_entry(evaluate_main, monkeypatch, f"ckpt_path={checkpoint}", f"output={checkpoint}")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: output={checkpoint} is the checkpoint it reads; choose another output"]
    assert checkpoint.read_bytes() == original
    assert load_predictor(checkpoint).kind == "model"


def test_evaluate_replaces_its_own_result_but_not_another_file_unless_told(checkpoint, tmp_path):
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    with pytest.raises(ConfigError, match="exists and is not an evaluate result: pass overwrite=true to replace it"):
        evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"output={notes}"))
    assert notes.read_text() == '{"my": "notes"}'

    result = evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"output={notes}", "overwrite=true"))
    assert json.loads(notes.read_text()) == result
    # Its own result, from an earlier evaluation, is simply brought up to date.
    again = evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"output={notes}", "tta=flip"))
    assert json.loads(notes.read_text()) == again and again["tta"] == "flip"
    empty = tmp_path / "empty.json"
    empty.touch()  # holds nothing to lose
    evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"output={empty}"))
    assert json.loads(empty.read_text())["num_images"] == 32


def test_evaluate_never_writes_over_the_test_file_it_reads(checkpoint, tmp_path):
    faces = generate_synthetic_faces(6, seed=8)
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("label,feature\n" + "".join(
        f"{label},{' '.join(map(str, image.ravel()))}\n" for image, label in zip(faces.images, faces.labels)))
    original = labelled.read_bytes()
    with pytest.raises(ConfigError, match=r"is the data it evaluates on \(data.test_path\)"):
        evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"data.test_path={labelled}",
                                f"output={labelled}", "overwrite=true"))
    assert labelled.read_bytes() == original


# ----------------------------------------------------------------------------------- predict
def test_predict_never_writes_over_its_input_csv(checkpoint, tmp_path):
    test_csv = tmp_path / "test.csv"
    write_homework_test_csv(test_csv, generate_synthetic_faces(3, seed=6).images)
    original = test_csv.read_bytes()
    link = tmp_path / "submission.csv"
    link.symlink_to(test_csv)
    for output in (test_csv, link):
        with pytest.raises(ConfigError, match=f"^output={output} is its input; choose another output"):
            predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={test_csv}", f"output={output}",
                                   "overwrite=true"))
    assert test_csv.read_bytes() == original


def test_predict_replaces_its_own_outputs_but_not_other_files_unless_told(checkpoint, photos, tmp_path):
    test_csv = tmp_path / "test.csv"
    write_homework_test_csv(test_csv, generate_synthetic_faces(3, seed=6).images)
    scores = tmp_path / "scores.csv"
    scores.write_text("name,score\nada,3\n")
    other_json = tmp_path / "other.json"
    other_json.write_text('[{"file": "x"}]')
    for source, output in ((test_csv, scores), (photos, scores), (photos, other_json)):
        before = output.read_bytes()
        with pytest.raises(ConfigError, match="exists and is not a predict result: pass overwrite=true"):
            predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={source}", f"output={output}"))
        assert output.read_bytes() == before

    # A submission, a face table and a face list that predict wrote are brought up to date.
    for source, name in ((test_csv, "submission.csv"), (photos, "faces.csv"), (photos, "faces.json")):
        for _ in range(2):
            predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={source}",
                                   f"output={tmp_path / name}"))
    with (tmp_path / "faces.csv").open() as handle:
        assert [row["file"] for row in csv.DictReader(handle)] == ["face0.png", "face1.png"]
    predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={test_csv}", f"output={scores}",
                           "overwrite=true"))
    assert scores.read_text().splitlines()[0] == "id,label"


def test_annotated_copies_never_replace_the_photos(checkpoint, photos, tmp_path):
    original = contents(photos)
    output = tmp_path / "faces.csv"
    same_folder = tmp_path / "same"
    same_folder.symlink_to(photos)
    for folder in (photos, same_folder):
        with pytest.raises(ConfigError, match=f"^annotate_dir={folder} is the input folder"):
            predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={photos}", f"output={output}",
                                   "annotate=true", f"annotate_dir={folder}", "overwrite=true"))
    # One photo as the input: its folder is the input folder.
    with pytest.raises(ConfigError, match="is the input folder"):
        predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={photos / 'face0.png'}",
                               f"output={output}", "annotate=true", f"annotate_dir={photos}"))
    # Another folder, but where a copy would go lies a link to a photo.
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "face1.png").symlink_to(photos / "face1.png")
    with pytest.raises(ConfigError, match=f"^annotate_dir={linked}: its copy of face1.png would replace the photo"):
        predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={photos}", f"output={output}",
                               "annotate=true", f"annotate_dir={linked}"))
    assert contents(photos) == original
    assert not output.exists()


def test_annotated_photos_show_each_label_with_its_probability(checkpoint, photos, tmp_path, monkeypatch):
    drawn_captions = []
    draw = faces_module.annotate

    def recording_annotate(image, boxes, captions):
        drawn_captions.extend(captions)
        return draw(image, boxes, captions)

    monkeypatch.setattr(faces_module, "annotate", recording_annotate)
    output = tmp_path / "faces.json"
    predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={photos}", f"output={output}",
                           "annotate=true"))
    found = [face for entry in json.loads(output.read_text()) for face in entry["faces"]]
    assert len(found) == 2
    # An untrained model is unsure of everything: its captions say so.
    assert drawn_captions == [f"{face['label']} {face['probabilities'][face['label']]:.2f}"
                              + " uncertain" * face["uncertain"] for face in found]
    assert all(face["uncertain"] for face in found)
    for name in ("face0.png", "face1.png"):
        assert (tmp_path / "faces_annotated" / name).is_file()


# ------------------------------------------------------------------------------------ export
def test_export_never_writes_over_the_checkpoint_or_a_file_it_did_not_write(tmp_path):
    model = tmp_path / "model.ckpt"
    write_checkpoint(model, seed=2)
    original = model.read_bytes()
    with pytest.raises(ConfigError, match=f"^output={model} is the checkpoint it reads; choose another output"):
        export(command_config("export", f"ckpt_path={model}", f"output={model}", "overwrite=true"))
    hard_link = tmp_path / "model.onnx"
    os.link(model, hard_link)
    with pytest.raises(ConfigError, match="is the checkpoint it reads"):
        export(command_config("export", f"ckpt_path={model}", f"output={hard_link}", "overwrite=true"))
    hard_link.unlink()
    assert model.read_bytes() == original

    notes = tmp_path / "notes.onnx"
    notes.write_text("not a model")
    with pytest.raises(ConfigError, match="exists and is not an ONNX or TorchScript export: pass overwrite=true"):
        export(command_config("export", f"ckpt_path={model}", f"output={notes}", "check=false"))
    assert notes.read_text() == "not a model"
    export(command_config("export", f"ckpt_path={model}", f"output={notes}", "check=false", "overwrite=true"))

    # Its own exports, ONNX or TorchScript, are brought up to date.
    for fmt, name in (("onnx", "notes.onnx"), ("torchscript", "model.torchscript.pt")):
        for _ in range(2):
            export(command_config("export", f"ckpt_path={model}", f"format={fmt}", f"output={tmp_path / name}",
                                  "check=false"))
    # A TorchScript export never goes under an ONNX name, not even over an ONNX file export wrote.
    with pytest.raises(ConfigError, match="is a name for format=onnx, not format=torchscript"):
        export(command_config("export", f"ckpt_path={model}", "format=torchscript", f"output={notes}"))


def full_disk(*args, **kwargs):
    # What write() raises on a full disk: an OSError that names no file.
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(WriteError, match=f"^{path}: cannot write \\(No space left on device\\)$"):
        with atomic_write(path, "w") as handle:
            handle.write("new")
            full_disk()
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no partial file left behind


def test_predict_on_a_full_disk_is_one_line_naming_the_output(checkpoint, photos, tmp_path, monkeypatch, capsys):
    output = tmp_path / "faces.csv"
    monkeypatch.setattr("fer_lightning.files.os.replace", full_disk)
    with pytest.raises(SystemExit) as exit_info:
        run_hydra_entry(predict_main, monkeypatch, f"ckpt_path={checkpoint}", f"input={photos}", f"output={output}")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"error: {output}: cannot write (No space left on device)"
    assert not output.exists()


@pytest.mark.slow
def test_training_on_a_full_disk_stops_in_one_line_and_keeps_its_checkpoint(train_config, tmp_path, monkeypatch, capsys):
    import torch

    from fer_lightning import files
    from fer_lightning.cli.train import train_command
    from fer_lightning.runs.checkpoint_io import AtomicCheckpointIO

    save = AtomicCheckpointIO.save_checkpoint
    saved_epochs = []

    def disk_full_after_the_first_epoch(self, checkpoint, path, storage_options=None):
        if checkpoint["epoch"] >= 1:
            with monkeypatch.context() as during_this_write:
                during_this_write.setattr(files.os, "fsync", full_disk)  # the bytes never reach the disk
                return save(self, checkpoint, path, storage_options)
        saved_epochs.append(checkpoint["epoch"])
        return save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", disk_full_after_the_first_epoch)
    with pytest.raises(SystemExit) as exit_info:
        train_command(train_config("trainer.max_epochs=2"))
    assert exit_info.value.code == 2
    run = tmp_path / "run"
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(rf"error: {re.escape(str(run))}/checkpoints/(best|last)\.ckpt: cannot write \(No space left "
                        r"on device\); last\.ckpt keeps the last finished epoch", message), message
    assert saved_epochs and set(saved_epochs) == {0}
    last = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 0  # the epoch before the disk filled, whole
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]  # no partial files
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "failed" and "No space left on device" in metrics["error"]
