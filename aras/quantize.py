"""Post-training int8 quantization: FloatGraph + calibration inputs -> layer trace.

Rules (docs/trace-format.md, "Quantization"): activations per tensor, asymmetric, range from the
calibration min/max widened to include 0; weights per output channel, symmetric, scale max|w|/127
(a dead channel -- an all-zero filter, or one whose multiplier would underflow to 0 -- gets a zero
weight row and scale 1, so it outputs exactly its requantized bias); int32 bias = round(b / (s_in *
s_w)); requantization multipliers with TFLite's QuantizeMultiplier. Activations directly after a
conv/linear (any) or an add (ReLU, ReLU6, clamp) are fused into it when nothing else reads the
pre-activation tensor.

Every float -> int conversion (weights, biases, multipliers, zero points, clamp bounds, samples,
labels) is range-checked before the cast: a non-finite value or one outside int32 is an
:class:`ArasError` naming the node and channel (numpy would silently cast it to INT64_MIN).
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from .errors import ArasError
from .graph import HOST_OPS, FloatGraph, FNode, run_node
from .models import ModelSource
from .quant import quantize_multiplier, quantize_multipliers, round_half_away
from .trace import Layer, TensorQ, Trace

SAME_SCALE_OPS = ("maxpool", "avgpool", "gap", "flatten", "reshape", "relu", "relu6", "clamp")
INT32_RANGE = (-(1 << 31), (1 << 31) - 1)
DEAD_MULTIPLIER = 2.0 ** -32  # QuantizeMultiplier gives M = 0 below this


def _rounded(v, what, lo: int = INT32_RANGE[0], hi: int = INT32_RANGE[1]) -> np.ndarray:
    """``round_half_away(v)`` as int64, after checking -- before any cast -- that every value is
    finite and rounds into [lo, hi]; otherwise ValueError naming the first bad element ``i`` (an
    index tuple) with ``what(i)``. (numpy casts NaN and values beyond int64 to INT64_MIN, whose
    ``abs`` is negative: a later ``abs(q) > INT32_MAX`` check would pass it.)"""
    v = np.asarray(v, dtype=np.float64)
    ok = (v > lo - 0.5) & (v < hi + 0.5)  # exactly the values rounding into [lo, hi]; NaN fails
    if not ok.all():
        i = tuple(int(k) for k in np.argwhere(~ok)[0])
        rng = "int32" if (lo, hi) == INT32_RANGE else f"[{lo}, {hi}]"
        why = "is not finite" if not np.isfinite(v[i]) else f"is outside {rng}"
        raise ValueError(f"{what(i)} = {v[i]:.6g} {why}")
    return round_half_away(v)


def _multipliers(reals, what) -> tuple[np.ndarray, np.ndarray]:
    """``quantize_multipliers(reals)``; a non-finite or too large multiplier names its channel ``what(c)``."""
    reals = np.asarray(reals, dtype=np.float64).reshape(-1)
    for c, r in enumerate(reals):
        try:
            quantize_multiplier(float(r))
        except ValueError as e:
            raise ValueError(f"{what(c)}: {e}") from None
    return quantize_multipliers(reals)


def act_qparams(lo: float, hi: float, what: str = "activation") -> tuple[float, int]:
    """Asymmetric int8 (scale, zero point) covering [lo, hi] widened to include 0."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi) and np.isfinite(hi - lo)):
        raise ArasError(f"{what}: range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-12:
        return 1.0 / 255.0, -128  # constant-zero tensor: any scale represents it exactly
    scale = (hi - lo) / 255.0
    try:  # -128 - lo/scale is in [-128, 127] by construction
        zp = int(np.clip(_rounded(-128 - lo / scale, lambda i: "zero point", -128, 127), -128, 127))
    except ValueError as e:
        raise ArasError(f"{what}: range [{lo}, {hi}]: {e}") from None
    return scale, zp


def calibrate(g: FloatGraph, calib: np.ndarray, progress: bool = False,
              budget_bytes: int = 256 << 20) -> dict[str, tuple[float, float]]:
    """Min/max of every tensor over the calibration inputs.

    Runs in chunks sized so that the largest float64 tensor stays within ``budget_bytes``, freeing
    tensors after their last use (VGG-16 in one batch of 4 would hold several GB)."""
    x = np.asarray(calib, dtype=np.float64)
    if x.ndim != len(g.input_shape) + 1 or tuple(x.shape[1:]) != g.input_shape:
        raise ArasError(f"calibration inputs: shape {x.shape} does not match the model input (N, {g.input_shape})")
    if len(x) == 0 or not np.isfinite(x).all():
        raise ArasError("calibration inputs: need at least one sample, all finite")
    biggest = max(int(np.prod(s)) for s in g.shapes.values())
    step = max(1, budget_bytes // (8 * biggest))
    ranges: dict[str, tuple[float, float]] = {}

    def note(t, y):
        lo, hi = float(y.min()), float(y.max())
        if t in ranges:
            lo, hi = min(lo, ranges[t][0]), max(hi, ranges[t][1])
        ranges[t] = (lo, hi)

    last = {t: i for i, n in enumerate(g.nodes) for t in n.inputs}
    chunks = range(0, len(x), step)
    bar = tqdm(total=len(chunks) * len(g.nodes), desc=f"calibrate {g.name}", disable=not progress, leave=False)
    for s in chunks:
        env = {g.input_name: x[s:s + step]}
        note(g.input_name, env[g.input_name])
        for i, n in enumerate(g.nodes):
            y = run_node(n, [env[t] for t in n.inputs])
            if not np.isfinite(y).all():
                raise ArasError(f"graph {g.name}, node {n.name!r}: float inference gives non-finite values")
            env[n.output] = y
            note(n.output, y)
            for t in set(n.inputs):  # add(y, y) names y twice
                if last[t] == i:
                    del env[t]
            bar.update()
    bar.close()
    return ranges


def _fusable(g: FloatGraph, n: FNode) -> FNode | None:
    """The activation node to fuse into ``n`` (conv/linear/add), if any."""
    if n.op not in ("conv2d", "linear", "add") or n.output in g.outputs:
        return None
    users = g.consumers(n.output)
    if len(users) != 1:
        return None
    a = users[0]
    ok = ("relu", "relu6", "clamp") + (("leaky_relu", "prelu") if n.op != "add" else ())
    return a if a.op in ok else None


def quantize(src: ModelSource, name: str | None = None, progress: bool = False) -> Trace:
    """Quantize ``src.graph`` with ``src.calib``; store ``src.samples``/``src.labels`` in the trace."""
    g = src.graph
    _check_params(g)
    ranges = calibrate(g, src.calib, progress)
    fused: dict[str, FNode] = {}
    skip = set()
    for n in g.nodes:
        a = _fusable(g, n)
        if a is not None:
            fused[n.name] = a
            skip.add(a.name)

    tensors: dict[str, TensorQ] = {}

    def qp(t: str) -> tuple[float, int]:
        if t in g.fixed_qparams:
            s, z = g.fixed_qparams[t]
            s, zf = float(s), float(z)
            if not (np.isfinite(s) and s > 0 and -128 <= zf <= 127 and zf.is_integer()):  # NaN fails
                raise ArasError(f"graph {g.name}, tensor {t!r}: fixed (scale, zero point) = ({s}, {zf}) needs a "
                                "positive finite scale and an integer zero point in [-128, 127]")
            return s, int(zf)
        return act_qparams(*ranges[t], what=f"graph {g.name}, tensor {t!r}")

    tensors[g.input_name] = TensorQ(g.input_shape, *qp(g.input_name))
    layers: list[Layer] = []
    for n in g.nodes:
        if n.name in skip:
            continue
        act = fused.get(n.name)
        out = act.output if act else n.output
        tin = [tensors[t] for t in n.inputs]
        if n.op in SAME_SCALE_OPS:
            tensors[out] = TensorQ(g.shapes[out], tin[0].scale, tin[0].zero_point)
        else:
            tensors[out] = TensorQ(g.shapes[out], *qp(out))
        to = tensors[out]
        where = f"graph {g.name}, node {n.name!r}"
        try:
            layers.append(_layer(g, n, act, tin, to, out))
        except (ValueError, OverflowError) as e:
            raise ArasError(f"{where}: cannot quantize: {e}") from None
    samples = None if src.samples is None else _quantize_samples(src.samples, tensors[g.input_name], g)
    tr = Trace(name or g.name, g.weights, g.input_name, tensors, layers, list(g.outputs), src.notes, samples,
               None if src.labels is None else _labels(src.labels, g))
    tr.validate(f"quantized {g.name}")
    return tr


def _quantize_samples(x, tq: TensorQ, g: FloatGraph):
    from .quant import quantize as q

    x = np.asarray(x, dtype=np.float64)
    if tuple(x.shape[1:]) != g.input_shape:
        raise ArasError(f"samples of {g.name}: shape {x.shape} does not match the input {g.input_shape}")
    if not np.isfinite(x).all():
        raise ArasError(f"samples of {g.name}: sample {int(np.argwhere(~np.isfinite(x))[0][0])} is not finite")
    return q(x, tq.scale, tq.zero_point)  # saturates before its int cast


def _labels(labels, g: FloatGraph) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.dtype.kind == "f":  # float labels: integral and within int32, checked before the cast
        lo, hi = INT32_RANGE
        ok = (lab >= lo) & (lab <= hi) & (lab == np.floor(lab))  # NaN fails
        if not ok.all():
            i = [int(k) for k in np.argwhere(~ok)[0]]
            raise ArasError(f"labels of {g.name}: label {i} = {lab[tuple(i)]} is not an integer in int32")
    return np.asarray(lab, dtype=np.int64)


def _check_params(g: FloatGraph):
    """Every float parameter must be finite: a NaN weight or an Inf bias is an error naming the node,
    the parameter and (conv/linear/prelu) the output channel."""
    for n in g.nodes:
        for k, v in n.params.items():
            a = np.asarray(v)
            if a.dtype.kind not in "fc":
                continue
            fin = np.isfinite(a)
            if not fin.all():
                i = tuple(int(j) for j in np.argwhere(~fin)[0])
                at = f"channel {i[0]}" if n.op in ("conv2d", "linear", "prelu") and i else f"index {list(i)}"
                raise ArasError(f"graph {g.name}, node {n.name!r}: {k} of {at} is {a[i]} (parameters must be finite)")


def _clamp_range(act: FNode | None, to: TensorQ) -> tuple[int, int]:
    lo, hi = -128, 127
    if act is None:
        return lo, hi

    def q(v):
        a = float(v) / to.scale
        if np.isnan(a):
            raise ValueError(f"{act.op} bound {v} is NaN")
        a = min(max(a, -256.0), 256.0)  # saturate (an open bound is +-inf) before the cast: same result
        return int(np.clip(round_half_away(a) + to.zero_point, -128, 127))

    if act.op == "relu":
        return max(lo, to.zero_point), hi
    if act.op == "relu6":
        return max(lo, to.zero_point), q(6.0)
    if act.op == "clamp":
        return q(act.attrs["min"]), q(act.attrs["max"])
    return lo, hi


# Elements of one row chunk of a weight matrix quantized at a time (float64 temporaries of ~128 MB each):
# VGG-16's fc6 (103 M weights) in one piece would take several GB of temporaries.
CHUNK_ELEMS = 1 << 24


def _row_chunks(rows: int, cols: int):
    step = max(1, CHUNK_ELEMS // max(1, cols))
    return [(a, min(rows, a + step)) for a in range(0, rows, step)]


def _weight_layer(g, n: FNode, act, tin, to) -> tuple[dict, dict]:
    w = np.asarray(n.params["weight"])
    if w.dtype not in (np.float16, np.float32, np.float64):
        w = np.asarray(w, dtype=np.float64)  # each value of these three converts to float64 exactly
    cout = w.shape[0]
    wf = w.reshape(cout, -1)
    chunks = _row_chunks(cout, wf.shape[1])
    sin = tin[0].scale
    if n.name in g.fixed_weight_scales:
        sw = np.asarray(g.fixed_weight_scales[n.name], dtype=np.float64).reshape(-1)
        if sw.shape != (cout,) or not (np.isfinite(sw) & (sw > 0)).all():
            raise ValueError(f"fixed weight scales must be {cout} positive finite values")
        dead = np.zeros(cout, dtype=bool)
    else:  # |w| and max are exact in w's own float type, and so is the conversion to float64
        amax = np.concatenate([np.abs(wf[a:b]).max(axis=1) for a, b in chunks]).astype(np.float64)
        sw = amax / 127.0
        # Dead channel: an all-zero filter, or one so small that s_in * s_w / s_out < 2**-32, which
        # QuantizeMultiplier turns into M = 0 (the channel would output z_out whatever its bias; its
        # weights move the output by < 127 * 255 * K * 2**-32 LSB). Zero weights and scale 1: the
        # output is exactly the requantized bias round(b / s_in).
        dead = (amax == 0) | (sin * sw / to.scale < DEAD_MULTIPLIER)
        sw = np.where(dead, 1.0, sw)
    wq = np.empty(wf.shape, np.int8)
    for a, b in chunks:  # elementwise per channel: the same values as the whole matrix at once
        ws = wf[a:b].astype(np.float64) / sw[a:b, None]
        ws[dead[a:b]] = 0.0
        q = _rounded(ws, lambda i, a=a: f"channel {i[0] + a}: weight {float(wf[(i[0] + a,) + i[1:]]):.6g} / "
                                        f"s_w {sw[i[0] + a]:.6g}")
        wq[a:b] = np.clip(q, -127, 127)
        del ws, q
    wq = wq.reshape(w.shape)
    b = n.params.get("bias")
    b = np.zeros(cout) if b is None else np.asarray(b, dtype=np.float64)
    bq = _rounded(b / (sin * sw), lambda i: f"channel {i[0]}: bias {b[i]:.6g} / (s_in * s_w = {sin * sw[i[0]]:.6g})")
    m, sh = _multipliers(sin * sw / to.scale, lambda c: f"channel {c}: s_in * s_w / s_out")
    sw32 = sw.astype(np.float32)
    if not (np.isfinite(sw32) & (sw32 > 0)).all():
        c = int(np.argwhere(~(np.isfinite(sw32) & (sw32 > 0)))[0][0])
        raise ValueError(f"channel {c}: weight scale {sw[c]:.6g} is not a positive float32")
    arrays = {"weight": wq, "bias": bq.astype(np.int32), "mult": m, "shift": sh, "weight_scale": sw32}
    lo, hi = _clamp_range(act, to)
    attrs = {"act": "none" if act is None else {"relu": "relu", "relu6": "relu6", "clamp": "clamp",
                                                 "leaky_relu": "leaky", "prelu": "prelu"}[act.op],
             "act_min": lo, "act_max": hi}
    if act is not None and act.op in ("leaky_relu", "prelu"):
        alpha = np.full(cout, float(act.attrs["alpha"])) if act.op == "leaky_relu" else \
            np.asarray(act.params["slope"], np.float64).reshape(-1)
        if alpha.shape != (cout,):
            raise ValueError(f"prelu slope has {alpha.size} values for {cout} channels")
        arrays["mult_neg"], arrays["shift_neg"] = _multipliers(alpha * sin * sw / to.scale,
                                                               lambda c: f"channel {c}: alpha * s_in * s_w / s_out")
    if n.op == "conv2d":
        attrs.update(stride=list(n.attrs.get("stride", (1, 1))), pads=list(n.attrs.get("pads", (0, 0, 0, 0))),
                     dilation=list(n.attrs.get("dilation", (1, 1))), groups=int(n.attrs.get("groups", 1)))
    return attrs, arrays


def _layer(g, n: FNode, act, tin, to, out) -> Layer:
    attrs, arrays = {}, {}
    if n.op in ("conv2d", "linear"):
        attrs, arrays = _weight_layer(g, n, act, tin, to)
    elif n.op in ("maxpool", "avgpool"):
        if n.op == "avgpool" and n.attrs.get("count_include_pad") and any(n.attrs.get("pads", ())):
            attrs["count_include_pad"] = True
        attrs.update(kernel=list(n.attrs["kernel"]), stride=list(n.attrs.get("stride", n.attrs["kernel"])),
                     pads=list(n.attrs.get("pads", (0, 0, 0, 0))), act_min=-128, act_max=127)
    elif n.op == "gap":
        attrs.update(act_min=-128, act_max=127)
    elif n.op == "add":
        # TFLite int8 Add (PrepareGeneralSubOp): inputs rescaled to 2*max(s1, s2) with 20 bits headroom.
        s1, s2 = tin[0].scale, tin[1].scale
        twice = 2 * max(s1, s2)
        m1, e1 = quantize_multiplier(s1 / twice)
        m2, e2 = quantize_multiplier(s2 / twice)
        mo, eo = quantize_multiplier(twice / ((1 << 20) * to.scale))
        lo, hi = _clamp_range(act, to)
        attrs.update(left_shift=20, m1=m1, s1=e1, m2=m2, s2=e2, mo=mo, so=eo, act_min=lo, act_max=hi,
                     act="none" if act is None else act.op)
    elif n.op in ("relu", "relu6", "clamp"):
        op = "clamp"
        lo, hi = _clamp_range(n, to)
        return Layer(n.name, op, list(n.inputs), out, {"act_min": lo, "act_max": hi}, {})
    elif n.op in ("leaky_relu", "prelu"):
        # TFLite LeakyRelu: identity multiplier for x >= z_in, alpha multiplier below.
        c = g.shapes[n.inputs[0]]
        nch = c[0] if len(c) == 3 else c[-1]
        alpha = np.full(nch, float(n.attrs["alpha"])) if n.op == "leaky_relu" else \
            np.asarray(n.params["slope"], np.float64).reshape(-1)
        mi, si = _multipliers(np.full(nch, tin[0].scale / to.scale), lambda c: f"channel {c}: s_in / s_out")
        ma, sa = _multipliers(alpha * tin[0].scale / to.scale, lambda c: f"channel {c}: alpha * s_in / s_out")
        return Layer(n.name, "leaky", list(n.inputs), out, {},
                     {"mult_id": mi, "shift_id": si, "mult_alpha": ma, "shift_alpha": sa})
    elif n.op == "flatten":
        attrs["shape"] = [int(np.prod(tin[0].shape))]
        return Layer(n.name, "reshape", list(n.inputs), out, attrs, {})
    elif n.op == "reshape":
        attrs["shape"] = [int(d) for d in n.attrs["shape"]]
    elif n.op in HOST_OPS:
        attrs = {k: v for k, v in n.attrs.items()}
        arrays = {k: np.asarray(v, dtype=np.float32) for k, v in n.params.items()}
        for k, v in arrays.items():
            if not np.isfinite(v).all():
                raise ValueError(f"{k} overflows float32")
    return Layer(n.name, n.op, list(n.inputs), out, attrs, arrays)
