"""LeNet-5 trained by the project: numpy backprop, data loader and split, float graph, int8 fixture."""

from __future__ import annotations

import gzip
import importlib.util
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
    return gzip.compress("\n".join(",".join(str(v) for v in r) for r in rows).encode())


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
