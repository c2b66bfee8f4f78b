"""Accuracy against wall-clock minutes, read from the runs' own epoch lines."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from fer_lightning.cli.curves import main as curves_main
from fer_lightning.runs.saved_run import read_epoch_log

LINE = ("[2026-11-29 18:07:47,557][fer_lightning.callbacks.epoch_log][INFO] - epoch {epoch}/3: loss/train 1.7 "
        "acc/train 0.3 loss/val 1.5 acc/val {acc} acc_macro/val 0.38{best} | {seconds} s")


def write_run(path: Path, accuracies: list[float], seconds: list[int]) -> Path:
    path.mkdir(parents=True)
    lines = [LINE.format(epoch=i, acc=a, seconds=s, best=f" | best acc/val {a} at epoch {i}" if i else "")
             for i, (a, s) in enumerate(zip(accuracies, seconds))]
    # A run killed before epoch 0's checkpoint repeats that epoch when resumed: the later line counts.
    lines.insert(0, LINE.format(epoch=0, acc=0.1, seconds=999, best=""))
    lines.insert(1, "noise that is not an epoch line")
    (path / "train.log").write_text("\n".join(lines) + "\n")
    return path


def test_epoch_lines_give_times_and_values_and_a_repeated_epoch_keeps_its_last_line(tmp_path):
    run = write_run(tmp_path / "a=1,b=2", [0.40, 0.55, 0.60], [600, 1200, 1500])
    records = read_epoch_log(run)
    assert [r.epoch for r in records] == [0, 1, 2]
    assert records[0].values["acc/val"] == 0.4 and records[0].seconds == 600  # the later line of epoch 0
    assert records[2].values == {"loss/train": 1.7, "acc/train": 0.3, "loss/val": 1.5, "acc/val": 0.6,
                                 "acc_macro/val": 0.38}


def test_the_plot_names_each_run_and_what_it_reached_within_the_budget(tmp_path, capsys):
    fast = write_run(tmp_path / "runs" / "x=fast", [0.40, 0.55, 0.60], [600, 1200, 1500])  # 10, 30, 55 min
    slow = write_run(tmp_path / "runs" / "x=slow", [0.50, 0.70], [3000, 3000])  # 50, 100 min
    output = tmp_path / "plot.png"
    curves_main([f"{fast}=fast recipe", str(slow), "--output", str(output), "--target", "0.66"])
    image = cv2.imread(str(output))
    assert image is not None and image.shape[1] > 400
    printed = capsys.readouterr().out
    assert "fast recipe: 3 epochs, 55.0 min, best 60.00%; 60.00% within 60 min" in printed
    assert "x=slow: 2 epochs, 100.0 min, best 70.00%; 50.00% within 60 min" in printed


def test_a_run_without_epoch_lines_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "train.log").write_text("nothing yet\n")
    with pytest.raises(SystemExit):
        curves_main([str(tmp_path / "empty"), "--output", str(tmp_path / "p.png")])
    assert "no epoch line with acc/val" in capsys.readouterr().err


def test_median_epoch_time_puts_a_run_that_shared_the_machine_at_its_idle_pace(tmp_path, capsys):
    # Epoch 1 waited for another job: 1,200 s instead of about 600.
    run = write_run(tmp_path / "runs" / "x=shared", [0.40, 0.55, 0.60, 0.62], [600, 1200, 590, 610])
    output = tmp_path / "plot.png"
    curves_main([f"{run}=shared", "--output", str(output)])
    assert "shared: 4 epochs, 50.0 min" in capsys.readouterr().out
    curves_main([f"{run}=shared", "--output", str(output), "--epoch-time", "median"])
    assert "shared: 4 epochs, 40.3 min, best 62.00%; 62.00% within 60 min" in capsys.readouterr().out


def test_an_epoch_line_with_a_word_for_a_number_is_one_line(tmp_path):
    from fer_lightning.errors import FerError
    from fer_lightning.runs.saved_run import read_epoch_log

    (tmp_path / "train.log").write_text("[t][x][INFO] - epoch 0/4: loss/train abc acc/val 0.5 | 12.0 s\n")
    with pytest.raises(FerError, match="train.log: epoch 0's line holds a value that is no number"):
        read_epoch_log(tmp_path)


def test_a_huge_log_is_read_line_by_line(tmp_path):
    from fer_lightning.runs.saved_run import read_epoch_log

    log = tmp_path / "train.log"
    log.write_text("[t][x][INFO] - epoch 0/4: loss/train 1.5 acc/val 0.5 | 12.0 s\n")
    with log.open("r+b") as handle:
        handle.truncate(2 * 2**30)  # 2 GB of NUL bytes on paper: one endless line, nothing on disk
    (epoch,) = read_epoch_log(tmp_path)
    assert epoch.values == {"loss/train": 1.5, "acc/val": 0.5} and epoch.seconds == 12.0
