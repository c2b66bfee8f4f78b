"""The demo's live webcam: frames analysed one by one with tracks kept (without a browser), and the page
in headless Chromium whose fake camera plays a clip the test writes: the faces are boxed and the
probabilities update while the clip plays."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_lightning.web.live import LiveSession, analyze_frame
from tests.helpers import demo_server
from tests.test_demo import browser_missing
from tests.test_evaluate_predict import astronaut_bgr
from tests.test_output_safety import checkpoint, run  # noqa: F401  (module fixtures: an untrained model)
from tests.test_recognizer import recognizer  # noqa: F401

WIDTH, HEIGHT = 640, 480
# Counts, in the page, every new picture of the live output (a new <img>, or a new src on one).
COUNT_PICTURES = """
window.liveChanges = 0;
new MutationObserver(changes => {
  for (const change of changes) {
    if (change.type === 'attributes') window.liveChanges++;
    else window.liveChanges += [...change.addedNodes].filter(node => node.tagName === 'IMG').length;
  }
}).observe(document.getElementById('live-faces'), {attributes: true, attributeFilter: ['src'], subtree: true,
                                                   childList: true});
"""


def webcam_frames(count: int) -> list[np.ndarray]:
    """BGR 640x480 frames of the astronaut's head moving back and forth, as a webcam's picture moves."""
    face = cv2.resize(astronaut_bgr()[20:260, 110:350], (220, 220))
    frames = []
    for index in range(count):
        canvas = np.full((HEIGHT, WIDTH, 3), 110, np.uint8)
        x = 60 + abs((index * 6) % 240 - 120) * 2
        canvas[120:340, x:x + 220] = face
        frames.append(canvas)
    return frames


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """A raw YUV 4:2:0 video (what Chromium's fake camera plays): a header, then each frame's planes."""
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            handle.write(b"FRAME\n")
            handle.write(cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())


def test_frames_of_a_stream_are_boxed_and_keep_their_track(recognizer):  # noqa: F811
    session = LiveSession()
    tracks = set()
    for frame in webcam_frames(6):
        drawn, probabilities, session = analyze_frame(recognizer, frame[:, :, ::-1], session)  # the page's RGB
        assert drawn.shape == (HEIGHT, WIDTH, 3) and np.abs(drawn.astype(int) - frame[:, :, ::-1]).max() > 100
        assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        tracks |= {face.track for face in session.faces}
    assert tracks == {0} and session.frames == 6
    assert analyze_frame(recognizer, None, session)[0] is None


@pytest.fixture
def camera_browser(tmp_path):
    """Headless Chromium whose camera is a clip of a moving face (and whose camera prompt says yes)."""
    missing = browser_missing()
    if missing:
        if os.environ.get("FER_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    clip = tmp_path / "camera.y4m"
    write_y4m(clip, webcam_frames(80))
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={clip}", "--window-size=1400,1600",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='fer-chromium-')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_the_live_webcam_in_a_browser_labels_the_moving_face(camera_browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with demo_server() as address:
        browser = camera_browser
        browser.get(address)
        start_stream(browser)
        # The shipped model labels the face in the stream; the answer keeps changing as the face moves.
        WebDriverWait(browser, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#live-label [data-testid='label-output-value']"))
        assert browser.find_element(By.CSS_SELECTOR, "#live-label [data-testid='label-output-value']").text
        bars = browser.find_elements(By.CSS_SELECTOR, "#live-label meter")
        assert len(bars) == 7
        # Every answered frame replaces the picture: the page itself counts the replacements.
        browser.execute_script(COUNT_PICTURES)
        seconds = 6.0
        time.sleep(seconds)
        shown = browser.execute_script("return window.liveChanges")
        print(f"live stream: {shown / seconds:.1f} new pictures a second in the browser")
        assert shown >= 3 * seconds, f"{shown} new pictures in {seconds:.0f} s"


def start_stream(browser) -> None:
    """Gradio's streaming webcam: one button opens the camera, then "Record" starts the stream (a
    second click on it would stop it)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def button(text: str):
        found = [b for b in browser.find_elements(By.CSS_SELECTOR, "#live button") if b.is_displayed() and text in b.text]
        return found[0] if found else None

    WebDriverWait(browser, 30).until(lambda d: button("Access Webcam")).click()
    WebDriverWait(browser, 30).until(lambda d: button("Record")).click()


def test_the_stream_runs_on_onnxruntime_with_its_session_copied_between_frames_as_the_page_does(checkpoint):  # noqa: F811
    import copy

    from fer_lightning.web.models import ModelCatalog, Recognizers
    from fer_lightning.web.page import live_answer

    catalog, recognizers = ModelCatalog.build(str(checkpoint)), Recognizers()
    session, tracks = None, set()
    for frame in webcam_frames(7):
        drawn, probabilities, session = live_answer(catalog, recognizers, frame[:, :, ::-1], catalog.default,
                                                    session, ("onnxruntime", "fp32"))
        assert probabilities is not None, "the frame came back unanswered"
        session = copy.deepcopy(session)  # what the page keeps between two frames
        tracks |= {face.track for face in session.faces}
    assert tracks == {0} and session.frames == 7
    assert [r.backend for r in recognizers.loaded.values()] == ["onnxruntime"]
