"""Dead channels in the post-training quantizer, against an independent int8 reference.

A dead conv/linear channel (all-zero filter, or one whose folded BN gamma is 0 or ~1e-30) must output
exactly its requantized bias: weight row 0, weight scale 1, int32 bias round(b / s_in), then TFLite
requantization by s_in / s_out, zero point, clamp and the fused activation. The expected int8 values
are computed here from the float bias and the trace's scales and zero points with plain Python /
numpy (not with the project's quantization helpers). Every float -> int conversion that cannot be
done (huge bias, NaN weight, Inf bias, bad zero point) must be an ArasError naming layer and channel.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest

from aras.config import preset
from aras.errors import ArasError
from aras.graph import FloatGraph, FNode
from aras.importers.onnx_import import from_model
from aras.models import ModelSource
from aras.quantize import quantize
from sim_models.functional import run

try:  # verif/golden as a package or as a plain test directory
    from . import onnx_graphs as G
except ImportError:
    import onnx_graphs as G

CONV_DEAD = sorted(set(G.DEAD_CONV) | set(G.DEAD_BN))  # 1, 3, 5 all-zero; 6 gamma 0; 7 gamma 1e-30
FC_DEAD = sorted(G.DEAD_FC)


# ------------------------------------------------------------------------------ independent reference
def _round_away(v: float) -> int:
    """Round half away from zero (std::round)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def _requantize_ref(acc: int, real: float) -> int:
    """TFLite MultiplyByQuantizedMultiplier(acc, QuantizeMultiplier(real)) in Python integers
    (tensorflow/lite/kernels/internal/quantization_util.cc and common.h)."""
    q, e = math.frexp(real)
    m = _round_away(q * (1 << 31))
    if m == 1 << 31:
        m, e = m // 2, e + 1
    if e < -31:
        return 0
    left, right = max(e, 0), max(-e, 0)
    x = max(min(acc * (1 << left), (1 << 31) - 1), -(1 << 31))
    ab = x * m  # SaturatingRoundingDoublingHighMul (m > 0: no saturation case)
    t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    high = t // (1 << 31) if t >= 0 else -((-t) // (1 << 31))  # C++ division truncates
    mask = (1 << right) - 1  # RoundingDivideByPOT
    threshold = (mask >> 1) + (1 if high < 0 else 0)
    return (high >> right) + (1 if (high & mask) > threshold else 0)


def _expected_dead(b: float, s_in: float, s_out: float, z_out: int, relu: bool) -> tuple[int, int]:
    """(int32 bias, int8 output) of a dead channel with float bias ``b``."""
    bq = _round_away(b / s_in)  # weight scale 1
    assert abs(bq) < 1 << 31
    y = _requantize_ref(bq, s_in / s_out)
    # the bias has resolution s_in at weight scale 1: within s_in / 2 plus one output step of b
    assert abs(y - b / s_out) <= 0.5 * s_in / s_out + 1.0
    y = min(max(y + z_out, -128), 127)
    return bq, max(y, z_out) if relu else y


def _dequant(q, t):
    return (np.asarray(q, dtype=np.float64) - t.zero_point) * t.scale


def _src(g, n=48, seed=1):
    x = np.random.default_rng(seed).normal(size=(n,) + g.input_shape)
    return ModelSource(g, x, x[:16])


@pytest.fixture(scope="module")
def quantized():
    g = from_model(G.dead_channels(), "dead.onnx")
    src = _src(g)
    tr = quantize(src)
    q = run(tr, preset("paper"), tr.samples, keep_all=True)
    f = g.run(src.samples, keep_all=True)
    return g, tr, q, f


# ------------------------------------------------------------------------------ dead channels exact
def test_dead_channels_output_exactly_the_requantized_bias(quantized):
    g, tr, q, f = quantized
    nodes = {n.name: n for n in g.nodes}
    layers = {ly.name: ly for ly in tr.layers}
    assert [ly.op for ly in tr.layers] == ["conv2d", "gap", "reshape", "linear"]
    assert layers["conv"].attrs["act"] == "relu" and layers["fc"].attrs["act"] == "none"
    assert nodes["conv"].params["weight"][7].any()  # gamma 1e-30: folded weights tiny, not zero
    seen = set()
    for name, dead, relu in (("conv", CONV_DEAD, True), ("fc", FC_DEAD, False)):
        ly = layers[name]
        t_in, t_out = tr.tensors[ly.inputs[0]], tr.tensors[ly.output]
        bias = np.asarray(nodes[name].params["bias"], dtype=np.float64)
        out = q[ly.output]
        for c in dead:
            bq, y = _expected_dead(float(bias[c]), t_in.scale, t_out.scale, t_out.zero_point, relu)
            assert not ly.arrays["weight"][c].any(), (name, c)
            assert ly.arrays["weight_scale"][c] == 1.0, (name, c)
            assert ly.arrays["bias"][c] == bq, (name, c)
            got = np.unique(out[:, c])
            assert got.tolist() == [y], (name, c, got, y)
            seen.add((name, int(np.sign(y - t_out.zero_point))))
    # positive biases give a constant above the zero point, negative ones (no ReLU) below, zero on it
    assert {("conv", 1), ("conv", 0), ("fc", 1), ("fc", -1), ("fc", 0)} <= seen


def test_live_channels_track_float(quantized):
    """Live channels stay within a few steps of the float graph: the conv output within 6 of its
    steps; the fc (whose input step is ~10x its output step, GAP shrinks the range) within 2 output
    steps of the float result propagated from its dequantized input error. Dead channels within
    s_in / 2 (their bias resolution) plus one output step."""
    g, tr, q, f = quantized
    fc_w = np.abs(next(n for n in g.nodes if n.name == "fc").params["weight"])
    for name, dead in (("relu", CONV_DEAD), ("fc", FC_DEAD)):
        t = tr.tensors[name]
        err = np.abs(_dequant(q[name], t) - f[name])
        live = [c for c in range(err.shape[1]) if c not in dead]
        if name == "relu":
            tol = np.full(len(live), 6 * t.scale)
        else:
            in_err = np.abs(_dequant(q["flat"], tr.tensors["flat"]) - f["flat"]).max(axis=0)
            assert in_err.max() < 2 * tr.tensors["flat"].scale
            tol = fc_w[live] @ in_err + 2 * t.scale
        err = err.reshape(err.shape[0], err.shape[1], -1).max(axis=(0, 2))
        assert (err[live] < tol).all(), (name, err[live] / t.scale, tol / t.scale)
        s_in = tr.tensors["x" if name == "relu" else "flat"].scale
        assert err[dead].max() <= 0.5 * s_in + 1.0001 * t.scale, (name, err[dead] / t.scale)
        assert np.ptp(f[name][:, live], axis=0).min() > 4 * t.scale  # the live channels do vary


def test_bn_folded_in_float64():
    m = G.dead_channels()
    init = {t.name: onnx.numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    bn = next(n for n in m.graph.node if n.op_type == "BatchNormalization")
    eps = float(next(a for a in bn.attribute if a.name == "epsilon").f)
    k = init["bn_g"] / np.sqrt(init["bn_v"] + eps)
    conv = from_model(m).nodes[0]
    assert conv.params["weight"].dtype == np.float64 and conv.params["bias"].dtype == np.float64
    np.testing.assert_array_equal(conv.params["weight"], init["conv_w"] * k[:, None, None, None])
    np.testing.assert_array_equal(conv.params["bias"], (init["conv_b"] - init["bn_m"]) * k + init["bn_b"])


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("init,index,value,node", [
    ("conv_b", 1, 1e9, "conv"),  # dead, positive: outside int32 at s_in
    ("conv_b", 3, -1e30, "conv"),  # dead, beyond int64 too (used to cast to INT64_MIN, then 0)
    ("conv_b", 0, 1e30, "conv"),  # a live channel
    ("fc_b", 2, -1e9, "fc"),
    ("fc_b", 4, 3e38, "fc"),
], ids=["conv-dead-1e9", "conv-dead--1e30", "conv-live-1e30", "fc-dead--1e9", "fc-dead-3e38"])
def test_huge_bias_is_an_error_naming_layer_and_channel(init, index, value, node):
    g = from_model(G.dead_channels({init: {index: value}}))
    with pytest.raises(ArasError, match=rf"node '{node}'.*channel {index}: bias .* outside int32") as e:
        quantize(_src(g))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("node,param,index,value", [
    ("conv", "weight", (2, 0, 1, 1), np.nan),
    ("conv", "bias", (4,), np.inf),
    ("fc", "weight", (3, 5), np.nan),
    ("fc", "bias", (0,), -np.inf),
])
def test_nan_weight_or_inf_bias_names_the_layer(node, param, index, value):
    g = from_model(G.dead_channels())
    n = next(n for n in g.nodes if n.name == node)
    n.params[param] = np.array(n.params[param], copy=True)
    n.params[param][index] = value
    with pytest.raises(ArasError, match=rf"node '{node}': {param} of channel {index[0]} is -?(nan|inf)") as e:
        quantize(_src(g))
    assert "\n" not in str(e.value)


def test_nan_weight_from_onnx_names_the_layer():
    g = from_model(G.dead_channels({"fc_w": {(3, 5): np.nan}}))
    with pytest.raises(ArasError, match=r"node 'fc': weight of channel 3 is nan"):
        quantize(_src(g))


@pytest.mark.parametrize("qp", [(0.05, 200), (0.05, np.nan), (np.inf, 0), (0.05, 1.5)])
def test_bad_fixed_zero_point_or_scale_names_the_tensor(qp):
    g = from_model(G.dead_channels())
    g.fixed_qparams["relu"] = qp
    with pytest.raises(ArasError, match=r"tensor 'relu': fixed \(scale, zero point\)"):
        quantize(_src(g))


def test_open_clamp_bound_saturates():
    """Clip with only a max (min = -inf): the bound saturates to -128 instead of being cast."""
    rng = np.random.default_rng(0)
    nodes = [FNode("c", "conv2d", ["x"], "co", {}, {"weight": rng.normal(size=(3, 2, 1, 1)), "bias": np.zeros(3)}),
             FNode("cl", "clamp", ["co"], "clo", {"min": -np.inf, "max": 0.5})]
    g = FloatGraph("clamp_inf", "x", (2, 4, 4), nodes, ["clo"])
    tr = quantize(_src(g))
    ly = tr.layers[0]
    t = tr.tensors["clo"]
    assert ly.attrs["act"] == "clamp" and ly.attrs["act_min"] == -128
    assert ly.attrs["act_max"] == min(127, _round_away(0.5 / t.scale) + t.zero_point)
