"""cocotb system tests of the generated Verilog of ``hw.top.Top`` (the cocotb side is ``top_tb.py``, the
cases come from ``system_vectors.py``): whole scheduler programs loaded through the top's streams,
compared exactly with ``sim_models.timing`` / ``sim_models.functional``. The Top's SystemVerilog takes
~25 s to generate, so each config is generated and built once per session (and reused across sessions
with ``$ARAS_COCOTB_BUILD``). Each case is a fresh simulator process (the crossbars start cold)."""

from __future__ import annotations

import pytest

from aras.config import preset
from verif.cocotb.system import run_case
from verif.cocotb.system_vectors import MODES, make_case

TINY = preset("tiny")
TINY_ADC = preset("tiny-adc")


def _run(name, cfg, root, tmp_path, seed=0, runs=1, **kw):
    return run_case(make_case(name, cfg, seed, runs), cfg, root, tmp_path, **kw)


def test_spec_example_cold(cocotb_build_root, tmp_path):
    r = _run("spec", TINY, cocotb_build_root, tmp_path)
    assert r["runs"][0]["cycles"] == [318, 318]  # §10.6


def test_reset_mid_run(cocotb_build_root, tmp_path):
    """Reset in cycle 200 of the cold §10.6 example (WRITEs and a COMPUTE in flight), then a full run."""
    r = _run("spec", TINY, cocotb_build_root, tmp_path, seed=5, reset_at=200)
    assert r["runs"][0]["cycles"][1] < 318  # rows the interrupted run wrote are skipped by the second one


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_random_layer_every_mode(cocotb_build_root, tmp_path, kind, mode):
    _run(f"{kind}@{mode}", TINY, cocotb_build_root, tmp_path, seed=3)


@pytest.mark.parametrize("mode", ["aras", "baseline"])
def test_rounds_and_rewrites(cocotb_build_root, tmp_path, mode):
    """Three linear layers with ~7x the chip's weights, twice (the second run is the steady state)."""
    _run(f"mlp@{mode}", TINY, cocotb_build_root, tmp_path, seed=4, runs=2)


def test_disturbed_run(cocotb_build_root, tmp_path):
    """Random DRAM-side stalls and a late host: outputs and untimed counters exact, cycles only grow."""
    r = _run("mtcnn-pnet", TINY, cocotb_build_root, tmp_path, stall=0.3, host_delay=0.5)
    got, gold = r["runs"][0]["cycles"][1], r["runs"][0]["cycles"][0]
    assert got > gold


def test_mtcnn_pnet(cocotb_build_root, tmp_path):
    """Real weights, both heads; the softmax is a HOST layer answered by the testbench's host."""
    r = _run("mtcnn-pnet", TINY, cocotb_build_root, tmp_path)
    assert r["runs"][0]["host_layers"] == [5]


def test_lenet5(cocotb_build_root, tmp_path):
    """Real trained weights on a real test digit; the predicted digit equals the golden model's."""
    _run("lenet5", TINY, cocotb_build_root, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["aras", "baseline", "no-diff-write"])
@pytest.mark.parametrize("kind", ["conv", "fc"])
def test_tiny_adc(cocotb_build_root, tmp_path, kind, mode):
    _run(f"{kind}@{mode}", TINY_ADC, cocotb_build_root, tmp_path, seed=7)
