"""Layer-trace files: round trip, validation errors naming file/layer/field, Gbuffer fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from aras.models import ModelSource
from aras.quantize import quantize
from aras.trace import Trace, check_fits, live_bytes
from verif.golden.smallnets import mixed_cnn


@pytest.fixture(scope="module")
def trace():
    g = mixed_cnn()
    x = np.random.default_rng(0).normal(size=(16,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4], np.arange(4)))


def test_round_trip(tmp_path, trace):
    trace.save(tmp_path / "t")
    t2 = Trace.load(tmp_path / "t")
    assert [ly.name for ly in t2.layers] == [ly.name for ly in trace.layers]
    for a, b in zip(trace.layers, t2.layers, strict=True):
        assert a.attrs == b.attrs
        for k in a.arrays:
            np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
            assert a.arrays[k].dtype == b.arrays[k].dtype
    np.testing.assert_array_equal(t2.samples, trace.samples)
    np.testing.assert_array_equal(t2.labels, trace.labels)
    assert t2.tensors == trace.tensors and t2.weights == "synthetic"


def _edit(tmp_path, trace, fn):
    trace.save(tmp_path / "t")
    p = tmp_path / "t" / "trace.json"
    meta = json.loads(p.read_text())
    fn(meta)
    p.write_text(json.dumps(meta))
    return tmp_path / "t"


@pytest.mark.parametrize("edit,msg", [
    (lambda m: m.update(version=99), "trace version 99"),
    (lambda m: m.update(format="x"), "not an aras-trace file"),
    (lambda m: m["tensors"]["r1o"].update(scale=-1), "tensor 'r1o': scale must be positive"),
    (lambda m: m["tensors"]["r1o"].update(zero_point=300), "tensor 'r1o': zero_point 300"),
    (lambda m: m["layers"][0].update(op="conv3d"), "layer 'c1' \\(conv3d\\): unsupported op"),
    (lambda m: m["layers"][0]["attrs"].update(act_min=200), "layer 'c1' \\(conv2d\\): attribute 'act_min'"),
    (lambda m: m["layers"][1].update(inputs=["nope"]), "layer 'dw' \\(conv2d\\): tensor 'nope' is not declared"),
    (lambda m: m["layers"][0]["attrs"].update(stride=[2, 2]), "layer 'c1' \\(conv2d\\): output shape"),
    (lambda m: m.update(weights="maybe"), "field 'weights'"),
    (lambda m: m.update(outputs=["zzz"]), "field 'outputs'"),
    (lambda m: m["layers"][0]["arrays"].append("ghost"), "layer 'c1': missing array 'ghost'"),
])
def test_corrupt_trace_is_rejected_with_location(tmp_path, trace, edit, msg):
    with pytest.raises(ArasError, match=msg):
        Trace.load(_edit(tmp_path, trace, edit))


def test_bad_files(tmp_path, trace):
    with pytest.raises(ArasError, match="not a trace directory"):
        Trace.load(tmp_path / "none")
    trace.save(tmp_path / "t")
    (tmp_path / "t" / "arrays.npz").write_bytes(b"garbage")
    with pytest.raises(ArasError, match="arrays.npz: corrupt"):
        Trace.load(tmp_path / "t")
    (tmp_path / "t" / "trace.json").write_text("{")
    with pytest.raises(ArasError, match="corrupt JSON"):
        Trace.load(tmp_path / "t")


def test_weight_out_of_range_rejected(trace):
    bad = trace.layers[0].arrays["weight"].copy()
    bad.flat[0] = -128
    trace.layers[0].arrays["weight"], keep = bad, trace.layers[0].arrays["weight"]
    try:
        with pytest.raises(ArasError, match="weight -128"):
            trace.validate()
    finally:
        trace.layers[0].arrays["weight"] = keep


def test_quantize_input_shape_error(trace):
    with pytest.raises(ArasError, match="does not match the model input"):
        trace.quantize_input(np.zeros((2, 3, 9, 9)), source="x.npy")


def test_live_bytes_and_fit(trace):
    lb = dict(live_bytes(trace))
    # while the add runs: its two inputs and its output, each 4x8x8
    assert lb["add"] == 3 * 4 * 64
    check_fits(trace, preset("tiny"))
    with pytest.raises(ArasError, match="Gbuffer too small for layer 'c1'"):
        check_fits(trace, preset("tiny").replace(gbuf_banks=1, gbuf_bank_bytes=256, gbuf_word_bytes=4))
