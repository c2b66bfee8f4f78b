"""Knowledge distillation (Hinton, Vinyals and Dean, 2015): a student learns from a teacher's class
probabilities softened by a temperature, beside the hard labels, on the very batch it trains on.

The teacher is a module whose ``softened(images, temperature)`` gives class probabilities (an
ensemble file or a checkpoint as checkpoints/predictor.py loads it: SoftmaxAverage). It runs in eval mode without
gradients, is never trained, and is no submodule of the student: it is not saved in its checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student_logits: torch.Tensor, teacher_probabilities: torch.Tensor,
                      temperature: float) -> torch.Tensor:
    """T² · KL(teacher_T ‖ student_T), averaged over the batch: the T² keeps its gradients on the scale
    of the hard-label loss whatever the temperature."""
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    return temperature**2 * F.kl_div(log_student, teacher_probabilities.float(), reduction="batchmean")


@torch.no_grad()  # not inference_mode: its tensors could not enter the student's autograd graph
def teacher_probabilities(teacher: torch.nn.Module, images: torch.Tensor, temperature: float) -> torch.Tensor:
    """The teacher's softened probabilities for a batch, on the batch's device."""
    parameter = next(teacher.parameters(), None)
    if parameter is not None and parameter.device != images.device:
        teacher.to(images.device)
    return teacher.softened(images, temperature).float()
