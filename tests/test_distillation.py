"""Knowledge distillation: the loss terms checked by hand, a student that learns what its teacher
says, and a training run on synthetic faces with an ensemble file as teacher."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from fer_lightning.checkpoints.ensemble_file import SoftmaxAverage
from fer_lightning.config.checks import distill_settings
from fer_lightning.errors import ConfigError
from fer_lightning.models.classifier import ExpressionClassifier
from fer_lightning.models.distillation import distillation_loss
from tests.helpers import tensorboard_tags

TINY = {"net": {"channels": [4, 4, 8, 8, 8, 8, 8], "hidden": [16, 8]}}


def test_the_distillation_term_is_t_squared_times_kl_of_the_softened_distributions():
    student = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    temperature = 3.0
    soft_student = np.exp(student.numpy() / temperature)
    soft_student /= soft_student.sum(axis=1, keepdims=True)
    by_hand = temperature**2 * np.mean(np.sum(teacher.numpy() * (np.log(teacher.numpy()) - np.log(soft_student)), axis=1))
    assert distillation_loss(student, teacher, temperature).item() == pytest.approx(by_hand, rel=1e-5)
    assert distillation_loss(torch.log(teacher) * temperature, teacher, temperature).item() == pytest.approx(0, abs=1e-6)


def test_the_student_s_loss_mixes_labels_and_teacher_by_the_weight():
    torch.manual_seed(0)
    student = ExpressionClassifier(**TINY, dropout=0.0, distill={"temperature": 2.0, "weight": 0.25}).eval()
    teacher = SoftmaxAverage([ExpressionClassifier(**TINY, dropout=0.0).net.eval()])
    student.attach_teacher(teacher)
    student.log = lambda *args, **kwargs: None  # no trainer here to log to
    images, target = torch.rand(6, 1, 48, 48), torch.randint(0, 7, (6,))
    logits = student(images)
    hard = student.loss(logits, target)
    with torch.no_grad():
        soft = distillation_loss(logits, teacher.softened(images, 2.0), 2.0)
    assert student.with_teacher(hard, logits, images).item() == pytest.approx((0.75 * hard + 0.25 * soft).item(), rel=1e-5)
    assert "_teacher" not in dict(student.named_children()) and not any("teacher" in k for k in student.state_dict())


def test_a_student_learns_what_its_teacher_says():
    torch.manual_seed(1)
    student = ExpressionClassifier(**TINY, dropout=0.0).net
    says_surprise = torch.full((32, 7), 0.02).index_fill_(1, torch.tensor([5]), 0.88)
    optimizer = torch.optim.Adam(student.parameters(), lr=0.01)
    images = torch.rand(32, 1, 48, 48)
    for _ in range(40):
        optimizer.zero_grad()
        distillation_loss(student(images), says_surprise, temperature=4.0).backward()
        optimizer.step()
    assert (student.eval()(images).argmax(1) == 5).float().mean() > 0.9


@pytest.mark.parametrize(("settings", "words"), [
    ({"temperature": 0}, "model.distill.temperature=0 is not allowed: a number > 0"),
    ({"weight": 1.5}, "model.distill.weight=1.5 is not allowed: a number in [0, 1]"),
    ({"teacher": "/nonexistent/ensemble.ckpt"}, "model.distill.teacher=/nonexistent/ensemble.ckpt: no such file"),
    ({"teachr": "x"}, "model.distill.teachr: not a setting"),
])
def test_impossible_distillation_settings_are_one_line(settings, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        distill_settings(settings, teacher_must_exist=True)


@pytest.mark.slow
def test_a_run_learns_from_an_ensemble_file_and_its_checkpoint_loads_without_the_teacher(train_config, tmp_path,
                                                                                         caplog):
    from fer_lightning.checkpoints.ensemble_file import ensemble_artifact, save_ensemble
    from fer_lightning.checkpoints.model_file import load_classifier
    from fer_lightning.cli.train import train_command

    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = ExpressionClassifier(**TINY)
        members.append({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()})
    teacher = tmp_path / "teacher.ckpt"
    save_ensemble(teacher, ensemble_artifact(members, [0.5, 0.5], "top_k"))
    with caplog.at_level(logging.INFO):
        train_command(train_config(f"model.distill.teacher={teacher}", "model.distill.temperature=3", "test=false"))
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text())["status"] == "completed"
    assert f"learning from the teacher {teacher} (ensemble of 2 member(s))" in caplog.text
    assert "loss/distill" in tensorboard_tags(run / "tensorboard")["scalars"]
    student = load_classifier(run / "checkpoints" / "best.ckpt")  # records its teacher, does not need it
    assert student.hparams.distill == {"teacher": str(teacher), "temperature": 3.0, "weight": 0.7}
    assert student._teacher is None
