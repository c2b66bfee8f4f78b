"""The web demo: what the page shows for a photo (without a browser), and the page itself in
headless Chromium: upload a face photo, read the label and the probability bars."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import pytest

from fer_lightning.web.analysis import analyze_photo
from tests.helpers import ROOT
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
    port = free_port()
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([sys.executable, "-m", "fer_lightning.demo", f"port={port}"], cwd=ROOT,
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the demo did not start within 2 minutes"
                time.sleep(0.3)
        chromium.get(f"http://127.0.0.1:{port}/")
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
    finally:
        server.terminate()
        server.wait(timeout=30)
