"""Test-only small float graphs covering every trace op."""

from __future__ import annotations

import numpy as np

from aras.graph import FloatGraph, FNode


def mixed_cnn(seed: int = 0, zero_filter: bool = False) -> FloatGraph:
    """conv+relu, depthwise conv+prelu, residual add+relu6, pools, gap, linear, softmax; two outputs."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (4, 3, 3, 3))
    if zero_filter:
        w1[2] = 0.0
    nodes = [
        FNode("c1", "conv2d", ["x"], "c1o", {"pads": (1, 1, 1, 1)}, {"weight": w1, "bias": rng.normal(0, .1, 4)}),
        FNode("r1", "relu", ["c1o"], "r1o"),
        FNode("dw", "conv2d", ["r1o"], "dwo", {"pads": (1, 1, 1, 1), "groups": 4},
              {"weight": rng.normal(0, .5, (4, 1, 3, 3)), "bias": rng.normal(0, .1, 4)}),
        FNode("pr", "prelu", ["dwo"], "pro", params={"slope": np.array([.1, .2, .05, .3])}),
        FNode("add", "add", ["pro", "r1o"], "ao"),
        FNode("r6", "relu6", ["ao"], "r6o"),
        FNode("mp", "maxpool", ["r6o"], "mpo", {"kernel": (2, 2), "stride": (2, 2)}),
        FNode("ap", "avgpool", ["mpo"], "apo", {"kernel": (3, 3), "stride": (1, 1), "pads": (1, 1, 1, 1)}),
        FNode("lk", "leaky_relu", ["apo"], "lko", {"alpha": 0.1}),
        FNode("gp", "gap", ["lko"], "gpo"),
        FNode("fl", "flatten", ["gpo"], "flo"),
        FNode("fc", "linear", ["flo"], "logits", params={"weight": rng.normal(0, .5, (5, 4)), "bias": np.zeros(5)}),
        FNode("sm", "softmax", ["logits"], "prob"),
    ]
    return FloatGraph("mixed", "x", (3, 8, 8), nodes, ["logits", "prob"], weights="synthetic")
