"""Faces in the wild: the shipped YuNet detector (its file checked, its threads pinned), aligned crops,
faces tracked through a video, calibrated probabilities and the uncertain mark, predict's screen lines.
Everything here is drawn or comes with scikit-image: no data set is needed."""

from __future__ import annotations

import csv
import math
import shutil

import cv2
import numpy as np
import pytest

from fer_lightning import Recognizer
from fer_lightning.errors import ConfigError, FerError
from tests.helpers import run_cli
from tests.test_evaluate_predict import astronaut_bgr
from tests.test_output_safety import checkpoint, run  # noqa: F401  (module fixtures: an untrained model)
from tests.test_recognizer import recognizer  # noqa: F401

# The astronaut's face centre in scikit-image's 512x512 picture.
ASTRONAUT_CENTRE = (222, 118)


def rotated(image: np.ndarray, angle: float, centre=None) -> tuple[np.ndarray, np.ndarray]:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(centre or (width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE), matrix


# ------------------------------------------------------------------------------------ detector
def test_yunet_finds_the_astronaut_with_landmarks_and_nothing_in_a_wall():
    from fer_lightning.inference.yunet import YuNetDetector

    detector = YuNetDetector()
    gray = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY)
    ((box, landmarks, score),) = detector.detect(gray)
    x, y, w, h = box
    assert x < ASTRONAUT_CENTRE[0] < x + w and y < ASTRONAUT_CENTRE[1] < y + h and score > 0.5
    left_eye, right_eye = landmarks[0], landmarks[1]
    assert left_eye[0] < right_eye[0] and abs(left_eye[1] - right_eye[1]) < 10  # her eyes, nearly level
    assert x < left_eye[0] < right_eye[0] < x + w
    assert detector(np.full((300, 300), 90, np.uint8)) == []


def test_the_model_file_is_checked_by_its_sha256(tmp_path):
    from fer_lightning.inference.yunet import MODEL_DIR, MODEL_FILE, MODEL_SHA256, YuNetDetector, file_sha256

    assert file_sha256(MODEL_DIR / MODEL_FILE) == MODEL_SHA256
    assert (MODEL_DIR / "LICENSE").is_file() and "Apache" in (MODEL_DIR / "LICENSE").read_text()
    damaged = tmp_path / MODEL_FILE
    shutil.copy(MODEL_DIR / MODEL_FILE, damaged)
    with damaged.open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(FerError, match=f"{damaged} is damaged or was replaced") as error:
        YuNetDetector(model=damaged)
    assert "\n" not in str(error.value)
    with pytest.raises(FerError, match="is missing"):
        YuNetDetector(model=tmp_path / "nowhere.onnx")


def test_the_model_file_goes_into_the_wheel():
    """Hatch puts every file of the package into the wheel except what .gitignore leaves out."""
    import subprocess

    from fer_lightning.inference.yunet import MODEL_DIR, MODEL_FILE
    from tests.helpers import ROOT

    tomllib = pytest.importorskip("tomllib")  # Python 3.11 on
    wheel = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "fer_lightning" in wheel["packages"] and MODEL_DIR.is_relative_to(ROOT / "fer_lightning")
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: .gitignore cannot be asked")
    for name in (MODEL_FILE, "LICENSE", "README.md"):
        ignored = subprocess.run(["git", "check-ignore", "-q", str(MODEL_DIR / name)], cwd=ROOT)
        assert ignored.returncode == 1, f"{name} is git-ignored, so the wheel would leave it out"


def test_yunet_runs_on_one_opencv_thread_and_gives_the_setting_back(monkeypatch):
    from fer_lightning.inference import yunet

    detector = yunet.YuNetDetector()
    before = cv2.getNumThreads()
    seen = []
    real_detect = detector.detector

    class Watching:
        def setInputSize(self, size):  # noqa: N802 - OpenCV's name
            real_detect.setInputSize(size)

        def detect(self, image):
            seen.append(cv2.getNumThreads())
            return real_detect.detect(image)

    monkeypatch.setattr(detector, "detector", Watching())
    detector(cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY))
    assert seen == [yunet.THREADS] == [1]
    assert cv2.getNumThreads() == before


def test_yunet_is_the_default_detector_everywhere(checkpoint):  # noqa: F811
    from fer_lightning.inference.faces import DEFAULT_DETECTOR, find_faces

    assert DEFAULT_DETECTOR == "yunet"
    assert Recognizer.from_checkpoint(checkpoint).face_detector == "yunet"
    (face,) = find_faces(astronaut_bgr(), detect=True)
    assert face.landmarks is not None and face.landmarks.shape == (5, 2)


# ----------------------------------------------------------------------------------- alignment
def drawn_face(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """A gray 300x300 picture of a cartoon face turned by ``angle`` degrees, and its eyes' positions."""
    canvas = np.full((300, 300), 200, np.uint8)
    cv2.ellipse(canvas, (150, 160), (70, 90), 0, 0, 360, 140, cv2.FILLED)
    eyes = np.array([[120.0, 135.0], [180.0, 135.0]])
    for x, y in eyes:
        cv2.circle(canvas, (int(x), int(y)), 8, 20, cv2.FILLED)
    cv2.ellipse(canvas, (150, 200), (30, 10), 0, 0, 180, 40, 4)
    picture, matrix = rotated(canvas, angle)
    turned = np.hstack([eyes, np.ones((2, 1))]) @ matrix.T
    return picture, turned


def dark_blobs(crop: np.ndarray) -> list[tuple[float, float]]:
    """Centres of the two largest dark blobs in the upper half of an aligned 48x48 crop (the eyes; the
    mouth is below), left to right."""
    mask = (crop < 80).astype(np.uint8)
    mask[28:] = 0
    count, _, stats, centres = cv2.connectedComponentsWithStats(mask)
    blobs = sorted(range(1, count), key=lambda i: -stats[i, cv2.CC_STAT_AREA])[:2]
    return sorted((float(centres[i][0]), float(centres[i][1])) for i in blobs)


@pytest.mark.parametrize("angle", [-25, 0, 18])
def test_a_turned_face_comes_out_with_level_eyes_where_fer2013_has_them(angle):
    from fer_lightning.inference.alignment import EYE_DISTANCE, EYES_X, EYES_Y, align_face, eye_angle
    from fer_lightning.inference.faces import resize_to_model

    picture, eyes = drawn_face(angle)
    landmarks = np.vstack([eyes, np.zeros((3, 2))]).astype(np.float32)
    assert eye_angle(landmarks) == pytest.approx(-angle, abs=0.01)  # OpenCV turns counter-clockwise
    crop = resize_to_model(align_face(picture, landmarks))
    (lx, ly), (rx, ry) = dark_blobs(crop)
    assert abs(ly - ry) < 1.0  # level
    assert (lx + rx) / 2 == pytest.approx(EYES_X * 48, abs=1.0)
    assert (ly + ry) / 2 == pytest.approx(EYES_Y * 48, abs=1.0)
    assert rx - lx == pytest.approx(EYE_DISTANCE * 48, abs=1.0)


def test_yunet_crops_of_a_tilted_astronaut_look_like_the_upright_one(checkpoint):  # noqa: F811
    aligned = Recognizer.from_checkpoint(checkpoint, detect_faces=True)
    upright = Recognizer.from_checkpoint(checkpoint, detect_faces=True, align=False)
    image = astronaut_bgr()
    tilted, _ = rotated(image, 20, ASTRONAUT_CENTRE)

    def similarity(recognizer) -> float:
        (straight,), (turned,) = recognizer.find_faces(image), recognizer.find_faces(tilted)
        return float(np.corrcoef(straight.image.ravel(), turned.image.ravel())[0, 1])

    assert similarity(aligned) > 0.9 > similarity(upright)
    with pytest.raises(ConfigError, match="align"):
        Recognizer.from_checkpoint(checkpoint, align="yes")


# -------------------------------------------------------------------------------------- tracks
def test_two_boxes_that_cross_keep_their_tracks():
    from fer_lightning.inference.tracking import IouTracker

    tracker = IouTracker()
    history: dict[int, list[int]] = {}
    for step in range(15):
        left_to_right = (20 + 20 * step, 100, 80, 80)
        right_to_left = (300 - 20 * step, 110, 80, 80)  # they overlap most at step 7
        tracks = tracker.update([left_to_right, right_to_left])
        history.setdefault(tracks[0].number, []).append(left_to_right[0])
        history.setdefault(tracks[1].number, []).append(right_to_left[0])
    assert sorted(history) == [0, 1]
    assert history[0] == sorted(history[0]) and history[1] == sorted(history[1], reverse=True)


def write_crossing_clip(path, frames: int = 16) -> None:
    """Two astronaut faces passing each other: one moves right along the top, one left along the bottom."""
    face = cv2.resize(astronaut_bgr()[40:220, 130:310], (120, 120))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (480, 300))
    for index in range(frames):
        canvas = np.full((300, 480, 3), 120, np.uint8)
        a, b = 10 + 22 * index, 350 - 22 * index
        canvas[10:130, a:a + 120] = face
        canvas[160:280, b:b + 120] = face
        writer.write(canvas)
    writer.release()


def test_faces_crossing_in_a_video_keep_their_ids_and_are_summarised(checkpoint, tmp_path):  # noqa: F811
    clip = tmp_path / "crossing.mp4"
    write_crossing_clip(clip)
    output = tmp_path / "crossing.csv"
    result = run_cli("fer_lightning.predict", f"ckpt_path={checkpoint}", f"input={clip}", f"output={output}",
                     "track_smoothing=0.5")
    assert result.returncode == 0, result.stderr
    rows = [r for r in csv.DictReader(output.open()) if r["label"]]
    tracks: dict[str, list[tuple[int, int, int]]] = {}
    for row in rows:
        tracks.setdefault(row["track"], []).append((int(row["frame"]), int(row["x"]), int(row["y"])))
    assert len(tracks) == 2 and all(len(seen) >= 14 for seen in tracks.values())
    for seen in tracks.values():
        xs = [x for _, x, _ in sorted(seen)]
        assert xs == sorted(xs) or xs == sorted(xs, reverse=True)  # each id stays with one face
        assert max(y for _, _, y in seen) - min(y for _, _, y in seen) < 40  # and with its lane
    summary = list(csv.DictReader((tmp_path / "crossing_tracks.csv").open()))
    assert [s["track"] for s in summary] == sorted(tracks)
    assert all(float(s["first_time"]) < float(s["last_time"]) and s["label"] for s in summary)
    assert (tmp_path / "crossing_timeline.png").is_file()
    assert "crossing_tracks.csv" in result.stdout


def test_smoothing_averages_a_track_and_zero_keeps_each_frame():
    from fer_lightning.inference.tracking import Track, smooth

    track = Track(0, (0, 0, 10, 10))
    smooth(track, np.array([1.0, 0.0]), 0.5)
    assert smooth(track, np.array([0.0, 1.0]), 0.5).tolist() == [0.5, 0.5]
    assert smooth(track, np.array([0.0, 1.0]), 0.0).tolist() == [0.0, 1.0]


# --------------------------------------------------------------------------------- calibration
def overconfident(count: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities three times too sharp: labels are drawn from softmax(z), the model says softmax(3z)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (count, 7))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(7, p=p) for p in truth])
    sharp = np.exp(3 * logits)
    return sharp / sharp.sum(axis=1, keepdims=True), labels


def test_a_temperature_fitted_on_a_small_set_lowers_its_calibration_error():
    from fer_lightning.inference.calibration import (
        apply_temperature,
        calibration_report,
        expected_calibration_error,
        fit_temperature,
    )

    probabilities, labels = overconfident()
    temperature = fit_temperature(probabilities, labels)
    assert temperature == pytest.approx(3.0, rel=0.15)
    scaled = apply_temperature(probabilities, temperature)
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()  # labels never change
    assert expected_calibration_error(scaled, labels) < expected_calibration_error(probabilities, labels) / 2
    report = calibration_report(probabilities, labels)
    assert report["temperature"] == pytest.approx(temperature) and report["nll_after"] < report["nll_before"]
    assert apply_temperature(probabilities, 1.0) is probabilities


def test_evaluate_fits_a_temperature_and_draws_the_reliability_diagram(checkpoint, tmp_path):  # noqa: F811
    import json

    output = tmp_path / "eval.json"
    result = run_cli("fer_lightning.evaluate", f"ckpt_path={checkpoint}", "calibrate=true", f"output={output}")
    assert result.returncode == 0, result.stderr
    fit = json.loads(output.read_text())["calibration"]
    assert fit["fitted_temperature"] > 0 and fit["temperature"] in (fit["fitted_temperature"], 1.0)
    assert (fit["temperature"] == 1.0) == (fit["ece_after"] >= fit["ece_before"])
    assert fit["nll_after"] <= fit["nll_before"] + 1e-9
    diagram = cv2.imread(fit["reliability_diagram"])
    assert diagram is not None and diagram.shape[0] > 300
    assert "expected calibration error" in result.stdout


def test_a_shipped_models_temperature_is_read_and_faces_below_the_threshold_are_uncertain(checkpoint):  # noqa: F811
    from fer_lightning.checkpoints.predictor import load_predictor
    from fer_lightning.checkpoints.shipped import pretrained_entry

    assert load_predictor("pretrained").temperature == pretrained_entry("pretrained").get("temperature", 1.0)
    assert load_predictor(checkpoint).temperature == 1.0
    never = Recognizer.from_checkpoint(checkpoint, uncertain_below=0.0)
    always = Recognizer.from_checkpoint(checkpoint, uncertain_below=1.0)
    assert [f.uncertain for f in never.predict(astronaut_bgr())] == [False]
    assert [f.uncertain for f in always.predict(astronaut_bgr())] == [True]
    with pytest.raises(ConfigError, match="uncertain_below"):
        Recognizer.from_checkpoint(checkpoint, uncertain_below=1.5)


# ------------------------------------------------------------------------------ screen output
def test_predict_prints_a_line_per_face(checkpoint, tmp_path):  # noqa: F811
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut_bgr())
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((200, 200, 3), 90, np.uint8))
    output = tmp_path / "faces.csv"
    result = run_cli("fer_lightning.predict", f"ckpt_path={checkpoint}", f"input={tmp_path}", f"output={output}",
                     "uncertain_below=1.0")
    assert result.returncode == 0, result.stderr
    (row,) = [r for r in csv.DictReader(output.open()) if r["label"]]
    box = " ".join(row[k] for k in ("x", "y", "w", "h"))
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("astronaut.png")]
    probability = float(row[row["label"]])
    assert line.split() == ["astronaut.png", "0", *box.split(), row["label"], "(uncertain)", f"{probability:.2f}"]
    assert row["uncertain"] == "1"
    assert any(line.startswith("wall.png") and "no face found" in line for line in result.stdout.splitlines())
    assert math.isclose(sum(float(row[n]) for n in ("angry", "disgust", "fear", "happy", "neutral", "sad",
                                                       "surprise")), 1.0, abs_tol=1e-4)


@pytest.mark.parametrize(("setting", "expected"), [
    ("track_smoothing=1.5", "track_smoothing=1.5 is not allowed: a number from 0"),
    ("uncertain_below=2", "uncertain_below=2 is not allowed: a probability from 0 to 1"),
    ("align=sometimes", "align='sometimes' is not allowed: true or false"),
    ("face_detector=retina", "face_detector='retina'"),
])
def test_a_wrong_face_setting_is_one_line_naming_it(setting, expected, tmp_path):
    cv2.imwrite(str(tmp_path / "astronaut.png"), astronaut_bgr())
    result = run_cli("fer_lightning.predict", f"input={tmp_path / 'astronaut.png'}", f"output={tmp_path / 'f.csv'}",
                     setting)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expected in line, line
