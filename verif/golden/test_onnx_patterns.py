"""Issue 17: graph normalisation (input shapes, constant folding, pattern fusion), host-path operators,
ConvTranspose lowered to crossbar convolutions, and the import accuracy report.

Every graph is built with onnx.helper and checked twice: the imported float graph against
onnx.reference.ReferenceEvaluator (exact up to float rounding), and the quantized int8 golden model
(sim_models.functional on ``paper``) against the same float reference (cosine >= 0.99)."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from aras import config as C
from aras.errors import ArasError
from aras.importers.onnx_accuracy import accuracy
from aras.importers.onnx_import import from_model
from aras.importers.onnx_normalise import parse_input_shapes
from aras.models import ModelSource
from aras.quantize import quantize

try:  # verif/golden as a package or as a plain test directory
    from . import onnx_graphs as G
except ImportError:
    import onnx_graphs as G

TOL = 2e-5
PAPER = C.load("paper")


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _ref(model, x):
    """Float reference, one sample at a time (onnx 1.23's reference ConvTranspose handles only image 0)."""
    ev = ReferenceEvaluator(model)
    name = model.graph.input[0].name
    runs = [ev.run(None, {name: x[i:i + 1]}) for i in range(len(x))]
    return [np.concatenate([r[j] for r in runs]) for j in range(len(runs[0]))]


def _float_and_int8(model, x, calib=None, min_cos=0.99, **kw):
    """Import; float graph == reference; int8 golden model tracks it. Returns (graph, trace, rows)."""
    g = from_model(model, "m.onnx", **kw)
    ref = _ref(model, x)
    got = g.run(x)
    assert len(g.outputs) == len(ref)
    for name, r in zip(g.outputs, ref, strict=True):
        assert got[name].shape == r.shape, name
        np.testing.assert_allclose(got[name], r, rtol=TOL, atol=TOL, err_msg=name)
    calib = x if calib is None else calib
    tr = quantize(ModelSource(g, calib, x[:4]))
    rows, runtime = accuracy(model, tr, g, x, PAPER)
    assert "ReferenceEvaluator" in runtime or "onnxruntime" in runtime
    for r in rows:
        assert r["cosine"] >= min_cos, rows
    return g, tr, rows


def _ops(g):
    return [n.op for n in g.nodes]


# ------------------------------------------------------------------------------------ small nets
def test_mobilenetv3_like():
    g, tr, rows = _float_and_int8(G.mobilenetv3_like(), _x((12, 3, 16, 16), 1))
    ops = _ops(g)
    assert ops.count("hardswish") == 3 and ops.count("silu") == 1 and ops.count("hardsigmoid") == 1
    assert ops.count("mul") == 1  # the SE channel-wise product of two activations
    nodes = {n.name: n for n in g.nodes}
    assert nodes["stem_hs"].op == "hardswish" and nodes["stem_hs"].attrs == pytest.approx({"alpha": 1 / 6, "beta": 0.5})
    # layer scale Mul on a ReLU output -> depthwise 1x1 conv, and the Add after it folds into that conv's bias
    assert nodes["ls_mul"].op == "conv2d" and nodes["ls_mul"].attrs["groups"] == 12
    assert nodes["ls_mul"].output == "ls_add"
    assert [ly.name for ly in tr.layers if ly.on_host] == ["stem_hs", "se_hsig", "se_scale", "proj_hs", "exp_silu",
                                                           "head_hs"]
    print("mobilenetv3-like cosine", rows[0]["cosine"])


def test_unet_like():
    g, tr, rows = _float_and_int8(G.unet_like(), _x((10, 3, 9, 9), 2))
    nodes = {n.name: n for n in g.nodes}
    assert nodes["up_upsample"].op == "upsample" and nodes["up"].op == "conv2d"  # stride 2: zero insertion + conv
    assert nodes["up"].inputs == ["up_up"] and nodes["up"].attrs["pads"] == (0, 0, 0, 0)
    assert nodes["up"].output == "up_bn"  # the BN after the ConvTranspose folded into its conv
    assert nodes["t1"].op == "conv2d" and nodes["t1"].attrs["pads"] == (1, 2, 1, 0)  # stride 1: padding only
    assert nodes["cat"].op == "concat" and nodes["up_lin"].attrs["mode"] == "linear"
    assert {ly.name for ly in tr.layers if ly.on_crossbars} >= {"up", "t1"}
    print("unet-like cosine", rows[0]["cosine"])


def test_transformer_like():
    g, tr, rows = _float_and_int8(G.transformer_like(), _x((10, 6, 16), 3))
    nodes = {n.name: n for n in g.nodes}
    assert nodes["ln1"].op == "layernorm" and nodes["ln2"].op == "layernorm"
    assert nodes["gelu1"].op == "gelu" and nodes["gelu1"].attrs == {}
    assert nodes["out"].op == "gelu" and nodes["out"].attrs == {"approximate": "tanh"}
    # Div by sqrt(head dim) after the score MatMul of two activations folds into its alpha
    assert nodes["scores"].op == "matmul" and nodes["scores"].output == "scores_scaled"
    assert nodes["scores"].attrs["alpha"] == pytest.approx(1 / np.sqrt(8), rel=1e-6)
    assert "ctx" in nodes and nodes["ctx"].op == "matmul"
    host = [(ly.name, ly.op) for ly in tr.layers if ly.on_host]
    assert ("scores", "matmul") in host and ("attn", "softmax") in host and ("q_t", "transpose") in host
    print("transformer-like cosine", rows[0]["cosine"])


# ------------------------------------------------------------------------------------ one-op graphs
def _one(op, shape, out_shape=None, opset=17, params=None, **attrs):
    return G.single(op, ["N", *shape], params or {}, attrs, name="op", opset=opset,
                    out_shape=None if out_shape is None else ["N", *out_shape])


def _two(build, shape, out_shape, opset=17):
    b = G.Builder(seed=3)
    build(b)
    return b.model("x", ["N", *shape], {"y": ["N", *out_shape]}, opset=opset)


def _split_swap(b):
    """Split channels (1, 3) and concatenate them swapped."""
    b.node("Split", ["x", b.const("sz", np.array([1, 3], np.int64))], ["p", "q"], name="split", axis=1)
    b.node("Concat", ["q", "p"], "y", axis=1)


ONE_OP = {
    "sigmoid": (lambda: _one("Sigmoid", [3, 4, 4]), (3, 4, 4)),
    "hardsigmoid": (lambda: _one("HardSigmoid", [3, 4, 4], alpha=0.25, beta=0.4), (3, 4, 4)),
    "hardswish-op": (lambda: _one("HardSwish", [3, 4, 4]), (3, 4, 4)),
    "swish-op": (lambda: _one("Swish", [5, 6], opset=24, alpha=1.5), (5, 6)),
    "gelu-op": (lambda: _one("Gelu", [5, 6], opset=20), (5, 6)),
    "gelu-op-tanh": (lambda: _one("Gelu", [5, 6], opset=20, approximate="tanh"), (5, 6)),
    "layernorm-op": (lambda: _one("LayerNormalization", [4, 6], params={
        "g": np.linspace(0.5, 1.5, 6, dtype=np.float32), "b": np.linspace(-0.2, 0.2, 6, dtype=np.float32)},
        epsilon=1e-3), (4, 6)),
    "transpose": (lambda: _one("Transpose", [2, 3, 4], [4, 2, 3], perm=[0, 3, 1, 2]), (2, 3, 4)),
    "squeeze": (lambda: _one("Squeeze", [3, 1, 4], [3, 4], params={"ax": np.array([2], np.int64)}), (3, 1, 4)),
    "unsqueeze": (lambda: _one("Unsqueeze", [3, 4], [3, 1, 4], params={"ax": np.array([-2], np.int64)}), (3, 4)),
    "resize-nearest-asym": (lambda: _one("Resize", [2, 3, 5], [2, 6, 10], params={
        "roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 2], np.float32)}, mode="nearest",
        coordinate_transformation_mode="asymmetric", nearest_mode="floor"), (2, 3, 5)),
    "resize-nearest-half": (lambda: _one("Resize", [2, 4, 6], [2, 6, 9], params={
        "roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 1.5, 1.5], np.float32)}, mode="nearest"), (2, 4, 6)),
    "resize-linear-align": (lambda: _one("Resize", [2, 4, 5], [2, 7, 3], params={
        "roi": np.zeros(0, np.float32), "sc": np.zeros(0, np.float32), "sz": np.array([1, 2, 7, 3], np.int64)},
        mode="linear", coordinate_transformation_mode="align_corners"), (2, 4, 5)),
    "resize-linear-pytorch": (lambda: _one("Resize", [2, 4, 4], [2, 8, 8], params={
        "roi": np.zeros(0, np.float32), "sc": np.array([1, 1, 2, 2], np.float32)}, mode="linear",
        coordinate_transformation_mode="pytorch_half_pixel"), (2, 4, 4)),
    "convtranspose-s2-outpad": (lambda: _one("ConvTranspose", [3, 4, 4], [2, 10, 10], params={
        "w": _x((3, 2, 3, 3), 5) * 0.4, "b": np.array([0.1, -0.2], np.float32)}, strides=[2, 2],
        output_padding=[1, 1], pads=[0, 0, 0, 0]), (3, 4, 4)),
    "convtranspose-dilated-crop": (lambda: _one("ConvTranspose", [2, 5, 5], [3, 3, 7], params={
        "w": _x((2, 3, 2, 2), 6) * 0.4}, dilations=[2, 2], pads=[2, 0, 2, 0], strides=[1, 2]), (2, 5, 5)),
    "convtranspose-same": (lambda: _one("ConvTranspose", [2, 3, 3], [2, 6, 6], params={
        "w": _x((2, 2, 3, 3), 7) * 0.4}, strides=[2, 2], auto_pad="SAME_UPPER"), (2, 3, 3)),
    "mul-const-after-relu": (lambda: _two(lambda b: b.node("Mul", [b.node("Relu", ["x"], "r"), b.const(
        "c", np.array([0.5, -1.0, 2.0], np.float32).reshape(3, 1, 1))], "y"), [3, 4, 4], [3, 4, 4]), (3, 4, 4)),
    "sub-const-first-flat": (lambda: _two(lambda b: b.node("Sub", [b.const("c", np.linspace(-1, 1, 6).astype(
        np.float32)), b.node("Relu", ["x"], "r")], "y"), [6], [6]), (6,)),
    "div-scalar-seq": (lambda: _two(lambda b: b.node("Div", [b.node("Relu", ["x"], "r"), b.const(
        "c", np.array(4.0, np.float32))], "y"), [3, 5], [3, 5]), (3, 5)),
    "bn-after-relu": (lambda: _two(lambda b: b.bn(b.node("Relu", ["x"], "r"), 3, "y"), [3, 4, 4], [3, 4, 4]),
                      (3, 4, 4)),
    "mul-broadcast": (lambda: _two(lambda b: b.node("Mul", ["x", b.node("GlobalAveragePool", ["x"], "s")], "y"),
                                   [3, 4, 4], [3, 4, 4]), (3, 4, 4)),
    "matmul-activations": (lambda: _two(lambda b: b.node("MatMul", ["x", b.node("Transpose", ["x"], "xt",
                                                                                  perm=[0, 2, 1])], "y"),
                                        [4, 6], [4, 4]), (4, 6)),
    "slice-neg-step": (lambda: _one("Slice", [4, 5, 6], [4, 2, 3], params={
        "st": np.array([-1, 0], np.int64), "en": np.array([-9999, 6], np.int64), "ax": np.array([2, -1], np.int64),
        "sp": np.array([-3, 2], np.int64)}), (4, 5, 6)),
    "split-concat": (lambda: _two(_split_swap, [4, 3, 3], [4, 3, 3]), (4, 3, 3)),
    "pad-then-conv": (lambda: _two(lambda b: b.node("Conv", [b.node("Pad", ["x", b.const(
        "p", np.array([0, 0, 1, 2, 0, 0, 2, 0], np.int64))], "xp"), b.w("w", 3, 2, 3, 3)], "y", auto_pad="SAME_UPPER",
        strides=[2, 2]), [2, 5, 5], [3, 4, 4]), (2, 5, 5)),
    "pad-after-relu": (lambda: _two(lambda b: b.node("Pad", [b.node("Relu", ["x"], "r"), b.const(
        "p", np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64))], "y"), [2, 5, 5], [2, 6, 8]), (2, 5, 5)),
    "concat": (lambda: _two(lambda b: b.node("Concat", [b.node("Relu", ["x"], "r"), "x"], "y", axis=-3),
                            [2, 3, 3], [4, 3, 3]), (2, 3, 3)),
}


@pytest.mark.parametrize("case", list(ONE_OP))
def test_one_op_graphs(case):
    build, shape = ONE_OP[case]
    _float_and_int8(build(), _x((8,) + shape, 4))


def test_zero_pad_folds_into_the_following_conv():
    g = from_model(ONE_OP["pad-then-conv"][0]())
    # Pad (t 1, l 2, b 2, r 0) + SAME_UPPER (0, 1, 1, 1) of the padded 8x7 map at stride 2
    assert _ops(g) == ["conv2d"] and g.nodes[0].attrs["pads"] == (1, 3, 3, 1)


def test_grouped_convtranspose_equals_block_diagonal():
    """Grouped ConvTranspose (onnx's reference evaluator cannot run it) against the same map as a
    group-1 ConvTranspose with a block-diagonal weight."""
    w = _x((4, 3, 3, 3), 9)
    full = np.zeros((4, 6, 3, 3), np.float32)
    full[:2, :3], full[2:, 3:] = w[:2], w[2:]
    kw = {"strides": [2, 2], "pads": [1, 1, 0, 0], "output_padding": [1, 0]}
    mg = _one("ConvTranspose", [4, 3, 3], [6, 6, 5], params={"w": w}, group=2, **kw)
    m1 = _one("ConvTranspose", [4, 3, 3], [6, 6, 5], params={"w": full}, **kw)
    x = _x((3, 4, 3, 3), 10)
    np.testing.assert_allclose(from_model(mg).run(x)["y"], _ref(m1, x)[0], rtol=TOL, atol=TOL)


# ------------------------------------------------------------------------------------ pattern fusion
@pytest.mark.parametrize("form", [0, 1, 2])
def test_hard_swish_written_out_is_one_node(form):
    b = G.Builder(seed=1)
    G.hard_swish_written(b, b.node("Relu", ["x"], "r"), "y", form)
    g = _float_and_int8(b.model("x", ["N", 3, 4, 4], {"y": ["N", 3, 4, 4]}), _x((6, 3, 4, 4)))[0]
    assert _ops(g) == ["relu", "hardswish"] and g.nodes[1].name == "y"


@pytest.mark.parametrize("tanh", [False, True], ids=["erf", "tanh"])
def test_gelu_written_out_is_one_node(tanh):
    b = G.Builder(seed=2)
    G.gelu_written(b, "x", "y", tanh)
    g = _float_and_int8(b.model("x", ["N", 4, 6], {"y": ["N", 4, 6]}), _x((6, 4, 6)) * 2)[0]
    assert _ops(g) == ["gelu"] and g.nodes[0].attrs == ({"approximate": "tanh"} if tanh else {})


@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_written_out_is_one_node(affine):
    b = G.Builder(seed=3)
    G.layer_norm_written(b, "x", 6, "y", affine)
    g = _float_and_int8(b.model("x", ["N", 4, 6], {"y": ["N", 4, 6]}, opset=18), _x((6, 4, 6)))[0]
    assert _ops(g) == ["layernorm"]
    if not affine:
        assert np.all(g.nodes[0].params["gamma"] == 1) and not g.nodes[0].params["beta"].any()


def test_quick_gelu_is_one_silu_node():
    b = G.Builder(seed=4)
    b.node("Mul", ["x", b.node("Sigmoid", [b.node("Mul", ["x", b.const("k", np.array(1.702, np.float32))], "kx")],
                               "s")], "y")
    g = _float_and_int8(b.model("x", ["N", 5], {"y": ["N", 5]}), _x((6, 5)))[0]
    assert _ops(g) == ["silu"] and g.nodes[0].attrs["alpha"] == pytest.approx(1.702, rel=1e-6)


def test_silu_is_one_node():
    b = G.Builder(seed=4)
    b.node("Mul", ["x", b.node("Sigmoid", ["x"], "s")], "y")
    g = _float_and_int8(b.model("x", ["N", 5], {"y": ["N", 5]}), _x((6, 5)))[0]
    assert _ops(g) == ["silu"]


def test_pattern_with_an_outside_reader_is_not_fused():
    """The erf output is also a graph output: fusing would lose it, so the Erf stays and is refused."""
    b = G.Builder(seed=5)
    G.gelu_written(b, "x", "y")
    m = b.model("x", ["N", 4], {"y": ["N", 4], "y_erf": ["N", 4]})
    with pytest.raises(ArasError, match=r"^m.onnx: node 'y_erf' \(Erf\): unsupported operator 'Erf'"):
        from_model(m, "m.onnx")


def test_conv_add_constant_with_other_uses_folds_into_a_copy():
    """Conv output read by a constant Add and by a ReLU: the Add folds into a copy of the conv; the
    original conv keeps its bias (the ReLU branch is unchanged)."""
    b = G.Builder(seed=6)
    c = b.node("Conv", ["x", b.w("w", 4, 2, 3, 3), b.w("b", 4)], "conv", pads=[1, 1, 1, 1])
    b.node("Add", [c, b.w("c", 4, 1, 1)], "plus")
    b.node("Relu", [c], "relu")
    b.bn(c, 4, "bn")  # and a BN on the same output: another copy
    m = b.model("x", ["N", 2, 5, 5], {"plus": ["N", 4, 5, 5], "relu": ["N", 4, 5, 5], "bn": ["N", 4, 5, 5]})
    g = _float_and_int8(m, _x((8, 2, 5, 5), 7))[0]
    assert _ops(g) == ["conv2d", "conv2d", "relu", "conv2d"]
    nodes = {n.name: n for n in g.nodes}
    w0 = onnx.numpy_helper.to_array(next(i for i in m.graph.initializer if i.name == "b"))
    np.testing.assert_array_equal(nodes["conv"].params["bias"], w0)
    assert nodes["plus"].inputs == nodes["conv"].inputs == nodes["bn"].inputs


def test_qdq_conv_mul_scales_fixed_weight_scales():
    """A Mul by a per-channel constant after a pre-quantized conv scales its weight scales by |a|."""
    m = G.qdq_cnn()
    g0 = from_model(m)
    nodes = list(m.graph.node)
    i = next(k for k, n in enumerate(nodes) if n.op_type == "Conv")
    a = np.array([0.5, -2.0, 1.0, 3.0], np.float32).reshape(4, 1, 1)
    conv_out = nodes[i].output[0]
    nodes[i].output[0] = "conv_raw"
    mul = helper.make_node("Mul", ["conv_raw", "chan_a"], [conv_out], name="chan_mul")
    m.graph.initializer.append(onnx.numpy_helper.from_array(a, "chan_a"))
    del m.graph.node[:]
    m.graph.node.extend(nodes[:i + 1] + [mul] + nodes[i + 1:])
    g = from_model(m)
    np.testing.assert_allclose(g.fixed_weight_scales["conv"], g0.fixed_weight_scales["conv"] * np.abs(a.ravel()))


# ------------------------------------------------------------------------------------ input shapes, folding
def test_symbolic_dims_need_input_shape():
    m = G.mobilenetv3_like(spatial=("H", "W"))
    with pytest.raises(ArasError, match=r"dimension 2 must be a fixed.*--input-shape x=1,D,D,D"):
        from_model(m, "m.onnx")
    x = _x((4, 3, 16, 16), 8)
    g = from_model(m, "m.onnx", {"x": (1, 3, 16, 16)})
    assert g.input_shape == (3, 16, 16)
    np.testing.assert_allclose(g.run(x)["logits"], _ref(G.mobilenetv3_like(), x)[0], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("shapes,words", [
    ({"y": (1, 3, 8, 8)}, ["names 'y'", "['x']"]),
    ({"x": (1, 3, 8)}, ["rank 3", "rank 4"]),
    ({"x": (1, 4, 8, 8)}, ["dimension 1 is 3"]),
])
def test_input_shape_errors(shapes, words):
    with pytest.raises(ArasError) as ei:
        from_model(G.mobilenetv3_like(spatial=("H", "W")), "m.onnx", shapes)
    assert str(ei.value).startswith("m.onnx") and all(w in str(ei.value) for w in words), str(ei.value)


def test_parse_input_shapes():
    assert parse_input_shapes(["x=1,3,48,192", "a.b=2x4"]) == {"x": (1, 3, 48, 192), "a.b": (2, 4)}
    for bad in (["x"], ["x=1,0"], ["=1,2"], ["x=a,b"], ["x=1", "x=2"]):
        with pytest.raises(ArasError, match="--input-shape"):
            parse_input_shapes(bad)


@pytest.mark.parametrize("batch", ["N", 1], ids=["symbolic-batch", "fixed-batch"])
def test_shape_chains_fold(batch):
    """Resize sizes computed from Shape(x)[2:] * 2 (Shape/Slice/Cast/Mul/Cast/Concat) and a flatten
    via Shape/Gather/Unsqueeze/Concat/Reshape: folded with a symbolic or a fixed batch."""
    b = G.Builder(seed=9)
    x = b.node("Relu", ["x"], "r")
    sh = b.node("Shape", [x], "sh")
    hw = b.node("Slice", [sh, b.const("s0", np.array([2], np.int64)), b.const("s1", np.array([4], np.int64))], "hw")
    hw = b.node("Cast", [b.node("Mul", [b.node("Cast", [hw], "hwf", to=1), b.const("two", np.array(2, np.float32))],
                                "hw2")], "hwi", to=7)
    nc = b.node("Slice", [sh, b.const("z0", np.array([0], np.int64)), b.const("z1", np.array([2], np.int64))], "nc")
    sz = b.node("Concat", [nc, hw], "sizes", axis=0)
    y = b.node("Resize", [x, "", "", sz], "up", mode="nearest")
    n0 = b.node("Gather", [b.node("Shape", [y], "sh2"), b.const("i0", np.array(0, np.int64))], "n0")
    n0 = b.node("Unsqueeze", [n0, b.const("ax", np.array([0], np.int64))], "n1")
    tgt = b.node("Concat", [n0, b.const("m1", np.array([-1], np.int64))], "tgt", axis=0)
    b.node("Reshape", [y, tgt], "y")
    m = b.model("x", [batch, 2, 3, 4], {"y": [batch, 96]})
    g = _float_and_int8(m, _x((1 if batch == 1 else 5, 2, 3, 4), 10))[0]
    assert _ops(g) == ["relu", "resize", "reshape"]


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("build,words", [
    (lambda: _one("Erf", [4]), ["'op' (Erf)", "unsupported operator 'Erf'"]),
    (lambda: _two(lambda b: b.node("Sub", ["x", b.node("Relu", ["x"], "r")], "y", name="sub2"), [4], [4]),
     ["'sub2' (Sub)", "two activations"]),
    (lambda: _two(lambda b: b.node("Div", [b.const("c", np.ones(4, np.float32)), "x"], "y", name="inv"), [4], [4]),
     ["'inv' (Div)", "activation / constant"]),
    (lambda: _one("Resize", [2, 3, 3], [2, 6, 6], params={"roi": np.zeros(0, np.float32),
                  "sc": np.array([1, 1, 2, 2], np.float32)}, mode="cubic"), ["'op' (Resize)", "cubic"]),
    (lambda: _one("Transpose", [2, 3], [3, 2, None], perm=[1, 0, 2]), ["'op' (Transpose)", "batch"]),
    (lambda: _one("LayerNormalization", [3, 4], params={"g": np.ones(12, np.float32)}, axis=1),
     ["'op' (LayerNormalization)", "last axis"]),
])
def test_unsupported_one_line_errors(build, words):
    with pytest.raises(ArasError) as ei:
        from_model(build(), "m.onnx")
    msg = str(ei.value)
    assert msg.startswith("m.onnx: node") and "\n" not in msg and all(w in msg for w in words), msg


# ------------------------------------------------------------------------------------ command line
def test_cli_import_with_input_shape_reports_accuracy_and_host_path(tmp_path, capsys):
    from aras.cli import main

    p = tmp_path / "mnv3.onnx"
    onnx.save(G.mobilenetv3_like(spatial=("H", "W")), p)
    np.save(tmp_path / "calib.npy", _x((16, 3, 16, 16), 11))
    args = ["import-onnx", str(p), "-o", str(tmp_path / "tr"), "--calib", str(tmp_path / "calib.npy")]
    assert main(args) == 2
    assert "--input-shape x=" in capsys.readouterr().err
    assert main(args + ["--input-shape", "x=1,3,16,16"]) == 0
    out = capsys.readouterr().out
    assert "host path: 6 layers: stem_hs (hardswish), se_hsig (hardsigmoid), se_scale (mul)" in out
    cos = float(re.search(r"accuracy of logits: cosine ([0-9.]+), max \|error\|", out).group(1))
    assert cos >= 0.99, out
    js = tmp_path / "r.json"
    assert main(["simulate", str(tmp_path / "tr"), "--config", "paper", "--limit", "2", "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "host path: 6 layers: stem_hs (hardswish)" in out and "through the bit-exact functional model" in out
    import json

    assert json.loads(js.read_text())["host_layers"][:2] == [{"name": "stem_hs", "op": "hardswish"},
                                                             {"name": "se_hsig", "op": "hardsigmoid"}]
