"""Shape-only model zoo (aras.models.zoo): layer shapes, parameter and MAC counts against published
totals, deterministic synthetic weights, and a float forward pass that stays finite and alive."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aras.models import zoo

MODELS = ("resnet18", "resnet50", "vgg16", "mobilenetv2", "bert_base")

# Published parameter totals: torchvision model cards (conv + BN + fc, BN affine counted) and, for
# BERT-base, the Hugging Face bert-base-uncased total 109,482,240 minus the word/position/type
# embeddings with their LayerNorm (23,837,184) and the pooler (590,592).
PUBLISHED_PARAMS = {"resnet18": 11_689_512, "resnet50": 25_557_032, "vgg16": 138_357_544,
                    "mobilenetv2": 3_504_872, "bert_base": 85_054_464}
HAS_BN = {"resnet18": True, "resnet50": True, "vgg16": False, "mobilenetv2": True, "bert_base": False}
# torchvision model cards' "GFLOPS" column (which counts multiply-accumulates) at 224x224; BERT-base:
# the projections' MACs, 12 layers x 128 tokens x (4 * 768^2 + 2 * 768 * 3072).
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet50": 4.09, "vgg16": 15.47, "mobilenetv2": 0.30,
                   "bert_base": 12 * 128 * (4 * 768**2 + 2 * 768 * 3072) / 1e9}

INPUT_SHAPE = {"bert_base": (128, 768)}
OUTPUT_SHAPE = {"bert_base": (128, 768)}
# (conv2d, linear, add, maxpool) node counts of the standard architectures.
OP_COUNTS = {
    "resnet18": {"conv2d": 20, "linear": 1, "add": 8, "maxpool": 1, "gap": 1},
    "resnet50": {"conv2d": 53, "linear": 1, "add": 16, "maxpool": 1, "gap": 1},
    "vgg16": {"conv2d": 13, "linear": 3, "add": 0, "maxpool": 5, "gap": 0},
    "mobilenetv2": {"conv2d": 52, "linear": 1, "add": 10, "maxpool": 0, "gap": 1, "relu6": 35},
    "bert_base": {"conv2d": 0, "linear": 72, "add": 24, "attention": 12, "layernorm": 24, "gelu": 12},
}
# Characteristic intermediate tensors (name -> shape).
KEY_SHAPES = {
    "resnet18": {"relu": (64, 112, 112), "maxpool": (64, 56, 56), "layer2.0.relu": (128, 28, 28),
                 "layer4.1.relu": (512, 7, 7), "flatten": (512,)},
    "resnet50": {"maxpool": (64, 56, 56), "layer1.2.relu": (256, 56, 56), "layer3.5.relu": (1024, 14, 14),
                 "layer4.2.relu": (2048, 7, 7), "flatten": (2048,)},
    "vgg16": {"features.pool0": (64, 112, 112), "features.pool4": (512, 7, 7), "flatten": (25088,),
              "classifier.fc0": (4096,), "classifier.fc1": (4096,)},
    "mobilenetv2": {"features.0.relu6": (32, 112, 112), "features.1.project": (16, 112, 112),
                    "features.3.add": (24, 56, 56), "features.17.project": (320, 7, 7),
                    "features.18.relu6": (1280, 7, 7), "flatten": (1280,)},
    "bert_base": {"encoder.layer.0.intermediate.gelu": (128, 3072),
                  "encoder.layer.11.attention.self": (128, 768)},
}


@pytest.fixture(scope="module", params=MODELS)
def built(request):
    return request.param, getattr(zoo, request.param)()


def _n_params(graph) -> int:
    return sum(p.size for n in graph.nodes for p in n.params.values())


def test_source_is_labelled_synthetic(built):
    name, src = built
    g = src.graph
    assert g.weights == "synthetic"
    assert "synthetic weights (shape-only)" in src.notes
    assert g.input_shape == INPUT_SHAPE.get(name, (3, 224, 224))
    assert g.shapes[g.outputs[0]] == OUTPUT_SHAPE.get(name, (1000,))
    assert src.calib.shape == (4,) + g.input_shape and src.calib.dtype == np.float32
    assert src.samples.shape == (2,) + g.input_shape
    assert src.labels is None
    # Inputs are N(0, 1); calibration and samples are different draws.
    assert abs(float(src.calib.std()) - 1.0) < 0.01 and abs(float(src.calib.mean())) < 0.01
    assert not np.array_equal(src.calib[0], src.samples[0])


def test_param_count_matches_published(built):
    name, src = built
    g = src.graph
    # Folding BN turns each conv's 2*cout BN parameters into cout bias values.
    bn_channels = sum(n.params["weight"].shape[0] for n in g.nodes if n.op == "conv2d") if HAS_BN[name] else 0
    assert _n_params(g) == PUBLISHED_PARAMS[name] - bn_channels
    assert abs(_n_params(g) / PUBLISHED_PARAMS[name] - 1) < 0.006
    assert all(p.dtype == np.float32 for n in g.nodes for p in n.params.values())


def test_macs_match_published(built):
    name, src = built
    g = src.graph
    macs = 0
    for n in g.nodes:
        if n.op == "conv2d":
            _, oh, ow = g.shapes[n.output]
            macs += oh * ow * n.params["weight"].size
        elif n.op == "linear":
            macs += int(np.prod(g.shapes[n.output][:-1])) * n.params["weight"].size
    assert macs / 1e9 == pytest.approx(PUBLISHED_GMACS[name], rel=0.02)


def test_layer_inventory_and_shapes(built):
    name, src = built
    g = src.graph
    ops = [n.op for n in g.nodes]
    for op, count in OP_COUNTS[name].items():
        assert ops.count(op) == count, op
    assert "batchnorm" not in ops
    for tensor, shape in KEY_SHAPES[name].items():
        assert g.shapes[tensor] == shape, tensor


def test_resnet_stem_and_shortcuts():
    g = zoo.resnet50().graph
    nodes = {n.name: n for n in g.nodes}
    stem = nodes["conv1"]
    assert stem.params["weight"].shape == (64, 3, 7, 7)
    assert stem.attrs["stride"] == (2, 2) and stem.attrs["pads"] == (3, 3, 3, 3)
    pool = nodes["maxpool"]
    assert pool.attrs["kernel"] == (3, 3) and pool.attrs["stride"] == (2, 2)
    assert pool.attrs["pads"] == (1, 1, 1, 1)
    # Projection shortcut on the first block of every stage, stride 2 from stage 2 on (on the 3x3 conv too).
    for stage, stride in ((1, 1), (2, 2), (3, 2), (4, 2)):
        ds = nodes[f"layer{stage}.0.downsample"]
        assert ds.params["weight"].shape[2:] == (1, 1) and ds.attrs["stride"] == (stride, stride)
        assert nodes[f"layer{stage}.0.conv2"].attrs["stride"] == (stride, stride)
    assert "layer1.1.downsample" not in nodes
    # Residual add, then ReLU.
    add = nodes["layer2.1.add"]
    assert add.inputs == ["layer2.1.conv3", "layer2.0.relu"]
    assert g.consumers("layer2.1.add")[0].op == "relu"


def test_mobilenetv2_depthwise_and_residuals():
    g = zoo.mobilenetv2().graph
    dw = [n for n in g.nodes if n.op == "conv2d" and n.attrs["groups"] > 1]
    assert len(dw) == 17
    for n in dw:
        c = n.params["weight"].shape[0]
        assert n.attrs["groups"] == c == g.shapes[n.inputs[0]][0]
        assert n.params["weight"].shape[1:] == (1, 3, 3)
    strides = [n.attrs["stride"][0] for n in dw]
    assert strides == [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]
    # Inverted residual: 1x1 expand (6x) -> ReLU6 -> depthwise -> ReLU6 -> 1x1 project, no activation after.
    nodes = {n.name: n for n in g.nodes}
    assert nodes["features.5.expand"].params["weight"].shape == (192, 32, 1, 1)
    assert g.consumers("features.5.project")[0].op == "add"


def test_bert_layer_wiring():
    g = zoo.bert_base().graph
    nodes = {n.name: n for n in g.nodes}
    p = "encoder.layer.3."
    att = nodes[p + "attention.self"]
    assert att.attrs["heads"] == 12
    assert att.inputs == [p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"]
    residual = [p + "attention.output.dense", "encoder.layer.2.output.LayerNorm"]
    assert nodes[p + "attention.output.add"].inputs == residual
    assert nodes[p + "output.add"].inputs == [p + "output.dense", p + "attention.output.LayerNorm"]
    ln = nodes[p + "output.LayerNorm"]
    assert np.all(ln.params["gamma"] == 1) and np.all(ln.params["beta"] == 0) and ln.attrs["eps"] == 1e-12
    assert nodes[p + "intermediate.dense"].params["weight"].shape == (3072, 768)


def test_weights_are_seeded_he_normal():
    a, b = zoo.resnet18(), zoo.resnet18()
    for na, nb in zip(a.graph.nodes, b.graph.nodes, strict=True):
        for k in na.params:
            assert np.array_equal(na.params[k], nb.params[k]), na.name
    assert np.array_equal(a.calib, b.calib) and np.array_equal(a.samples, b.samples)
    nodes = {n.name: n for n in zoo.resnet50().graph.nodes}
    w = nodes["layer3.0.conv2"].params["weight"]  # 256 x 256 x 3 x 3: 590k draws
    assert float(w.std()) == pytest.approx(math.sqrt(2 / (256 * 9)), rel=0.01)
    assert abs(float(w.mean())) < 5 * float(w.std()) / math.sqrt(w.size)  # 5 sigma of the sample mean
    bias = np.concatenate([n.params["bias"] for n in nodes.values() if "bias" in n.params])
    assert float(bias.std()) == pytest.approx(zoo.BIAS_STD, rel=0.05)
    # A different model draws from a different seed.
    assert not np.array_equal(nodes["conv1"].params["weight"], a.graph.nodes[0].params["weight"])


def test_float_forward_stays_finite_and_alive(built):
    name, src = built
    g = src.graph
    env = g.run(src.samples[:1], keep_all=True)
    for t, v in env.items():
        assert np.all(np.isfinite(v)), t
        assert np.any(v != 0), t
    y = env[g.outputs[0]]
    # He init keeps the scale order-of-magnitude constant through plain stacks; residual sums grow it
    # (ResNet-50: ~1e3 after 16 blocks), far from float overflow.
    assert 0.1 < float(y.std()) < 1e4
    assert len(np.unique(np.round(y, 6))) > 100  # not a collapsed, constant output
