"""The demo page (Gradio): a photo in (an uploaded file or a webcam snapshot), its faces out, boxed and
labelled, with a probability chart and a saliency map per face; and a live webcam stream whose faces
are boxed and labelled frame by frame. The model is one of the page's catalog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_lightning.errors import FerError
from fer_lightning.web.analysis import analyze_photo
from fer_lightning.web.live import LiveSession, analyze_frame
from fer_lightning.web.models import ModelCatalog, Recognizers, UnknownModel

TITLE = "fer-lightning: facial expressions"
INTRO = ("Upload a photo or take one with the webcam. Each face is found (YuNet through OpenCV), turned upright "
         "and cut to 48x48 gray as in FER2013, and classified; the panels show where the model looks (saliency) "
         "and its seven probabilities. Or start the live webcam below: its faces are labelled as you move.")
# The live stream: the browser offers a frame this often (seconds), at this size. Faster than the 10 a
# second aimed at, so that the answer sets the pace, not the offer.
LIVE_INTERVAL = 0.06
LIVE_SIZE = {"width": 640, "height": 480}


def answer(catalog: ModelCatalog, recognizers: Recognizers, photo: Any, model: Any, method: str):
    """The page's four outputs for one photo (a file path or an RGB array) and one model label."""
    try:
        source = catalog.source(model)
    except UnknownModel as error:
        return None, None, None, f"**Unknown model.** {error}."
    try:
        recognizer = recognizers.get(source)
    except FerError as error:  # a listed file that cannot be used: said on the page
        return None, None, None, f"**Cannot use the model {model}:** {error}"
    try:
        result = analyze_photo(recognizer, Path(photo) if isinstance(photo, str) else photo, method)
    except Exception as error:  # noqa: BLE001 - the page shows one line, never a stack trace
        return None, None, None, f"**Something went wrong:** {type(error).__name__}"
    return result.annotated, result.main_face or None, result.panels, result.message


def live_answer(catalog: ModelCatalog, recognizers: Recognizers, frame: Any, model: Any, session: Any,
                stream_backend: tuple[str, str] = ("torch", "fp32")):
    """The live stream's outputs for one frame: the frame with its faces drawn, the largest face's
    probabilities, the visitor's session (its face tracks). ``stream_backend``: the backend and
    precision that run the model for the stream."""
    session = session if isinstance(session, LiveSession) else LiveSession()
    try:
        recognizer = recognizers.get(catalog.source(model), *stream_backend)
        return analyze_frame(recognizer, frame, session, model)
    except Exception:  # noqa: BLE001 - a frame that fails shows as it came; the stream goes on
        return frame, None, session


def build_page(catalog: ModelCatalog, recognizers: Recognizers, method: str = "saliency",
               stream_backend: tuple[str, str] = ("torch", "fp32")):
    import gradio as gr

    with gr.Blocks(title=TITLE) as page:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=1):
                # A file, not an image component: the project decodes it, so a broken, empty or
                # non-image upload is answered on the page, and 16-bit images read as predict reads them.
                upload = gr.File(label="Photo (PNG, JPEG, BMP, WebP)", type="filepath", elem_id="photo")
                webcam = gr.Image(sources=["webcam"], type="numpy", image_mode="RGB", label="Webcam",
                                  elem_id="webcam")
                model = gr.Dropdown(catalog.labels, value=catalog.default, allow_custom_value=False,
                                    elem_id="model", label="Model")
                analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column(scale=2):
                message = gr.Markdown(elem_id="message")
                with gr.Row():
                    faces = gr.Image(label="Faces found", interactive=False, elem_id="faces", scale=3)
                    label = gr.Label(num_top_classes=7, label="The largest face", elem_id="label", scale=2)
                panels = gr.Plot(label="Each face: where the model looks, and its probabilities", elem_id="panels")
        outputs = [faces, label, panels, message]

        def from_upload(photo: Any, chosen: Any):
            return answer(catalog, recognizers, photo, chosen, method)

        def from_either(photo: Any, snapshot: Any, chosen: Any):
            return answer(catalog, recognizers, photo if photo is not None else snapshot, chosen, method)

        with gr.Row():
            with gr.Column(scale=1):
                live = gr.Image(sources=["webcam"], streaming=True, type="numpy", image_mode="RGB",
                                label="Live webcam", elem_id="live",
                                webcam_options=gr.WebcamOptions(mirror=False, constraints={"video": LIVE_SIZE}))
            with gr.Column(scale=2):
                with gr.Row():
                    live_faces = gr.Image(label="Live: faces found", interactive=False, elem_id="live-faces", scale=3,
                                          format="jpeg", streaming=True)
                    live_label = gr.Label(num_top_classes=7, label="Live: the largest face", elem_id="live-label",
                                          scale=2)
        session = gr.State(None)

        def from_stream(frame: Any, chosen: Any, state: Any):
            return live_answer(catalog, recognizers, frame, chosen, state, stream_backend)

        # One frame answered at a time: a frame that arrives meanwhile waits, and the page keeps the latest.
        live.stream(from_stream, [live, model, session], [live_faces, live_label, session],
                    stream_every=LIVE_INTERVAL, concurrency_limit=1, show_progress="hidden")
        upload.upload(from_upload, [upload, model], outputs)
        webcam.input(from_upload, [webcam, model], outputs)
        analyse.click(from_either, [upload, webcam, model], outputs)
    return page
