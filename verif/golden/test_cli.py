"""The command line: happy paths on a small trace and one-line errors that write nothing."""

from __future__ import annotations

import numpy as np
import pytest

from aras.cli import main
from aras.models import ModelSource
from aras.quantize import quantize
from verif.golden.smallnets import mixed_cnn


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory):
    g = mixed_cnn()
    x = np.random.default_rng(0).normal(size=(8,) + g.input_shape)
    d = tmp_path_factory.mktemp("tr") / "mixed"
    quantize(ModelSource(g, x, x[:6], np.array([0, 1, 2, 3, 4, 0]))).save(d)
    return d


def test_models_lists_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ("lenet5", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "minilm-l6", "resnet18", "resnet50", "vgg16",
                 "mobilenetv2", "bert-base"):
        assert f"\n{name} " in out
    assert "synthetic" in out and "real" in out


def test_config_prints_sources(capsys):
    assert main(["config", "tiny-adc"]) == 0
    out = capsys.readouterr().out
    assert "adc_bits = 4" in out and "NeuroSim" in out


def test_simulate_outputs_and_json(tmp_path, trace_dir, capsys):
    npz, js = tmp_path / "o.npz", tmp_path / "r.json"
    assert main(["simulate", str(trace_dir), "--config", "tiny", "--outputs", str(npz), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "weights: synthetic" in out and "host work: 1 layers (softmax)" in out
    import json
    rep = json.loads(js.read_text())
    assert rep["weights"] == "synthetic" and rep["host_work"]["names"] == ["sm"] and rep["mode"] == "aras"
    assert rep["cycles"] > rep["lower_bound"]["cycles"] > 0 and rep["energy_j"]["total"] > rep["energy_j"]["write"]
    assert rep["host_work"]["flops_per_sample"] == 25
    z = np.load(npz)
    assert set(z.files) == {"output", "output_q", "output_scale", "output_zero_point",
                            "output_1", "output_q_1", "output_scale_1", "output_zero_point_1"}
    assert z["output_q"].dtype == np.int8 and z["output"].dtype == np.float32 and z["output"].shape == (6, 5)
    np.testing.assert_allclose(z["output"], (z["output_q"].astype(np.float32) - z["output_zero_point"])
                               * z["output_scale"])


def test_simulate_float_inputs(tmp_path, trace_dir):
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(1).normal(size=(3, 3, 8, 8)))
    assert main(["simulate", str(trace_dir), "--config", "paper", "--inputs", str(x), "--outputs",
                 str(tmp_path / "o.npz")]) == 0
    assert np.load(tmp_path / "o.npz")["output_q"].shape == (3, 5)


@pytest.mark.parametrize("args,msg", [
    (["simulate", "no-such-model"], "neither a trace directory nor a model name"),
    (["simulate", "TRACE", "--config", "huge"], "config 'huge' is neither a preset"),
    (["simulate", "TRACE", "--inputs", "missing.npy"], "inputs file missing.npy does not exist"),
    (["simulate", "TRACE", "--inputs", "BADSHAPE"], "does not match the model input"),
    (["simulate", "TRACE", "--inputs", "NOTNPY"], "not a readable .npy"),
    (["simulate", "model.onnx"], "ONNX models are imported first"),
    (["import-onnx", "missing.onnx", "-o", "OUT"], "missing.onnx"),
])
def test_bad_input_one_line_and_nothing_written(tmp_path, trace_dir, capsys, args, msg):
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 5, 5)))
    (tmp_path / "notnpy.npy").write_bytes(b"hello")
    subst = {"TRACE": str(trace_dir), "BADSHAPE": str(tmp_path / "bad.npy"), "NOTNPY": str(tmp_path / "notnpy.npy"),
             "OUT": str(tmp_path / "out")}
    out = tmp_path / "o.npz"
    argv = [subst.get(a, a) for a in args] + (["--outputs", str(out)] if args[0] == "simulate" else [])
    assert main(argv) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aras: ") and msg in err[0], err
    assert not out.exists() and not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary leftovers"
