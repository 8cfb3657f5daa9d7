"""Golden functional model vs the independent integer reference, every encoding, corner cases, clipping."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aras.config import preset
from sim_models.crossbar import PLANE_WEIGHTS
from sim_models.functional import EncodingPlan, LayerEncoding, geometry, run
from verif.golden import intref
from verif.golden.tracegen import random_multipliers, weight_layer_trace

PAPER, TINY, TINY_ADC = preset("paper"), preset("tiny"), preset("tiny-adc")


def reference(tr, x):
    ly = tr.layers[0]
    a = ly.arrays
    zx, zo = tr.tensors["x"].zero_point, tr.tensors["y"].zero_point
    if ly.op == "conv2d":
        acc = intref.conv_acc(x, zx, a["weight"], a["bias"], ly.attrs["stride"], ly.attrs["pads"],
                              ly.attrs["dilation"], ly.attrs["groups"])
        axis = 1
    else:
        acc = intref.linear_acc(x, zx, a["weight"], a["bias"])
        axis = -1
    return intref.requant(acc, a["mult"], a["shift"], zo, ly.attrs["act_min"], ly.attrs["act_max"],
                          a.get("mult_neg"), a.get("shift_neg"), axis=axis)


def random_plan(tr, cfg, family, rng):
    ly = tr.layers[0]
    g, _, ng, chunks = geometry(ly, cfg)
    return EncodingPlan({ly.name: LayerEncoding(family, rng.integers(0, 2, (g, chunks, ng)).astype(bool))})


def check(tr, x, cfg=TINY, plan=None, bit_serial=(False, True)):
    want = reference(tr, x)
    for force in bit_serial:
        got = run(tr, cfg, x, plan=plan, force_bit_serial=force)["y"]
        assert got.dtype == np.int8
        diff = np.argwhere(got != want)
        if diff.size:
            i = tuple(diff[0])
            pytest.fail(f"first mismatch at {i}: got {got[i]}, want {want[i]} ({len(diff)} mismatches)")


# ----------------------------------------------------------------------------------- random layers
@pytest.mark.parametrize("family", ["offset", "signmag"])
@pytest.mark.parametrize("flags", ["plain", "random", "all"])
@pytest.mark.parametrize("cfg", [TINY, PAPER], ids=["tiny", "paper"])
def test_random_conv_all_encodings(family, flags, cfg):
    rng = np.random.default_rng(1)
    cin, cout = 5, 7
    w = rng.integers(-127, 128, (cout, cin, 3, 3))
    mult, shift = random_multipliers(rng, cout)
    tr = weight_layer_trace(w, rng.integers(-5000, 5000, cout), (cin, 6, 7), zx=-3, zo=5, mult=mult, shift=shift,
                            stride=(1, 2), pads=(1, 0, 2, 1))
    x = rng.integers(-128, 128, (2, cin, 6, 7)).astype(np.int8)
    ly = tr.layers[0]
    g, _, ng, chunks = geometry(ly, cfg)
    fl = {"plain": np.zeros((g, chunks, ng), bool), "random": rng.integers(0, 2, (g, chunks, ng)).astype(bool),
          "all": np.ones((g, chunks, ng), bool)}[flags]
    check(tr, x, cfg, EncodingPlan({"L": LayerEncoding(family, fl)}))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), groups=st.sampled_from([1, 2, 3]), k=st.sampled_from([1, 2, 3]),
       stride=st.integers(1, 2), dil=st.integers(1, 2), pad=st.integers(0, 2),
       family=st.sampled_from(["offset", "signmag"]))
def test_property_random_conv_matches_reference(seed, groups, k, stride, dil, pad, family):
    rng = np.random.default_rng(seed)
    cin, cout = 2 * groups, 3 * groups
    h = w_ = 2 + (k - 1) * dil + rng.integers(0, 3)
    wt = rng.integers(-127, 128, (cout, cin // groups, k, k))
    mult, shift = random_multipliers(rng, cout)
    act = [("none", -128, 127), ("relu", -20, 127), ("relu6", -20, 60)][rng.integers(0, 3)]
    tr = weight_layer_trace(wt, rng.integers(-3000, 3000, cout), (cin, h, w_), zx=int(rng.integers(-128, 128)),
                            zo=int(rng.integers(-30, 30)), mult=mult, shift=shift, act=act, stride=(stride, stride),
                            pads=(pad,) * 4, dilation=(dil, dil), groups=groups)
    x = rng.integers(-128, 128, (1, cin, h, w_)).astype(np.int8)
    check(tr, x, TINY, random_plan(tr, TINY, family, rng))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 40), n=st.integers(1, 11),
       family=st.sampled_from(["offset", "signmag"]))
def test_property_random_linear_matches_reference(seed, k, n, family):
    rng = np.random.default_rng(seed)
    mult, shift = random_multipliers(rng, n)
    tr = weight_layer_trace(rng.integers(-127, 128, (n, k)), rng.integers(-3000, 3000, n), (3, k),
                            zx=int(rng.integers(-128, 128)), zo=0, mult=mult, shift=shift)
    x = rng.integers(-128, 128, (2, 3, k)).astype(np.int8)
    check(tr, x, TINY, random_plan(tr, TINY, family, rng))


def test_fused_prelu_uses_negative_multiplier():
    rng = np.random.default_rng(3)
    n, k = 6, 20
    mult, shift = random_multipliers(rng, n)
    neg = random_multipliers(rng, n)
    tr = weight_layer_trace(rng.integers(-127, 128, (n, k)), rng.integers(-300, 300, n), (k,), zx=7, zo=-4,
                            mult=mult, shift=shift, act=("prelu", -128, 127), neg=neg)
    x = rng.integers(-128, 128, (50, k)).astype(np.int8)
    check(tr, x)


# ----------------------------------------------------------------------------------- corner table
CORNERS = [
    # (name, weight fill, activation fill, zero point)
    ("zero activations", 1, 0, 0),
    ("activation +1", 127, 1, 0),
    ("activation -1", 127, -1, 0),
    ("activation -128", 127, -128, 0),
    ("activation 127", -127, 127, 0),
    ("weights 0", 0, 77, -128),
    ("weights +1", 1, -128, 127),
    ("weights -1", -1, 127, -128),
    ("all-max rows", 127, 127, -128),
    ("all-min rows", -127, -128, 127),
]


@pytest.mark.parametrize("name,wv,xv,zx", CORNERS, ids=[c[0] for c in CORNERS])
@pytest.mark.parametrize("family", ["offset", "signmag"])
def test_corner_values(name, wv, xv, zx, family):
    k, n = 37, 9  # K not a multiple of 16 rows, N not a multiple of 4 weight columns
    tr = weight_layer_trace(np.full((n, k), wv), np.zeros(n), (k,), zx=zx, shift=np.full(n, -12))
    x = np.full((1, k), xv, np.int8)
    rng = np.random.default_rng(0)
    check(tr, x, TINY, random_plan(tr, TINY, family, rng))


@pytest.mark.parametrize("shape", ["1x1", "depthwise", "stride2-pad"])
def test_corner_conv_shapes(shape):
    rng = np.random.default_rng(5)
    if shape == "1x1":
        w, kw = rng.integers(-127, 128, (6, 20, 1, 1)), dict()
        cin = 20
    elif shape == "depthwise":
        w, kw = rng.integers(-127, 128, (8, 1, 3, 3)), dict(groups=8, pads=(1, 1, 1, 1))
        cin = 8
    else:
        w, kw = rng.integers(-127, 128, (4, 3, 3, 3)), dict(stride=(2, 2), pads=(1, 1, 1, 1))
        cin = 3
    tr = weight_layer_trace(w, rng.integers(-100, 100, w.shape[0]), (cin, 7, 7), zx=-9, shift=np.full(w.shape[0], -10),
                            **kw)
    check(tr, rng.integers(-128, 128, (2, cin, 7, 7)).astype(np.int8))


# ----------------------------------------------------------------------------------- clipping ADC
def clipped_reference(x, w, zx, adc_max, rows):
    """Independent scalar model of clipping: offset encoding, 2-bit cells, per 16-row chunk, per bit and slice."""
    k, n = w.shape
    out = np.zeros((x.shape[0], n), np.int64)
    for p in range(x.shape[0]):
        for j in range(n):
            total = 0
            for r0 in range(0, k, rows):
                xs, ws = x[p, r0:r0 + rows].astype(np.int64), w[r0:r0 + rows, j].astype(np.int64) + 128
                v = 0
                for s in range(4):
                    lv = (ws >> (2 * s)) & 3
                    t = 0
                    for b in range(8):
                        bits = ((xs & 0xFF) >> b) & 1
                        t += int(PLANE_WEIGHTS[b]) * min(int((bits * lv).sum()), adc_max)
                    v += t << (2 * s)
                total += v - 128 * int(xs.sum())
            out[p, j] = total - zx * int(w[:, j].sum())
    return out


def test_clipping_adc_matches_scalar_model():
    rng = np.random.default_rng(11)
    k, n = 40, 5
    w = rng.integers(-127, 128, (n, k))
    tr = weight_layer_trace(w, np.zeros(n), (k,), zx=3, shift=np.full(n, -12))
    x = rng.integers(-128, 128, (6, k)).astype(np.int8)
    acc = clipped_reference(x, w.T, 3, TINY_ADC.adc_max, TINY_ADC.xbar_rows)
    want = intref.requant(acc, tr.layers[0].arrays["mult"], tr.layers[0].arrays["shift"], 0, -128, 127)
    for force in (False, True):
        got = run(tr, TINY_ADC, x, force_bit_serial=force)["y"]
        np.testing.assert_array_equal(got, want)
    # ... and the clipping really happens: the exact ADC gives other outputs.
    assert (run(tr, TINY, x)["y"] != got).any()
