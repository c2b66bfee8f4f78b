"""python -m fer_lightning.demo [ckpt_path=...] [models=[folder,...]] [port=7860]: the web demo on a local page."""

from __future__ import annotations

import os

from omegaconf import DictConfig

from fer_lightning.cli.entry import command, run_command


def demo(cfg: DictConfig) -> None:
    from fer_lightning.cli.console import print_warning
    from fer_lightning.config.checks import check_demo_config, is_loopback
    from fer_lightning.inference.prediction import detect_option

    check_demo_config(cfg)
    # The page is local: no usage reports, no update checks (a closed network would only wait on them).
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        from fer_lightning.errors import ConfigError

        raise ConfigError('the demo needs Gradio: pip install -e ".[demo]" (or pip install gradio)') from None
    import logging

    from fer_lightning.web.models import ModelCatalog, Recognizers
    from fer_lightning.web.page import build_page

    logging.getLogger("httpx").setLevel(logging.WARNING)  # the page's own requests are not news

    catalog = ModelCatalog.build(str(cfg.ckpt_path), [str(folder) for folder in cfg.models])
    recognizers = Recognizers(max_models=int(cfg.max_models), detect_faces=detect_option(cfg.detect_faces),
                              face_detector=str(cfg.face_detector), align=cfg.align, margin=float(cfg.margin),
                              min_face_size=int(cfg.min_face_size), uncertain_below=float(cfg.uncertain_below),
                              tta=str(cfg.tta))
    live = (str(cfg.live_backend), str(cfg.live_precision))
    recognizers.get(catalog.source(catalog.default))  # a wrong checkpoint stops here, in one line
    recognizers.get(catalog.source(catalog.default), *live)  # and a missing onnxruntime, or int8 graph
    page = build_page(catalog, recognizers, str(cfg.method), live)
    if not is_loopback(str(cfg.host)):
        print_warning(f"host={cfg.host}: the page is reachable from other machines; its visitors can use "
                      f"the {len(catalog.labels)} models it lists and nothing else")
    print(f"demo: http://{cfg.host}:{cfg.port}  ({len(catalog.labels)} models; Ctrl-C stops it)", flush=True)
    page.launch(server_name=str(cfg.host), server_port=int(cfg.port), max_file_size=f"{int(cfg.max_file_mb)}mb",
                inbrowser=bool(cfg.open_browser), show_error=False, quiet=True)


@command
def main() -> None:
    run_command("demo", demo, __doc__, main_input="ckpt_path")


if __name__ == "__main__":
    main()
