"""The web demo: what the page shows for a photo (without a browser), which models a visitor may
use, what the command refuses, and the page itself in headless Chromium: upload a face photo, read
the label and the probability bars; upload a file that is no image, read what was wrong."""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fer_lightning.checkpoints.shipped import read_registry
from fer_lightning.errors import CheckpointError, DataFormatError
from fer_lightning.web.analysis import analyze_photo
from fer_lightning.web.models import ModelCatalog, Recognizers, UnknownModel
from fer_lightning.web.page import answer
from tests.helpers import demo_server, run_cli
from tests.test_evaluate_predict import astronaut_bgr
from tests.test_output_safety import checkpoint, run  # noqa: F401  (module fixtures: an untrained model)
from tests.test_recognizer import recognizer  # noqa: F401


def test_a_photo_gives_boxed_faces_probabilities_and_panels(recognizer):  # noqa: F811
    rgb = astronaut_bgr()[:, :, ::-1]
    result = analyze_photo(recognizer, rgb)
    assert result.annotated.shape == rgb.shape and np.abs(result.annotated.astype(int) - rgb).max() > 100
    assert set(result.main_face) == set(recognizer.class_names)
    assert sum(result.main_face.values()) == pytest.approx(1.0, abs=1e-5)
    best = max(result.main_face, key=result.main_face.get)
    assert result.message.startswith("1 face found") and f"**{best}**" in result.message
    assert len(result.panels.axes) == 2  # one row: the crop with its map, the bars


def test_the_page_says_what_is_wrong_instead_of_failing(recognizer):  # noqa: F811
    assert "Upload a photo" in analyze_photo(recognizer, None).message
    blank = analyze_photo(recognizer, np.full((300, 300, 3), 127, np.uint8))
    assert blank.message.startswith("**No face found.**") and blank.panels is None and blank.main_face == {}
    broken = analyze_photo(recognizer, np.zeros((10, 10, 2), np.uint8))
    assert broken.message.startswith("**Cannot read this image:**") and "shape" in broken.message


def test_a_huge_photo_is_shrunk_before_detection(recognizer):  # noqa: F811
    big = cv2.resize(astronaut_bgr()[:, :, ::-1], (3200, 3200))
    result = analyze_photo(recognizer, big)
    assert max(result.annotated.shape[:2]) == 1600 and "found; the largest looks" in result.message


# ------------------------------------------------------------------ which models a visitor may use
@pytest.fixture
def models_folder(tmp_path, checkpoint):  # noqa: F811
    folder = tmp_path / "served"
    (folder / "run" / "checkpoints").mkdir(parents=True)
    shutil.copy(checkpoint, folder / "run" / "checkpoints" / "best.ckpt")
    (folder / "notes.txt").write_text("not a model")
    outside = tmp_path / "private.ckpt"
    shutil.copy(checkpoint, outside)
    (folder / "escape.ckpt").symlink_to(outside)  # a link leading out of the folder is not offered
    return folder


def test_the_page_offers_shipped_models_and_files_under_the_named_folders_only(models_folder):
    catalog = ModelCatalog.build("pretrained", [models_folder])
    served = str(models_folder / "run" / "checkpoints" / "best.ckpt")
    assert catalog.default == "pretrained:fer2013-narrow-cnn" and catalog.labels[0] == catalog.default
    shipped = [f"pretrained:{name}" for name in read_registry()["models"]]
    assert "pretrained:fer2013-report-cnn" in shipped and served in catalog.labels
    # Every shipped model and the one checkpoint: the text file and the link out of the folder are not models.
    assert sorted(catalog.labels) == sorted([*shipped, served])
    assert catalog.source(served) == str(Path(served).resolve())


def test_a_visitor_cannot_probe_or_load_server_files_through_the_model_box(models_folder, tmp_path):
    catalog = ModelCatalog.build("pretrained", [models_folder])
    served = models_folder / "run" / "checkpoints" / "best.ckpt"
    probes = ["/etc/shadow", "/etc/nonexistent", "../../../../etc/passwd", str(tmp_path / "private.ckpt"),
              str(models_folder / "escape.ckpt"), f"{models_folder}/./run/checkpoints/best.ckpt",
              f"{models_folder}//run/checkpoints/best.ckpt", str(served.parent), "", None, 7]
    answers = set()
    for probe in probes:
        with pytest.raises(UnknownModel) as refused:
            catalog.source(probe)
        answers.add(str(refused.value))
    assert len(answers) == 1 and "/" not in answers.pop()  # the same words, whether the file exists or not
    page = answer(catalog, Recognizers(), np.zeros((64, 64, 3), np.uint8), "/etc/shadow", "saliency")
    assert page[:3] == (None, None, None) and page[3].startswith("**Unknown model.**") and "shadow" not in page[3]


def test_loaded_models_are_keyed_by_their_file_and_bounded(checkpoint, tmp_path):  # noqa: F811
    copies = []
    for index in range(3):
        (tmp_path / str(index)).mkdir()
        copies.append(shutil.copy(checkpoint, tmp_path / str(index) / "best.ckpt"))
    recognizers = Recognizers(max_models=2)
    first = recognizers.get(str(copies[0]))
    assert recognizers.get(f"{tmp_path}/./0//best.ckpt") is first and len(recognizers.loaded) == 1
    recognizers.get(str(copies[1]))
    recognizers.get(str(copies[2]))
    assert len(recognizers.loaded) == 2 and str(Path(copies[0]).resolve()) not in recognizers.loaded


def test_an_ensemble_file_is_measured_before_its_members_are_built(tmp_path):
    from fer_lightning.checkpoints.ensemble_file import ensemble_artifact, save_ensemble
    from fer_lightning.checkpoints.predictor import load_predictor

    shared = {"features.0.weight": torch.zeros(1000, dtype=torch.float16)}
    many = tmp_path / "many.ckpt"
    save_ensemble(many, ensemble_artifact([{"state_dict": shared, "hyper_parameters": {}}] * 400, [1.0] * 400,
                                          "top-k"))
    assert many.stat().st_size < 1_000_000
    with pytest.raises(CheckpointError, match="400 members, more than the 64"):
        load_predictor(many)
    # One stored value standing for a billion: a stride-0 view is small on disk, huge once copied.
    huge = tmp_path / "huge.ckpt"
    member = {"state_dict": {"features.0.weight": torch.zeros(1).expand(10**9)}, "hyper_parameters": {}}
    save_ensemble(huge, ensemble_artifact([member], [1.0], "top-k"))
    assert huge.stat().st_size < 100_000
    with pytest.raises(CheckpointError, match="more than 500,000,000 values"):
        load_predictor(huge)


# ------------------------------------------------------------------ what the command refuses
@pytest.mark.parametrize(("args", "expected"), [
    (["host=0.0.0.0"], "allow_remote=true"),
    (["+share=true"], "no setting 'share'"),
    (["models=[/nonexistent-folder]"], "models[0]=/nonexistent-folder: no such folder"),
    (["live_backend=tensorrt"], "live_backend='tensorrt': allowed values are torch, onnxruntime"),
    (["live_backend=torch", "live_precision=int8"], "live_precision='int8' is not allowed: fp32 with live_backend=torch"),
])
def test_the_demo_command_refuses_a_public_bind_unknown_keys_and_missing_folders(args, expected):
    result = run_cli("fer_lightning.demo", *args, timeout=120)
    assert result.returncode == 2 and expected in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


# ------------------------------------------------------------------ what an upload may be
def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data): what a decompression bomb shows first."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


def test_an_uploaded_file_that_is_no_usable_image_is_named_and_explained(recognizer, tmp_path):  # noqa: F811
    uploads = tmp_path / "gradio-upload-folder"
    uploads.mkdir()
    good = cv2.imencode(".png", astronaut_bgr())[1].tobytes()
    cases = {"empty.png": b"", "cut.png": good[: len(good) // 3], "table.csv": b"emotion,pixels\n0,1 2 3\n",
             "bomb.png": png_header_only(30_000, 30_000)}
    for name, content in cases.items():
        (uploads / name).write_bytes(content)
        result = analyze_photo(recognizer, uploads / name)
        assert result.message.startswith(f"**Cannot read this image:** {name}:"), result.message
        assert str(uploads) not in result.message and result.annotated is None
    assert "million" in analyze_photo(recognizer, uploads / "bomb.png").message


def test_a_16_bit_gray_photo_is_read_as_predict_reads_it(recognizer, tmp_path):  # noqa: F811
    gray16 = cv2.cvtColor(astronaut_bgr(), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(tmp_path / "deep.png"), gray16)
    assert analyze_photo(recognizer, tmp_path / "deep.png").message.startswith("1 face found")


def test_a_device_is_not_read_as_a_photo():
    from fer_lightning.inference.faces import read_color_image

    with pytest.raises(DataFormatError, match="/dev/zero: not a regular file"):
        read_color_image(Path("/dev/zero"))


def browser_missing() -> str | None:
    for module in ("gradio", "selenium"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (pip install -e '.[dev]')"
    for program in ("chromium", "chromedriver"):
        if not shutil.which(program):
            return f"{program} is not installed (Debian: apt-get install chromium chromium-driver)"
    return None


@pytest.fixture
def chromium():
    missing = browser_missing()
    if missing:
        if os.environ.get("FER_REQUIRE_BROWSER") == "1":  # CI installs the browser: missing is a failure
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    # A closed network: no background requests, no update checks, a fresh profile.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1300", f"--user-data-dir={tempfile.mkdtemp(prefix='fer-chromium-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_the_page_in_a_browser_labels_an_uploaded_face(chromium, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), astronaut_bgr())
    with demo_server() as address:
        chromium.get(address)
        WebDriverWait(chromium, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))
        chromium.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(photo))
        # The shipped model sees the astronaut smile.
        WebDriverWait(chromium, 90).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#label [data-testid='label-output-value']"))
        assert chromium.find_element(By.CSS_SELECTOR, "#label [data-testid='label-output-value']").text == "happy"
        bars = chromium.find_elements(By.CSS_SELECTOR, "#label meter")
        assert len(bars) == 7
        values = sorted((float(bar.get_attribute("value")) for bar in bars), reverse=True)
        assert values[0] > 0.5 and sum(values) == pytest.approx(1.0, abs=0.01)
        assert chromium.find_element(By.ID, "message").text.startswith("1 face found")
        assert chromium.find_elements(By.CSS_SELECTOR, "#faces img")  # the boxed photo is shown
        # A file that is no image: the page says so (Gradio does not decode uploads itself).
        notes = tmp_path / "notes.csv"
        notes.write_text("emotion,pixels\n0,1 2 3\n")
        chromium.get(address)
        WebDriverWait(chromium, 60).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#photo input[type=file]"))
        chromium.find_element(By.CSS_SELECTOR, "#photo input[type=file]").send_keys(str(notes))
        WebDriverWait(chromium, 60).until(lambda d: "Cannot read this image" in d.find_element(By.ID, "message").text)
        assert "notes.csv" in chromium.find_element(By.ID, "message").text
