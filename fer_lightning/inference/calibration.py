"""Calibrated confidence: temperature scaling (one number T that divides the log-probabilities before
the softmax; T > 1 softens an over-confident model, T < 1 sharpens an under-confident one, and the
label never changes), fitted by the negative log-likelihood on labelled faces, and the expected
calibration error that says whether it helped.

T acts on the log of the probabilities a model gives (after test-time augmentation and, for an
ensemble, the average): for one network that is exactly its logits divided by T.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# Equal-width confidence bins of the calibration error and the reliability diagram (the usual 15).
BINS = 15
# The temperature is looked for in [1/20, 20]: a model outside that is not calibrated by one number.
LOG_T_RANGE = (-math.log(20.0), math.log(20.0))
TINY = 1e-12


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T) row by row; T = 1 gives the probabilities back unchanged."""
    if temperature == 1.0:
        return probabilities
    logits = np.log(np.clip(probabilities.astype(np.float64), TINY, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return (scaled / scaled.sum(axis=1, keepdims=True)).astype(probabilities.dtype)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    rows = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(rows, TINY, 1.0))))


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray, steps: int = 60) -> float:
    """The T that minimises the negative log-likelihood: a golden-section search over log T (the
    likelihood is unimodal in it), so no optimiser or extra dependency is needed."""
    labels = np.asarray(labels, dtype=np.int64)

    def loss(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probabilities, math.exp(log_t)), labels)

    low, high = LOG_T_RANGE
    ratio = (math.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    loss_a, loss_b = loss(a), loss(b)
    for _ in range(steps):
        if loss_a < loss_b:
            high, b, loss_b = b, a, loss_a
            a = high - ratio * (high - low)
            loss_a = loss(a)
        else:
            low, a, loss_a = a, b, loss_b
            b = low + ratio * (high - low)
            loss_b = loss(b)
    return float(math.exp((low + high) / 2))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, list[float]]:
    """Per confidence bin: the mean confidence, the accuracy and the share of faces in it."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    result: dict[str, list[float]] = {"confidence": [], "accuracy": [], "share": [], "lower": [], "upper": []}
    for index in range(bins):
        inside = which == index
        result["lower"].append(float(edges[index]))
        result["upper"].append(float(edges[index + 1]))
        result["share"].append(float(inside.mean()) if len(inside) else 0.0)
        result["confidence"].append(float(confidence[inside].mean()) if inside.any() else float("nan"))
        result["accuracy"].append(float(correct[inside].mean()) if inside.any() else float("nan"))
    return result


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """The share-weighted gap between confidence and accuracy over the confidence bins (torchmetrics'
    multiclass calibration error, L1: the same bins as :func:`reliability` draws)."""
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    return float(multiclass_calibration_error(torch.from_numpy(np.asarray(probabilities, dtype=np.float32)),
                                              torch.from_numpy(np.asarray(labels, dtype=np.int64)),
                                              num_classes=probabilities.shape[1], n_bins=bins, norm="l1"))


def calibration_report(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """The fitted temperature, the calibration error and likelihood before and after it, and the
    temperature to keep: the fitted one if it lowered the calibration error on these faces, else 1."""
    labels = np.asarray(labels, dtype=np.int64)
    temperature = fit_temperature(probabilities, labels)
    scaled = apply_temperature(probabilities, temperature)
    before, after = expected_calibration_error(probabilities, labels), expected_calibration_error(scaled, labels)
    return {
        "fitted_temperature": temperature,
        "ece_before": before,
        "ece_after": after,
        "nll_before": negative_log_likelihood(probabilities, labels),
        "nll_after": negative_log_likelihood(scaled, labels),
        "temperature": temperature if after < before else 1.0,
        "bins": BINS,
        "reliability_before": reliability(probabilities, labels),
        "reliability_after": reliability(scaled, labels),
    }
