"""Run directory names and one-line errors keep what the user typed intact."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from fer_lightning.cli.entry import one_line
from fer_lightning.config.resolvers import MAX_KEY_LENGTH, NEUTRAL_KEYS, job_key, run_key
from tests.conftest import compose_config
from tests.helpers import run_cli


def test_a_long_run_name_is_cut_between_overrides_never_inside_a_value():
    overrides = ["data.synthetic.train=448", "data.synthetic.val=300", "model/width=narrow", "seed=7",
                 "trainer.max_epochs=1", "model.label_smoothing=0.1"]
    key = run_key(overrides)
    assert len(key) <= MAX_KEY_LENGTH
    kept, digest = key.rsplit("-", 1)
    assert len(digest) == 8
    assert all(item in sorted(overrides) for item in kept.split(","))  # whole overrides only
    assert run_key(overrides[:-1] + ["model.label_smoothing=0.2"]) != key  # the digest tells them apart


def test_a_run_whose_first_override_is_too_long_is_still_named_after_it():
    long_path = "init_from=/home/me/experiments/outputs/runs/cpu_hour_narrow/augmentation=crop/checkpoints/best.ckpt"
    key = run_key([long_path, "trainer.max_epochs=3"])
    assert len(key) <= MAX_KEY_LENGTH and key.startswith("init_from=") and "best.ckpt" in key
    assert key != run_key([long_path.replace("crop", "light"), "trainer.max_epochs=3"])


def test_hydra_and_the_sweep_names_leave_out_the_same_neutral_keys(tmp_path):
    cfg = compose_config([], output_dir=tmp_path)
    excluded = OmegaConf.to_container(cfg.hydra.job.config.override_dirname, resolve=True)["exclude_keys"]
    assert excluded == list(NEUTRAL_KEYS)
    assert run_key(["model.dropout=0.3", "data.num_workers=4", "data.cache_dir=/x"]) == "model.dropout=0.3"


def test_one_line_joins_lines_and_keeps_paths_and_ellipses():
    message = "data.path=../shared/datasets/f.csv.gz: no such file or folder...\n  see the README\n"
    assert one_line(message) == "data.path=../shared/datasets/f.csv.gz: no such file or folder... see the README"
    assert one_line("Could not load 'x':\n\tmissing\n\nConfig search path:\n\tpkg://a") == "Could not load 'x': missing"


def test_tables_keep_long_lines_whole_when_piped(capsys):
    from rich.table import Table

    from fer_lightning.terminal import console

    long_run = "model.dropout=0.3,model/width=wide,data.batch_size=128,trainer.max_epochs=250,augmentation=strong,seed=3"
    table = Table("run", "acc")
    table.add_row(long_run, "0.6712")
    console().print(table)  # stdout is captured here, as in a pipe
    assert any(long_run in line and "0.6712" in line for line in capsys.readouterr().out.splitlines())


def test_a_sweep_job_is_named_by_what_differs_between_the_jobs(tmp_path):
    typed = "model.dropout=0.3,0.5\ncallbacks=none\nprint_config=false"
    # Hydra writes print_config=False for the typed false: still the same, shared override.
    assert job_key(["model.dropout=0.3", "callbacks=none", "print_config=False"], typed) == "model.dropout=0.3"
    assert job_key(["model/width=narrow", "seed=1"], "model/width=glob(n*)\nseed=1") == "model-width=narrow"
    # Added by a sweeper (optuna's parameters): not typed, so they differ.
    assert job_key(["model.dropout=0.41", "seed=1"], "seed=1\nhparams_search=optuna") == "model.dropout=0.41"
    assert job_key(["callbacks=none", "seed=1"], "callbacks=none\nseed=1") == "default"  # a sweep of one
    # Nothing known of the command line: all of the job's overrides.
    assert job_key(["callbacks=none", "seed=1"], "") == "callbacks=none,seed=1"
    # A job directory of the earlier naming (a sweep of one by all its overrides) is still the job's.
    (tmp_path / "callbacks=none,seed=1").mkdir()
    assert job_key(["callbacks=none", "seed=1"], "callbacks=none\nseed=1", str(tmp_path)) == "callbacks=none,seed=1"
    assert job_key(["model.dropout=0.3"], "model.dropout=0.3,0.5", str(tmp_path)) == "model.dropout=0.3"


@pytest.mark.slow
def test_a_finished_job_under_its_earlier_name_is_skipped(tmp_path):
    overrides = ["callbacks=none", "logger=none", "trainer.max_epochs=1", "model/width=narrow",
                 "data.synthetic.train=64", "data.synthetic.val=32", "data.synthetic.test=0"]
    args = ["-m", *overrides, f"paths.log_dir={tmp_path}"]
    first = run_cli("fer_lightning.train", *args)
    assert first.returncode == 0, first.stderr[-3000:]
    (job_dir,) = [p.parent for p in tmp_path.glob("multiruns/*/*/*/metrics.json")]
    assert job_dir.name == "default"
    earlier = job_dir.with_name(run_key(overrides))  # the earlier naming: a sweep of one by all its overrides
    job_dir.rename(earlier)
    again = run_cli("fer_lightning.train", *args)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "0 completed, 0 failed, 1 skipped" in again.stdout
    assert not job_dir.exists() and "already finished" in (earlier / "train.log").read_text()
