"""Inference backends: ONNX Runtime gives PyTorch's probabilities, runs without importing torch once
its graph is cached, the shipped int8 graphs keep the accuracy, and threads follow the batch size."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from fer_lightning import Recognizer
from fer_lightning.data.synthetic import generate_synthetic_faces
from fer_lightning.errors import CheckpointError, ConfigError
from fer_lightning.inference.threads import threads_for, torch_threads, usable_cores

pytest.importorskip("onnxruntime")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def faces():
    return generate_synthetic_faces(300, seed=11)


@pytest.mark.parametrize("tta", ["none", "flip"])
def test_onnxruntime_gives_the_probabilities_of_torch(cache, faces, tta):
    torch_path = Recognizer.pretrained(tta=tta, detect_faces=False)
    onnx_path = Recognizer.pretrained(tta=tta, detect_faces=False, backend="onnxruntime")
    assert onnx_path.backend == "onnxruntime" and onnx_path.class_names == torch_path.class_names
    for count in (1, 7, 300):  # one face, a frame's few, a batch across threads
        expected = torch_path.predict_faces(faces.images[:count])
        np.testing.assert_allclose(onnx_path.predict_faces(faces.images[:count]), expected, atol=1e-5)
    (graph,) = (cache / "onnx").glob(f"*-{tta}-v*.onnx")
    stamp = graph.stat().st_mtime_ns
    Recognizer.pretrained(tta=tta, backend="onnxruntime").predict_faces(faces.images[:2])
    assert graph.stat().st_mtime_ns == stamp  # exported once, then read from the cache


def test_a_cached_graph_answers_in_a_process_that_never_imports_torch(cache, faces, tmp_path):
    Recognizer.pretrained(backend="onnxruntime", tta="flip")  # exports into the cache
    np.save(tmp_path / "faces.npy", faces.images[:5])
    script = (
        "import sys, numpy as np\n"
        "from fer_lightning import Recognizer\n"
        f"r = Recognizer.pretrained(backend='onnxruntime', tta='flip', detect_faces=False)\n"
        f"p = r.predict_faces(np.load({str(tmp_path / 'faces.npy')!r}))\n"
        "print(p.shape, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "FER_CACHE": str(cache)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["(5,", "7)", "False"]


def test_the_shipped_int8_graphs_keep_the_accuracy_on_synthetic_faces(faces):
    for tta in ("none", "flip"):
        fp32 = Recognizer.pretrained(backend="onnxruntime", tta=tta).predict_faces(faces.images).argmax(1)
        int8 = Recognizer.pretrained(backend="onnxruntime", precision="int8", tta=tta).predict_faces(faces.images)
        assert abs(np.mean(int8.argmax(1) == faces.labels) - np.mean(fp32 == faces.labels)) <= 0.02
        assert np.mean(int8.argmax(1) == fp32) >= 0.9  # faces unlike FER2013: fewer sure answers
        np.testing.assert_allclose(int8.sum(axis=1), 1.0, atol=1e-4)


def test_quantising_keeps_a_networks_answers(tmp_path, faces):
    from fer_lightning.inference.export import export_onnx
    from fer_lightning.inference.onnx_backend import OnnxGraph
    from fer_lightning.inference.quantize import quantize_int8
    from fer_lightning.models.architectures import build_network

    torch.manual_seed(0)
    network = torch.nn.Sequential(build_network({"net": {"architecture": "separable"}, "dropout": 0.0}), torch.nn.Softmax(1))
    fp32 = export_onnx(network.eval(), tmp_path / "fp32.onnx", class_names=tuple("abcdefg"))
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx", faces.images[:128])
    assert int8.stat().st_size < fp32.stat().st_size / 2
    a, b = OnnxGraph(fp32).probabilities(faces.images), OnnxGraph(int8).probabilities(faces.images)
    assert np.abs(a - b).max() < 0.1 and np.mean(a.argmax(1) == b.argmax(1)) >= 0.9


def test_int8_is_refused_in_one_line_where_there_is_none(tmp_path):
    with pytest.raises(ConfigError, match="precision='int8' is not allowed: fp32 with backend=torch"):
        Recognizer.pretrained(precision="int8")
    with pytest.raises(CheckpointError, match="only shipped models carry int8 graphs"):
        Recognizer.from_checkpoint(tmp_path / "model.ckpt", backend="onnxruntime", precision="int8")
    with pytest.raises(ConfigError, match="tta='ten_crop' is not allowed: none or flip with backend=onnxruntime"):
        Recognizer.pretrained(backend="onnxruntime", tta="ten_crop")
    with pytest.raises(ConfigError, match="backend=onnxruntime runs an ONNX graph: explaining"):
        Recognizer.pretrained(backend="onnxruntime").predictor  # noqa: B018


# ----------------------------------------------------------------------------------- threads
def test_small_batches_run_on_one_thread_and_large_ones_on_every_core():
    assert threads_for(1) == threads_for(32) == 1
    assert threads_for(33) == threads_for(256) == usable_cores()
    assert threads_for(1, 2) == threads_for(500, 2) == 2
    with pytest.raises(ConfigError, match="threads='many' is not allowed: auto, or a whole number"):
        threads_for(1, "many")
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_the_recognizer_uses_the_threads_its_batches_call_for(cache, faces, monkeypatch):
    torch_path = Recognizer.pretrained(tta="none", detect_faces=False)
    real, seen = torch.set_num_threads, []
    before = torch.get_num_threads()
    real(2)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n)))
    try:
        torch_path.predict_faces(faces.images[:1])
        assert seen == [1, 2]  # one face on one thread, then the process's count again
    finally:
        real(before)
    onnx_path = Recognizer.pretrained(tta="none", backend="onnxruntime", threads="auto")
    onnx_path.predict_faces(faces.images[:3])
    onnx_path.predict_faces(faces.images[:100])
    assert set(onnx_path.model.graph("none")._sessions) == {1, usable_cores()}
    pinned = Recognizer.pretrained(tta="none", backend="onnxruntime", threads=1)
    pinned.predict_faces(faces.images[:100])
    assert set(pinned.model.graph("none")._sessions) == {1}
