"""Small float and int8-QDQ ONNX models built with ``onnx.helper``, for the importer tests.

Weights are seeded random numbers; every builder returns an ``onnx.ModelProto`` that passes the
ONNX checker and runs in ``onnx.reference.ReferenceEvaluator``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT = TensorProto.FLOAT


class Builder:
    """Collects nodes and weights; ``constants=True`` stores weights as Constant nodes."""

    def __init__(self, constants: bool = False, seed: int = 0):
        self.constants = constants
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, arr) -> str:
        arr = np.asarray(arr)
        t = numpy_helper.from_array(arr, name)
        if self.constants:
            self.nodes.append(helper.make_node("Constant", [], [name], name=f"const_{name}", value=t))
        else:
            self.inits.append(t)
        return name

    def w(self, name: str, *shape, scale: float = 0.3) -> str:
        return self.const(name, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op: str, inputs: list[str], output: str | list[str], name: str | None = None, **attrs) -> str:
        outs = [output] if isinstance(output, str) else output
        self.nodes.append(helper.make_node(op, inputs, outs, name=output if name is None else name, **attrs))
        return outs[0]

    def bn(self, x: str, c: int, name: str, zero_var: bool = False) -> str:
        """BatchNormalization with random stats; ``zero_var``: channel 0 has var 0, channel 1 gamma 0."""
        gamma = self.rng.uniform(0.5, 1.5, c).astype(np.float32)
        beta = (self.rng.standard_normal(c) * 0.1).astype(np.float32)
        mean = (self.rng.standard_normal(c) * 0.1).astype(np.float32)
        var = self.rng.uniform(0.5, 2.0, c).astype(np.float32)
        if zero_var:
            var[0] = 0.0
            gamma[1] = 0.0
        ins = [self.const(f"{name}_{k}", v) for k, v in (("g", gamma), ("b", beta), ("m", mean), ("v", var))]
        return self.node("BatchNormalization", [x] + ins, name, epsilon=1e-3)

    def model(self, inp: str, in_shape, outputs: dict[str, list], opset: int = 17, name: str = "test") \
            -> onnx.ModelProto:
        """``outputs``: name -> shape (the checker wants output shapes; batch may be symbolic)."""
        g = helper.make_graph(self.nodes, name, [helper.make_tensor_value_info(inp, FLOAT, in_shape)],
                              [helper.make_tensor_value_info(o, FLOAT, s) for o, s in outputs.items()], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        onnx.checker.check_model(m)
        return m


def cnn(constants: bool = False, seed: int = 0) -> onnx.ModelProto:
    """Conv+BN (with and without conv bias), depthwise conv with SAME_UPPER, ReLU6 via Clip with
    Constant bounds, a residual Add, a dilated conv with one all-zero filter, ceil-mode max pool,
    GAP, Flatten, a Gemm head (transB, alpha, beta) and a Softmax: two outputs (logits, probs)."""
    b = Builder(constants, seed)
    x = b.node("Conv", ["input", b.w("w1", 8, 3, 3, 3), b.w("b1", 8)], "conv1", pads=[1, 1, 1, 1])
    x = b.node("Relu", [b.bn(x, 8, "bn1")], "relu1", name="")  # unnamed node
    x = b.node("Conv", [x, b.w("w2", 8, 1, 3, 3)], "conv2", group=8, strides=[2, 2], auto_pad="SAME_UPPER")
    x = b.bn(x, 8, "bn2", zero_var=True)
    lo = b.node("Constant", [], "clip_lo", value=numpy_helper.from_array(np.array(0.0, np.float32)))
    hi = b.node("Constant", [], "clip_hi", value=numpy_helper.from_array(np.array(6.0, np.float32)))
    c2 = b.node("Clip", [x, lo, hi], "relu6_2", name="clip/2:relu6")  # name needs sanitizing
    x = b.node("Conv", [c2, b.w("w3", 8, 8, 1, 1)], "conv3")
    x = b.bn(x, 8, "bn3")
    x = b.node("Add", [c2, x], "res")
    x = b.node("Relu", [x], "relu3")
    w4 = (b.rng.standard_normal((16, 8, 3, 3)) * 0.2).astype(np.float32)
    w4[5] = 0.0  # an all-zero filter
    x = b.node("Conv", [x, b.const("w4", w4), b.w("b4", 16)], "conv4", pads=[2, 2, 2, 2], dilations=[2, 2])
    x = b.node("Relu", [x], "relu4")
    x = b.node("MaxPool", [x], "pool4", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flat", axis=1)
    logits = b.node("Gemm", [x, b.w("fc_w", 10, 16), b.w("fc_b", 10)], "logits", transB=1, alpha=0.5, beta=2.0)
    b.node("Softmax", [logits], "probs", axis=1)
    return b.model("input", ["N", 3, 16, 16], {"logits": ["N", 10], "probs": ["N", 10]})


def extras(constants: bool = False, seed: int = 1) -> onnx.ModelProto:
    """The remaining operators: VALID / SAME_LOWER grouped conv, PRelu, LeakyRelu, average pools,
    Clip -> clamp, Identity, Dropout, the Shape-Gather-Unsqueeze-Concat-Reshape flatten, MatMul +
    bias Add, Reshape with 0, MatMul on positions, GlobalMaxPool, ReduceMean: three outputs."""
    b = Builder(constants, seed)
    x = b.node("Conv", ["x", b.w("w1", 6, 4, 3, 3), b.w("b1", 6)], "conv1", auto_pad="VALID")  # (6, 7, 7)
    p = b.node("PRelu", [x, b.const("slope", np.linspace(-0.5, 0.5, 6, dtype=np.float32).reshape(6, 1, 1))],
               "prelu1")
    x = b.node("LeakyRelu", [p], "lrelu", alpha=0.2)
    x = b.node("Conv", [x, b.w("w2", 6, 3, 2, 2)], "conv2", group=2, auto_pad="SAME_LOWER")  # (6, 7, 7)
    x = b.node("AveragePool", [x], "ap1", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               count_include_pad=1)  # (6, 4, 4)
    x = b.node("AveragePool", [x], "ap2", kernel_shape=[2, 2], pads=[0, 0, 1, 1])  # (6, 4, 4)
    x = b.node("Clip", [x, b.const("lo", np.array(-0.25, np.float32)), b.const("hi", np.array(0.5, np.float32))],
               "clamp")
    x = b.node("Identity", [x], "ident")
    x = b.node("Dropout", [x], "drop")
    sh = b.node("Shape", [x], "shape")
    b0 = b.node("Gather", [sh, b.const("zero", np.array(0, np.int64))], "batch", axis=0)
    b0 = b.node("Unsqueeze", [b0, b.const("ax0", np.array([0], np.int64))], "batch1")
    tgt = b.node("Concat", [b0, b.const("m1", np.array([-1], np.int64))], "target", axis=0)
    x = b.node("Reshape", [x, tgt], "flat")  # (96,)
    x = b.node("MatMul", [x, b.w("mm1_w", 96, 12, scale=0.1)], "mm1")
    x = b.node("Add", [b.w("mm1_b", 12), x], "mm1_add")  # constant first: still a bias
    x = b.node("Reshape", [x, b.const("shp", np.array([0, 3, -1], np.int64))], "seq")  # (3, 4)
    x = b.node("MatMul", [x, b.w("mm2_w", 4, 5)], "mm2")
    x = b.node("Add", [x, b.w("mm2_b", 1, 5)], "mm2_add")
    b.node("Softmax", [x], "out_seq", axis=-1)
    gm = b.node("GlobalMaxPool", [p], "gmp")
    b.node("Flatten", [gm], "out_gmp")
    b.node("ReduceMean", [p, b.const("rm_axes", np.array([-1, 2], np.int64))], "out_mean", keepdims=0)
    return b.model("x", ["batch", 4, 9, 9], {"out_seq": ["batch", 3, 5], "out_gmp": ["batch", 6],
                                                "out_mean": ["batch", 6]}, opset=18)


def legacy(seed: int = 2) -> onnx.ModelProto:
    """Opset 10: Gemm with a scalar and a (1, N) bias, Clip bounds as attributes, legacy Softmax.

    (No BN here: the reference evaluator runs opset 9-13 BatchNormalization in training mode.)"""
    b = Builder(False, seed)
    x = b.node("Gemm", ["x", b.w("w1", 5, 7), b.const("c1", np.array(0.1, np.float32))], "fc1")  # B is (K, N)
    x = b.node("Clip", [x], "clip1", min=0.0, max=6.0)
    x = b.node("Dropout", [x], "drop", ratio=0.3)
    x = b.node("Gemm", [x, b.w("w2", 7, 3), b.w("b2", 1, 3)], "fc2")
    b.node("Softmax", [x], "probs")
    return b.model("x", [1, 5], {"probs": [1, 3]}, opset=10)


def mlp_bn(seed: int = 4) -> onnx.ModelProto:
    """BatchNormalization folded into a bias-less Gemm and into a MatMul + bias Add."""
    b = Builder(False, seed)
    x = b.node("Gemm", ["x", b.w("w1", 5, 6)], "fc1")
    x = b.node("Relu", [b.bn(x, 6, "bn1")], "relu1")
    x = b.node("MatMul", [x, b.w("w2", 6, 4)], "mm2")
    x = b.node("Add", [x, b.w("b2", 4)], "mm2_add")
    b.bn(x, 4, "out", zero_var=True)
    return b.model("x", ["N", 5], {"out": ["N", 4]}, opset=17)


def single(op: str, in_shape, params: dict, attrs: dict | None = None, name: str = "the_node",
           opset: int = 17, out_shape=None) -> onnx.ModelProto:
    """One ``op`` node on input ``x`` with constant inputs ``params`` (name -> array), output ``y``
    (of shape ``out_shape``, default ``in_shape``)."""
    b = Builder(False, 0)
    b.node(op, ["x"] + [b.const(k, v) for k, v in params.items()], "y", name=name, **(attrs or {}))
    return b.model("x", in_shape, {"y": in_shape if out_shape is None else out_shape}, opset=opset)


# ------------------------------------------------------------------------------------------ QDQ
QDQ_SCALES = {"x": 0.05, "relu": 0.04, "gap": 0.02, "fc": 0.1}


def qdq_weights(seed: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_q": rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8),
        "conv_s": rng.uniform(0.002, 0.01, 4).astype(np.float32),
        "conv_bq": rng.integers(-500, 500, 4).astype(np.int32),
        "fc_q": rng.integers(-127, 128, (5, 4)).astype(np.int8),
        "fc_s": rng.uniform(0.005, 0.02, 5).astype(np.float32),
    }


def qdq_cnn(dequantized: bool = False, qtype=np.int8, seed: int = 3) -> onnx.ModelProto:
    """An int8 QDQ CNN (ONNX Runtime layout): Q/DQ on the input, after Relu, after GAP and on the
    output; per-channel int8 weights and an int32 bias behind DequantizeLinear; MaxPool and Flatten
    without their own Q/DQ. ``dequantized=True``: the same network in float (weights dequantized
    here with numpy, activation Q/DQ left out), the oracle for the float import."""
    wts = qdq_weights(seed)
    b = Builder(False, seed)
    zp_dt = np.dtype(qtype)
    zps = {"x": 3, "relu": -128, "gap": -128, "fc": 0} if zp_dt == np.int8 else {k: 128 for k in QDQ_SCALES}

    def qdq(t: str, key: str) -> str:
        if dequantized:
            return t
        s = b.const(f"{key}_scale", np.array(QDQ_SCALES[key], np.float32))
        z = b.const(f"{key}_zp", np.array(zps[key], zp_dt))
        q = b.node("QuantizeLinear", [t, s, z], f"{t}_q")
        return b.node("DequantizeLinear", [q, s, z], f"{t}_dq")

    conv_bias_scale = QDQ_SCALES["x"] * wts["conv_s"]
    if dequantized:
        cw = b.const("conv_w", wts["conv_q"].astype(np.float32) * wts["conv_s"].reshape(4, 1, 1, 1))
        cb = b.const("conv_b", (wts["conv_bq"] * conv_bias_scale).astype(np.float32))
        fw = b.const("fc_w", wts["fc_q"].astype(np.float32) * wts["fc_s"].reshape(5, 1))
    else:
        cw = b.node("DequantizeLinear", [b.const("conv_wq", wts["conv_q"]), b.const("conv_ws", wts["conv_s"]),
                                         b.const("conv_wz", np.zeros(4, np.int8))], "conv_w", axis=0)
        cb = b.node("DequantizeLinear", [b.const("conv_bq", wts["conv_bq"]),
                                         b.const("conv_bs", conv_bias_scale.astype(np.float32))], "conv_b", axis=0)
        fw = b.node("DequantizeLinear", [b.const("fc_wq", wts["fc_q"]), b.const("fc_ws", wts["fc_s"]),
                                         b.const("fc_wz", np.zeros(5, np.int8))], "fc_w", axis=0)
    x = qdq("x", "x")
    x = b.node("Conv", [x, cw, cb], "conv", pads=[1, 1, 1, 1])
    x = qdq(b.node("Relu", [x], "relu"), "relu")
    x = b.node("MaxPool", [x], "pool", kernel_shape=[2, 2], strides=[2, 2])
    x = qdq(b.node("GlobalAveragePool", [x], "gap"), "gap")
    x = b.node("Flatten", [x], "flat")
    x = qdq(b.node("Gemm", [x, fw], "fc", transB=1), "fc")
    return b.model("x", ["N", 3, 8, 8], {x: ["N", 5]}, opset=19)


def qdq_matmul_add(seed: int = 5) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """QDQ MatMul -> Q/DQ -> Add(bias) -> Q/DQ (transformer-style export), and its float twin."""
    rng = np.random.default_rng(seed)
    wq = rng.integers(-127, 128, (6, 4)).astype(np.int8)
    ws = np.float32(0.01)  # per-tensor weight scale
    bias = rng.standard_normal(4).astype(np.float32)
    models = []
    for quant in (True, False):
        b = Builder(False, seed)

        def qdq(t: str, s: float, zp: int, quant=quant, b=b) -> str:
            if not quant:
                return t
            sc, z = b.const(f"{t}_s", np.array(s, np.float32)), b.const(f"{t}_z", np.array(zp, np.int8))
            return b.node("DequantizeLinear", [b.node("QuantizeLinear", [t, sc, z], f"{t}_q"), sc, z], f"{t}_dq")

        if quant:
            w = b.node("DequantizeLinear", [b.const("wq", wq), b.const("ws", np.array(ws))], "w")
        else:
            w = b.const("w", wq.astype(np.float32) * ws)
        x = b.node("MatMul", [qdq("x", 0.03, 0), w], "mm")
        x = qdq(b.node("Add", [qdq(x, 0.05, 1), b.const("bias", bias)], "mm_add"), 0.06, -2)
        models.append(b.model("x", ["N", 3, 6], {x: ["N", 3, 4]}, opset=19))
    return models[0], models[1]


# ------------------------------------------------------------------------------------------ dead channels
DEAD_CONV = {1: 0.8, 3: -0.6, 5: 0.0}  # conv output channel -> float bias of its all-zero filter (BN: identity)
DEAD_BN = {6: (0.0, 0.45), 7: (1e-30, 0.35)}  # channel -> (BN gamma, beta): killed by BN (0) / nearly (1e-30)
DEAD_FC = {1: 0.7, 2: -0.4, 4: 0.0}  # fc output row -> float bias of its all-zero row


def dead_channels(set_values: dict[str, dict] | None = None, seed: int = 6) -> onnx.ModelProto:
    """Conv(8 filters) + BN + Relu -> GAP -> Flatten -> Gemm(6), with dead output channels.

    Conv channels in ``DEAD_CONV`` have all-zero filters and the given conv bias (their BN is the
    identity up to float32 rounding of var + eps, mean 0, beta 0); channels in ``DEAD_BN`` are killed by
    their BN gamma (exactly 0, or 1e-30: folded weights ~1e-30 but not zero); Gemm rows in ``DEAD_FC``
    are all zero with the given bias. ``set_values``: initializer name (``conv_w``, ``conv_b``,
    ``bn_g``, ``bn_b``, ``bn_m``, ``bn_v``, ``fc_w``, ``fc_b``) -> {index: value} overrides, e.g. a
    huge or NaN entry."""
    rng = np.random.default_rng(seed)
    arrs = {
        "conv_w": (rng.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32),
        "conv_b": (rng.standard_normal(8) * 0.2).astype(np.float32),
        "bn_g": rng.uniform(0.5, 1.5, 8).astype(np.float32),
        "bn_b": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "bn_m": (rng.standard_normal(8) * 0.1).astype(np.float32),
        "bn_v": rng.uniform(0.5, 2.0, 8).astype(np.float32),
        "fc_w": (rng.standard_normal((6, 8)) * 0.5).astype(np.float32),
        "fc_b": (rng.standard_normal(6) * 0.2).astype(np.float32),
    }
    for c, bias in DEAD_CONV.items():
        arrs["conv_w"][c] = 0.0
        arrs["conv_b"][c] = bias
        arrs["bn_g"][c], arrs["bn_b"][c], arrs["bn_m"][c], arrs["bn_v"][c] = 1.0, 0.0, 0.0, 1.0 - 1e-3
    for c, (gamma, beta) in DEAD_BN.items():
        arrs["bn_g"][c], arrs["bn_b"][c] = gamma, beta
    for r, bias in DEAD_FC.items():
        arrs["fc_w"][r] = 0.0
        arrs["fc_b"][r] = bias
    for name, vals in (set_values or {}).items():
        for i, v in vals.items():
            arrs[name][i] = v
    b = Builder(False, seed)
    c = {k: b.const(k, v) for k, v in arrs.items()}
    x = b.node("Conv", ["x", c["conv_w"], c["conv_b"]], "conv", pads=[1, 1, 1, 1])
    x = b.node("BatchNormalization", [x, c["bn_g"], c["bn_b"], c["bn_m"], c["bn_v"]], "bn", epsilon=1e-3)
    x = b.node("Relu", [x], "relu")
    x = b.node("GlobalAveragePool", [x], "gap")
    x = b.node("Flatten", [x], "flat", axis=1)
    b.node("Gemm", [x, c["fc_w"], c["fc_b"]], "fc", transB=1)
    return b.model("x", ["N", 3, 8, 8], {"fc": ["N", 6]})


# ------------------------------------------------------------------------------------------ issue 17 patterns
def hard_swish_written(b: Builder, x: str, name: str, form: int = 0) -> str:
    """x * Relu6(x + 3) / 6 as exporters write it: form 0 ``Mul(x, Div(Clip(Add(x, 3), 0, 6), 6))``,
    form 1 ``Div(Mul(x, Clip(Add(x, 3), 0, 6)), 6)``, form 2 ``Mul(Mul(x, Clip(...)), 1/6)``."""
    t = b.node("Add", [x, b.const(f"{name}_three", np.array(3.0, np.float32))], f"{name}_add3")
    t = b.node("Clip", [t, b.const(f"{name}_lo", np.array(0.0, np.float32)),
                        b.const(f"{name}_hi", np.array(6.0, np.float32))], f"{name}_relu6")
    if form == 0:
        t = b.node("Div", [t, b.const(f"{name}_six", np.array(6.0, np.float32))], f"{name}_hsig")
        return b.node("Mul", [x, t], name)
    t = b.node("Mul", [t, x], f"{name}_prod")
    if form == 1:
        return b.node("Div", [t, b.const(f"{name}_six", np.array(6.0, np.float32))], name)
    return b.node("Mul", [b.const(f"{name}_sixth", np.array(1 / 6, np.float32)), t], name)


def conv_bn(b: Builder, x: str, cin: int, cout: int, name: str, k: int = 3, stride: int = 1, group: int = 1) -> str:
    x = b.node("Conv", [x, b.w(f"{name}_w", cout, cin // group, k, k, scale=0.5 / np.sqrt(cin // group * k * k))],
               f"{name}_conv", pads=[k // 2] * 4, strides=[stride, stride], group=group)
    return b.bn(x, cout, name)


def mobilenetv3_like(seed: int = 11, spatial=(16, 16)) -> onnx.ModelProto:
    """A MobileNetV3-style classifier as torch exports it: stem conv + BN + hard-swish written out
    (the conv output read by the Add of 3 and by the Mul), a depthwise block with a squeeze-and-
    excitation (GAP -> 1x1 conv -> ReLU -> 1x1 conv -> HardSigmoid -> channel-wise Mul), a 1x1
    projection with x * HardSigmoid(x), an expansion with SiLU (x * Sigmoid(x), EfficientNet), a
    residual Add, a Mul/Add of per-channel constants (a layer scale on a ReLU output: lowered to a
    depthwise 1x1 conv), GAP, Flatten, Gemm. ``spatial`` may hold symbolic names (e.g. ("H", "W"))."""
    b = Builder(False, seed)
    x = hard_swish_written(b, conv_bn(b, "x", 3, 8, "stem", stride=2), "stem_hs", 0)
    d = b.node("Relu", [conv_bn(b, x, 8, 8, "dw", group=8)], "dw_relu")
    s = b.node("GlobalAveragePool", [d], "se_gap")
    s = b.node("Relu", [b.node("Conv", [s, b.w("se1_w", 4, 8, 1, 1), b.w("se1_b", 4, scale=0.1)], "se1")], "se_relu")
    s = b.node("Conv", [s, b.w("se2_w", 8, 4, 1, 1), b.w("se2_b", 8, scale=0.1)], "se2")
    s = b.node("HardSigmoid", [s], "se_hsig", alpha=1 / 6, beta=0.5)
    d = b.node("Mul", [d, s], "se_scale")
    p = conv_bn(b, d, 8, 8, "proj", k=1)
    p = b.node("Mul", [p, b.node("HardSigmoid", [p], "proj_hsig", alpha=1 / 6, beta=0.5)], "proj_hs")
    r = b.node("Add", [p, x], "res")
    e = conv_bn(b, r, 8, 12, "exp", k=1)
    e = b.node("Mul", [b.node("Sigmoid", [e], "exp_sig"), e], "exp_silu")
    e = b.node("Relu", [e], "exp_relu")
    e = b.node("Mul", [e, b.const("ls_g", b.rng.uniform(0.5, 1.5, (12, 1, 1)).astype(np.float32))], "ls_mul")
    e = b.node("Add", [e, b.const("ls_b", (b.rng.standard_normal((12, 1, 1)) * 0.1).astype(np.float32))], "ls_add")
    e = hard_swish_written(b, e, "head_hs", 1)
    g = b.node("Flatten", [b.node("GlobalAveragePool", [e], "gap")], "flat")
    b.node("Gemm", [g, b.w("fc_w", 5, 12), b.w("fc_b", 5, scale=0.1)], "logits", transB=1)
    return b.model("x", ["N", 3, *spatial], {"logits": ["N", 5]})


def unet_like(seed: int = 12) -> onnx.ModelProto:
    """A U-Net-style segmenter: encoder conv + ReLU, stride-2 conv, ConvTranspose (stride 2) + BN +
    ReLU back up, Concat with the skip, conv, nearest Resize x2 and bilinear Resize
    (sizes), a ConvTranspose with stride 1 and asymmetric pads, and a 1x1 conv head. Input (N, 3, 9, 9)."""
    b = Builder(False, seed)
    e1 = b.node("Relu", [b.node("Conv", ["x", b.w("e1_w", 6, 3, 3, 3, scale=0.3), b.w("e1_b", 6, scale=0.1)], "e1",
                                pads=[1, 1, 1, 1])], "e1_relu")  # (6, 9, 9)
    e2 = b.node("Relu", [b.node("Conv", [e1, b.w("e2_w", 8, 6, 3, 3, scale=0.25)], "e2", pads=[1, 1, 1, 1],
                                strides=[2, 2])], "e2_relu")  # (8, 5, 5)
    u = b.node("ConvTranspose", [e2, b.w("up_w", 8, 6, 3, 3, scale=0.25), b.w("up_b", 6, scale=0.1)], "up",
               strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[0, 0])  # (6, 9, 9)
    u = b.node("Relu", [b.bn(u, 6, "up_bn")], "up_relu")  # BN after the ConvTranspose: folded into its conv
    c = b.node("Concat", [u, e1], "cat", axis=1)  # (12, 9, 9)
    c = b.node("Relu", [b.node("Conv", [c, b.w("d1_w", 4, 12, 3, 3, scale=0.2)], "d1", pads=[1, 1, 1, 1])], "d1_relu")
    r = b.node("Resize", [c, "", b.const("sc", np.array([1, 1, 2, 2], np.float32))], "up_nn", mode="nearest")
    r = b.node("Resize", [r, "", "", b.const("sz", np.array([1, 4, 12, 12], np.int64))], "up_lin", mode="linear")
    t = b.node("ConvTranspose", [r, b.w("t1_w", 4, 4, 3, 3, scale=0.3)], "t1", pads=[1, 0, 1, 2])
    b.node("Conv", [t, b.w("head_w", 2, 4, 1, 1), b.w("head_b", 2, scale=0.1)], "seg")
    return b.model("x", ["N", 3, 9, 9], {"seg": ["N", 2, 12, 12]})


def layer_norm_written(b: Builder, x: str, d: int, name: str, affine: bool = True) -> str:
    """LayerNorm over the last axis as exported: ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div,
    Mul gamma, Add beta (ReduceMean axes as an input: opset 18)."""
    ax = b.const(f"{name}_axes", np.array([-1], np.int64))
    mu = b.node("ReduceMean", [x, ax], f"{name}_mean")
    dd = b.node("Sub", [x, mu], f"{name}_sub")
    v = b.node("ReduceMean", [b.node("Pow", [dd, b.const(f"{name}_two", np.array(2.0, np.float32))], f"{name}_pow"),
                              ax], f"{name}_var")
    s = b.node("Sqrt", [b.node("Add", [v, b.const(f"{name}_eps", np.array(1e-5, np.float32))], f"{name}_ve")],
               f"{name}_std")
    y = b.node("Div", [dd, s], f"{name}_norm" if affine else name)
    if not affine:
        return y
    y = b.node("Mul", [y, b.const(f"{name}_g", b.rng.uniform(0.5, 1.5, d).astype(np.float32))], f"{name}_mul")
    return b.node("Add", [y, b.const(f"{name}_b", (b.rng.standard_normal(d) * 0.1).astype(np.float32))], name)


def gelu_written(b: Builder, x: str, name: str, tanh: bool = False) -> str:
    """GELU as exported: erf form ``x * 0.5 * (1 + Erf(x / sqrt 2))``, or the tanh form
    ``0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * Pow(x, 3))))``."""
    if tanh:
        c = b.node("Pow", [x, b.const(f"{name}_3", np.array(3.0, np.float32))], f"{name}_cube")
        c = b.node("Mul", [c, b.const(f"{name}_k", np.array(0.044715, np.float32))], f"{name}_kc")
        c = b.node("Add", [x, c], f"{name}_in")
        c = b.node("Mul", [b.const(f"{name}_s", np.array(np.sqrt(2 / np.pi), np.float32)), c], f"{name}_sc")
        e = b.node("Tanh", [c], f"{name}_tanh")
    else:
        e = b.node("Erf", [b.node("Div", [x, b.const(f"{name}_r2", np.array(np.sqrt(2.0), np.float32))],
                                  f"{name}_div")], f"{name}_erf")
    e = b.node("Add", [e, b.const(f"{name}_one", np.array(1.0, np.float32))], f"{name}_1p")
    h = b.node("Mul", [x, b.const(f"{name}_half", np.array(0.5, np.float32))], f"{name}_half_x")
    return b.node("Mul", [h, e], name)


def transformer_like(seed: int = 13, t: int = 6, d: int = 16, heads: int = 2) -> onnx.ModelProto:
    """One pre-LN transformer block as exported from PyTorch: LayerNorm written out, Q/K/V MatMul +
    bias Add, Reshape/Transpose into heads, score MatMul of two activations, Div by sqrt(head dim),
    Softmax, context MatMul, Transpose/Reshape back, output projection, residual Add, an ONNX
    LayerNormalization op, an FFN with the erf GELU written out, residual Add, and a head with
    the tanh GELU written out. Input (N, T, D)."""
    b = Builder(False, seed)
    hd = d // heads
    h = layer_norm_written(b, "x", d, "ln1")

    def proj(inp, nm, n_out=d):
        y = b.node("MatMul", [inp, b.w(f"{nm}_w", d if nm != "ff2" else 2 * d, n_out, scale=0.3)], f"{nm}_mm")
        return b.node("Add", [y, b.w(f"{nm}_b", n_out, scale=0.05)], nm)

    def heads_of(y, nm, perm):
        y = b.node("Reshape", [y, b.const(f"{nm}_shp", np.array([0, t, heads, hd], np.int64))], f"{nm}_r")
        return b.node("Transpose", [y], f"{nm}_t", perm=perm)

    q = heads_of(proj(h, "q"), "q", [0, 2, 1, 3])  # (H, T, hd)
    k = heads_of(proj(h, "k"), "k", [0, 2, 3, 1])  # (H, hd, T)
    v = heads_of(proj(h, "v"), "v", [0, 2, 1, 3])
    s = b.node("MatMul", [q, k], "scores")
    s = b.node("Div", [s, b.const("sqrt_hd", np.array(np.sqrt(hd), np.float32))], "scores_scaled")
    s = b.node("Softmax", [s], "attn", axis=-1)
    c = b.node("MatMul", [s, v], "ctx")
    c = b.node("Transpose", [c], "ctx_t", perm=[0, 2, 1, 3])
    c = b.node("Reshape", [c, b.const("ctx_shp", np.array([0, t, d], np.int64))], "ctx_r")
    x1 = b.node("Add", ["x", proj(c, "o")], "res1")
    h2 = b.node("LayerNormalization", [x1, b.const("ln2_g", b.rng.uniform(0.5, 1.5, d).astype(np.float32)),
                                       b.const("ln2_b", (b.rng.standard_normal(d) * 0.1).astype(np.float32))],
                "ln2", axis=-1, epsilon=1e-5)
    f = gelu_written(b, proj(h2, "ff1", 2 * d), "gelu1")
    x2 = b.node("Add", [x1, proj(f, "ff2")], "res2")
    gelu_written(b, x2, "out", tanh=True)
    return b.model("x", ["N", t, d], {"out": ["N", t, d]}, opset=18)
