# amaranth: UnusedElaboratable=no
"""cocotb system tests of the generated Verilog of ``hw.top.Top`` (the cocotb side is ``top_tb.py``, the
vectors come from ``system_vectors.py``): whole scheduler programs loaded through the top's streams,
compared exactly with ``sim_models.timing`` / ``sim_models.functional``. Cases: the §10.6 worked
example cold (318 cycles), a random conv layer on ``tiny`` and on ``tiny-adc`` (clipping ADCs; ``slow``
only because it needs a second ~25 s generation), and a reset in the middle of a run followed by a
complete run. The Top's SystemVerilog takes ~25 s to generate, so each config is generated and built
once per session (and reused across sessions with ``$ARAS_COCOTB_BUILD``). Each case is a fresh
simulator process (the crossbars start cold) of ~15 s: start-up, loading, ~100–350 cycles/s on Icarus 11."""

from __future__ import annotations

import json

import pytest

from aras.config import preset
from hw.top import Top
from verif.cocotb import runner
from verif.cocotb.runner import write_inputs
from verif.cocotb.system_vectors import TOP_PARAMS, vectors

TOP = "aras_top"
MODULE = "verif.cocotb.top_tb"


_DESIGNS: dict[str, runner.Build] = {}


def design(cfg_name: str, build_root) -> runner.Build:
    """The built Top of ``cfg_name`` (once per session)."""
    if cfg_name not in _DESIGNS:
        cfg = preset(cfg_name)
        _DESIGNS[cfg_name] = runner.build(Top(cfg=cfg, **TOP_PARAMS), TOP, build_root)
    return _DESIGNS[cfg_name]


def run_case(cfg_name, build_root, tmp_path, case, seed=0, **kw) -> dict:
    cfg = preset(cfg_name)
    d = design(cfg_name, build_root)
    vec = vectors(case, cfg, seed, **kw)
    env = write_inputs(tmp_path, cfg, vec, seed=seed)
    env["ARAS_SPEED"] = str(tmp_path / "speed.json")
    d.run(MODULE, tmp_path, extra_env=env)
    speed = json.loads((tmp_path / "speed.json").read_text())
    print(f"{case} on {cfg_name}: {speed['cycles']} cycles in {speed['run_s']:.1f} s = "
          f"{speed['cycles_per_s']:.0f} cycles/s (loading {speed['load_s']:.1f} s)")
    return {"vec": vec, "speed": speed}


def test_spec_example_cold(cocotb_build_root, tmp_path):
    r = run_case("tiny", cocotb_build_root, tmp_path, "spec")
    assert int(r["vec"]["exp_cycles"]) == 318 and r["speed"]["cycles"] == 318  # §10.6


def test_random_conv_tiny(cocotb_build_root, tmp_path):
    run_case("tiny", cocotb_build_root, tmp_path, "conv", seed=3)


@pytest.mark.slow
def test_random_conv_tiny_adc(cocotb_build_root, tmp_path):
    run_case("tiny-adc", cocotb_build_root, tmp_path, "conv", seed=7)


def test_reset_mid_run(cocotb_build_root, tmp_path):
    """Reset in cycle 200 of the cold §10.6 example (WRITEs and a COMPUTE in flight), then a full run."""
    r = run_case("tiny", cocotb_build_root, tmp_path, "spec", seed=5, reset_at=200)
    assert r["speed"]["steady_cycles"] < 318  # rows the interrupted run wrote are skipped by the second one
