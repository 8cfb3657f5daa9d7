"""ONNX importer: imported FloatGraphs against onnx.reference.ReferenceEvaluator, QDQ parameters,
and the errors for unsupported or broken input."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from aras.errors import ArasError
from aras.importers.onnx_import import SUPPORTED_OPS, from_model, has_quant_params, load_onnx, needs_qparams

try:  # verif/golden as a package or as a plain test directory
    from . import onnx_graphs as G
except ImportError:
    import onnx_graphs as G

TOL = 1e-5


def _x(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _check_against_reference(model, x):
    """Import ``model`` and compare every graph output with the ONNX reference evaluator."""
    g = from_model(model, "test.onnx")
    ref = ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x})
    got = g.run(x)
    assert len(g.outputs) == len(ref)
    for name, r in zip(g.outputs, ref, strict=True):
        assert got[name].shape == r.shape, name
        np.testing.assert_allclose(got[name], r, rtol=TOL, atol=TOL, err_msg=name)
    return g


# ------------------------------------------------------------------------------------ float models
@pytest.mark.parametrize("constants", [False, True], ids=["initializers", "constant-nodes"])
def test_cnn_matches_reference(constants):
    g = _check_against_reference(G.cnn(constants), _x((3, 3, 16, 16)))
    ops = [n.op for n in g.nodes]
    assert ops == ["conv2d", "relu", "conv2d", "relu6", "conv2d", "add", "relu", "conv2d", "relu", "maxpool",
                   "gap", "flatten", "linear", "softmax"]  # BNs folded, Clip(0, 6) -> relu6
    assert g.input_shape == (3, 16, 16) and g.outputs == ["logits", "probs"] and g.weights == "real"
    nodes = {n.name: n for n in g.nodes}
    assert "clip_2_relu6" in nodes  # "clip/2:relu6" sanitized
    assert any(n.startswith("Relu_") for n in nodes)  # the unnamed node got a generated name
    # BN folded into the bias-less depthwise conv: bias created; var=0 channel finite; gamma=0 channel zero.
    c2 = nodes["conv2"]
    assert c2.attrs["groups"] == 8 and c2.attrs["pads"] == (0, 0, 1, 1)  # SAME_UPPER, stride 2, 16 -> 8
    assert c2.params["bias"].shape == (8,) and np.all(np.isfinite(c2.params["weight"]))
    assert not np.any(c2.params["weight"][1])
    assert not np.any(nodes["conv4"].params["weight"][5])  # the all-zero filter stays
    assert nodes["pool4"].attrs["pads"] == (1, 1, 2, 2)  # ceil_mode: 8 -> 5 via extra end padding
    assert g.shapes["pool4"] == (16, 5, 5)
    assert nodes["logits"].op == "linear" and nodes["logits"].params["weight"].shape == (10, 16)
    assert nodes["probs"].attrs["axis"] == 0


def test_cnn_weights_same_in_both_variants():
    a, b = from_model(G.cnn(False)), from_model(G.cnn(True))
    for na, nb in zip(a.nodes, b.nodes, strict=True):
        assert na.op == nb.op and na.params.keys() == nb.params.keys()
        for k in na.params:
            np.testing.assert_array_equal(na.params[k], nb.params[k])


@pytest.mark.parametrize("constants", [False, True], ids=["initializers", "constant-nodes"])
def test_extras_match_reference(constants):
    g = _check_against_reference(G.extras(constants), _x((2, 4, 9, 9), 1))
    ops = [n.op for n in g.nodes]
    assert ops == ["conv2d", "prelu", "leaky_relu", "conv2d", "avgpool", "avgpool", "clamp", "reshape", "linear",
                   "reshape", "linear", "softmax", "maxpool", "flatten", "gap", "flatten"]
    nodes = {n.name: n for n in g.nodes}
    assert nodes["conv2"].attrs["pads"] == (1, 1, 0, 0)  # SAME_LOWER, kernel 2
    assert nodes["flat"].attrs["shape"] == (96,) and nodes["seq"].attrs["shape"] == (3, 4)
    assert nodes["mm1"].params["weight"].shape == (12, 96)  # MatMul B (96, 12) transposed
    assert nodes["mm1"].output == "mm1_add" and "bias" in nodes["mm1"].params  # bias Add folded
    assert nodes["clamp"].attrs == {"min": -0.25, "max": 0.5}
    assert g.shapes["out_seq"] == (3, 5)


def test_legacy_opset10_matches_reference():
    g = _check_against_reference(G.legacy(), _x((1, 5), 2))
    assert [n.op for n in g.nodes] == ["linear", "relu6", "linear", "softmax"]


def test_bn_folded_into_linear_matches_reference():
    g = _check_against_reference(G.mlp_bn(), _x((4, 5), 3))
    assert [n.op for n in g.nodes] == ["linear", "relu", "linear"]
    assert g.outputs == ["out"]


def test_conv_bias_add_folded():
    b = G.Builder(seed=5)
    x = b.node("Conv", ["x", b.w("w", 4, 2, 3, 3)], "conv", pads=[1, 1, 1, 1])
    x = b.node("Add", [x, b.w("bias", 1, 4, 1, 1)], "conv_bias")
    x = b.node("Add", [b.w("bias2", 4, 1, 1), x], "conv_bias2")
    b.node("Relu", [x], "y")
    m = b.model("x", ["N", 2, 5, 5], {"y": ["N", 4, 5, 5]})
    g = _check_against_reference(m, _x((2, 2, 5, 5), 4))
    assert [n.op for n in g.nodes] == ["conv2d", "relu"] and g.nodes[0].output == "conv_bias2"


@pytest.mark.parametrize(
    "op,size,attrs",
    [
        ("MaxPool", 6, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),  # extra end pad
        ("MaxPool", 5, {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
        ("MaxPool", 7, {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
        ("MaxPool", 7, {"kernel_shape": [2, 3], "strides": [1, 2], "pads": [0, 1, 1, 0]}),
        ("AveragePool", 6, {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1}),  # ceil == floor
        ("AveragePool", 7, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
        ("AveragePool", 7, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1],
                            "count_include_pad": 1}),
    ],
)
def test_pools_match_reference(op, size, attrs):
    b = G.Builder()
    b.node(op, ["x"], "y", **attrs)
    model = b.model("x", ["N", 2, size, size], {"y": ["N", 2, None, None]})
    _check_against_reference(model, _x((2, 2, size, size), 6))


# ------------------------------------------------------------------------------------ files
def test_load_onnx_file(tmp_path):
    p = tmp_path / "small_cnn.onnx"
    onnx.save(G.cnn(), str(p))
    g = load_onnx(p)
    assert g.name == "small_cnn"
    x = _x((2, 3, 16, 16))
    ref = ReferenceEvaluator(G.cnn()).run(None, {"input": x})
    np.testing.assert_allclose(g.run(x)["logits"], ref[0], rtol=TOL, atol=TOL)


@pytest.mark.parametrize("content", [None, b"", b"this is not an onnx model\n" * 4, "truncated", "dir"])
def test_bad_files(tmp_path, content):
    p = tmp_path / "bad.onnx"
    if content == "truncated":
        data = G.cnn().SerializeToString()
        p.write_bytes(data[: len(data) // 2])
    elif content == "dir":
        p.mkdir()
    elif content is not None:
        p.write_bytes(content)
    with pytest.raises(ArasError, match="bad.onnx"):
        load_onnx(p)


# ------------------------------------------------------------------------------------ errors
def _err_models():
    """(id, model, [substrings of the error message])."""
    cases = []
    b = G.Builder()
    b.node("Sin", [b.node("Relu", ["x"], "r")], "y", name="weird_sin")
    cases.append(("unsupported-op", b.model("x", ["N", 4], {"y": ["N", 4]}), ["Sin", "weird_sin"]))

    b = G.Builder()
    b.nodes.append(helper.make_node("Foo", ["x"], ["y"], name="custom_node", domain="com.example"))
    m = helper.make_model(helper.make_graph(
        b.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    cases.append(("custom-domain", m, ["Foo", "custom_node", "com.example"]))

    # BN after a ReLU, BN / constant Add on a conv output with other readers, a constant Add after a ReLU
    # and MatMul of two activations are supported now (verif/golden/test_onnx_patterns.py)
    b = G.Builder()
    x = b.node("Relu", [b.node("Conv", ["x", b.w("w", 3, 2, 1, 1)], "conv")], "relu")
    b.node("Add", [x, b.w("c", 1, 4, 4)], "y", name="add_spatial")
    cases.append(("const-add-per-position", b.model("x", ["N", 2, 4, 4], {"y": ["N", 3, 4, 4]}),
                  ["add_spatial", "Add", "per-output-channel"]))

    b = G.Builder()
    c = b.node("Conv", ["x", b.w("w", 3, 2, 1, 1)], "conv")
    b.node("Add", [c, b.w("c", 4, 1)], "y", name="bad_bias")
    cases.append(("const-add-not-per-channel", b.model("x", ["N", 2, 4, 4], {"y": ["N", 3, 4, 4]}),
                  ["bad_bias", "per-output-channel"]))

    cases.append(("reshape-merges-batch",
                  G.single("Reshape", ["N", 2, 3], {"s": np.array([-1], np.int64)}, name="r_merge",
                           out_shape=[None]), ["r_merge", "batch"]))
    cases.append(("flatten-axis-2", G.single("Flatten", ["N", 2, 3, 4], {}, {"axis": 2}, name="fl2",
                                             out_shape=["M", 12]), ["fl2", "axis"]))
    cases.append(("avgpool-ceil", G.single("AveragePool", ["N", 1, 6, 6], {},
                                           {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1},
                                           name="ap_ceil", out_shape=["N", 1, 3, 3]), ["ap_ceil", "ceil_mode"]))
    cases.append(("prelu-slope-C", G.single("PRelu", ["N", 3, 4, 4], {"s": np.ones(3, np.float32)}, name="pr",
                                            ), ["pr", "slope"]))
    cases.append(("softmax-batch-axis", G.single("Softmax", ["N", 3], {}, {"axis": 0}, name="sm0"),
                  ["sm0", "batch"]))
    b = G.Builder()
    b.node("MatMul", [b.w("c", 4, 4), "x"], "y", name="mm")
    cases.append(("matmul-constant-left", b.model("x", ["N", 4, 4], {"y": ["N", 4, 4]}), ["mm", "MatMul"]))
    cases.append(("conv-1d", G.single("Conv", ["N", 2, 8], {"w": np.ones((2, 2, 3), np.float32)}, name="c1d",
                                      out_shape=["N", 2, 6]), ["c1d", "2-D"]))

    b = G.Builder()
    b.node("Add", ["x", "x2"], "y")
    m = helper.make_model(helper.make_graph(
        b.nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 4]) for n in ("x", "x2")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])]),
        opset_imports=[helper.make_opsetid("", 17)])
    cases.append(("two-inputs", m, ["exactly one input", "x2"]))
    cases.append(("symbolic-feature-dim", G.single("Relu", ["N", "C"], {}), ["dimension 1", "C"]))

    b = G.Builder()
    q = b.node("QuantizeLinear", ["x", b.const("s", np.array(0.1, np.float32)), b.const("z", np.array(0, np.int8))],
               "xq")
    b.node("Relu", [q], "y", name="relu_on_int8")
    cases.append(("int8-tensor-not-dequantized", b.model("x", ["N", 4], {"y": ["N", 4]}),
                  ["relu_on_int8", "DequantizeLinear"]))
    b = G.Builder()
    b.node("Dropout", ["x", b.const("ratio", np.array(0.5, np.float32)), b.const("train", np.array(True))],
           "y", name="drop_train")
    cases.append(("dropout-training", b.model("x", ["N", 4], {"y": ["N", 4]}), ["drop_train", "training_mode"]))

    cases.append(("uint8-qdq", G.qdq_cnn(qtype=np.uint8), ["x_q", "QuantizeLinear", "int8"]))
    b = G.Builder()
    ins = ["x"] + [b.const(k, v) for k, v in [
        ("xs", np.array(0.1, np.float32)), ("xz", np.array(0, np.int8)), ("w", np.ones((2, 2, 1, 1), np.int8)),
        ("ws", np.array(0.1, np.float32)), ("wz", np.array(0, np.int8)), ("ys", np.array(0.1, np.float32)),
        ("yz", np.array(0, np.int8))]]
    b.node("QLinearConv", ins, "y", name="qconv")
    m = helper.make_model(helper.make_graph(
        b.nodes, "g", [helper.make_tensor_value_info("x", TensorProto.INT8, ["N", 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, ["N", 2, 3, 3])], b.inits),
        opset_imports=[helper.make_opsetid("", 17)])
    cases.append(("qlinearconv", m, ["element type INT8"]))  # the int8 input is refused first
    m2 = onnx.ModelProto()
    m2.CopyFrom(m)
    m2.graph.input[0].type.tensor_type.elem_type = TensorProto.FLOAT
    cases.append(("qlinearconv-float-input", m2, ["QLinearConv", "qconv", "QDQ"]))
    return cases


_ERR = _err_models()


@pytest.mark.parametrize("model,words", [c[1:] for c in _ERR], ids=[c[0] for c in _ERR])
def test_errors_name_node_and_op(model, words):
    with pytest.raises(ArasError) as ei:
        from_model(model, "model.onnx")
    msg = str(ei.value)
    assert msg.startswith("model.onnx"), msg
    for w in words:
        assert w in msg, (w, msg)


def test_not_a_model_object():
    with pytest.raises(ArasError, match="ModelProto"):
        from_model(b"abc", "thing")


# ------------------------------------------------------------------------------------ names
def test_names_sanitized_and_unique():
    b = G.Builder()
    x = b.node("Relu", ["in:put"], "t/1", name="a/b")
    x = b.node("Relu", [x], "t:1", name="a:b")
    b.node("Relu", [x], "y", name="")
    g = from_model(b.model("in:put", ["N", 3], {"y": ["N", 3]}), "m.onnx")
    assert g.input_name == "in_put"
    assert [n.name for n in g.nodes] == ["a_b", "a_b_1", "Relu_2"]
    assert [n.output for n in g.nodes] == ["t_1", "t_1_1", "y"]


def test_torch_style_flatten_with_batch_ops():
    """x.view(x.size(0), -1) exported as Shape/Gather/Unsqueeze/Concat/Reshape works with any batch."""
    g = from_model(G.extras())
    for batch in (1, 5):
        assert g.run(_x((batch, 4, 9, 9)))["out_gmp"].shape == (batch, 6)


def test_reshape_fixed_batch_literal():
    m = G.single("Reshape", [1, 2, 3, 2], {"s": np.array([1, 3, 4], np.int64)}, out_shape=[1, 3, 4])
    g = from_model(m)
    assert g.nodes[0].attrs["shape"] == (3, 4)


def test_constant_subgraphs_folded():
    """Weights and shapes computed from constants (Transpose, Mul, Div, Sub, Cast, Squeeze,
    Constant value_ints) are evaluated at import time."""
    b = G.Builder(seed=8)
    w = b.node("Transpose", [b.w("wt", 3, 3, 2, 4)], "w_t", perm=[3, 2, 0, 1])  # OIHW (4, 2, 3, 3)
    w = b.node("Mul", [w, b.const("two", np.array(2.0, np.float32))], "w_2")
    w = b.node("Div", [w, b.const("four", np.array(4.0, np.float32))], "w_half")
    w = b.node("Sub", [w, b.const("zero", np.zeros((1, 1, 1, 1), np.float32))], "w_final")
    x = b.node("Conv", ["x", w], "conv", pads=[1, 1, 1, 1])
    b.nodes.append(helper.make_node("Constant", [], ["shp_i"], value_ints=[0, -1]))
    shp = b.node("Cast", [b.node("Squeeze", ["shp_i"], "shp_sq")], "shp", to=TensorProto.INT64)
    x = b.node("Reshape", [x, shp], "flat")
    b.node("Gemm", [x, b.w("fc", 100, 3), b.const("fc_b", np.array([0.5], np.float32))], "y")
    g = _check_against_reference(b.model("x", ["N", 2, 5, 5], {"y": ["N", 3]}), _x((2, 2, 5, 5), 8))
    assert [n.op for n in g.nodes] == ["conv2d", "reshape", "linear"]
    np.testing.assert_array_equal(g.nodes[2].params["bias"], np.full(3, 0.5, np.float32))


# ------------------------------------------------------------------------------------ QDQ
def test_qdq_fixed_params_and_float_weights():
    m = G.qdq_cnn()
    g = from_model(m, "qdq.onnx")
    f32 = lambda v: float(np.float32(v))  # noqa: E731 - the model stores float32 scales
    assert g.fixed_qparams == {"x": (f32(0.05), 3), "relu": (f32(0.04), -128), "gap": (f32(0.02), -128),
                               "fc": (f32(0.1), 0)}
    w = G.qdq_weights()
    assert set(g.fixed_weight_scales) == {"conv", "fc"}
    np.testing.assert_array_equal(g.fixed_weight_scales["conv"], w["conv_s"].astype(np.float64))
    np.testing.assert_array_equal(g.fixed_weight_scales["fc"], w["fc_s"].astype(np.float64))
    # conv is fused with its relu; pool, gap and flatten keep their input's scale in the quantizer
    assert needs_qparams(g) == ["x", "relu", "fc"]
    assert has_quant_params(g)
    # Dequantized weights: the float network equals the same network written in float.
    x = _x((3, 3, 8, 8), 7)
    ref = ReferenceEvaluator(G.qdq_cnn(dequantized=True)).run(None, {"x": x})[0]
    np.testing.assert_allclose(g.run(x)["fc"], ref, rtol=TOL, atol=TOL)
    # The float import stays close to the int8 reference run (a few output steps of 0.1).
    qref = ReferenceEvaluator(m).run(None, {"x": x})[0]
    assert np.abs(g.run(x)["fc"] - qref).max() < 0.3


def test_qdq_matmul_bias_add_folded():
    qm, fm = G.qdq_matmul_add()
    g = from_model(qm)
    assert [n.op for n in g.nodes] == ["linear"] and g.nodes[0].output == "mm_add"
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert g.fixed_qparams == {"x": (f32(0.03), 0), "mm_add": (f32(0.06), -2)}  # pre-bias params dropped
    np.testing.assert_array_equal(g.fixed_weight_scales["mm"], np.full(4, f32(0.01)))
    assert has_quant_params(g)
    x = _x((2, 3, 6), 9)
    ref = ReferenceEvaluator(fm).run(None, {"x": x})[0]
    np.testing.assert_allclose(g.run(x)["mm_add"], ref, rtol=TOL, atol=TOL)


def test_has_quant_params_false_when_missing():
    assert not has_quant_params(from_model(G.cnn()))
    g = from_model(G.qdq_cnn())
    del g.fixed_qparams["relu"]
    assert not has_quant_params(g)
    g = from_model(G.qdq_cnn())
    del g.fixed_weight_scales["fc"]
    assert not has_quant_params(g)


def test_qdq_import_then_quantize_keeps_the_int8_model():
    """Quantizing the imported QDQ graph without calibration data reproduces the model's int8
    weights, int32 bias and activation parameters."""
    from aras.models import ModelSource
    from aras.quantize import quantize

    g = from_model(G.qdq_cnn())
    x0 = np.zeros((1, 3, 8, 8))
    tr = quantize(ModelSource(g, x0, x0))
    w = G.qdq_weights()
    layers = {ly.name: ly for ly in tr.layers}
    np.testing.assert_array_equal(layers["conv"].arrays["weight"], w["conv_q"])
    np.testing.assert_array_equal(layers["conv"].arrays["bias"], w["conv_bq"])
    np.testing.assert_array_equal(layers["fc"].arrays["weight"], w["fc_q"])
    for t, (s, z) in g.fixed_qparams.items():
        if t in needs_qparams(g):
            assert (tr.tensors[t].scale, tr.tensors[t].zero_point) == (s, z), t


# ------------------------------------------------------------------------------------ ONNX's own node tests
MUST_PASS = {  # corner cases the importer claims to handle, checked against ONNX's expected outputs
    "test_conv_with_autopad_same", "test_conv_with_strides_and_asymmetric_padding", "test_maxpool_2d_ceil",
    "test_maxpool_2d_ceil_output_size_reduce_by_one", "test_maxpool_2d_same_lower", "test_maxpool_2d_same_upper",
    "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_same_lower", "test_gemm_alpha",
    "test_gemm_beta", "test_gemm_transposeB", "test_gemm_default_scalar_bias", "test_softmax_axis_1",
    "test_reshape_zero_and_negative_dim", "test_globalmaxpool", "test_clip_default_min",
}


def test_onnx_backend_node_cases():
    """Every single-node case of ONNX's backend test suite for a supported operator either
    imports and reproduces ONNX's expected outputs (within the case's own tolerance) or is
    refused with an ArasError; nothing crashes. Inputs after the first become initializers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the case generators divide by zero on purpose
        from onnx.backend.test.case import node as node_cases

        cases = node_cases.collect_testcases(None)
    passed, refused, bad = set(), set(), []
    for c in cases:
        if not c.model.graph.node or c.model.graph.node[0].op_type not in SUPPORTED_OPS:
            continue
        ins, outs = c.data_sets[0]
        if any(not isinstance(a, np.ndarray | np.generic) or np.asarray(a).dtype == object for a in ins):
            continue  # sequence / optional-typed data
        m = onnx.ModelProto()
        m.CopyFrom(c.model)
        for v, arr in zip(list(m.graph.input)[1:], ins[1:], strict=False):
            m.graph.initializer.append(numpy_helper.from_array(np.asarray(arr), v.name))
        try:
            g = from_model(m, c.name)
        except ArasError as e:
            assert str(e).startswith(c.name), str(e)
            refused.add(c.name)
            continue
        got = g.run(np.asarray(ins[0]))
        for o, exp in zip(g.outputs, outs, strict=True):
            if got[o].shape != exp.shape or not np.allclose(got[o], exp, rtol=c.rtol, atol=c.atol):
                bad.append(c.name)
        passed.add(c.name)
    assert not bad, bad
    assert len(passed) >= 60 and len(refused) >= 50, (len(passed), len(refused))
    known = {c.name for c in cases}
    assert MUST_PASS & known <= passed, sorted((MUST_PASS & known) - passed)
