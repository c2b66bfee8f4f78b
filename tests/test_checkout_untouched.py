"""Tests leave the checkout as they found it: what commands write by default goes to $FER_OUTPUTS."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, run_cli


def checkout_files() -> set[str]:
    """Every path git sees in the checkout, ignored ones included (outputs/, caches), bytecode aside."""
    listed = subprocess.run(["git", "status", "--porcelain", "--ignored", "--untracked-files=all"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return {line for line in listed if "__pycache__" not in line and ".pytest_cache" not in line}


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_a_command_that_caches_writes_outside_the_checkout(tmp_path):
    before = checkout_files()
    # Synthetic faces are cached, and a shipped model's result goes to <outputs>/pretrained/ by default.
    result = run_cli("fer_lightning.evaluate", "ckpt_path=pretrained", "data=synthetic", "data.synthetic.train=64",
                     "data.synthetic.val=64", "data.synthetic.test=64", "tta=none", timeout=300)
    assert result.returncode == 0, result.stderr
    outputs = Path(os.environ["FER_OUTPUTS"])
    # Named after the model, so evaluating the other shipped model never replaces this result.
    assert list((outputs / "cache").glob("synthetic-*.npz")) and (outputs / "pretrained" / "fer2013-narrow-cnn_eval.json").is_file()
    assert checkout_files() == before
