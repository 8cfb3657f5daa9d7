"""Post-training quantization: trace structure, fusions, float agreement, degenerate channels."""

from __future__ import annotations

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from aras.models import ModelSource
from aras.quant import dequantize
from aras.quantize import act_qparams, quantize
from sim_models.functional import run
from verif.golden.smallnets import mixed_cnn


def _src(g, n=64, seed=1):
    x = np.random.default_rng(seed).normal(size=(n,) + g.input_shape)
    return ModelSource(g, x, x[:16])


def test_trace_ops_and_fusions():
    tr = quantize(_src(mixed_cnn()))
    ops = {ly.name: (ly.op, ly.attrs.get("act")) for ly in tr.layers}
    assert ops["c1"] == ("conv2d", "relu") and ops["dw"] == ("conv2d", "prelu") and ops["add"] == ("add", "relu6")
    assert ops["lk"][0] == "leaky" and ops["fl"][0] == "reshape" and ops["sm"][0] == "softmax"
    assert "r1" not in ops and "pr" not in ops  # fused
    # relu fused into c1 but r1o is also read by the add: fusion only when nothing else reads the
    # pre-activation tensor c1o -- here c1o has one reader (r1), so the fused output is r1o.
    assert tr.layers[0].output == "r1o"
    assert tr.tensors["mpo"].scale == tr.tensors["r6o"].scale  # pooling keeps the scale


def test_quantized_model_tracks_float():
    g = mixed_cnn()
    src = _src(g)
    tr = quantize(src)
    q = run(tr, preset("paper"), tr.samples, keep_all=True)
    f = g.run(src.samples, keep_all=True)
    for name in ("r1o", "pro", "r6o", "logits"):
        t = tr.tensors[name]
        err = np.abs(dequantize(q[name], t.scale, t.zero_point) - f[name]).max()
        assert err < 6 * t.scale, (name, err / t.scale)
    t = tr.tensors["prob"]
    assert np.abs(dequantize(q["prob"], t.scale, t.zero_point) - f["prob"]).max() < 0.05


def test_all_zero_filter_is_handled():
    tr = quantize(_src(mixed_cnn(zero_filter=True)))
    c1 = tr.layers[0]
    assert c1.arrays["weight_scale"][2] == 1.0 and not c1.arrays["weight"][2].any()
    out = run(tr, preset("tiny"), tr.samples)
    assert np.isfinite(out["prob"].astype(float)).all()


def test_fixed_qparams_are_used():
    g = mixed_cnn()
    g.fixed_qparams["r1o"] = (0.05, -100)
    tr = quantize(_src(g))
    assert (tr.tensors["r1o"].scale, tr.tensors["r1o"].zero_point) == (0.05, -100)


@pytest.mark.parametrize("lo,hi", [(-1.0, 3.0), (0.5, 2.0), (-2.0, -1.0), (0.0, 0.0)])
def test_act_qparams_cover_range_and_zero(lo, hi):
    s, z = act_qparams(lo, hi)
    assert -128 <= z <= 127 and s > 0
    qlo, qhi = (min(lo, 0) / s) + z, (max(hi, 0) / s) + z
    assert qlo >= -128.5 and qhi <= 127.5
    assert abs(0 / s + z - round(z)) == 0  # zero is exactly representable


def test_bad_calibration_inputs():
    g = mixed_cnn()
    with pytest.raises(ArasError, match="calibration inputs: shape"):
        quantize(ModelSource(g, np.zeros((4, 3, 5, 5)), None))
    with pytest.raises(ArasError, match="finite"):
        quantize(ModelSource(g, np.full((4, 3, 8, 8), np.nan), None))


def test_add_of_a_tensor_to_itself():
    """add(y, y) names one tensor twice: calibration frees it once."""
    from aras.graph import FloatGraph, FNode

    rng = np.random.default_rng(3)
    g = FloatGraph("double", "x", (6,), [
        FNode("fc", "linear", ["x"], "y", params={"weight": rng.normal(0, .5, (4, 6)), "bias": np.zeros(4)}),
        FNode("add", "add", ["y", "y"], "z")], ["z"], weights="synthetic")
    x = rng.normal(0, 1, (16, 6))
    tr = quantize(ModelSource(g, x, x[:4]))
    assert [ly.op for ly in tr.layers] == ["linear", "add"]
    q = run(tr, preset("tiny"), tr.samples)["z"]
    t = tr.tensors["z"]
    assert np.abs(dequantize(q, t.scale, t.zero_point) - g.run(x[:4])["z"]).max() < 3 * t.scale
