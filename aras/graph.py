"""Float graph: the one intermediate form every importer produces and the quantizer consumes.

A :class:`FloatGraph` is a list of :class:`FNode` in execution (topological) order over named
tensors. Shapes exclude the batch dimension: CNN tensors are (C, H, W), sequence tensors (T, D),
flat tensors (K,). Float weights use PyTorch/ONNX layouts: conv OIHW, linear (out, in).

Operators (``FNode.op``), their inputs, params and attrs:

===============  ========  ======================  ==============================================
op               inputs    params                  attrs
===============  ========  ======================  ==============================================
conv2d           1         weight, bias?           stride, pads (t, l, b, r), dilation, groups
linear           1         weight (N, K), bias?    -- (leading dims are positions)
maxpool/avgpool  1         --                      kernel, stride, pads, count_include_pad
gap              1         --                      -- (global average pool, keeps (C, 1, 1))
add              2         --                      --
relu, relu6      1         --                      --
clamp            1         --                      min, max
leaky_relu       1         --                      alpha
prelu            1         slope (C,)              --
flatten          1         --                      -- (C-order, like torch.flatten(x, 1))
reshape          1         --                      shape (without batch)
softmax          1         --                      axis (of the unbatched shape, default -1; host)
layernorm        1         gamma, beta             eps (host; over the last axis)
gelu             1         --                      approximate ("tanh"; absent = erf) (host)
attention        3 (q,k,v) --                      heads (host)
sigmoid          1         --                      -- (host)
hardsigmoid      1         --                      alpha, beta: clip(alpha*x + beta, 0, 1) (host)
hardswish        1         --                      alpha, beta: x * hardsigmoid(x) (host)
silu             1         --                      alpha: x * sigmoid(alpha*x) (host)
mul              2         --                      -- (host; numpy broadcasting of equal-rank shapes)
matmul           2         --                      alpha: alpha * (a @ b), leading dims broadcast (host)
transpose        1         --                      perm (of the unbatched axes) (host)
concat           >= 1      --                      axis (of the unbatched shape) (host)
slice            1         --                      axes, starts, steps, counts (host; start + k*step, k < count)
resize           1         --                      size (oh, ow), scales (sh, sw), mode, coord, nearest (host)
upsample         1         --                      up (sh, sw), border (t, l, b, r): zero insertion (host)
===============  ========  ======================  ==============================================

``upsample`` inserts ``up - 1`` zeros between neighbouring pixels and pads (or, negative, crops) the
border with zeros: the data movement of a ConvTranspose lowered to a stride-1 ``conv2d``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import ops_float as F
from .errors import ArasError

WEIGHT_OPS = ("conv2d", "linear")
ACT_OPS = ("relu", "relu6", "clamp", "leaky_relu", "prelu")
POOL_OPS = ("maxpool", "avgpool", "gap")
SHAPE_OPS = ("flatten", "reshape")
HOST_OPS = ("softmax", "layernorm", "gelu", "attention", "sigmoid", "hardsigmoid", "hardswish", "silu", "mul",
            "matmul", "transpose", "concat", "resize", "upsample", "slice")
ALL_OPS = WEIGHT_OPS + ACT_OPS + POOL_OPS + SHAPE_OPS + HOST_OPS + ("add",)
N_INPUTS = {"add": 2, "attention": 3, "mul": 2, "matmul": 2}
HOST_ELEMENTWISE = ("sigmoid", "hardsigmoid", "hardswish", "silu")


def n_inputs_ok(op: str, n: int) -> bool:
    """Whether ``op`` takes ``n`` inputs (``concat`` takes any positive number)."""
    return n >= 1 if op == "concat" else n == N_INPUTS.get(op, 1)


@dataclass
class FNode:
    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    params: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FloatGraph:
    """A float DNN ready for post-training quantization.

    ``weights`` is ``"real"`` (trained weights) or ``"synthetic"`` (shape-only stand-ins); every
    report carries it. ``fixed_qparams`` maps tensor names to (scale, zero_point) when the source
    model already carries activation quantization (QDQ ONNX); ``fixed_weight_scales`` maps weight
    node names to per-output-channel scales in that case.
    """

    name: str
    input_name: str
    input_shape: tuple[int, ...]
    nodes: list[FNode]
    outputs: list[str]
    weights: str = "real"
    fixed_qparams: dict[str, tuple[float, int]] = field(default_factory=dict)
    fixed_weight_scales: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.input_shape = tuple(int(d) for d in self.input_shape)
        self.shapes = self.check()

    # ------------------------------------------------------------------ validation, shapes
    def check(self) -> dict[str, tuple[int, ...]]:
        """Validate the graph; return every tensor's shape (without batch)."""
        if self.weights not in ("real", "synthetic"):
            raise ArasError(f"graph {self.name}: weights must be 'real' or 'synthetic', not {self.weights!r}")
        shapes: dict[str, tuple[int, ...]] = {self.input_name: self.input_shape}
        names = set()
        for n in self.nodes:
            where = f"graph {self.name}, node {n.name!r} ({n.op})"
            if n.op not in ALL_OPS:
                raise ArasError(f"{where}: unsupported operator {n.op!r}")
            if n.name in names:
                raise ArasError(f"{where}: duplicate node name")
            names.add(n.name)
            if not n_inputs_ok(n.op, len(n.inputs)):
                want = "at least 1" if n.op == "concat" else N_INPUTS.get(n.op, 1)
                raise ArasError(f"{where}: expects {want} inputs, got {len(n.inputs)}")
            for t in n.inputs:
                if t not in shapes:
                    raise ArasError(f"{where}: input tensor {t!r} is not produced before this node")
            if n.output in shapes:
                raise ArasError(f"{where}: output tensor {n.output!r} is produced twice")
            try:
                shapes[n.output] = _infer(n, [shapes[t] for t in n.inputs])
            except ArasError:
                raise
            except (ValueError, KeyError, IndexError, TypeError) as e:
                raise ArasError(f"{where}: {e}") from None
        for o in self.outputs:
            if o not in shapes:
                raise ArasError(f"graph {self.name}: output {o!r} is not produced by any node")
        if not self.outputs:
            raise ArasError(f"graph {self.name}: no outputs")
        return shapes

    def consumers(self, tensor: str) -> list[FNode]:
        return [n for n in self.nodes if tensor in n.inputs]

    # ------------------------------------------------------------------ float inference
    def run(self, x: np.ndarray, keep_all: bool = False) -> dict[str, np.ndarray]:
        """Float inference on a batch ``x`` (batch first). Returns the outputs (or every tensor)."""
        x = np.asarray(x, dtype=np.float64)
        if x.shape[1:] != self.input_shape:
            raise ArasError(
                f"graph {self.name}: input shape {x.shape[1:]} does not match the model's {self.input_shape}"
            )
        env = {self.input_name: x}
        last_use = {}
        for i, n in enumerate(self.nodes):
            for t in n.inputs:
                last_use[t] = i
        for i, n in enumerate(self.nodes):
            env[n.output] = run_node(n, [env[t] for t in n.inputs])
            if not keep_all:
                for t in set(n.inputs):  # add(y, y) names y twice
                    if last_use[t] == i and t not in self.outputs:
                        del env[t]
        return env if keep_all else {o: env[o] for o in self.outputs}


def _pair(v, name):
    v = tuple(int(a) for a in v)
    if len(v) != 2 or min(v) < 1:
        raise ArasError(f"{name} must be two positive integers, got {v}")
    return v


def _infer(n: FNode, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
    a = n.attrs
    s = ins[0]
    if n.op == "conv2d":
        w = n.params["weight"]
        if w.ndim != 4 or len(s) != 3:
            raise ArasError(f"node {n.name!r}: conv2d needs a (C, H, W) input and OIHW weight")
        g = int(a.get("groups", 1))
        if g < 1 or s[0] % g or w.shape[0] % g or w.shape[1] * g != s[0]:
            raise ArasError(f"node {n.name!r}: weight {w.shape} does not fit input {s} with groups={g}")
        _check_bias(n, w.shape[0])
        oh, ow = F.conv_out_hw(s[1], s[2], w.shape[2:], _pair(a.get("stride", (1, 1)), "stride"),
                               tuple(a.get("pads", (0, 0, 0, 0))), _pair(a.get("dilation", (1, 1)), "dilation"))
        if oh < 1 or ow < 1:
            raise ArasError(f"node {n.name!r}: kernel larger than padded input {s}")
        return (w.shape[0], oh, ow)
    if n.op == "linear":
        w = n.params["weight"]
        if w.ndim != 2 or s[-1] != w.shape[1]:
            raise ArasError(f"node {n.name!r}: linear weight {w.shape} does not fit input {s}")
        _check_bias(n, w.shape[0])
        return s[:-1] + (w.shape[0],)
    if n.op in ("maxpool", "avgpool"):
        if len(s) != 3:
            raise ArasError(f"node {n.name!r}: {n.op} needs a (C, H, W) input, got {s}")
        oh, ow = F.conv_out_hw(s[1], s[2], _pair(a["kernel"], "kernel"), _pair(a.get("stride", a["kernel"]), "stride"),
                               tuple(a.get("pads", (0, 0, 0, 0))), (1, 1))
        return (s[0], oh, ow)
    if n.op == "gap":
        if len(s) != 3:
            raise ArasError(f"node {n.name!r}: gap needs a (C, H, W) input, got {s}")
        return (s[0], 1, 1)
    if n.op == "add":
        if ins[0] != ins[1]:
            raise ArasError(f"node {n.name!r}: add of different shapes {ins[0]} and {ins[1]}")
        return s
    if n.op == "prelu":
        if n.params["slope"].shape != (s[0],):
            raise ArasError(f"node {n.name!r}: prelu slope shape {n.params['slope'].shape} != ({s[0]},)")
        return s
    if n.op in ACT_OPS or n.op in ("softmax", "gelu") or n.op in HOST_ELEMENTWISE:
        return s
    if n.op == "mul":
        if len(ins[0]) != len(ins[1]):
            raise ArasError(f"node {n.name!r}: mul of ranks {len(ins[0])} and {len(ins[1])}; equal ranks needed")
        return tuple(int(d) for d in np.broadcast_shapes(ins[0], ins[1]))
    if n.op == "matmul":
        a_, b_ = ins
        if len(a_) != len(b_) or len(a_) < 2 or a_[-1] != b_[-2]:
            raise ArasError(f"node {n.name!r}: matmul of {a_} and {b_} needs equal ranks >= 2 and a[-1] == b[-2]")
        return tuple(int(d) for d in np.broadcast_shapes(a_[:-2], b_[:-2])) + (a_[-2], b_[-1])
    if n.op == "transpose":
        perm = [int(p) for p in a["perm"]]
        if sorted(perm) != list(range(len(s))):
            raise ArasError(f"node {n.name!r}: perm {perm} is not a permutation of the {len(s)} unbatched axes")
        return tuple(s[p] for p in perm)
    if n.op == "concat":
        ax = int(a["axis"])
        ax = ax + len(s) if ax < 0 else ax
        if not 0 <= ax < len(s) or any(len(t) != len(s) or t[:ax] + t[ax + 1:] != s[:ax] + s[ax + 1:] for t in ins):
            raise ArasError(f"node {n.name!r}: cannot concatenate {list(ins)} on axis {a['axis']}")
        return s[:ax] + (sum(t[ax] for t in ins),) + s[ax + 1:]
    if n.op == "slice":
        out = list(s)
        for ax, cnt in zip(a["axes"], a["counts"], strict=True):
            if not 0 <= int(ax) < len(s) or int(cnt) < 1:
                raise ArasError(f"node {n.name!r}: slice axis {ax} / count {cnt} does not fit {s}")
            out[int(ax)] = int(cnt)
        for ax, st, sp, cnt in zip(a["axes"], a["starts"], a["steps"], a["counts"], strict=True):
            last = int(st) + (int(cnt) - 1) * int(sp)
            if not (0 <= int(st) < s[int(ax)] and 0 <= last < s[int(ax)]) or int(sp) == 0:
                raise ArasError(f"node {n.name!r}: slice of axis {ax} runs outside {s}")
        return tuple(out)
    if n.op == "resize":
        oh, ow = _pair(a["size"], "size")
        if len(s) != 3:
            raise ArasError(f"node {n.name!r}: resize needs a (C, H, W) input, got {s}")
        return (s[0], oh, ow)
    if n.op == "upsample":
        up = _pair(a["up"], "up")
        t, le, bo, r = (int(v) for v in a["border"])
        if len(s) != 3:
            raise ArasError(f"node {n.name!r}: upsample needs a (C, H, W) input, got {s}")
        oh, ow = (s[1] - 1) * up[0] + 1 + t + bo, (s[2] - 1) * up[1] + 1 + le + r
        if oh < 1 or ow < 1:
            raise ArasError(f"node {n.name!r}: border {a['border']} crops the whole map")
        return (s[0], oh, ow)
    if n.op == "layernorm":
        if n.params["gamma"].shape != (s[-1],) or n.params["beta"].shape != (s[-1],):
            raise ArasError(f"node {n.name!r}: layernorm gamma/beta must have shape ({s[-1]},)")
        return s
    if n.op == "attention":
        if not (ins[0] == ins[1] == ins[2]) or len(s) != 2 or s[1] % int(a["heads"]):
            raise ArasError(f"node {n.name!r}: attention needs equal (T, D) q/k/v with D divisible by heads")
        return s
    if n.op == "flatten":
        return (int(np.prod(s)),)
    if n.op == "reshape":
        shape = tuple(int(d) for d in a["shape"])
        if int(np.prod(shape)) != int(np.prod(s)):
            raise ArasError(f"node {n.name!r}: cannot reshape {s} to {shape}")
        return shape
    raise ArasError(f"node {n.name!r}: unsupported operator {n.op!r}")


def _check_bias(n: FNode, cout: int):
    b = n.params.get("bias")
    if b is not None and b.shape != (cout,):
        raise ArasError(f"node {n.name!r}: bias shape {b.shape} != ({cout},)")


def run_node(n: FNode, ins: list[np.ndarray]) -> np.ndarray:
    a, p, x = n.attrs, n.params, ins[0]
    if n.op == "conv2d":
        return F.conv2d(x, p["weight"], p.get("bias"), tuple(a.get("stride", (1, 1))), tuple(a.get("pads", (0,) * 4)),
                        tuple(a.get("dilation", (1, 1))), int(a.get("groups", 1)))
    if n.op == "linear":
        return F.linear(x, p["weight"], p.get("bias"))
    if n.op in ("maxpool", "avgpool"):
        return F.pool(x, n.op[:3], tuple(a["kernel"]), tuple(a.get("stride", a["kernel"])),
                      tuple(a.get("pads", (0,) * 4)), bool(a.get("count_include_pad", False)))
    if n.op == "gap":
        return F.global_avg_pool(x)
    if n.op == "add":
        return x + ins[1]
    if n.op == "relu":
        return np.maximum(x, 0.0)
    if n.op == "relu6":
        return np.clip(x, 0.0, 6.0)
    if n.op == "clamp":
        return np.clip(x, a["min"], a["max"])
    if n.op == "leaky_relu":
        return F.leaky_relu(x, a["alpha"])
    if n.op == "prelu":
        return F.leaky_relu(x, p["slope"])
    if n.op == "flatten":
        return x.reshape(x.shape[0], -1)
    if n.op == "reshape":
        return x.reshape((x.shape[0],) + tuple(a["shape"]))
    if n.op == "softmax":
        ax = int(a.get("axis", -1))
        return F.softmax(x, axis=ax if ax < 0 else ax + 1)
    if n.op == "layernorm":
        return F.layernorm(x, p["gamma"], p["beta"], float(a.get("eps", 1e-12)))
    if n.op == "gelu":
        return F.gelu_tanh(x) if a.get("approximate", "none") == "tanh" else F.gelu(x)
    if n.op == "sigmoid":
        return F.sigmoid(x)
    if n.op == "hardsigmoid":
        return F.hardsigmoid(x, float(a["alpha"]), float(a["beta"]))
    if n.op == "hardswish":
        return x * F.hardsigmoid(x, float(a["alpha"]), float(a["beta"]))
    if n.op == "silu":
        return x * F.sigmoid(float(a.get("alpha", 1.0)) * x)
    if n.op == "mul":
        return x * ins[1]
    if n.op == "matmul":
        return float(a.get("alpha", 1.0)) * np.matmul(x, ins[1])
    if n.op == "transpose":
        return np.transpose(x, [0] + [int(p) + 1 for p in a["perm"]])
    if n.op == "concat":
        ax = int(a["axis"])
        return np.concatenate(ins, axis=ax if ax < 0 else ax + 1)
    if n.op == "resize":
        return F.resize(x, tuple(a["size"]), tuple(a["scales"]), a.get("mode", "nearest"),
                        a.get("coord", "half_pixel"), a.get("nearest", "round_prefer_floor"))
    if n.op == "slice":
        for ax, st, sp, cnt in zip(a["axes"], a["starts"], a["steps"], a["counts"], strict=True):
            x = np.take(x, int(st) + int(sp) * np.arange(int(cnt)), axis=int(ax) + 1)
        return x
    if n.op == "upsample":
        return F.upsample_zeros(x, tuple(a["up"]), tuple(a["border"]))
    if n.op == "attention":
        return F.attention(x, ins[1], ins[2], int(a["heads"]))
    raise ArasError(f"node {n.name!r}: unsupported operator {n.op!r}")
