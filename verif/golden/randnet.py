"""Random small networks over shapes, for the random regression (RTL against the golden model).

:func:`random_graph` draws a float graph of 1 to ``max_layers`` trace layers from one seed: convs with
random kernel, stride, padding, dilation and groups (dense, grouped, depthwise; packed or not), linear
layers over flat and sequence inputs, pools, global average pooling, residual adds, standalone
activations (clamp, leaky, prelu) and a host softmax, with fused activations. :func:`random_trace`
quantizes it post-training on random calibration data with the project's quantizer (so every layer's
quantization parameters follow the importer's rules) and keeps it only if it fits ``limits`` — the
Gbuffer (every tensor owns whole banks), the program and DRAM sizes of a fixed build — redrawing
otherwise. Everything is synthetic and every trace says so.
"""

from __future__ import annotations

import numpy as np

from aras.config import Config
from aras.errors import ArasError
from aras.graph import FloatGraph, FNode
from aras.models import ModelSource
from aras.ops_float import conv_out_hw
from aras.quantize import quantize
from aras.trace import Trace


def _conv_node(rng, name, src, shape, cfg: Config):
    c, h, w = shape
    kh, kw = (int(rng.integers(1, min(3, h) + 1)), int(rng.integers(1, min(3, w) + 1)))
    dil = (1, 1) if rng.random() < 0.8 or kh == 1 else (2, 1)
    if (kh - 1) * dil[0] + 1 > h + 2:
        dil = (1, 1)
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    pads = tuple(int(rng.integers(0, 2)) for _ in range(4))
    r = rng.random()
    if r < 0.25 and c > 1:  # depthwise (packed block-diagonal tiles)
        groups, cout = c, c * int(rng.integers(1, 3))
    elif r < 0.4 and c % 2 == 0:
        groups, cout = 2, 2 * int(rng.integers(1, 4))
    else:
        groups, cout = 1, int(rng.integers(1, 2 * cfg.xbar_cols // cfg.slices + 3))
    oh, ow = conv_out_hw(h, w, (kh, kw), stride, pads, dil)
    if oh < 1 or ow < 1:
        return None
    wt = rng.normal(0, 0.4, (cout, c // groups, kh, kw))
    node = FNode(name, "conv2d", [src], f"{name}o", {"stride": stride, "pads": pads, "dilation": dil,
                                                       "groups": groups},
                 {"weight": wt, "bias": rng.normal(0, 0.1, cout)})
    return node, (cout, oh, ow)


def _act(rng, name, src, shape):
    op = str(rng.choice(["relu", "relu6", "leaky_relu", "prelu", "clamp"]))
    attrs, params = {}, {}
    if op == "leaky_relu":
        attrs["alpha"] = float(rng.choice([0.1, 0.2, 0.01]))
    elif op == "prelu":
        params["slope"] = rng.uniform(0.05, 0.4, shape[0])
    elif op == "clamp":
        attrs.update(min=-0.5, max=float(rng.uniform(0.5, 2.0)))
    return FNode(name, op, [src], f"{name}o", attrs, params), shape


def random_graph(seed: int, cfg: Config, max_layers: int = 6) -> FloatGraph:
    """A random float graph whose trace has at most ``max_layers`` layers (flatten aliases included)."""
    rng = np.random.default_rng(seed)
    if rng.random() < 0.3:  # a sequence model: linear layers over (T, D), maybe a softmax
        t, d = int(rng.integers(1, 4)), int(rng.integers(2, 40))
        shape, nodes, cur = (t, d), [], "x"
        for i in range(int(rng.integers(1, max_layers))):
            n = int(rng.integers(1, 24))
            nodes.append(FNode(f"fc{i}", "linear", [cur], f"fc{i}o",
                               params={"weight": rng.normal(0, 0.3, (n, shape[-1])), "bias": rng.normal(0, .1, n)}))
            cur, shape = f"fc{i}o", shape[:-1] + (n,)
            if rng.random() < 0.5 and len(nodes) < max_layers - 1:
                nodes.append(FNode(f"r{i}", "relu", [cur], f"r{i}o"))
                cur = f"r{i}o"
        if rng.random() < 0.4 and len(nodes) < max_layers:
            nodes.append(FNode("sm", "softmax", [cur], "smo"))
            cur = "smo"
        return FloatGraph(f"rand{seed}", "x", (t, d), nodes, [cur], weights="synthetic")
    c, h, w = int(rng.integers(1, 5)), int(rng.integers(2, 8)), int(rng.integers(2, 8))
    shape, nodes, cur = (c, h, w), [], "x"
    budget = int(rng.integers(1, max_layers + 1))
    while len(nodes) < budget:
        i, r = len(nodes), rng.random()
        if len(shape) == 3 and r < 0.45:
            got = _conv_node(rng, f"c{i}", cur, shape, cfg)
            if got is None:
                continue
            node, shape = got
        elif len(shape) == 3 and r < 0.55 and min(shape[1:]) >= 2:
            k = int(rng.integers(2, min(3, shape[1], shape[2]) + 1))
            op = str(rng.choice(["maxpool", "avgpool"]))
            pads = (0, 0, 0, 0) if rng.random() < 0.6 else (1, 1, 1, 1)
            if op == "maxpool" and pads[0] >= k:
                pads = (0, 0, 0, 0)
            s = int(rng.integers(1, k + 1))
            oh, ow = conv_out_hw(shape[1], shape[2], (k, k), (s, s), pads, (1, 1))
            node = FNode(f"p{i}", op, [cur], f"p{i}o", {"kernel": (k, k), "stride": (s, s), "pads": pads})
            shape = (shape[0], oh, ow)
        elif len(shape) == 3 and r < 0.62:
            node, shape = FNode(f"g{i}", "gap", [cur], f"g{i}o"), (shape[0], 1, 1)
        elif r < 0.75 and i > 0 and nodes[-1].op not in ("add",) and budget - i >= 2:
            # residual: a shape-preserving conv (or activation) and an add with its input
            if len(shape) == 3:
                cc = shape[0]
                conv = FNode(f"c{i}", "conv2d", [cur], f"c{i}o", {"pads": (1, 1, 1, 1)},
                             {"weight": rng.normal(0, 0.3, (cc, cc, 3, 3)), "bias": rng.normal(0, .1, cc)})
            else:
                conv, _ = _act(rng, f"a{i}", cur, shape)
            nodes.append(conv)
            node = FNode(f"add{i}", "add", [conv.output, cur], f"add{i}o")
        elif r < 0.88:
            node, shape = _act(rng, f"a{i}", cur, shape)
        else:
            if len(shape) == 3:
                nodes.append(FNode(f"f{i}", "flatten", [cur], f"f{i}o"))
                cur, shape = f"f{i}o", (int(np.prod(shape)),)
                if len(nodes) >= budget:
                    break
            n = int(rng.integers(1, 20))
            node = FNode(f"fc{len(nodes)}", "linear", [cur], f"fc{len(nodes)}o",
                         params={"weight": rng.normal(0, 0.3, (n, shape[-1])), "bias": rng.normal(0, .1, n)})
            shape = shape[:-1] + (n,)
        nodes.append(node)
        cur = node.output
    if not any(n.op in ("conv2d", "linear") for n in nodes):  # at least one crossbar layer
        n = int(rng.integers(1, 8))
        nodes.append(FNode("fl", "flatten", [cur], "flo"))
        nodes.append(FNode("fcl", "linear", ["flo"], "fclo",
                           params={"weight": rng.normal(0, 0.3, (n, int(np.prod(shape)))), "bias": np.zeros(n)}))
        cur = "fclo"
    return FloatGraph(f"rand{seed}", "x", (c, h, w), nodes, [cur], weights="synthetic")


def random_trace(seed: int, cfg: Config, max_layers: int = 6, fits=None, tries: int = 50) -> Trace:
    """The int8 trace of the first ``random_graph`` from ``seed`` on that ``fits(trace)`` accepts (and that
    schedules on ``cfg``); ``ArasError`` if none of ``tries`` draws does."""
    from sim_models.scheduler import Options, schedule

    rng = np.random.default_rng(seed)
    for k in range(tries):
        s = int(rng.integers(1 << 31)) if k else seed
        g = random_graph(s, cfg, max_layers)
        x = np.random.default_rng(s + 1).normal(0, 1, (8,) + g.input_shape)
        try:
            tr = quantize(ModelSource(g, x, x[:2], notes=f"synthetic random network (seed {s}), random inputs"),
                          g.name)
            if len(tr.layers) > max_layers:
                continue
            schedule(tr, cfg, "aras", Options.for_mode("aras"))
        except ArasError:
            continue  # does not fit the chip or its Gbuffer: draw again
        if fits is None or fits(tr):
            return tr
    raise ArasError(f"random_trace: no network of seed {seed} fits {cfg.name} in {tries} draws")
