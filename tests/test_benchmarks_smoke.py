"""`make bench` in its --quick dry run: every figure is measured, saved and printed."""

from __future__ import annotations

import json
import math

import pytest
import torch

from benchmarks.run_all import FIGURES, main


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_benchmark_writes_and_prints_every_figure(tmp_path, capsys):
    threads = torch.get_num_threads()
    output = tmp_path / "bench.json"
    main(["--quick", "--output", str(output)])
    document = json.loads(output.read_text())
    printed = capsys.readouterr().out

    assert torch.get_num_threads() == threads  # the dry run's single thread does not leak
    assert set(document["figures"]) == set(FIGURES)
    for name, fig in document["figures"].items():
        assert fig["rows"], name
        assert fig["title"] in printed, name
    meta = document["meta"]
    assert len(meta["load_before"]) == 3 and len(meta["load_after"]) == 3
    assert meta["sizes"]["quick"] and positive(meta["cpu"]["peak_gflops_fp32"])

    figures = document["figures"]
    training = figures["train_throughput"]["summary"]
    assert positive(training["ratio_project_over_plain"])
    assert all(positive(rate) for side in ("project", "plain") for rate in training["rates"][side])

    detectors = {row["detector"]: row for row in figures["face_detectors"]["rows"]}
    assert {"yunet", "haar", "hog", "cnn"} <= set(detectors)  # and YuNet's other size, where it is at hand
    assert all(0.0 <= row["detection_rate"] <= 1.0 and positive(row["ms_per_image"]) for row in detectors.values())

    loaders = {(row["preset"], row["workers"]) for row in figures["data_loading"]["rows"]
               if row["where"] == "loader alone"}
    assert {preset for preset, _ in loaders} == {"none", "light", "strong"}

    marks = figures["startup"]["summary"]["marks"]
    # The phases of start-up happen in this order, in one real `python -m fer_lightning.train` process.
    order = ["callbacks_built", "fit_start", "first_step_start", "first_step_end", "process_exit"]
    assert all(0 < marks[a] <= marks[b] for a, b in zip(order, order[1:]))
    assert "torch" in figures["startup"]["summary"]["import_seconds_by_package"]
    # The rerun found the faces the first run cached (the same command, a second time).
    assert 0 < figures["startup"]["summary"]["seconds_to_first_step_warm"]

    runtimes = {row["runtime"]: row for row in figures["inference"]["rows"]}
    assert set(runtimes) == {"PyTorch eager", "ONNX Runtime"}
    assert all(positive(row["images_per_s"]) and positive(row["latency_ms"]) for row in runtimes.values())
    assert figures["inference"]["summary"]["max_abs_difference"] < 1e-4

    members = [row["members"] for row in figures["ensemble_eval"]["rows"]]
    assert members == [1, 2, 4]
    scaling = figures["scaling"]["rows"]
    assert all(positive(row["train_epoch_s"]) for row in scaling)
    sizes = sorted((row["train_images"], row["epoch_s"]) for row in scaling if "x FER2013" in row["data"])
    assert sizes[-1][1] > sizes[0][1]  # a larger data set takes longer per epoch
