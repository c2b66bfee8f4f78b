"""Run directory names and one-line errors keep what the user typed intact."""

from __future__ import annotations

from omegaconf import OmegaConf

from fer_lightning.cli.entry import one_line
from fer_lightning.config.resolvers import MAX_KEY_LENGTH, NEUTRAL_KEYS, run_key
from tests.conftest import compose_config


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
