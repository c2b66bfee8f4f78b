"""Ensemble files are named by how their members were chosen, so a greedy ensemble and a top-k one
of the same sweep live side by side, and the command says where each went."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fer_lightning.cli.ensemble import main
from fer_lightning.sweeps.ensemble import build_ensemble
from tests.test_ensemble import fake_sweep


def stored(path: Path) -> tuple[str, int]:
    """(selection, member count) as the ensemble file itself records them."""
    raw = torch.load(path, weights_only=True)
    return raw["fer_lightning"]["selection"], len(raw["members"])


def test_greedy_and_top_k_ensembles_of_one_sweep_keep_their_own_files(tmp_path):
    sweep = fake_sweep(tmp_path, val_accs=[0.9, 0.8, 0.7])
    top_k = build_ensemble(sweep, top_k=2)
    greedy = build_ensemble(sweep, top_k=3, greedy=True)

    assert top_k["artifact"] != greedy["artifact"] and top_k["summary"] != greedy["summary"]
    # Building the greedy one left the top-k files as they were.
    assert stored(Path(top_k["artifact"])) == ("top_k", 2)
    assert json.loads(Path(top_k["summary"]).read_text()) == top_k
    assert stored(Path(greedy["artifact"])) == ("greedy", len(greedy["members"]))
    assert json.loads(Path(greedy["summary"]).read_text()) == greedy
    # Each is in the sweep, its summary a .json of the same name beside it.
    for document in (top_k, greedy):
        artifact, summary = Path(document["artifact"]), Path(document["summary"])
        assert artifact.parent == sweep and summary == artifact.with_suffix(".json")
    assert "greedy" in Path(greedy["artifact"]).name and "greedy" not in Path(top_k["artifact"]).name


def test_output_names_the_file_and_its_summary_goes_beside_it(tmp_path, capsys):
    sweep = fake_sweep(tmp_path, val_accs=[0.9, 0.8])
    default = build_ensemble(sweep, top_k=1)
    before = Path(default["summary"]).read_text()
    chosen = tmp_path / "elsewhere" / "mine.ckpt"
    chosen.parent.mkdir()

    main([str(sweep), "--top-k", "2", "--output", str(chosen)])

    printed = capsys.readouterr().out
    summary = chosen.with_suffix(".json")
    assert stored(chosen) == ("top_k", 2)
    assert json.loads(summary.read_text())["artifact"] == str(chosen)
    assert Path(default["summary"]).read_text() == before  # the sweep's own summary untouched
    assert str(chosen) in printed and str(summary) in printed


def test_command_prints_where_the_greedy_ensemble_went(tmp_path, capsys):
    sweep = fake_sweep(tmp_path, val_accs=[0.9, 0.8])
    main([str(sweep), "--greedy"])
    printed = capsys.readouterr().out
    written = sorted(p.name for p in sweep.iterdir() if p.suffix in (".ckpt", ".json"))
    assert len(written) == 2 and all(name in printed for name in written)
    assert not (sweep / "ensemble.ckpt").exists()  # the top-k name stays free for a top-k ensemble


def test_an_output_named_like_its_summary_is_refused_in_one_line(tmp_path, capsys):
    sweep = fake_sweep(tmp_path, val_accs=[0.9])
    with pytest.raises(SystemExit) as exit_info:
        main([str(sweep), "--output", str(tmp_path / "ensemble.json")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and "ensemble.json" in error
