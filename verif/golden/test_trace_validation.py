"""Layer traces: values of the wrong type or size are rejected, naming file, tensor or layer, and field.

Before, ``int()`` / ``float()`` on load truncated a fractional shape or zero point silently, and a
2**32 x 2**32 tensor's element count wrapped to 0 in ``np.prod`` (a "1 cycles" report).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from aras.errors import ArasError
from aras.models import ModelSource
from aras.quantize import quantize
from aras.trace import Layer, TensorQ, Trace
from verif.golden.smallnets import mixed_cnn

NAN = float("nan")


@pytest.fixture(scope="module")
def trace():
    g = mixed_cnn()
    x = np.random.default_rng(0).normal(size=(16,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4], np.arange(4)))


@pytest.fixture(scope="module")
def clamp_trace():
    """x -> clamp -> y: consistent for any shape, so only the size check can reject a huge one."""
    t = Trace("clamp", "synthetic", "x", {"x": TensorQ((4, 4), 0.1, 0), "y": TensorQ((4, 4), 0.1, 0)},
              [Layer("c", "clamp", ["x"], "y", {"act_min": -128, "act_max": 127})], ["y"])
    t.validate()
    return t


def _huge(m):  # 2**64 elements: np.prod wraps to 0 and the model reported a couple of cycles
    for t in ("x", "y"):
        m["tensors"][t]["shape"] = [2 ** 32, 2 ** 32]


def _edit(path, trace, fn):
    trace.save(path)
    p = path / "trace.json"
    meta = json.loads(p.read_text())
    fn(meta)
    p.write_text(json.dumps(meta))  # NaN / Infinity are written as JSON's NaN / Infinity literals
    return path


def _tensor(name, **kw):
    return lambda m: m["tensors"][name].update(kw)


def _attr(layer, **kw):
    return lambda m: m["layers"][layer]["attrs"].update(kw)


@pytest.mark.parametrize("edit,msg", [
    # zero points: integers in the int8 range
    (_tensor("r1o", zero_point=0.5), "tensor 'r1o': zero_point must be an integer in [-128, 127], got 0.5"),
    (_tensor("r1o", zero_point=3.0), "tensor 'r1o': zero_point must be an integer in [-128, 127], got 3.0"),
    (_tensor("r1o", zero_point=True), "tensor 'r1o': zero_point must be an integer in [-128, 127], got True"),
    (_tensor("r1o", zero_point="0"), "tensor 'r1o': zero_point must be an integer in [-128, 127], got '0'"),
    (_tensor("r1o", zero_point=-129), "tensor 'r1o': zero_point -129 outside [-128, 127]"),
    # shapes: positive integers
    (_tensor("r1o", shape=[4, 8.5, 8]), "tensor 'r1o': shape [4, 8.5, 8]: dimension 1 must be a positive integer, "
                                        "got 8.5"),
    (_tensor("r1o", shape=[4, 8.0, 8]), "tensor 'r1o': shape [4, 8.0, 8]: dimension 1 must be a positive integer"),
    (_tensor("r1o", shape=[True, 8, 8]), "tensor 'r1o': shape [True, 8, 8]: dimension 0 must be a positive integer"),
    (_tensor("r1o", shape=[4, 0, 8]), "tensor 'r1o': shape [4, 0, 8]: dimension 1 must be a positive integer, got 0"),
    (_tensor("r1o", shape=[4, -8, 8]), "tensor 'r1o': shape [4, -8, 8]: dimension 1 must be a positive integer"),
    (_tensor("r1o", shape=[]), "tensor 'r1o': shape must be a non-empty list of positive integers, got []"),
    (_tensor("r1o", shape=4), "tensor 'r1o': shape must be a non-empty list of positive integers, got 4"),
    # element counts that would overflow int64 products (2**64 wraps to 0 in np.prod)
    (_tensor("x", shape=[2 ** 32, 2 ** 32]), "tensor 'x': shape [4294967296, 4294967296] has 18446744073709551616 "
                                             "elements; at most 2**40"),
    (_tensor("x", shape=[3, 2 ** 20, 2 ** 20]), "tensor 'x': shape [3, 1048576, 1048576] has 3298534883328 elements"),
    (_tensor("x", shape=[2 ** 70]), "tensor 'x': shape [1180591620717411303424] has"),
    # scales: finite positive numbers
    (_tensor("r1o", scale=NAN), "tensor 'r1o': scale must be positive and finite, got nan"),
    (_tensor("r1o", scale=float("inf")), "tensor 'r1o': scale must be positive and finite, got inf"),
    (_tensor("r1o", scale=0), "tensor 'r1o': scale must be positive and finite, got 0"),
    (_tensor("r1o", scale="0.1"), "tensor 'r1o': scale must be positive and finite, got '0.1'"),
    (_tensor("r1o", scale=True), "tensor 'r1o': scale must be positive and finite, got True"),
    (_tensor("r1o", scale=10 ** 400), "tensor 'r1o': scale must be positive and finite, got 1000"),  # float() overflows
    # geometry attributes: the shape rules would truncate them
    (_attr(0, stride=[1.5, 1]), "layer 'c1' (conv2d): attribute 'stride' must be 2 integers >= 1, got [1.5, 1]"),
    (_attr(0, pads=[1, 1, 1, True]), "layer 'c1' (conv2d): attribute 'pads' must be 4 integers >= 0"),
    (_attr(0, dilation=[1, 0]), "layer 'c1' (conv2d): attribute 'dilation' must be 2 integers >= 1"),
    (_attr(1, groups=4.0), "layer 'dw' (conv2d): attribute 'groups' must be an integer, got 4.0"),
    (_attr(3, kernel=[2, 2.5]), "layer 'mp' (maxpool): attribute 'kernel' must be 2 integers >= 1"),
    (_attr(7, shape=[4.0]), "layer 'fl' (reshape): attribute 'shape' must be a list of integers >= 1, got [4.0]"),
    (_attr(7, shape=[2 ** 32, 2 ** 32]), "layer 'fl' (reshape): attribute 'shape': shape [4294967296, 4294967296] "
                                         "has 18446744073709551616 elements"),
    # structure of the tensors table
    (lambda m: m.update(tensors=[1, 2]), "malformed trace field"),
    (lambda m: m["tensors"].update(r1o=[4, 8, 8]), "malformed trace field"),
])
def test_bad_tensor_values_are_rejected_naming_tensor_and_field(tmp_path, trace, edit, msg):
    d = _edit(tmp_path / "t", trace, edit)
    with pytest.raises(ArasError) as e:
        Trace.load(d)
    got = str(e.value)
    assert "\n" not in got and got.startswith(str(d)) and msg in got, got


def test_in_memory_traces_are_checked_the_same(trace):
    good = trace.tensors["r1o"]
    for bad, msg in [(TensorQ((4, 8.5, 8), good.scale, good.zero_point), "dimension 1 must be a positive integer"),
                     (TensorQ(good.shape, good.scale, 0.5), "zero_point must be an integer"),
                     (TensorQ(good.shape, NAN, good.zero_point), "scale must be positive and finite, got nan"),
                     (TensorQ(good.shape, np.float32("inf"), good.zero_point), "scale must be positive and finite"),
                     (TensorQ((2 ** 32, 2 ** 32), good.scale, good.zero_point), "has 18446744073709551616 elements")]:
        trace.tensors["r1o"] = bad
        try:
            with pytest.raises(ArasError, match="^trace: tensor 'r1o': ") as e:
                trace.validate()
            assert msg in str(e.value)
        finally:
            trace.tensors["r1o"] = good
    # numpy integers and floats are integers and floats
    trace.tensors["r1o"] = TensorQ(tuple(np.int64(d) for d in good.shape), np.float32(good.scale),
                                   np.int32(good.zero_point))
    try:
        trace.validate()
    finally:
        trace.tensors["r1o"] = good


def test_good_trace_still_loads(tmp_path, trace):
    t = Trace.load(_edit(tmp_path / "t", trace, lambda m: None))
    assert t.tensors == trace.tensors
    assert all(type(d) is int for q in t.tensors.values() for d in q.shape)


def test_huge_consistent_trace_is_rejected(tmp_path, clamp_trace):
    d = _edit(tmp_path / "t", clamp_trace, lambda m: None)
    assert Trace.load(d).tensors["y"].shape == (4, 4)
    with pytest.raises(ArasError, match=r"trace.json: tensor 'x': shape \[4294967296, 4294967296\] has "
                                        r"18446744073709551616 elements; at most 2\*\*40 are supported$"):
        Trace.load(_edit(tmp_path / "t", clamp_trace, _huge))
    big = TensorQ((2 ** 32, 2 ** 32), 0.1, 0)
    with pytest.raises(ArasError, match="tensor 'x': shape"):
        Trace("clamp", "synthetic", "x", {"x": big, "y": big}, clamp_trace.layers, ["y"]).validate()


@pytest.mark.parametrize("which,edit,msg", [
    ("clamp", _huge, "tensor 'x': shape [4294967296, 4294967296] has 18446744073709551616 elements"),
    ("mixed", _tensor("r1o", zero_point=0.5), "tensor 'r1o': zero_point must be an integer in [-128, 127], got 0.5"),
    ("mixed", _tensor("r1o", shape=[4, 8.5, 8]), "tensor 'r1o': shape [4, 8.5, 8]: dimension 1 must be a positive"),
    ("mixed", _tensor("r1o", scale=NAN), "tensor 'r1o': scale must be positive and finite, got nan"),
])
def test_cli_reports_bad_trace_in_one_line(tmp_path, trace, clamp_trace, which, edit, msg):
    d = _edit(tmp_path / "t", clamp_trace if which == "clamp" else trace, edit)
    r = subprocess.run([sys.executable, "-m", "aras.cli", "simulate", str(d), "--config", "tiny", "--perf-only"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "cycles" not in r.stdout, r.stdout
    assert "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"aras: {d / 'trace.json'}: ") and msg in err[0], r.stderr
