"""Independent oracle for the host ops (softmax, LayerNorm, GELU, attention).

``sim_models.host.run`` is what the golden model and both RTL testbench hosts call, so a mistake in it
(or in ``aras/ops_float.py``, or in the int8 (de)quantization it uses) is shared by every comparison
the project makes. This file re-derives each op from its definition (docs/architecture.md §6.8,
docs/trace-format.md "Operators") in scalar float64 Python (``math.exp``/``fsum``/``erf``/``erfc``, loops) and
shares no code with ``aras.ops_float`` or ``sim_models``:

- dequantize ``r = s·(q − z)``; quantize ``q = clamp(z_o + round_half_away(r / s_o), −128, 127)``;
- softmax along ``axis`` of the *unbatched* shape (default −1); ``exp(x_i − max) / Σ exp(x_j − max)``;
- LayerNorm over the last axis, biased (population) variance, ``(x − μ)/√(σ² + eps)·γ + β``;
- GELU in its exact erf form ``x/2·(1 + erf(x/√2))`` (the form the project documents and imports:
  ``aras/ops_float.py`` "erf GELU, as in BERT", MiniLM's ``hidden_act: gelu``);
- attention on (T, D) q/k/v: head h owns columns ``h·D/H … (h+1)·D/H − 1`` of q, k and v (the
  BERT/HF ``view(T, H, D/H)`` split), ``softmax(q_h k_hᵀ / √(D/H)) v_h``, heads concatenated back in
  the same columns; no mask.

Tolerance. The op itself is real-valued; only the final ``round_half_away`` is discontinuous. Two
correct float64 evaluations (different summation order, vectorised vs scalar) differ by
a few ulp, far below an LSB, so they can only disagree where the exact ``r / s_o`` sits on a .5
boundary, and then by exactly one LSB. So every element must be within 1 int8 LSB of the oracle — and
*equal* to it wherever ``r / s_o`` is farther than that float noise (``REL_SLACK``) from a .5
boundary. (A plain "≤ 1 LSB everywhere" could not catch, e.g., floor instead of round, which is never
more than one LSB off.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aras.trace import Layer, TensorQ
from sim_models import host

# Error bound of a correct float64 evaluation of r / s_o, relative: a few ulp of each step, with margin.
REL_SLACK = 1e-9


# ------------------------------------------------------------------------------------------- oracle
def o_dequantize(q: np.ndarray, scale: float, zp: int) -> np.ndarray:
    return np.array([(int(v) - zp) * scale for v in q.ravel()], dtype=np.float64).reshape(q.shape)


def _round_half_away(v: float) -> int:
    n = math.trunc(v)  # toward zero; v - n is exact in binary floating point
    if abs(v - n) >= 0.5:
        n += 1 if v > 0 else -1
    return n


def o_quantize(r: np.ndarray, scale: float, zp: int) -> tuple[np.ndarray, np.ndarray]:
    """(exact, alternative) int8 codes of ``r`` (float64 array). ``alternative`` differs from ``exact``
    only where ``r / scale`` lies within float64 noise (REL_SLACK) of a .5 boundary: there the
    neighbour on the other side of that boundary is also accepted (never more than 1 LSB away)."""
    exact = np.empty(r.shape, dtype=np.int64)
    alt = np.empty(r.shape, dtype=np.int64)
    for i, x in enumerate(r.ravel().tolist()):
        v = x / scale
        v = min(max(v, -1e6), 1e6)  # far outside int8 either way; keeps trunc finite
        n = _round_half_away(v)
        band = REL_SLACK * (1.0 + abs(v))
        below, above = v - (n - 0.5), (n + 0.5) - v  # distances to the two .5 boundaries around n
        other = n - 1 if below <= above and below <= band else n + 1 if above <= band else n
        exact.flat[i] = min(max(n + zp, -128), 127)
        alt.flat[i] = min(max(other + zp, -128), 127)
    return exact, alt


def _rows(x: np.ndarray, axis: int):
    """Views of ``x`` with ``axis`` moved last, as (array, iterator over index tuples of the rest)."""
    m = np.moveaxis(x, axis, -1)
    return m, np.ndindex(m.shape[:-1])


def _softmax_vec(v: list[float]) -> list[float]:
    top = max(v)
    e = [math.exp(t - top) for t in v]
    tot = math.fsum(e)
    return [t / tot for t in e]


def o_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """x is batched (B, ...); ``axis`` refers to the unbatched shape."""
    ax = axis if axis < 0 else axis + 1
    m, idx = _rows(x, ax)
    out = np.empty_like(m)
    for i in idx:
        out[i] = _softmax_vec([float(t) for t in m[i]])
    return np.moveaxis(out, -1, ax)


def o_layernorm(x: np.ndarray, gamma, beta, eps: float) -> np.ndarray:
    out = np.empty_like(x)
    g = [float(t) for t in gamma]
    b = [float(t) for t in beta]
    for i in np.ndindex(x.shape[:-1]):
        v = [float(t) for t in x[i]]
        n = len(v)
        mu = math.fsum(v) / n
        var = math.fsum((t - mu) ** 2 for t in v) / n
        den = math.sqrt(var + eps)
        out[i] = [(t - mu) / den * g[j] + b[j] for j, t in enumerate(v)]
    return out


def o_gelu(x: np.ndarray) -> np.ndarray:
    # For x < 0, 1 + erf(x/√2) is written erfc(−x/√2): the same function, without the cancellation.
    r2 = math.sqrt(2.0)
    return np.array([0.5 * t * (1.0 + math.erf(t / r2) if t >= 0 else math.erfc(-t / r2)) for t in x.ravel().tolist()],
                    dtype=np.float64).reshape(x.shape)


def o_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
    b, t, d = q.shape
    hd = d // heads
    out = np.empty((b, t, d), dtype=np.float64)
    for n in range(b):
        for h in range(heads):
            cols = range(h * hd, (h + 1) * hd)
            for i in range(t):
                s = [math.fsum(float(q[n, i, c]) * float(k[n, j, c]) for c in cols) / math.sqrt(hd)
                     for j in range(t)]
                p = _softmax_vec(s)
                for c in cols:
                    out[n, i, c] = math.fsum(p[j] * float(v[n, j, c]) for j in range(t))
    return out


def oracle(layer: Layer, xs: list[np.ndarray], tin: list[TensorQ], tout: TensorQ):
    f = [o_dequantize(x, t.scale, t.zero_point) for x, t in zip(xs, tin, strict=True)]
    a, p = layer.attrs, layer.arrays
    if layer.op == "softmax":
        r = o_softmax(f[0], int(a.get("axis", -1)))
    elif layer.op == "layernorm":
        r = o_layernorm(f[0], p["gamma"], p["beta"], float(a.get("eps", 1e-12)))
    elif layer.op == "gelu":
        r = o_gelu(f[0])
    elif layer.op == "attention":
        r = o_attention(f[0], f[1], f[2], int(a["heads"]))
    else:
        raise ValueError(layer.op)
    return r, o_quantize(r, tout.scale, tout.zero_point)


def mismatches(layer, xs, tin, tout) -> tuple[int, int, str]:
    """(elements off the oracle, largest difference in LSBs, first mismatch described)."""
    got = host.run(layer, xs, tin, tout)
    r, (want, alt) = oracle(layer, xs, tin, tout)
    assert got.shape == want.shape and got.dtype == np.int8
    g = got.astype(np.int64)
    bad = (g != want) & (g != alt)
    worst = int(np.abs(g - want).max()) if g.size else 0
    msg = ""
    if bad.any():
        i = tuple(np.argwhere(bad)[0])
        msg = f"at {i}: host {g[i]}, oracle {want[i]} (real {r[i]!r}, {int(bad.sum())} of {bad.size} off)"
    return int(bad.sum()), worst, msg


def check(layer, xs, tin, tout):
    n, worst, msg = mismatches(layer, xs, tin, tout)
    assert n == 0 and worst <= 1, msg


# -------------------------------------------------------------------------------------- layer makers
def softmax_case(x, s, z, so, zo, axis=-1):
    shape = x.shape[1:]
    ly = Layer("sm", "softmax", ["x"], "y", {"axis": axis})
    return ly, [x], [TensorQ(shape, s, z)], TensorQ(shape, so, zo)


def layernorm_case(x, s, z, so, zo, gamma, beta, eps):
    shape = x.shape[1:]
    ly = Layer("ln", "layernorm", ["x"], "y", {"eps": eps},
               {"gamma": np.asarray(gamma, np.float32), "beta": np.asarray(beta, np.float32)})
    return ly, [x], [TensorQ(shape, s, z)], TensorQ(shape, so, zo)


def gelu_case(x, s, z, so, zo):
    shape = x.shape[1:]
    return Layer("g", "gelu", ["x"], "y"), [x], [TensorQ(shape, s, z)], TensorQ(shape, so, zo)


def attention_case(q, k, v, qps, so, zo, heads):
    shape = q.shape[1:]
    ly = Layer("att", "attention", ["q", "k", "v"], "y", {"heads": heads})
    return ly, [q, k, v], [TensorQ(shape, s, z) for s, z in qps], TensorQ(shape, so, zo)


def calibrated(real: np.ndarray, widen: float = 1.0) -> tuple[float, int]:
    """Output qparams covering ``real`` (and 0) like the project's calibration, range times ``widen``."""
    lo, hi = min(float(real.min()), 0.0), max(float(real.max()), 0.0)
    scale = (hi - lo) * widen / 255 or 1 / 255
    return scale, int(min(max(round(-128 - lo / scale), -128), 127))


# ------------------------------------------------------------------------------- random (hypothesis)
seeds = st.integers(0, 2**32 - 1)
scales = st.floats(1e-4, 4.0).map(lambda v: float(np.float32(v)))
zps = st.integers(-128, 127)
widens = st.sampled_from([0.25, 0.7, 1.0, 1.0, 1.3])


def i8(rng, shape):
    return rng.integers(-128, 128, shape).astype(np.int8)


def with_out(case_fn, widen, *args, **kw):
    """Build a case with provisional output qparams, then recalibrate them from the oracle's reals."""
    ly, xs, tin, tout = case_fn(*args, 1.0, 0, **kw)
    r, _ = oracle(ly, xs, tin, tout)
    so, zo = calibrated(r, widen)
    return ly, xs, tin, TensorQ(tout.shape, so, zo)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, s=scales, z=zps, widen=widens, rank=st.integers(1, 3), data=st.data())
def test_softmax_random(seed, s, z, widen, rank, data):
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 6, rank))
    axis = data.draw(st.integers(-rank, rank - 1))
    x = i8(rng, (2,) + shape)
    check(*with_out(softmax_case, widen, x, s, z, axis=axis))


@settings(max_examples=50, deadline=None)
@given(seed=seeds, s=scales, z=zps, widen=widens, d=st.integers(1, 12),
       eps=st.sampled_from([1e-12, 1e-5, 1e-3, 0.1]))
def test_layernorm_random(seed, s, z, widen, d, eps):
    rng = np.random.default_rng(seed)
    x = i8(rng, (2, 3, d))
    gamma, beta = rng.normal(1.0, 0.5, d), rng.normal(0.0, 0.5, d)
    check(*with_out(layernorm_case, widen, x, s, z, gamma=gamma, beta=beta, eps=eps))


@settings(max_examples=60, deadline=None)
@given(seed=seeds, s=st.floats(1e-3, 0.1), z=zps, widen=widens)
def test_gelu_random(seed, s, z, widen):
    rng = np.random.default_rng(seed)
    x = i8(rng, (2, 4, 8))
    check(*with_out(gelu_case, widen, x, float(np.float32(s)), z))


@settings(max_examples=30, deadline=None)
@given(seed=seeds, t=st.integers(1, 6), hd=st.integers(1, 4), heads=st.sampled_from([1, 2, 3, 4]),
       widen=widens, data=st.data())
def test_attention_random(seed, t, hd, heads, widen, data):
    rng = np.random.default_rng(seed)
    d = hd * heads
    q, k, v = (i8(rng, (2, t, d)) for _ in range(3))
    qps = [(data.draw(st.floats(1e-3, 0.2)), data.draw(zps)) for _ in range(3)]
    ly, xs, tin, tout = attention_case(q, k, v, qps, 1.0, 0, heads)
    so, zo = calibrated(oracle(ly, xs, tin, tout)[0], widen)
    check(ly, xs, tin, TensorQ(tout.shape, so, zo))


# --------------------------------------------------------------------------------------- extremes
EXTREME_Q = np.array([-128, 127, -128, 127, 0, -1, 1, -128], dtype=np.int8)


def full(value, shape):
    return np.full(shape, value, dtype=np.int8)


@pytest.mark.parametrize("value", [-128, 0, 127])
@pytest.mark.parametrize(("z", "zo"), [(-128, -128), (127, -128), (0, 127), (-128, 127)])
def test_softmax_all_equal(value, z, zo):
    check(*softmax_case(full(value, (2, 3, 7)), 0.05, z, 1 / 256, zo))
    check(*softmax_case(full(value, (2, 3, 7)), 0.05, z, 1 / 256, zo, axis=0))


@pytest.mark.parametrize("s", [1.0, 30.0, 1e3, 1e30])
def test_softmax_huge_logits(s):
    x = np.stack([EXTREME_Q, EXTREME_Q[::-1]])[:, None, :]  # (2, 1, 8): ties at the maximum
    check(*softmax_case(x, s, 0, 1 / 256, -128))
    check(*softmax_case(x, s, -128, 1 / 255, -128))
    check(*softmax_case(x, s, 127, 1 / 128, 0))


@pytest.mark.parametrize("s", [1e-30, 1e-9, 1e-5])
@pytest.mark.parametrize("so", [1 / 256, 1e-6])
def test_softmax_tiny_scales(s, so):
    rng = np.random.default_rng(3)
    x = i8(rng, (2, 4, 6))
    check(*softmax_case(x, s, -128, so, -128))
    check(*softmax_case(x, s, 127, so, 127, axis=0))


def test_softmax_single_element_axis():
    rng = np.random.default_rng(4)
    x = i8(rng, (3, 5, 1))
    check(*softmax_case(x, 0.1, 3, 1 / 256, -128))  # axis -1 has one element: all ones
    check(*softmax_case(x, 0.1, 3, 1 / 256, -128, axis=1))
    check(*softmax_case(i8(rng, (3, 1, 4)), 0.1, 3, 1 / 256, -128, axis=0))
    check(*softmax_case(i8(rng, (3, 1)), 2.0, 3, 1 / 256, 127))


@pytest.mark.parametrize("eps", [1e-12, 1e-5, 1.0])
@pytest.mark.parametrize("value", [-128, 5, 127])
def test_layernorm_constant_row(eps, value):
    """Variance 0: the output is β exactly (0 / √eps), whatever eps (> 0) is."""
    d = 6
    gamma = np.linspace(-2, 2, d)
    beta = np.array([-1.0, -0.5, 0.0, 0.25, 0.5, 0.99])
    check(*layernorm_case(full(value, (2, 3, d)), 0.7, -3, gamma=gamma, beta=beta, eps=eps, so=1 / 128, zo=0))


@pytest.mark.parametrize("s", [1e-8, 1e-7, 1e-6, 1e-5])
@pytest.mark.parametrize("eps", [1e-12, 1e-10])
def test_layernorm_variance_near_eps(s, eps):
    """Tiny input scale: σ² ~ (s·50)² straddles eps, so dropping or misplacing eps changes the result."""
    rng = np.random.default_rng(5)
    x = i8(rng, (2, 4, 8))
    d = x.shape[-1]
    check(*with_out(layernorm_case, 1.0, x, s, 0, gamma=np.ones(d), beta=np.zeros(d), eps=eps))


def test_layernorm_single_element_and_extremes():
    rng = np.random.default_rng(6)
    check(*layernorm_case(i8(rng, (4, 3, 1)), 0.3, 0, gamma=[2.0], beta=[0.5], eps=1e-5, so=0.01, zo=0))
    x = np.tile(EXTREME_Q, (2, 3, 1))
    for z, zo in [(-128, -128), (127, 127), (0, 0)]:
        check(*layernorm_case(x, 50.0, z, gamma=np.full(8, 3.0), beta=np.zeros(8), eps=1e-12, so=0.02, zo=zo))


@pytest.mark.parametrize(("s", "z", "so", "zo"), [
    (0.05, 0, 0.03, -20),         # ordinary
    (0.1, -128, 0.1, -128),       # zero points at the rails
    (0.1, 127, 1e-3, 127),        # all inputs ≤ 0, output on the negative tail
    (1e-6, 0, 1e-8, 0),           # tiny scales: GELU(x) ≈ x/2
    (50.0, 0, 50.0, 0),           # huge inputs: GELU(x) ≈ max(x, 0)
    (0.03, 127, 3e-5, 127),       # x in [-7.6, 0], output scale of the tail around -3
    (0.03, 127, 1e-12, 127),      # ... of the tail around -6.5
    (0.0625, 0, 1e-15, 127),      # ... around -7.5 (a polynomial erf was 2 LSB off here)
    (0.0625, 0, 3.9e-17, 127),    # ... around -8 (and 5 LSB off here)
])
def test_gelu_extremes(s, z, so, zo):
    x = np.stack([np.arange(-128, 128, dtype=np.int16).astype(np.int8)] * 2)
    check(*gelu_case(x, s, z, so, zo))
    check(*gelu_case(full(int(z), (2, 5)), s, z, so, zo))  # all equal (real 0)


def test_gelu_far_tail():
    """x ≈ −11.6, GELU(x) ≈ −2e-30: 1 + erf(x/√2) cancels to 0 in float64, erfc(−x/√2) does not."""
    check(*gelu_case(np.array([[-117, -116, -115]], np.int8), 0.1, 0, 1e-31, 127))


def test_quantize_beyond_int64():
    """r / s_o far beyond 2**63: the quantizer saturates before its int64 cast (127, not INT64_MIN)."""
    check(*gelu_case(np.array([[127, 1, 0, -1]], np.int8), 0.1, 0, 1e-30, 0))  # 12.7 / 1e-30 ≫ 2**63


def test_attention_one_token():
    """T = 1: the softmax over one key is 1, so the output is v requantized."""
    rng = np.random.default_rng(7)
    q, k, v = (i8(rng, (3, 1, 8)) for _ in range(3))
    for heads in (1, 2, 8):
        check(*attention_case(q, k, v, [(0.1, 0), (0.2, 5), (0.05, -128)], 0.05, -128, heads))


@pytest.mark.parametrize("heads", [1, 2, 3, 6])
def test_attention_heads(heads):
    rng = np.random.default_rng(8 + heads)
    t, d = 5, 6
    q, k, v = (i8(rng, (2, t, d)) for _ in range(3))
    qps = [(0.08, -3), (0.06, 10), (0.04, 0)]
    ly, xs, tin, tout = attention_case(q, k, v, qps, 1.0, 0, heads)
    so, zo = calibrated(oracle(ly, xs, tin, tout)[0])
    check(ly, xs, tin, TensorQ(tout.shape, so, zo))


def test_attention_extremes():
    q = np.tile(EXTREME_Q, (2, 4, 1))
    k = q[:, ::-1].copy()
    v = np.tile(EXTREME_Q[::-1], (2, 4, 1))
    check(*attention_case(q, k, v, [(1.0, 0), (1.0, 0), (0.1, 0)], 0.1, 0, 2))  # saturated softmax
    check(*attention_case(full(7, (2, 4, 8)), full(-7, (2, 4, 8)), v, [(1e-9, 0)] * 2 + [(0.1, 127)], 0.1, 127, 4))


# -------------------------------------------------------------------------------------- mutations
def fixed_cases():
    """A fixed input set: every op, realistic calibrated output qparams, several heads and axes."""
    rng = np.random.default_rng(2024)
    d = 8
    cases = [
        with_out(softmax_case, 1.0, i8(rng, (2, 4, 6)), 0.1, 3),
        with_out(softmax_case, 1.0, i8(rng, (2, 4, 6)), 0.1, 3, axis=0),
        with_out(layernorm_case, 1.0, i8(rng, (2, 4, d)), 0.05, -7, gamma=rng.normal(1, .3, d),
                 beta=rng.normal(0, .3, d), eps=1e-5),
        with_out(layernorm_case, 1.0, i8(rng, (2, 4, d)), 1e-6, 0, gamma=np.ones(d), beta=np.zeros(d), eps=1e-10),
        with_out(gelu_case, 1.0, i8(rng, (2, 4, 16)), 0.03, -10),
        with_out(gelu_case, 1.0, i8(rng, (2, 4, 16)), 0.03, 127),  # x in [-7.6, 0]: the negative tail
    ]
    q, k, v = (i8(rng, (2, 5, d)) for _ in range(3))
    ly, xs, tin, tout = attention_case(q, k, v, [(0.08, -3), (0.06, 10), (0.04, 0)], 1.0, 0, 4)
    so, zo = calibrated(oracle(ly, xs, tin, tout)[0])
    cases.append((ly, xs, tin, TensorQ(tout.shape, so, zo)))
    return cases


def off_by_op(cases) -> dict[str, tuple[int, int]]:
    """Per op: (elements off the oracle, largest difference in LSBs), summed over the fixed set."""
    out: dict[str, tuple[int, int]] = {}
    for c in cases:
        n, worst, _ = mismatches(*c)
        m, w = out.get(c[0].op, (0, 0))
        out[c[0].op] = (m + n, max(w, worst))
    return out


def test_fixed_set_passes_unmutated():
    assert all(n == 0 for n, _ in off_by_op(fixed_cases()).values())


def _floor_quantize(v, scale, zero_point):
    return np.clip(np.floor(np.asarray(v, np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def _truncating_dequantize(q, scale, zero_point):  # forgets the zero point
    return np.asarray(q, np.float64) * scale


def test_oracle_catches_floor_quantize(monkeypatch):
    monkeypatch.setattr(host, "quantize", _floor_quantize)
    off = off_by_op(fixed_cases())
    assert all(n > 0 for n, _ in off.values()), off  # every op's output goes through it


def test_oracle_catches_dequantize_without_zero_point(monkeypatch):
    monkeypatch.setattr(host, "dequantize", _truncating_dequantize)
    off = off_by_op(fixed_cases())
    assert off["gelu"][1] > 1 and off["attention"][0] > 0, off


def test_oracle_catches_softmax_on_wrong_axis(monkeypatch):
    real = host.F.softmax
    monkeypatch.setattr(host.F, "softmax", lambda x, axis=-1: real(x, axis=-1))  # ignores the axis attr
    cases = fixed_cases()
    assert mismatches(*cases[0])[0] == 0  # axis −1 is unaffected ...
    n, worst, _ = mismatches(*cases[1])
    assert n > 0 and worst > 1  # ... axis 0 is caught


def test_oracle_catches_softmax_batch_axis(monkeypatch):
    """Unbatched axis 0 taken as the batch axis (the `ax + 1` shift forgotten)."""
    real = host.F.softmax
    monkeypatch.setattr(host.F, "softmax", lambda x, axis=-1: real(x, axis=axis - 1 if axis > 0 else axis))
    n, worst, _ = mismatches(*fixed_cases()[1])
    assert n > 0 and worst > 1


def test_oracle_catches_layernorm_without_eps(monkeypatch):
    real = host.F.layernorm
    monkeypatch.setattr(host.F, "layernorm", lambda x, g, b, eps: real(x, g, b, 0.0))
    off = off_by_op(fixed_cases())
    assert off["layernorm"][1] > 1, off


def test_oracle_catches_gelu_tanh(monkeypatch):
    def gelu_tanh(x):
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))

    monkeypatch.setattr(host.F, "gelu", gelu_tanh)
    off = off_by_op(fixed_cases())
    assert off["gelu"][0] > 0, off


def test_oracle_catches_attention_scaled_by_model_width(monkeypatch):
    """Scores divided by √D instead of √(D/heads) (or, equivalently here, the heads attribute ignored)."""
    real = host.F.attention
    monkeypatch.setattr(host.F, "attention", lambda q, k, v, heads: real(q, k, v, 1))
    off = off_by_op(fixed_cases())
    assert off["attention"][1] > 1, off


def _gelu_polynomial_erf(x):
    """The host's GELU before this oracle: Abramowitz & Stegun 7.1.26 erf (|error| < 1.5e-7)."""
    a = np.abs(x / math.sqrt(2.0))
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return 0.5 * x * (1.0 + np.sign(x) * (1.0 - poly * np.exp(-a * a)))


def test_oracle_catches_polynomial_erf(monkeypatch):
    """The bug this oracle found: fine at ordinary scales, several LSBs off on a finely resolved tail."""
    monkeypatch.setattr(host.F, "gelu", _gelu_polynomial_erf)
    assert off_by_op(fixed_cases())["gelu"] == (0, 0)
    x = np.stack([np.arange(-128, 128, dtype=np.int16).astype(np.int8)])
    n, worst, _ = mismatches(*gelu_case(x, 0.0625, 0, 3.9e-17, 127))
    assert n > 0 and worst > 1
