"""Write-model device presets (aras/devices.py, docs/devices.md): the default is today's cell exactly, every
constant carries its source, the presets load by flag and as TOML bases, and ``pulses_per_level`` (program-and-
verify iterations per level step) moves the golden model's write timing and energy (the RTL write engine with it:
verif/hw/test_write_engine.py::test_worked_example_8_3)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from aras.config import Config, from_dict, load, preset
from aras.devices import DEVICES, device, with_device
from aras.errors import ArasError
from sim_models.write_engine import WriteTables, write_tile


def _cli(*argv):
    return subprocess.run([sys.executable, "-m", "aras.cli", *argv], capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------------------------- presets
def test_default_is_todays_cell_exactly():
    c = preset("paper")
    assert c.device == "nvsim-sample" and c.pulses_per_level == 1
    assert (c.t_pulse_ns, c.t_verify_ns, c.t_reset_ns, c.e_set_pj, c.e_reset_pj) == (10.0, 10.0, 10.0, 0.6, 0.6)
    assert c.write_pulses == tuple(tuple(abs(n - o) for n in range(4)) for o in range(4))
    assert c.write_energy_pj == tuple(tuple(float(abs(n - o) * 0.6) for n in range(4)) for o in range(4))
    for name in ("paper", "paper-unbounded"):
        p = preset(name)
        assert with_device(p, "nvsim-sample").to_dict() == p.to_dict()  # applying the default changes nothing
    assert with_device(preset("tiny"), "nvsim-sample").t_pulse_ns == 10.0  # tiny's 1 ns times are its own


def test_every_device_constant_has_a_source():
    assert {"nvsim-sample", "neurosim-mlc", "neurram-slow"} <= set(DEVICES)
    for d in DEVICES.values():
        assert set(d.fields) == {"t_pulse_ns", "t_verify_ns", "t_reset_ns", "e_set_pj", "e_reset_pj",
                                 "pulses_per_level"}
        for k, (v, src) in d.fields.items():
            assert len(src) > 15 and k in Config.sources(), (d.name, k)
            assert v > 0


def test_neurosim_figures_by_hand():
    # DNN_NeuroSim V2.1: V_w = 4 V, Ron 100 kOhm, Roff 1 MOhm, 50 ns pulses: 16 x (1e-5 + 1e-6) / 2 x 50e-9 J.
    c = load("paper", device="neurosim-mlc")
    assert math.isclose(c.e_set_pj, 4.4) and math.isclose(c.e_reset_pj, 4.4)
    # 32 conductance states: a 2-bit level step (a third of the range) is ceil(32 / 3) = 11 pulses.
    assert c.pulses_per_level == 11 and c.t_pulse_ns == 50.0 and c.t_verify_ns == 10.0
    assert c.write_pulses[0][3] == 33 and c.write_pulses[2][1] == 11
    assert math.isclose(c.write_energy_pj[0][3], 33 * 4.4) and math.isclose(c.write_energy_pj[3][2], 11 * 4.4)
    assert c.name == "paper+neurosim-mlc"
    s = load("paper", device="neurram-slow")
    assert s.t_pulse_ns == 1000.0 and math.isclose(s.e_set_pj, 88.0) and s.write_pulses[0][1] == 11
    assert s.max_verify_pulses >= max(map(max, s.write_pulses))


def test_devices_load_by_flag_and_as_toml_bases(tmp_path):
    want = load("paper", device="neurosim-mlc")
    a = tmp_path / "a.toml"
    a.write_text('base = "paper"\ndevice = "neurosim-mlc"\n')
    b = tmp_path / "b.toml"
    b.write_text('base = "neurosim-mlc"\n')
    for p in (a, b):
        got = load(str(p))
        assert {k: v for k, v in got.to_dict().items() if k != "name"} == \
            {k: v for k, v in want.to_dict().items() if k != "name"}
    # the file's own fields win over the device's; explicit tables over derived ones
    c = tmp_path / "c.toml"
    c.write_text('base = "tiny"\ndevice = "neurosim-mlc"\nt_pulse_ns = 3.0\npulses_per_level = 2\n')
    got = load(str(c))
    assert got.t_pulse_ns == 3.0 and got.write_pulses[0][3] == 6 and got.e_set_pj == pytest.approx(4.4)
    assert got.xbar_rows == 16  # the rest from the base
    t = from_dict({"base": "paper", "device": "neurosim-mlc", "write_pulses": [[0, 1, 1, 1], [1, 0, 1, 1],
                                                                              [1, 1, 0, 1], [1, 1, 1, 0]]})
    assert t.write_pulses[0][3] == 1
    assert from_dict(want.to_dict()).to_dict() == want.to_dict()  # round trip (Config.replace)


def test_bad_device_is_one_line():
    with pytest.raises(ArasError, match="--device 'nope': unknown device"):
        device("nope")
    with pytest.raises(ArasError, match="field 'device' must be a device preset"):
        from_dict({"base": "paper", "device": "nope"})
    with pytest.raises(ArasError, match="field 'pulses_per_level' must be > 0"):
        preset("paper").replace(pulses_per_level=0)
    with pytest.raises(ArasError, match="'max_verify_pulses' is 255 but write_pulses"):
        preset("paper").replace(pulses_per_level=100)  # 3 steps x 100 pulses > the give-up bound


@pytest.mark.parametrize("argv,msg", [
    (["config", "paper", "--device", "nope"], "aras: --device 'nope': unknown device"),
    (["simulate", "aras/fixtures/lenet5", "--perf-only", "--device", "nope"], "aras: --device 'nope'"),
    (["config", "--devices", "paper"], "aras: --devices lists the device presets"),
])
def test_cli_rejects_bad_device_in_one_line(argv, msg):
    r = _cli(*argv)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and r.stdout == "" and len(err) == 1 and err[0].startswith(msg), r.stderr


def test_cli_lists_devices_and_prints_the_merged_config():
    r = _cli("config", "--devices")
    assert r.returncode == 0
    for d in DEVICES.values():
        assert f"{d.name}" in r.stdout
        for _, src in d.fields.values():
            assert src in r.stdout
    r = _cli("config", "paper", "--device", "neurosim-mlc")
    assert r.returncode == 0
    lines = {ln.split(" = ")[0]: ln for ln in r.stdout.splitlines() if " = " in ln}
    assert "50.0" in lines["t_pulse_ns"] and "device neurosim-mlc: DNN_NeuroSim V2.1" in lines["t_pulse_ns"]
    assert "pulses_per_level = 11" in lines["pulses_per_level"] and "ceil(32/3)" in lines["pulses_per_level"]
    assert "xbar_rows" in lines and "ISAAC" in lines["xbar_rows"]  # the rest keeps its sources
    assert "derived from pulses_per_level" in r.stdout


# ---------------------------------------------------------------------------------------------- write model
def _row(cfg):
    """§8.3's worked-example row (8 used cells) on ``cfg``: golden differential and blind writes."""
    tb = WriteTables.of(cfg)
    old = np.zeros((1, cfg.xbar_cols), np.uint8)
    new = np.zeros((1, cfg.xbar_cols), np.uint8)
    old[0, :8] = [0, 1, 2, 3, 3, 0, 1, 2]
    new[0, :8] = [0, 2, 2, 0, 3, 1, 1, 3]
    return tb, write_tile(old, new, 1, tb), write_tile(old, new, 0, tb)


def test_pulses_per_level_in_the_golden_write_model_by_hand():
    # tiny: T_rd = T_set = T_pul = T_ver = T_rst = 1 cycle, 16 physical columns (a differential row reads all 16, a
    # blind row resets all 16). One pulse per step (today): differential 1 + 1 + 2 = 4 cycles, 4 x 0.6 + 16 x 0.1 pJ;
    # blind 1 + 1 + 3 x 2 = 8 cycles, 16 resets x 0.6 + 12 pulses x 0.6 pJ (docs/architecture.md section 8.3).
    tb, d, b = _row(preset("tiny"))
    assert (d.cycles, b.cycles) == (4, 8)
    assert d.energy_pj(tb) == pytest.approx(2.4 + 1.6) and b.energy_pj(tb) == pytest.approx(9.6 + 7.2)
    # 3 pulses per step: 1->2, 0->1, 2->3 take 3 pulses (6 cycles, 1.8 pJ) each, 3->0 goes via one RESET (1 cycle,
    # 0.6 pJ, cheaper than 9 pulses): 1 + 1 + 6 = 8 cycles, 3 x 1.8 + 0.6 + 1.6 = 7.6 pJ. Blind: the slowest cell
    # 0->3 is 9 pulses: 1 + 1 + 18 = 20 cycles; 16 resets x 0.6 + 36 pulses x 0.6 = 31.2 pJ.
    tb, d, b = _row(preset("tiny").replace(pulses_per_level=3))
    assert (d.cycles, b.cycles) == (8, 20)
    assert d.energy_pj(tb) == pytest.approx(7.6) and b.energy_pj(tb) == pytest.approx(31.2)
