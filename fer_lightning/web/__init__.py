"""The web demo: a local page (Gradio) on top of the Python API."""
