"""python -m fer_lightning.report: a finished run's page, its figures, and its refusals."""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from fer_lightning.cli.entry import command
from fer_lightning.cli.report import quote_path_overrides, report
from fer_lightning.errors import FerError
from fer_lightning.reporting.run_report import build_report
from fer_lightning.runs.saved_run import open_finished_run, read_history
from fer_lightning.viz.html_page import ReportFigure, Section, paragraph, write_report
from tests.conftest import compose_config
from tests.helpers import run_cli
from tests.test_figures_callbacks import trained_figures_run

SECTIONS = ("overview", "history", "confusion", "saliency", "filters", "model", "config", "metrics")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The command's defaults, made small: the page's structure is under test, not the pictures' quality.
QUICK = ["filters.steps=5", "saliency.per_class=1", "saliency.ig_steps=4"]


class PageParts(HTMLParser):
    """Section ids and image sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "section":
            self.sections.append(values.get("id") or "")
        elif tag == "img":
            self.images.append(values.get("src") or "")


def parse(page: Path) -> PageParts:
    parts = PageParts()
    parts.feed(page.read_text(encoding="utf-8"))
    return parts


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return trained_figures_run(tmp_path_factory)


@pytest.fixture(scope="module")
def report_page(run_dir) -> Path:
    """The report made from the command line, as a user would (the path has '=' and ',' in it)."""
    result = run_cli("fer_lightning.report", f"run_dir={run_dir}", *QUICK, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    page = run_dir / "report" / "index.html"
    assert f"report: {page}" in result.stdout
    return page


# ------------------------------------------------------------------------------------ the page
@pytest.mark.slow
def test_report_has_every_section_and_every_image_decodes(report_page):
    parts = parse(report_page)
    assert parts.sections == list(SECTIONS)
    assert len(parts.images) >= 7  # history, confusion, 3 saliency methods, filters, feature maps
    for source in parts.images:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(PNG_MAGIC)


@pytest.mark.slow
def test_every_figure_is_also_a_png_file(report_page):
    folder = report_page.parent
    for name in ("history", "confusion_matrix", "saliency_saliency", "saliency_integrated_gradients",
                 "saliency_gradcam", "filters", "feature_maps"):
        assert (folder / f"{name}.png").read_bytes().startswith(PNG_MAGIC), name


@pytest.mark.slow
def test_report_states_the_run_its_model_and_its_errors(report_page, run_dir):
    text = report_page.read_text(encoding="utf-8")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"{metrics['best_val_acc']:.2%}" in text
    # One table row per layer of the model: the narrow-ish test net has 7 conv layers.
    assert len(re.findall(r"<td>Conv2d</td>", text)) == 7
    config = text.split('id="config"')[1].split("</section>")[0]
    assert "format: synthetic" in config and "channels:" in config  # the config, as the run saved it
    confusion = text.split('id="confusion"')[1].split("</section>")[0]
    assert re.search(r"is mistaken for \w+ in \d+% of \w+ images \(\d+ of \d+\)", confusion) or \
        "No image was misclassified" in confusion


@pytest.mark.slow
def test_history_is_read_per_epoch_from_the_event_files(run_dir):
    history = read_history(run_dir / "tensorboard")
    assert set(history) == {"acc/train", "acc/val", "loss/train", "loss/val"}
    assert [epoch for epoch, _ in history["acc/val"]] == [0, 1]
    assert all(0.0 <= value <= 1.0 for _, value in history["acc/val"])


# ---------------------------------------------------------------------------------- refusals
def fake_run(path: Path, status: str | None, error: str | None = None) -> Path:
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "config.yaml").write_text("data:\n  source: synthetic\npaths:\n  output_dir: x\n")
    if status is not None:
        (path / "metrics.json").write_text(json.dumps({"status": status, "error": error}))
    return path


def test_a_copied_run_reports_on_its_own_checkpoint(run_dir, tmp_path):
    import shutil

    from fer_lightning.reporting.run_report import run_subject

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    # metrics.json still names the original's best.ckpt: the copy must not use it.
    assert str(run_dir) in (copy / "metrics.json").read_text()
    cfg = OmegaConf.create({"checkpoint": "best", "run_dir": str(copy), "output_dir": None})
    subject = run_subject(open_finished_run(copy), cfg)
    assert Path(subject.checkpoint) == copy / "checkpoints" / "best.ckpt"


@pytest.mark.parametrize(
    ("status", "error", "expected"),
    [
        (None, None, "has not trained yet"),
        ("running", None, "is still running, or was killed"),
        ("failed", "train loss is nan", "failed (train loss is nan)"),
    ],
)
def test_unfinished_runs_are_refused_in_one_line(tmp_path, status, error, expected):
    run = fake_run(tmp_path / "run", status, error)
    with pytest.raises(FerError, match=re.escape(expected)) as caught:
        open_finished_run(run)
    assert "\n" not in str(caught.value)


def test_directories_that_are_not_runs_are_refused(tmp_path):
    with pytest.raises(FerError, match="no such directory"):
        open_finished_run(tmp_path / "missing")
    fake_run(tmp_path / "sweep" / "job-1", "completed")
    with pytest.raises(FerError, match=r"not a run directory .*runs below it include .*job-1"):
        open_finished_run(tmp_path / "sweep")


def test_a_finished_run_without_checkpoints_is_a_checkpoint_error(tmp_path):
    run = open_finished_run(fake_run(tmp_path / "run", "completed"))
    assert OmegaConf.select(run.config, "paths.output_dir") == str(tmp_path / "run")  # not the saved "x"
    with pytest.raises(FerError, match="no best checkpoint"):
        run.checkpoint("best")


def test_what_to_report_on_is_required(tmp_path):
    cfg = compose_config([], config_name="report", output_dir=tmp_path)
    with pytest.raises(FerError, match="ckpt_path must be set"):
        build_report(cfg)


def test_a_checkpoint_file_inside_a_run_names_the_run_and_the_checkpoint(tmp_path):
    from fer_lightning.reporting.run_report import report_target

    run = fake_run(tmp_path / "run", "completed")
    last = run / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True, exist_ok=True)
    last.write_bytes(b"")
    cfg = compose_config([f"ckpt_path={last}"], config_name="report", output_dir=tmp_path)
    report_target(cfg)
    assert (cfg.run_dir, cfg.checkpoint) == (str(run), str(last))
    older = compose_config([f"run_dir={run}"], config_name="report", output_dir=tmp_path)  # the older spelling
    report_target(older)
    assert (older.run_dir, older.checkpoint) == (str(run), "best")
    both = compose_config([f"run_dir={run}", "ckpt_path=pretrained"], config_name="report", output_dir=tmp_path)
    with pytest.raises(FerError, match="name two models"):
        report_target(both)


def test_the_command_reports_errors_in_one_line_with_status_2(tmp_path, capsys):
    run = fake_run(tmp_path / "run", "running")
    cfg = compose_config([f"run_dir={run}"], config_name="report", output_dir=tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        command(report)(cfg)
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "not a finished run" in lines[0]


def test_paths_with_override_syntax_are_quoted_for_hydra():
    assert quote_path_overrides(["run_dir=out/a=1,b=2", "split=val", "checkpoint=/x/it's.ckpt"]) == [
        "run_dir='out/a=1,b=2'", "split=val", r"checkpoint='/x/it\'s.ckpt'",
    ]
    assert quote_path_overrides(["run_dir='already'"]) == ["run_dir='already'"]


# ------------------------------------------------------------------------------------ writing
def test_page_can_link_its_png_files_instead_of_embedding_them(tmp_path):
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
    )
    sections = [Section("a", "A <b>", [paragraph("x < y"), ReportFigure("one.png", png, "caption")])]
    page = write_report(tmp_path / "report", "title", "subtitle", sections, embed=False)
    parts = parse(page)
    assert parts.images == ["one.png"] and (page.parent / "one.png").read_bytes() == png
    assert "A &lt;b&gt;" in page.read_text() and "x &lt; y" in page.read_text()
