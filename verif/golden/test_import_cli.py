"""`aras import-onnx` end to end: a float CNN with BatchNorm, depthwise convs and a residual add is
imported, quantized with calibration inputs, simulated, and tracks ONNX's own float reference."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

from aras.cli import main
from verif.golden import onnx_graphs


@pytest.fixture
def model_file(tmp_path):
    m = onnx_graphs.cnn(constants=True)
    p = tmp_path / "cnn.onnx"
    onnx.save(m, p)
    return p, m


def test_import_simulate_matches_float(tmp_path, model_file, capsys):
    path, model = model_file
    rng = np.random.default_rng(0)
    calib, x = rng.normal(size=(32, 3, 16, 16)), rng.normal(size=(8, 3, 16, 16))
    np.save(tmp_path / "calib.npy", calib)
    np.save(tmp_path / "x.npy", x)
    assert main(["import-onnx", str(path), "-o", str(tmp_path / "tr"), "--calib", str(tmp_path / "calib.npy")]) == 0
    assert "weights real" in capsys.readouterr().out
    for cfg in ("paper", "tiny"):
        out = tmp_path / f"{cfg}.npz"
        assert main(["simulate", str(tmp_path / "tr"), "--config", cfg, "--inputs", str(tmp_path / "x.npy"),
                     "--outputs", str(out)]) == 0
    z_paper, z_tiny = np.load(tmp_path / "paper.npz"), np.load(tmp_path / "tiny.npz")
    np.testing.assert_array_equal(z_paper["output_q"], z_tiny["output_q"])  # exact ADCs: tiling-independent
    logits, probs = ReferenceEvaluator(model).run(None, {"input": x.astype(np.float32)})
    err = np.abs(z_paper["output"] - logits).max()
    print("max error in output steps:", err / float(z_paper["output_scale"]))
    assert err < 8 * float(z_paper["output_scale"]), err  # a few output steps of quantization error
    assert np.abs(z_paper["output_1"] - probs).max() < 0.05
    assert (z_paper["output"].argmax(1) == logits.argmax(1)).mean() >= 0.75


def test_import_without_calib_refuses(tmp_path, model_file, capsys):
    path, _ = model_file
    assert main(["import-onnx", str(path), "-o", str(tmp_path / "tr")]) == 2
    err = capsys.readouterr().err
    assert "give calibration inputs with --calib" in err and not (tmp_path / "tr").exists()


def test_import_qdq_without_calib(tmp_path, capsys):
    p = tmp_path / "q.onnx"
    onnx.save(onnx_graphs.qdq_cnn(), p)
    assert main(["import-onnx", str(p), "-o", str(tmp_path / "tr")]) == 0


def test_import_corrupt_file(tmp_path, capsys):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x01garbage")
    assert main(["import-onnx", str(p), "-o", str(tmp_path / "tr"), "--calib", "x.npy"]) == 2
    assert "bad.onnx" in capsys.readouterr().err and not (tmp_path / "tr").exists()
