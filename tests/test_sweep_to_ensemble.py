"""The whole path a user takes: sweep -> leaderboard -> ensemble -> evaluate -> predict -> export.

One real sweep (two dropout variants, one short epoch on synthetic faces) is trained through the
command line; every later step runs its command's entry point on what the previous one wrote.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime
import pytest
import torch

from fer_lightning import ensemble, evaluate, export, leaderboard, predict
from fer_lightning.checkpoints.predictor import load_predictor
from fer_lightning.classes import CLASS_NAMES
from fer_lightning.data.synthetic import generate_synthetic_faces
from tests.conftest import FAST
from tests.helpers import run_cli
from tests.test_evaluate_predict import run_hydra_entry

pytestmark = pytest.mark.slow

SWEEP_DATA = ["data.synthetic.train=128", "data.synthetic.val=64", "data.synthetic.test=32"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sweep-to-ensemble")
    result = run_cli("fer_lightning.train", "-m", "model.dropout=0.3,0.5", *FAST, *SWEEP_DATA,
                     "callbacks=none", "logger=none", f"paths.log_dir={root}")
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = {path.parent for path in root.glob("multiruns/**/multirun.yaml")}
    return sweep_dir


def test_sweep_leaderboard_ensemble_evaluate_predict_export(sweep, tmp_path, monkeypatch, capsys):
    # Leaderboard: both runs, told apart by the override the sweep varied.
    leaderboard.main([str(sweep), "--json", str(tmp_path / "board.json")])
    board = json.loads((tmp_path / "board.json").read_text())
    assert sorted(run["changed"] for run in board["runs"]) == [["model.dropout=0.3"], ["model.dropout=0.5"]]
    assert all(run["status"] == "completed" for run in board["runs"])
    accuracies = [run["best_val_acc"] for run in board["runs"]]
    assert accuracies == sorted(accuracies, reverse=True)

    # Ensemble (what `make ensemble SWEEP=...` runs): both runs, their accuracies, one artifact.
    ensemble.main([str(sweep), "--top-k", "2"])
    summary = json.loads((sweep / "ensemble.json").read_text())
    assert [m["run_dir"] for m in summary["members"]] == [run["path"] for run in board["runs"]]
    for member, run in zip(summary["members"], board["runs"]):
        # Re-measured on the same validation faces (training may have used bf16 autocast).
        assert member["val_acc"] == pytest.approx(run["best_val_acc"], abs=0.05)
        assert member["test_acc"] is not None and member["weight"] == 0.5
    assert summary["ensemble"]["num_test"] == 32 and summary["ensemble"]["test_acc"] is not None
    assert "Ensemble of 2" in capsys.readouterr().out

    # Evaluate the ensemble on the data it was built on (the sweep's path holds '=' and ',').
    artifact = sweep / "ensemble.ckpt"
    run_hydra_entry(evaluate.main, monkeypatch, f"ckpt_path={artifact}", "tta=none")
    evaluation = json.loads((sweep / "eval.json").read_text())
    assert evaluation["kind"] == "ensemble" and evaluation["members"] == 2 and evaluation["num_images"] == 32
    assert evaluation["accuracy"] == pytest.approx(summary["ensemble"]["test_acc"])

    # Predict a homework test CSV -> submission.
    faces = generate_synthetic_faces(5, seed=11)
    (tmp_path / "test.csv").write_text("id,feature\n" + "".join(
        f"{7 + i},{' '.join(map(str, image.ravel()))}\n" for i, image in enumerate(faces.images)))
    run_hydra_entry(predict.main, monkeypatch, f"ckpt_path={artifact}", f"input={tmp_path / 'test.csv'}",
                    f"output={tmp_path / 'submission.csv'}")
    with (tmp_path / "submission.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["id", "label"] and [r[0] for r in rows[1:]] == ["7", "8", "9", "10", "11"]
    assert all(0 <= int(r[1]) < len(CLASS_NAMES) for r in rows[1:])

    # Predict a folder of photos.
    from skimage import data

    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "astronaut.png"), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(photos / "crop.png"), faces.images[0])
    run_hydra_entry(predict.main, monkeypatch, f"ckpt_path={artifact}", f"input={photos}",
                    f"output={tmp_path / 'faces.json'}")
    found = {entry["file"]: entry["faces"] for entry in json.loads((tmp_path / "faces.json").read_text())}
    assert len(found["astronaut.png"]) == 1 and len(found["crop.png"]) == 1
    x, y, w, h = found["astronaut.png"][0]["box"]
    assert 180 < x + w / 2 < 280 and 70 < y + h / 2 < 160

    # Export the ensemble as one ONNX graph and compare it with PyTorch.
    onnx_path = tmp_path / "ensemble.onnx"
    run_hydra_entry(export.main, monkeypatch, f"ckpt_path={artifact}", "format=onnx", f"output={onnx_path}")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    images = torch.from_numpy(faces.images).float().div(255).unsqueeze(1)
    (exported,) = session.run(None, {"image": images.numpy()})
    with torch.inference_mode():
        expected = load_predictor(artifact).module(images).numpy()
    assert np.abs(exported - expected).max() < 1e-4
