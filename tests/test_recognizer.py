"""The Python API (fer_lightning.Recognizer): every image form it takes gives the same answer as the
predict command; explanations and videos."""

from __future__ import annotations

import csv
import logging
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_lightning import Recognizer
from fer_lightning.errors import ConfigError, DataFormatError, FerError
from fer_lightning.predict import main as predict_main
from tests.test_evaluate_predict import astronaut_bgr, run_hydra_entry
from tests.test_output_safety import checkpoint, run  # noqa: F401  (module fixtures: an untrained model)


@pytest.fixture(scope="module")
def recognizer(checkpoint):  # noqa: F811
    return Recognizer.from_checkpoint(checkpoint)


def test_importing_the_package_does_not_import_torch():
    code = "import sys, fer_lightning; assert 'torch' not in sys.modules; fer_lightning.Recognizer"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_image_form_gives_the_same_faces(recognizer, tmp_path):
    bgr = astronaut_bgr()
    path = tmp_path / "astronaut.png"
    cv2.imwrite(str(path), bgr)
    forms = {
        "path": (str(path), "bgr"),
        "bgr array": (bgr, "bgr"),
        "rgb array": (bgr[:, :, ::-1], "rgb"),
        "rgba array": (np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 255, np.uint8)]), "rgb"),
        "float array": (bgr.astype(np.float32) / 255.0, "bgr"),
        "float array in 0..255": (bgr.astype(np.float64), "bgr"),
        "uint16 array": (bgr.astype(np.uint16) * 257, "bgr"),
        "int64 array": (bgr.astype(np.int64), "bgr"),
        "PIL image": (Image.fromarray(bgr[:, :, ::-1].copy()), "bgr"),  # its mode says RGB, whatever is passed
    }
    answers = {name: recognizer.predict(image, color_order=order) for name, (image, order) in forms.items()}
    reference = answers["path"]
    assert len(reference) == 1 and reference[0].box[2] > 60  # the astronaut's face
    face = reference[0]
    assert face.label in recognizer.class_names and face.score == max(face.probabilities.values())
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    for name, faces in answers.items():
        assert [f.box for f in faces] == [face.box], name
        for a, b in zip(faces, reference):
            assert a.probabilities == pytest.approx(b.probabilities, abs=1e-6), name
    # Colours matter: the same pixels read in the wrong order give another gray image.
    swapped = recognizer.find_faces(bgr, color_order="rgb")
    assert not np.array_equal(swapped[0].image, recognizer.find_faces(bgr)[0].image)


def test_predict_faces_is_the_batched_path_and_matches_predict(recognizer):
    faces = recognizer.predict(astronaut_bgr())
    batch = np.stack([faces[0].crop, np.fliplr(faces[0].crop)])
    probabilities = recognizer.predict_faces(batch)
    assert probabilities.shape == (2, 7)
    assert dict(zip(recognizer.class_names, probabilities[0].tolist())) == pytest.approx(faces[0].probabilities)
    assert recognizer.predict_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    # Any size of gray crop is resized as the readers resize.
    assert recognizer.predict_faces([cv2.resize(faces[0].crop, (96, 96))]).shape == (1, 7)


def test_the_command_and_the_api_agree(recognizer, checkpoint, tmp_path, monkeypatch):  # noqa: F811
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "astronaut.png"), astronaut_bgr())
    output = tmp_path / "faces.csv"
    run_hydra_entry(predict_main, monkeypatch, f"ckpt_path={checkpoint}", f"input={folder}", f"output={output}")
    (row,) = list(csv.DictReader(output.open()))
    (face,) = recognizer.predict(folder / "astronaut.png")
    assert [int(row[k]) for k in "xywh"] == list(face.box) and row["label"] == face.label
    for name in recognizer.class_names:
        assert float(row[name]) == pytest.approx(face.probabilities[name], abs=1e-6)


def test_no_face_and_bad_images(recognizer):
    assert recognizer.predict(np.full((200, 200), 128, np.uint8)) == []
    with pytest.raises(DataFormatError, match="shape"):
        recognizer.predict(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(DataFormatError, match="NaN"):
        recognizer.predict(np.full((48, 48), np.nan, np.float32))
    # Values no image format gives are refused, not clipped into another image.
    for wrong, words in ((np.full((48, 48), -3.0), "float64 pixels from -3 to -3"),
                         (np.full((48, 48), 300, np.int32), "int32 pixels from 300 to 300"),
                         (np.full((48, 48), 1000.0, np.float32), "expected 0..255")):
        with pytest.raises(DataFormatError, match=words):
            recognizer.predict(wrong)
    with pytest.raises(ConfigError, match="margin"):
        Recognizer(recognizer.predictor, margin=3)
    with pytest.raises(ConfigError, match="color_order"):
        recognizer.predict(astronaut_bgr(), color_order="hsv")


def test_explain_gives_a_map_per_face_that_depends_on_the_face(recognizer):
    image = astronaut_bgr()
    (explained,) = recognizer.explain(image)
    assert explained.attribution.shape == (48, 48) and explained.attribution.min() >= 0
    assert explained.attribution.max() > 0
    (gradcam,) = recognizer.explain(image, method="gradcam")
    assert gradcam.attribution.shape == (48, 48)
    assert not np.allclose(gradcam.attribution, explained.attribution)
    assert recognizer.explain(np.full((200, 200), 128, np.uint8)) == []


def write_clip(path, frames: int = 12, blank_from: int = 8) -> None:
    image = astronaut_bgr()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, image.shape[1::-1])
    for index in range(frames):
        writer.write(np.roll(image, 4 * index, axis=1) if index < blank_from else np.zeros_like(image))
    writer.release()


def test_a_video_gives_a_row_per_face_per_frame_a_timeline_and_an_annotated_copy(checkpoint, tmp_path,  # noqa: F811
                                                                              monkeypatch):
    clip = tmp_path / "clip.mp4"
    write_clip(clip)
    output = tmp_path / "clip.csv"
    run_hydra_entry(predict_main, monkeypatch, f"ckpt_path={checkpoint}", f"input={clip}", f"output={output}",
                    "every_n_frames=2", "annotate=true")
    rows = list(csv.DictReader(output.open()))
    assert [int(r["frame"]) for r in rows] == [0, 2, 4, 6, 8, 10]
    assert [float(r["time"]) for r in rows] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    faces = [r for r in rows if r["label"]]
    assert len(faces) == 4 and all(r["label"] == "" for r in rows[4:])  # blank frames: no face
    assert [int(r["x"]) for r in faces] == sorted(int(r["x"]) for r in faces)  # the face moves right
    timeline = cv2.imread(str(tmp_path / "clip_timeline.png"))
    assert timeline is not None and timeline.shape[1] > 500
    annotated = cv2.VideoCapture(str(tmp_path / "clip_annotated" / "clip.mp4"))
    assert int(annotated.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, first = annotated.read()
    assert ok and np.abs(first.astype(int) - astronaut_bgr().astype(int)).max() > 100  # a box was drawn


def test_the_api_reads_videos_too(recognizer, tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip, frames=4, blank_from=4)
    frames = recognizer.analyze_video(clip, every_n_frames=3)
    assert [f.frame for f in frames] == [0, 3] and all(len(f.faces) == 1 for f in frames)
    not_a_video = tmp_path / "broken.mp4"
    not_a_video.write_bytes(b"\x00" * 100)
    with pytest.raises(DataFormatError, match="broken.mp4"):
        recognizer.analyze_video(not_a_video)


@pytest.mark.parametrize("detector", ["hog", "cnn"])
def test_every_face_detector_finds_the_astronaut_and_nothing_in_a_wall(checkpoint, detector):  # noqa: F811
    faces = Recognizer.from_checkpoint(checkpoint, face_detector=detector).predict(astronaut_bgr())
    (face,) = faces
    x, y, w, h = face.box
    assert x < 222 < x + w and y < 118 < y + h  # the centre of her face (scikit-image's 512x512 picture)
    wall = np.full((300, 300, 3), 90, np.uint8)
    assert Recognizer.from_checkpoint(checkpoint, face_detector=detector).predict(wall) == []
    with pytest.raises(ConfigError, match="face_detector"):
        Recognizer.from_checkpoint(checkpoint, face_detector="retina")


def test_a_detector_that_is_not_installed_says_how_to_install_it(monkeypatch):
    from fer_lightning.inference.faces import face_detector

    monkeypatch.setitem(sys.modules, "dlib", None)  # as if dlib were not installed
    for name in ("hog", "cnn"):
        with pytest.raises(FerError, match=r'face_detector=.* needs dlib: pip install -e "\.\[faces\]"'):
            face_detector(name)


def test_a_cut_off_video_says_how_much_of_it_was_read(recognizer, tmp_path, caplog):
    clip = tmp_path / "clip.avi"
    image = cv2.resize(astronaut_bgr(), (160, 160))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 160))
    for index in range(20):
        writer.write(np.roll(image, index, axis=1))
    writer.release()
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) * 6 // 10])  # the header still announces 20 frames
    with caplog.at_level(logging.WARNING):
        frames = recognizer.analyze_video(clip, every_n_frames=1)
    assert 0 < len(frames) < 20
    assert f"only {len(frames)} of the 20 frames its header announces" in caplog.text and "clip.avi" in caplog.text


def test_the_api_s_face_defaults_are_the_commands_defaults():
    import inspect

    import yaml

    from fer_lightning.config.paths import config_dir

    shared = yaml.safe_load((Path(config_dir()) / "face_options.yaml").read_text())
    api = {name: p.default for name, p in inspect.signature(Recognizer.__init__).parameters.items()
           if name in shared}
    assert api == {**shared, "detect_faces": None} and shared["detect_faces"] == "auto"  # None is the API's auto
