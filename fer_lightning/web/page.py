"""The demo page (Gradio): a photo in (upload or webcam), its faces out, boxed and labelled, with a
probability chart and a saliency map per face; the model is a shipped one or a checkpoint path."""

from __future__ import annotations

from typing import Any

from fer_lightning.errors import FerError
from fer_lightning.web.analysis import analyze_photo

TITLE = "fer-lightning: facial expressions"
INTRO = ("Upload a photo or use the webcam. Each face is found (OpenCV), cut to 48x48 gray as in FER2013, "
         "and classified; the panels show where the model looks (saliency) and its seven probabilities.")


class Recognizers:
    """Models by name, loaded once: switching back to a model already used costs nothing."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.loaded: dict[str, Any] = {}

    def get(self, source: str):
        from fer_lightning.inference.recognizer import Recognizer

        source = (source or "").strip() or "pretrained"
        if source not in self.loaded:
            self.loaded[source] = Recognizer.from_checkpoint(source, **self.options)
        return self.loaded[source]


def model_choices() -> list[str]:
    """Every shipped model as ``pretrained:<name>``, the default one first."""
    from fer_lightning.models.pretrained import PRETRAINED, read_registry

    registry = read_registry()
    names = sorted(registry["models"], key=lambda name: name != registry.get("default"))
    return [f"{PRETRAINED}:{name}" for name in names]


def build_page(default_model: str, recognizers: Recognizers, method: str = "saliency"):
    import gradio as gr

    def run(image: Any, model: str):
        try:
            result = analyze_photo(recognizers.get(model), image, method)
        except FerError as error:  # a checkpoint that cannot be used: said on the page
            return None, None, None, f"**Cannot use the model {model}:** {error}"
        except Exception as error:  # noqa: BLE001 - the page shows one line, never a stack trace
            return None, None, None, f"**Something went wrong:** {type(error).__name__}: {error}"
        return result.annotated, result.main_face or None, result.panels, result.message

    choices = model_choices()
    if default_model not in choices:
        choices = [default_model, *choices]
    with gr.Blocks(title=TITLE) as page:
        gr.Markdown(f"# {TITLE}\n{INTRO}")
        with gr.Row():
            with gr.Column(scale=1):
                photo = gr.Image(sources=["upload", "webcam"], type="numpy", image_mode="RGB", label="Photo",
                                 elem_id="photo")
                model = gr.Dropdown(choices, value=default_model, allow_custom_value=True, elem_id="model",
                                    label="Model: a shipped one, or type the path of a checkpoint or ensemble file")
                analyse = gr.Button("Analyse", variant="primary", elem_id="analyse")
            with gr.Column(scale=2):
                message = gr.Markdown(elem_id="message")
                with gr.Row():
                    faces = gr.Image(label="Faces found", interactive=False, elem_id="faces", scale=3)
                    label = gr.Label(num_top_classes=7, label="The largest face", elem_id="label", scale=2)
                panels = gr.Plot(label="Each face: where the model looks, and its probabilities", elem_id="panels")
        outputs = [faces, label, panels, message]
        analyse.click(run, [photo, model], outputs)
        photo.upload(run, [photo, model], outputs)
    return page
