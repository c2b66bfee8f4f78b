"""Evaluate and predict with a checkpoint: metrics against an independent computation, safe
loading, test CSVs to submissions, faces found in real photos."""

from __future__ import annotations

import builtins
import csv
import json
import logging
import pickle
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.classes import CLASS_NAMES
from fer_lightning.cli.entry import quote_path_overrides
from fer_lightning.data.datamodule import FERDataModule
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import CheckpointError, ConfigError, DataFormatError, FerError
from fer_lightning.inference.evaluation import evaluate
from fer_lightning.inference.faces import crop_face, face_detector, find_faces, load_cascade
from fer_lightning.inference.prediction import predict
from fer_lightning.inference.scoring import predict_probabilities
from tests.conftest import compose_config
from tests.test_ensemble import saved_run_config, write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished run (untrained weights) whose data is 32 synthetic test faces."""
    root = tmp_path_factory.mktemp("evaluate")
    return write_run(root / "model.dropout=0.3", saved_run_config(root), ["model.dropout=0.3"],
                     best_val_acc=0.5, seed=3)


def command_config(name: str, *overrides: str):
    cfg = compose_config(quote_path_overrides(overrides), config_name=name)
    GlobalHydra.instance().clear()
    return cfg


def run_hydra_entry(main: Callable[[], None], monkeypatch, *args: str) -> None:
    """``python -m fer_lightning.<command> args...`` in this process (no interpreter start-up),
    leaving logging and Hydra as they were."""
    monkeypatch.setattr(sys, "argv", ["fer_lightning", *args])
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")  # the entry sets it; monkeypatch restores it
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    GlobalHydra.instance().clear()
    try:
        main()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        GlobalHydra.instance().clear()


def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def write_homework_test_csv(path: Path, images: np.ndarray, first_id: int = 100) -> None:
    rows = ["id,feature"] + [f"{first_id + i},{' '.join(map(str, image.ravel()))}" for i, image in enumerate(images)]
    path.write_text("\n".join(rows) + "\n")


class WritesAFileWhenUnpickled:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.open, (str(self.target), "w"))


# ------------------------------------------------------------------------------ safe loading
def test_load_predictor_refuses_files_that_are_not_checkpoints_without_running_them(tmp_path):
    marker = tmp_path / "side-effect"
    files = {
        "text.ckpt": lambda p: p.write_text("id,feature\n1,2 3\n"),
        "evil-torch.ckpt": lambda p: torch.save({"state_dict": WritesAFileWhenUnpickled(marker)}, p),
        "evil-pickle.ckpt": lambda p: p.write_bytes(pickle.dumps(WritesAFileWhenUnpickled(marker), protocol=2)),
        "plain-dict.ckpt": lambda p: torch.save({"weights": torch.zeros(3)}, p),
        "list.ckpt": lambda p: torch.save([torch.zeros(3)], p),
        "truncated.ckpt": lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 40),
    }
    for name, write in files.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(CheckpointError) as error:
            load_predictor(path)
        message = str(error.value)
        assert message.startswith(str(path)) and "\n" not in message, message
    assert not marker.exists(), "loading ran code from a pickle"
    with pytest.raises(CheckpointError, match="refused"):
        load_predictor(tmp_path / "evil-torch.ckpt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_predictor(tmp_path / "absent.ckpt")


@pytest.mark.parametrize("command", ["evaluate", "predict", "export"])
def test_commands_refuse_a_file_that_is_not_a_checkpoint_in_one_line(command, tmp_path, monkeypatch, capsys):
    import importlib

    not_a_checkpoint = tmp_path / "notes.ckpt"
    not_a_checkpoint.write_text("hello")
    extra = [f"input={tmp_path}"] if command == "predict" else []
    with pytest.raises(SystemExit) as exit_info:
        run_hydra_entry(importlib.import_module(f"fer_lightning.{command}").main, monkeypatch,
                        f"ckpt_path={not_a_checkpoint}", *extra)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {not_a_checkpoint}: not a PyTorch checkpoint (neither torch.save's zip format nor a pickle)"]


def test_a_single_checkpoint_loads_as_a_one_member_probability_model(run):
    predictor = load_predictor(run / "checkpoints" / "best.ckpt")
    assert predictor.kind == "model" and predictor.member_count == 1 and predictor.class_names == CLASS_NAMES
    probabilities = predictor.module(torch.rand(3, 1, 48, 48))
    assert probabilities.shape == (3, 7) and torch.allclose(probabilities.sum(1), torch.ones(3))


# -------------------------------------------------------------------------------- evaluation
def test_evaluate_uses_the_runs_test_split_and_writes_metrics(run):
    checkpoint = run / "checkpoints" / "best.ckpt"
    result = evaluate(command_config("evaluate", f"ckpt_path={checkpoint}"))

    written = json.loads((checkpoint.parent / "eval.json").read_text())
    assert written == result
    assert result["num_images"] == 32 and result["tta"] == "none" and result["kind"] == "model"
    assert result["split"] == "test"
    # The same numbers, computed independently from the same faces.
    data = FERDataModule(synthetic={"train": 16, "val": 64, "test": 32, "seed": 0})
    data.setup()
    faces = data.splits["test"]
    with torch.inference_mode():
        preds = load_predictor(checkpoint).module(torch.from_numpy(faces.images).float().div(255).unsqueeze(1)).argmax(1)
    assert result["accuracy"] == pytest.approx(float((preds.numpy() == faces.labels).mean()))
    matrix = np.array(result["confusion_matrix"])
    assert matrix.sum() == 32 and np.trace(matrix) == round(32 * result["accuracy"])
    assert matrix.sum(axis=1).tolist() == [result["per_class"][c]["support"] for c in CLASS_NAMES]
    assert matrix.sum(axis=0).tolist() == np.bincount(preds.numpy(), minlength=7).tolist()
    assert 0.0 <= result["macro_f1"] <= 1.0


def test_flip_tta_averages_with_the_mirrored_faces(run):
    module = load_predictor(run / "checkpoints" / "best.ckpt").module
    images = generate_synthetic_faces(6, seed=4).images
    plain = predict_probabilities(module, images)
    mirrored = predict_probabilities(module, images[:, :, ::-1].copy())
    assert np.allclose(predict_probabilities(module, images, tta="flip"), (plain + mirrored) / 2, atol=1e-6)
    assert np.allclose(predict_probabilities(module, images, batch_size=4), plain, atol=1e-6)


def test_ten_crop_tta_averages_the_shifted_and_mirrored_faces():
    # A model that sees where each pixel is (a linear layer over all of them), so shifts matter.
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48 * 48, 7), torch.nn.Softmax(dim=1))
    images = generate_synthetic_faces(5, seed=6).images
    padded = np.pad(images, ((0, 0), (4, 4), (4, 4)), mode="reflect")
    crops = [images] + [padded[:, top:top + 48, left:left + 48] for top in (0, 8) for left in (0, 8)]
    views = crops + [crop[:, :, ::-1] for crop in crops]
    expected = np.mean([predict_probabilities(module, np.ascontiguousarray(view)) for view in views], axis=0)
    found = predict_probabilities(module, images, tta="ten_crop")
    assert np.allclose(found, expected, atol=1e-6)
    # The corner crops really are other pictures: the average differs from the plain prediction.
    assert not np.allclose(found, predict_probabilities(module, images), atol=1e-4)


@pytest.mark.parametrize(("key", "value"), [("tta", "mirror"), ("split", "train")])
def test_unknown_tta_or_split_is_refused(run, key, value):
    with pytest.raises(ConfigError, match=f"{key}='{value}': allowed values are"):
        evaluate(command_config("evaluate", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"{key}={value}"))


def test_evaluate_on_the_validation_split_writes_beside_the_test_result(run):
    checkpoint = run / "checkpoints" / "best.ckpt"
    result = evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", "split=val", "tta=ten_crop"))
    assert result["split"] == "val" and result["num_images"] == 64 and result["tta"] == "ten_crop"
    assert json.loads((checkpoint.parent / "eval_val_tta-ten_crop.json").read_text()) == result
    # Another setting is another file: the first result stays.
    plain = evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", "split=val", "tta=none"))
    assert json.loads((checkpoint.parent / "eval_val.json").read_text()) == plain
    assert json.loads((checkpoint.parent / "eval_val_tta-ten_crop.json").read_text()) == result


def test_evaluate_another_labelled_file_or_refuse_an_unlabelled_one(run, tmp_path):
    checkpoint = run / "checkpoints" / "best.ckpt"
    faces = generate_synthetic_faces(12, seed=8)
    labelled = tmp_path / "labelled.csv"
    labelled.write_text("label,feature\n" + "".join(
        f"{label},{' '.join(map(str, image.ravel()))}\n" for image, label in zip(faces.images, faces.labels)))
    result = evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"data.test_path={labelled}",
                                     f"output={tmp_path / 'other.json'}", "tta=flip"))
    assert result["num_images"] == 12 and result["tta"] == "flip" and (tmp_path / "other.json").is_file()
    assert result["split"] == "file"

    unlabelled = tmp_path / "test.csv"
    write_homework_test_csv(unlabelled, faces.images)
    with pytest.raises(FerError, match="no labels"):
        evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", f"data.test_path={unlabelled}"))


def test_a_checkpoint_away_from_its_run_needs_data_named(run, tmp_path):
    loose = tmp_path / "copied.ckpt"
    shutil.copy(run / "checkpoints" / "best.ckpt", loose)
    with pytest.raises(ConfigError, match="data="):
        evaluate(command_config("evaluate", f"ckpt_path={loose}"))
    result = evaluate(command_config("evaluate", f"ckpt_path={loose}", "data=synthetic",
                                     "data.synthetic.train=0", "data.synthetic.val=0", "data.synthetic.test=20"))
    assert result["num_images"] == 20


# ----------------------------------------------------------------------------- CSV prediction
def test_predict_turns_a_homework_test_csv_into_a_submission(run, tmp_path):
    checkpoint = run / "checkpoints" / "best.ckpt"
    faces = generate_synthetic_faces(9, seed=6)
    write_homework_test_csv(tmp_path / "test.csv", faces.images, first_id=100)
    output = tmp_path / "submission.csv"
    predict(command_config("predict", f"ckpt_path={checkpoint}", f"input={tmp_path / 'test.csv'}", f"output={output}"))

    with output.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "label"]
    expected = predict_probabilities(load_predictor(checkpoint).module, faces.images).argmax(1)
    assert [int(r[0]) for r in rows[1:]] == list(range(100, 109))
    assert [int(r[1]) for r in rows[1:]] == expected.tolist()


def test_predict_refuses_a_submission_that_is_not_csv(run, tmp_path):
    write_homework_test_csv(tmp_path / "test.csv", generate_synthetic_faces(2, seed=6).images)
    with pytest.raises(ConfigError, match=r"\.csv"):
        predict(command_config("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
                               f"input={tmp_path / 'test.csv'}", f"output={tmp_path / 'out.json'}"))


# --------------------------------------------------------------------------- photo prediction
@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    cv2.imwrite(str(folder / "astronaut.jpg"), astronaut_bgr())
    cv2.imwrite(str(folder / "wall.png"), np.full((240, 320, 3), 128, np.uint8))  # no face
    (folder / "crops").mkdir()
    cv2.imwrite(str(folder / "crops" / "face.png"), generate_synthetic_faces(1, seed=1).images[0])
    return folder


def test_predict_finds_the_face_in_a_photo_and_lists_images_without_faces(run, photos, tmp_path, caplog):
    output = tmp_path / "faces.json"
    with caplog.at_level(logging.WARNING):
        predict(command_config("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"input={photos}",
                               f"output={output}", "annotate=true"))
    results = {entry["file"]: entry for entry in json.loads(output.read_text())}
    assert sorted(results) == ["astronaut.jpg", "crops/face.png", "wall.png"]

    (face,) = results["astronaut.jpg"]["faces"]
    x, y, w, h = face["box"]
    # The astronaut's face: upper middle-left of the 512x512 picture, about a fifth of its width.
    assert 180 < x + w / 2 < 280 and 70 < y + h / 2 < 160 and 60 < w < 150
    assert set(face["probabilities"]) == set(CLASS_NAMES)
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert face["label"] == max(face["probabilities"], key=face["probabilities"].get)

    assert results["wall.png"]["faces"] == [] and results["wall.png"]["note"] == "no face found"
    assert any("wall.png" in r.getMessage() and "no face" in r.getMessage() for r in caplog.records)
    # A 48x48 image is a face crop already: used whole.
    assert [f["box"] for f in results["crops/face.png"]["faces"]] == [[0, 0, 48, 48]]

    annotated = tmp_path / "faces_annotated"
    drawn = cv2.imread(str(annotated / "astronaut.jpg"))
    assert drawn.shape == (512, 512, 3)
    assert np.abs(drawn.astype(int) - astronaut_bgr().astype(int)).max() > 100  # a box was drawn
    assert (annotated / "wall.png").is_file() and (annotated / "crops" / "face.png").is_file()


def test_predict_writes_csv_rows_per_face_and_can_skip_detection(run, photos, tmp_path):
    output = tmp_path / "faces.csv"
    predict(command_config("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
                           f"input={photos / 'astronaut.jpg'}", f"output={output}", "detect_faces=false"))
    with output.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1
    assert (rows[0]["file"], rows[0]["face"], rows[0]["x"], rows[0]["y"], rows[0]["w"], rows[0]["h"]) == \
        ("astronaut.jpg", "0", "0", "0", "512", "512")
    assert rows[0]["label"] in CLASS_NAMES
    assert sum(float(rows[0][name]) for name in CLASS_NAMES) == pytest.approx(1.0, abs=1e-4)


def test_unreadable_images_are_listed_but_a_folder_of_only_those_is_an_error(run, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataFormatError, match="could be read"):
        predict(command_config("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"input={folder}",
                               f"output={tmp_path / 'out.json'}"))
    cv2.imwrite(str(folder / "good.png"), generate_synthetic_faces(1, seed=2).images[0])
    predict(command_config("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"input={folder}",
                           f"output={tmp_path / 'out.json'}"))
    results = {entry["file"]: entry for entry in json.loads((tmp_path / "out.json").read_text())}
    assert results["broken.png"]["faces"] == [] and "cannot decode" in results["broken.png"]["note"]
    assert len(results["good.png"]["faces"]) == 1


# ----------------------------------------------------------------------------- face cropping
def test_crop_at_the_edge_is_square_and_keeps_the_face_in_place():
    gray = np.zeros((100, 100), np.uint8)
    gray[:, 90:] = 255  # a bright right edge
    crop = crop_face(gray, (70, 40, 30, 30), margin=0.5)  # the square reaches 15 px past the edge
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop[:, -5:].min() == 255 and crop[:, :5].max() == 0  # border replicated, not stretched


def test_detection_reports_a_missing_cascade_clearly(monkeypatch, tmp_path):
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(FerError, match="OpenCV 5"):
        load_cascade()
    with pytest.raises(FerError, match="haarcascade_frontalface_default.xml"):
        find_faces(astronaut_bgr(), detect=True, detector=face_detector("haar"))
    assert len(find_faces(astronaut_bgr(), detect=False)) == 1  # no detector needed


def test_a_data_set_without_the_split_is_said_before_any_face_is_drawn(run):
    import time

    checkpoint = run / "checkpoints" / "best.ckpt"
    started = time.perf_counter()
    with pytest.raises(FerError, match="has no test split"):
        evaluate(command_config("evaluate", f"ckpt_path={checkpoint}", "data=synthetic", "data.synthetic.test=0",
                                "data.synthetic.train=100000"))  # drawing 100,000 faces would take minutes
    assert time.perf_counter() - started < 30


def test_a_photo_claiming_a_billion_pixels_is_skipped_and_the_others_predicted(run, tmp_path, caplog):
    from tests.test_demo import png_header_only

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), astronaut_bgr())
    (photos / "bomb.png").write_bytes(png_header_only(30_000, 30_000))  # 900 million pixels, 60 bytes
    output = tmp_path / "faces.csv"
    with caplog.at_level(logging.WARNING):
        predict(command_config("predict", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", f"input={photos}",
                               f"output={output}", "tta=none"))
    rows = list(csv.DictReader(output.open()))
    assert any(row["file"].endswith("astronaut.png") and row["label"] for row in rows)
    assert "bomb.png" in caplog.text and "million" in caplog.text
