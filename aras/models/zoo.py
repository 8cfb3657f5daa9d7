"""Shape-only model zoo: ResNet-18/50, VGG-16, MobileNetV2 and a BERT-base encoder, synthetic weights.

Each builder returns a :class:`~aras.models.ModelSource` whose :class:`~aras.graph.FloatGraph` has the
layer shapes of the torchvision (CNNs, 224x224x3 input) or Hugging Face (BERT-base, 128 tokens)
network and ``weights="synthetic"``. These models exist for scale studies (crossbar counts, cycles,
bandwidth); their weight statistics are *not* those of trained networks, so write-energy results on
them are labelled synthetic everywhere.

Conventions shared by all builders:

* BatchNorm is folded: every conv carries a bias and no BN node exists. A torchvision conv+BN pair
  has ``2 * cout`` BN parameters, the folded conv ``cout`` bias values, so the parameter count here
  is the published total minus the number of BN channels.
* Weights are float32 He-normal, ``std = sqrt(2 / fan_in)`` with ``fan_in = cin/groups * kh * kw``
  (linear: ``in``), so activations keep their scale through ReLU stacks; biases are N(0, 0.01^2);
  LayerNorm has gamma = 1, beta = 0. Everything is drawn from one generator per model with a fixed
  seed, so two builds are bit-identical.
* Calibration: 4 inputs, samples: 2 more inputs, all N(0, 1) float32 from a second seeded stream
  (images (3, 224, 224); BERT: the (128, 768) embedding-block output, which LayerNorm keeps at unit
  scale). No labels.
"""

from __future__ import annotations

import math

import numpy as np

from .. import ops_float as F
from ..graph import FloatGraph, FNode
from . import ModelSource

NOTES = "synthetic weights (shape-only): seeded He-normal Gaussian, N(0, 1) inputs"
N_CALIB = 4
N_SAMPLES = 2
BIAS_STD = 0.01
# One fixed seed per model, so changing one builder never changes another model's weights.
SEEDS = {"resnet18": 1018, "resnet50": 1050, "vgg16": 1016, "mobilenetv2": 1002, "bert-base": 1012}


class _Builder:
    """Appends nodes to a graph under construction, tracks tensor shapes and draws the weights."""

    def __init__(self, name: str, input_name: str, input_shape: tuple[int, ...]):
        self.name = name
        self.input_name = input_name
        self.input_shape = tuple(input_shape)
        self.rng = np.random.default_rng(SEEDS[name])
        self.nodes: list[FNode] = []
        self.shapes: dict[str, tuple[int, ...]] = {input_name: self.input_shape}

    # ---------------------------------------------------------------- weights
    def _he(self, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        w = self.rng.standard_normal(shape, dtype=np.float32)
        w *= np.float32(math.sqrt(2.0 / fan_in))  # in place: VGG-16's fc6 alone is 103 M values
        return w

    def _bias(self, n: int) -> np.ndarray:
        b = self.rng.standard_normal(n, dtype=np.float32)
        b *= np.float32(BIAS_STD)
        return b

    # ---------------------------------------------------------------- nodes
    def _add(self, name: str, op: str, inputs: list[str], shape: tuple[int, ...],
             attrs=None, params=None) -> str:
        self.nodes.append(FNode(name, op, list(inputs), name, dict(attrs or {}), dict(params or {})))
        self.shapes[name] = tuple(shape)
        return name

    def conv(self, name: str, x: str, cout: int, k: int, stride: int = 1, pad: int = 0,
             groups: int = 1) -> str:
        cin, h, w = self.shapes[x]
        weight = self._he((cout, cin // groups, k, k), cin // groups * k * k)
        pads = (pad, pad, pad, pad)
        oh, ow = F.conv_out_hw(h, w, (k, k), (stride, stride), pads, (1, 1))
        attrs = {"stride": (stride, stride), "pads": pads, "dilation": (1, 1), "groups": groups}
        params = {"weight": weight, "bias": self._bias(cout)}
        return self._add(name, "conv2d", [x], (cout, oh, ow), attrs, params)

    def linear(self, name: str, x: str, n_out: int) -> str:
        s = self.shapes[x]
        params = {"weight": self._he((n_out, s[-1]), s[-1]), "bias": self._bias(n_out)}
        return self._add(name, "linear", [x], s[:-1] + (n_out,), params=params)

    def maxpool(self, name: str, x: str, k: int, stride: int, pad: int) -> str:
        c, h, w = self.shapes[x]
        pads = (pad, pad, pad, pad)
        oh, ow = F.conv_out_hw(h, w, (k, k), (stride, stride), pads, (1, 1))
        attrs = {"kernel": (k, k), "stride": (stride, stride), "pads": pads}
        return self._add(name, "maxpool", [x], (c, oh, ow), attrs)

    def act(self, name: str, op: str, x: str) -> str:
        return self._add(name, op, [x], self.shapes[x])

    def add(self, name: str, a: str, b: str) -> str:
        return self._add(name, "add", [a, b], self.shapes[a])

    def gap_flatten(self, prefix: str, x: str) -> str:
        c = self.shapes[x][0]
        g = self._add(f"{prefix}gap", "gap", [x], (c, 1, 1))
        return self._add(f"{prefix}flatten", "flatten", [g], (c,))

    def layernorm(self, name: str, x: str, eps: float = 1e-12) -> str:
        d = self.shapes[x][-1]
        params = {"gamma": np.ones(d, dtype=np.float32), "beta": np.zeros(d, dtype=np.float32)}
        return self._add(name, "layernorm", [x], self.shapes[x], {"eps": eps}, params)

    def attention(self, name: str, q: str, k: str, v: str, heads: int) -> str:
        return self._add(name, "attention", [q, k, v], self.shapes[q], {"heads": heads})

    # ---------------------------------------------------------------- result
    def source(self, output: str) -> ModelSource:
        graph = FloatGraph(self.name, self.input_name, self.input_shape, self.nodes, [output],
                           weights="synthetic")
        data_rng = np.random.default_rng([SEEDS[self.name], 1])  # independent of the weight stream
        x = data_rng.standard_normal((N_CALIB + N_SAMPLES,) + self.input_shape, dtype=np.float32)
        return ModelSource(graph, calib=x[:N_CALIB], samples=x[N_CALIB:], labels=None, notes=NOTES)


# -------------------------------------------------------------------- ResNet
def _resnet(name: str, blocks: tuple[int, ...], bottleneck: bool) -> ModelSource:
    b = _Builder(name, "input", (3, 224, 224))
    x = b.act("relu", "relu", b.conv("conv1", "input", 64, 7, stride=2, pad=3))
    x = b.maxpool("maxpool", x, 3, 2, 1)
    expansion = 4 if bottleneck else 1
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True), start=1):
        for i in range(n):
            p = f"layer{stage}.{i}."
            stride = 2 if (i == 0 and stage > 1) else 1
            cout = width * expansion
            if bottleneck:  # torchvision v1.5: the stride sits on the 3x3 conv
                y = b.act(p + "relu1", "relu", b.conv(p + "conv1", x, width, 1))
                y = b.act(p + "relu2", "relu", b.conv(p + "conv2", y, width, 3, stride=stride, pad=1))
                y = b.conv(p + "conv3", y, cout, 1)
            else:
                y = b.act(p + "relu1", "relu", b.conv(p + "conv1", x, width, 3, stride=stride, pad=1))
                y = b.conv(p + "conv2", y, cout, 3, pad=1)
            shortcut = x
            if stride != 1 or b.shapes[x][0] != cout:
                shortcut = b.conv(p + "downsample", x, cout, 1, stride=stride)
            x = b.act(p + "relu", "relu", b.add(p + "add", y, shortcut))
    return b.source(b.linear("fc", b.gap_flatten("", x), 1000))


def resnet18() -> ModelSource:
    """ResNet-18 (torchvision layout, BN folded), 224x224x3 -> 1000 logits, synthetic weights."""
    return _resnet("resnet18", (2, 2, 2, 2), bottleneck=False)


def resnet50() -> ModelSource:
    """ResNet-50 (torchvision v1.5 bottlenecks, BN folded), 224x224x3 -> 1000 logits, synthetic weights."""
    return _resnet("resnet50", (3, 4, 6, 3), bottleneck=True)


# -------------------------------------------------------------------- VGG-16
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def vgg16() -> ModelSource:
    """VGG-16 (configuration D, no BN): 13 3x3 convs, 5 max-pools, 3 FC layers; synthetic weights.

    torchvision's adaptive 7x7 average pool is the identity at 224x224 input and is omitted; dropout
    is inference-time identity.
    """
    b = _Builder("vgg16", "input", (3, 224, 224))
    x, ci, pi = "input", 0, 0
    for v in VGG16_CFG:
        if v == "M":
            x = b.maxpool(f"features.pool{pi}", x, 2, 2, 0)
            pi += 1
        else:
            x = b.act(f"features.relu{ci}", "relu", b.conv(f"features.conv{ci}", x, v, 3, pad=1))
            ci += 1
    x = b._add("flatten", "flatten", [x], (int(np.prod(b.shapes[x])),))
    x = b.act("classifier.relu0", "relu", b.linear("classifier.fc0", x, 4096))
    x = b.act("classifier.relu1", "relu", b.linear("classifier.fc1", x, 4096))
    return b.source(b.linear("classifier.fc2", x, 1000))


# -------------------------------------------------------------------- MobileNetV2
# (expansion t, output channels c, repeats n, first stride s), Sandler et al. 2018, Table 2.
MOBILENETV2_CFG = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                   (6, 320, 1, 1))


def mobilenetv2() -> ModelSource:
    """MobileNetV2 (width 1.0, BN folded): inverted residuals with depthwise 3x3 convs and ReLU6;
    synthetic weights."""
    b = _Builder("mobilenetv2", "input", (3, 224, 224))
    x = b.act("features.0.relu6", "relu6", b.conv("features.0.conv", "input", 32, 3, stride=2, pad=1))
    idx = 1
    for t, c, n, s in MOBILENETV2_CFG:
        for i in range(n):
            p = f"features.{idx}."
            cin = b.shapes[x][0]
            hidden = cin * t
            stride = s if i == 0 else 1
            y = x
            if t != 1:
                y = b.act(p + "expand.relu6", "relu6", b.conv(p + "expand", y, hidden, 1))
            y = b.conv(p + "dw", y, hidden, 3, stride=stride, pad=1, groups=hidden)  # depthwise
            y = b.act(p + "dw.relu6", "relu6", y)
            y = b.conv(p + "project", y, c, 1)  # linear bottleneck: no activation
            x = b.add(p + "add", x, y) if stride == 1 and cin == c else y
            idx += 1
    x = b.act(f"features.{idx}.relu6", "relu6", b.conv(f"features.{idx}.conv", x, 1280, 1))
    return b.source(b.linear("classifier.fc", b.gap_flatten("", x), 1000))


# -------------------------------------------------------------------- BERT-base
def _bert_layer(b: _Builder, x: str, i: int, heads: int, ffn: int, eps: float = 1e-12) -> str:
    """Append one post-LayerNorm BERT encoder layer (Hugging Face ``BertLayer`` naming) to ``b``."""
    p = f"encoder.layer.{i}."
    d = b.shapes[x][-1]
    q = b.linear(p + "attention.self.query", x, d)
    k = b.linear(p + "attention.self.key", x, d)
    v = b.linear(p + "attention.self.value", x, d)
    ctx = b.attention(p + "attention.self", q, k, v, heads)
    h = b.add(p + "attention.output.add", b.linear(p + "attention.output.dense", ctx, d), x)
    h = b.layernorm(p + "attention.output.LayerNorm", h, eps)
    y = b.act(p + "intermediate.gelu", "gelu", b.linear(p + "intermediate.dense", h, ffn))
    y = b.add(p + "output.add", b.linear(p + "output.dense", y, d), h)
    return b.layernorm(p + "output.LayerNorm", y, eps)


def bert_base() -> ModelSource:
    """BERT-base encoder: 12 layers, hidden 768, 12 heads, FFN 3072, 128 tokens; synthetic weights.

    The input is the (128, 768) output of the embedding block; the output the last hidden state.
    Attention, LayerNorm and GELU are host operators.
    """
    b = _Builder("bert-base", "embeddings", (128, 768))
    x = "embeddings"
    for i in range(12):
        x = _bert_layer(b, x, i, heads=12, ffn=3072)
    return b.source(x)
