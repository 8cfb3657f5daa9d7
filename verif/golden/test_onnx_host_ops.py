"""Independent oracle for the host ops added for ONNX import (issue 17): sigmoid, hardsigmoid,
hardswish, silu, tanh GELU, mul, matmul, transpose, concat, resize, upsample.

``sim_models.host.run`` (what the golden model and the RTL testbench hosts call) is checked against
scalar float64 Python written from the operators' definitions (docs/trace-format.md "Operators",
ONNX's operator specs), sharing no code with ``aras.ops_float``/``aras.graph``. Tolerance as in
test_host_oracle.py: every element within 1 int8 LSB, and equal wherever r / s_o is not within float
noise of a .5 rounding boundary."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aras.trace import Layer, TensorQ
from sim_models import host

REL_SLACK = 1e-9


def _rha(v: float) -> int:
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def _q(r: float, t: TensorQ) -> int:
    return max(-128, min(127, t.zero_point + _rha(r / t.scale)))


def _check(layer, xs_q, tin, tout, oracle):
    got = host.run(layer, xs_q, tin, tout)
    deq = [[t.scale * (int(v) - t.zero_point) for v in np.asarray(x).ravel()] for x, t in zip(xs_q, tin, strict=True)]
    shaped = [np.array(d, dtype=object).reshape(np.asarray(x).shape) for d, x in zip(deq, xs_q, strict=True)]
    ref = oracle(*shaped)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    for g, r in zip(got.ravel(), ref.ravel(), strict=True):
        want = _q(float(r), tout)
        assert abs(int(g) - want) <= 1, (layer.op, g, want, r)
        frac = abs(float(r) / tout.scale) % 1.0
        if abs(frac - 0.5) > REL_SLACK * max(1.0, abs(float(r) / tout.scale)):
            assert int(g) == want, (layer.op, g, want, r)


def _rand_q(shape, seed):
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.int8)




def _tq(shape, scale=0.05, zp=3):
    return TensorQ(tuple(shape), scale, zp)


def _elementwise(fn):
    return lambda x: np.vectorize(lambda v: fn(float(v)), otypes=[object])(x)


def _sig(v):
    return 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v))


UNARY = {
    "sigmoid": ({}, lambda v: _sig(v), 1 / 255),
    "hardsigmoid": ({"alpha": 0.2, "beta": 0.45}, lambda v: min(1.0, max(0.0, 0.2 * v + 0.45)), 1 / 255),
    "hardswish": ({"alpha": 1 / 6, "beta": 0.5}, lambda v: v * min(1.0, max(0.0, v / 6 + 0.5)), 0.04),
    "silu": ({"alpha": 1.5}, lambda v: v * _sig(1.5 * v), 0.04),
    "gelu": ({"approximate": "tanh"},
             lambda v: 0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))), 0.04),
}


@pytest.mark.parametrize("op", list(UNARY))
def test_unary(op):
    attrs, fn, so = UNARY[op]
    x = _rand_q((3, 4, 5, 5), 1)
    tin, tout = _tq((4, 5, 5)), _tq((4, 5, 5), so, -20)
    _check(Layer("l", op, ["a"], "y", attrs), [x], [tin], tout, _elementwise(fn))


def test_mul_broadcast():
    a, b = _rand_q((2, 3, 4, 4), 2), _rand_q((2, 3, 1, 1), 3)
    tin = [_tq((3, 4, 4)), _tq((3, 1, 1), 0.01, -128)]

    def oracle(x, s):
        out = np.empty(x.shape, dtype=object)
        for i in np.ndindex(x.shape):
            out[i] = x[i] * s[i[0], i[1], 0, 0]
        return out
    _check(Layer("l", "mul", ["a", "b"], "y", {}), [a, b], tin, _tq((3, 4, 4), 0.02, 0), oracle)


def test_matmul_alpha():
    a, b = _rand_q((2, 2, 3, 4), 4), _rand_q((2, 2, 4, 5), 5)
    tin = [_tq((2, 3, 4)), _tq((2, 4, 5), 0.03, -1)]

    def oracle(x, y):
        out = np.empty((2, 2, 3, 5), dtype=object)
        for n, h, i, j in np.ndindex(out.shape):
            out[n, h, i, j] = 0.5 * math.fsum(x[n, h, i, k] * y[n, h, k, j] for k in range(4))
        return out
    _check(Layer("l", "matmul", ["a", "b"], "y", {"alpha": 0.5}), [a, b], tin, _tq((2, 3, 5), 0.04, 2), oracle)


def test_transpose_and_concat():
    a = _rand_q((2, 2, 3, 4), 6)
    tin = _tq((2, 3, 4))
    _check(Layer("l", "transpose", ["a"], "y", {"perm": [2, 0, 1]}), [a], [tin], _tq((4, 2, 3)),
           lambda x: np.array([[[[x[n, c, h, w] for h in range(3)] for c in range(2)] for w in range(4)]
                               for n in range(2)], dtype=object))
    b = _rand_q((2, 2, 1, 4), 7)
    tb = _tq((2, 1, 4), 0.1, -5)
    _check(Layer("l", "concat", ["a", "b"], "y", {"axis": 1}), [a, b], [tin, tb], _tq((2, 4, 4), 0.08, 0),
           lambda x, y: np.concatenate([x, y], axis=2))


def _coord(o, n_in, n_out, scale, coord):
    if coord == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if coord == "asymmetric":
        return o / scale
    if coord == "align_corners":
        return 0.0 if scale * n_in == 1 else o * (n_in - 1) / (scale * n_in - 1)
    raise AssertionError(coord)


def _resize_oracle(x, size, scales, mode, coord, nearest="round_prefer_floor"):
    n, c, h, w = x.shape
    oh, ow = size
    out = np.empty((n, c, oh, ow), dtype=object)

    def near(v, lim):
        if nearest == "round_prefer_floor":
            i = math.ceil(v - 0.5)
        elif nearest == "floor":
            i = math.floor(v)
        else:
            i = math.floor(v + 0.5)
        return min(max(i, 0), lim - 1)

    for b, ch, i, j in np.ndindex(out.shape):
        yi, xj = _coord(i, h, oh, scales[0], coord), _coord(j, w, ow, scales[1], coord)
        if mode == "nearest":
            out[b, ch, i, j] = x[b, ch, near(yi, h), near(xj, w)]
        else:
            y0, x0 = math.floor(yi), math.floor(xj)
            fy, fx = yi - y0, xj - x0

            def px(r, s, b=b, ch=ch):
                return x[b, ch, min(max(r, 0), h - 1), min(max(s, 0), w - 1)]
            out[b, ch, i, j] = ((1 - fy) * ((1 - fx) * px(y0, x0) + fx * px(y0, x0 + 1))
                                + fy * ((1 - fx) * px(y0 + 1, x0) + fx * px(y0 + 1, x0 + 1)))
    return out


@pytest.mark.parametrize("mode,coord,nearest,size,scales", [
    ("nearest", "half_pixel", "round_prefer_floor", (6, 9), (1.5, 1.5)),
    ("nearest", "asymmetric", "floor", (8, 12), (2.0, 2.0)),
    ("linear", "half_pixel", None, (8, 12), (2.0, 2.0)),
    ("linear", "align_corners", None, (7, 3), (7 / 4, 3 / 6)),
])
def test_resize(mode, coord, nearest, size, scales):
    x = _rand_q((2, 2, 4, 6), 8)
    attrs = {"size": list(size), "scales": list(scales), "mode": mode, "coord": coord}
    if nearest:
        attrs["nearest"] = nearest
    _check(Layer("l", "resize", ["a"], "y", attrs), [x], [_tq((2, 4, 6))], _tq((2,) + size, 0.06, 1),
           lambda v: _resize_oracle(v, size, scales, mode, coord, nearest))


def test_upsample_zero_insertion():
    x = _rand_q((2, 2, 3, 3), 9)
    tin = _tq((2, 3, 3))
    up, border = (2, 3), (1, -1, 2, 0)  # pad top 1, crop left 1, pad bottom 2

    def oracle(v):
        n, c, h, w = v.shape
        zh, zw = (h - 1) * up[0] + 1, (w - 1) * up[1] + 1
        out = np.empty((n, c, zh + border[0] + border[2], zw + border[1] + border[3]), dtype=object)
        for b, ch, i, j in np.ndindex(out.shape):
            zi, zj = i - border[0], j - border[1]
            on = 0 <= zi < zh and 0 <= zj < zw and zi % up[0] == 0 and zj % up[1] == 0
            out[b, ch, i, j] = v[b, ch, zi // up[0], zj // up[1]] if on else 0.0
        return out
    _check(Layer("l", "upsample", ["a"], "y", {"up": list(up), "border": list(border)}), [x], [tin],
           _tq((2, 8, 6)), oracle)


def test_slice():
    x = _rand_q((2, 3, 5, 6), 10)
    attrs = {"axes": [1, 2], "starts": [4, 1], "steps": [-2, 2], "counts": [3, 3]}
    _check(Layer("l", "slice", ["a"], "y", attrs), [x], [_tq((3, 5, 6))], _tq((3, 3, 3)),
           lambda v: np.array([[[[v[n, c, 4 - 2 * i, 1 + 2 * j] for j in range(3)] for i in range(3)]
                                for c in range(3)] for n in range(2)], dtype=object))


def test_flops_known():
    """Host work counts of the new ops (reported beside accelerator results)."""
    t = _tq((2, 3, 4))
    assert host.flops(Layer("l", "matmul", ["a", "b"], "y", {}), [t, _tq((2, 4, 5))]) == 2 * 2 * 3 * 4 * 5
    assert host.flops(Layer("l", "transpose", ["a"], "y", {"perm": [1, 0, 2]}), [t]) == 0
    assert host.flops(Layer("l", "sigmoid", ["a"], "y", {}), [t]) == 4 * 24
