"""LeNet-5 trained by the project: numpy backprop, data loader and split, float graph, int8 fixture."""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from aras.errors import ArasError
from aras.models import lenet5 as L

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "train_lenet5.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("train_lenet5", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


T = _load_script()


# ---------------------------------------------------------------------- backprop
def test_backprop_matches_numeric_gradient():
    """Analytic gradients of a small random float64 LeNet equal central differences."""
    rng = np.random.default_rng(1)
    p = T.init_params(rng, widths=(2, 3, 5, 4), dtype=np.float64)
    for k in p:  # random biases so no gradient is trivially structured
        if k.endswith(".bias"):
            p[k] = rng.standard_normal(p[k].shape) * 0.1
    x = rng.random((3, 1, 28, 28))
    y = np.array([1, 7, 3])
    _, grads = T.loss_and_grads(p, x, y)
    h = 1e-6
    for k in p:
        num = np.zeros_like(p[k])
        for i in np.ndindex(p[k].shape):
            old = p[k][i]
            p[k][i] = old + h
            lp, _ = T.loss_and_grads(p, x, y)
            p[k][i] = old - h
            lm, _ = T.loss_and_grads(p, x, y)
            p[k][i] = old
            num[i] = (lp - lm) / (2 * h)
        assert np.abs(num).max() > 1e-3, k  # the check is not vacuous
        np.testing.assert_allclose(grads[k], num, rtol=0, atol=1e-7 * np.abs(num).max(), err_msg=k)


def test_pool_backward_routes_to_the_max():
    x = np.array([[[[1.0, 5.0, 2.0, 2.0], [3.0, 4.0, 2.0, 2.0]]]])  # second window ties: first wins
    y, idx = T.pool_forward(x)
    np.testing.assert_array_equal(y, [[[[5.0, 2.0]]]])
    dx = T.pool_backward(np.array([[[[10.0, 20.0]]]]), idx)
    np.testing.assert_array_equal(dx, [[[[0, 10, 20, 0], [0, 0, 0, 0]]]])


def test_training_forward_equals_float_graph():
    """The hand-written training network and aras' FloatGraph compute the same logits."""
    rng = np.random.default_rng(2)
    p = T.init_params(rng, dtype=np.float64)
    x = rng.random((4, 1, 28, 28))
    logits, _ = T.forward(p, x)
    g = L.float_graph(p)
    assert g.weights == "real" and g.shapes["flatten"] == (256,) and g.shapes[L.OUTPUT_NAME] == (10,)
    np.testing.assert_allclose(g.run(x)[L.OUTPUT_NAME], logits, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- loader, split, weights
def _csv_gz(rows: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savetxt(buf, rows, fmt="%d", delimiter=",")
    return gzip.compress(buf.getvalue())


def test_parse_rejects_bad_data():
    with pytest.raises(ArasError, match="mnist_5k.csv.gz: not a gzip CSV"):
        L.parse_mnist5k(b"not gzip")
    with pytest.raises(ArasError, match="expected 5000 rows"):
        L.parse_mnist5k(_csv_gz(np.zeros((3, 785), dtype=int)))
    rows = np.zeros((5000, 785), dtype=int)
    rows[7, 784] = 10
    with pytest.raises(ArasError, match="labels outside 0..9"):
        L.parse_mnist5k(_csv_gz(rows))
    rows[7, 784], rows[7, 3] = 0, 256
    with pytest.raises(ArasError, match="pixel values outside"):
        L.parse_mnist5k(_csv_gz(rows))


def test_split_is_per_class_and_interleaved():
    labels = np.repeat(np.arange(10), 500)  # the file's order: sorted by class
    tr, te = L.split_indices(labels)
    assert len(tr) == 4000 and len(te) == 1000 and not set(tr) & set(te)
    np.testing.assert_array_equal(np.bincount(labels[tr]), [400] * 10)
    np.testing.assert_array_equal(labels[te[:20]], list(range(10)) * 2)
    assert te[0] == 400 and te[1] == 900 and te[-1] == 4999
    with pytest.raises(ArasError, match="500 digits of each class"):
        L.split_indices(labels[1:])


def test_float_weights_fixture(tmp_path):
    w = L.load_weights()
    assert {k: a.shape for k, a in w.items()} == L.PARAM_SHAPES
    assert L.float_graph().weights == "real"
    bad = tmp_path / "w.npz"
    np.savez(bad, **{k: a for k, a in w.items() if k != "fc2.bias"})
    with pytest.raises(ArasError, match=r"w.npz: missing array 'fc2.bias'"):
        L.float_graph(bad)
    np.savez(bad, **{**w, "fc2.bias": np.zeros(3)})
    with pytest.raises(ArasError, match=r"'fc2.bias' must be a float array of shape \(84,\)"):
        L.float_graph(bad)


# ---------------------------------------------------------------------- committed fixture
def _metrics() -> dict:
    return json.loads((L.FIXTURE_DIR / "metrics.json").read_text())


def test_fixture_is_small_and_consistent():
    from aras.trace import Trace

    files = {f.name: f.stat().st_size for f in L.FIXTURE_DIR.iterdir()}
    assert {"trace.json", "arrays.npz", "test_labels.npy", "float_weights.npz"} <= set(files)
    assert sum(files.values()) < 200 * 1024
    tr = Trace.load(L.FIXTURE_DIR)
    assert tr.samples is None and tr.weights == "real" and tr.outputs == [L.OUTPUT_NAME]
    assert [ly.name for ly in tr.weight_layers()] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    labels = np.load(L.FIXTURE_DIR / "test_labels.npy")
    assert labels.shape == (1000,) and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels[:20], list(range(10)) * 2)
    # Every int8 weight is its float weight rounded on the layer's per-channel grid.
    w = L.load_weights()
    for ly in tr.weight_layers():
        s = ly.arrays["weight_scale"].astype(np.float64).reshape((-1,) + (1,) * (w[f"{ly.name}.weight"].ndim - 1))
        err = np.abs(ly.arrays["weight"] * s - w[f"{ly.name}.weight"])
        assert (err <= s * 0.5001).all(), ly.name
    m = _metrics()
    assert m["float_test_accuracy"] >= 0.95 and abs(m["int8_test_accuracy"] - m["float_test_accuracy"]) <= 0.01


@pytest.fixture(scope="module")
def split():
    return L.mnist5k_split()


@pytest.mark.network
def test_mnist5k_layout():
    x, y = L.mnist5k()
    assert x.shape == (5000, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y), [500] * 10)
    pix = np.rint(x.astype(np.float64) * 255).astype(np.int64)
    assert pix[0].sum() == 31095 and pix.sum() == 131267102  # known answers from the wheel's CSV


@pytest.mark.network
def test_float_accuracy(split):
    _, _, x_test, y_test = split
    acc = np.mean(L.float_graph().run(x_test)[L.OUTPUT_NAME].argmax(1) == y_test)
    assert acc >= 0.95
    assert acc == pytest.approx(_metrics()["float_test_accuracy"], abs=1e-9)


@pytest.mark.network
def test_int8_golden_model_accuracy(split):
    from aras.config import preset
    from sim_models import functional

    _, _, x_test, y_test = split
    tr = L.load_trace()
    assert tr.samples.dtype == np.int8 and tr.samples.shape == (1000, 1, 28, 28)
    # Input scale 1/255, zero point -128: every pixel is exactly its 0..255 value - 128.
    np.testing.assert_array_equal(tr.samples.astype(np.int64) + 128, np.rint(x_test * 255).astype(np.int64))
    np.testing.assert_array_equal(tr.labels, y_test)
    logits = functional.run(tr, preset("paper"), tr.samples)[L.OUTPUT_NAME]
    int8_acc = np.mean(np.asarray(logits).argmax(1) == y_test)
    float_acc = np.mean(L.float_graph().run(x_test)[L.OUTPUT_NAME].argmax(1) == y_test)
    assert abs(int8_acc - float_acc) <= 0.01  # requirement: int8 within 1 point of float
    assert int8_acc == pytest.approx(_metrics()["int8_test_accuracy"], abs=1e-9)


@pytest.mark.network
def test_load_trace_rejects_other_labels(tmp_path):
    d = tmp_path / "lenet5"
    shutil.copytree(L.FIXTURE_DIR, d)
    labels = np.load(d / "test_labels.npy")
    np.save(d / "test_labels.npy", np.roll(labels, 1))
    with pytest.raises(ArasError, match="test_labels.npy: the fixture's 1000 test labels differ"):
        L.load_trace(d)
