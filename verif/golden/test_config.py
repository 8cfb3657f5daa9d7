"""Configuration: presets, derived widths, loading, and rejection of bad values naming the field."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from aras.config import PRESETS, Config, load, preset
from aras.errors import ArasError


def test_presets_are_valid_and_sourced():
    for name in PRESETS:
        c = preset(name)
        assert c.name == name
    assert all(Config.sources().values()), "every field names its source"


def test_paper_is_resource_limited_and_exact():
    c = preset("paper")
    assert c.n_xbars == 256 and c.adc_exact and c.adc_bits == c.adc_exact_bits == 9
    resnet50_cells = 25_557_032 * c.slices  # ResNet-50 parameters x cells per weight
    assert c.n_xbars * c.xbar_rows * c.xbar_cols < 0.05 * resnet50_cells


def test_tiny_configs():
    t, ta = preset("tiny"), preset("tiny-adc")
    assert t.n_pe >= 2 and t.n_pe * t.write_drivers_per_pe >= 2
    lenet_weights = 150 + 2400 + 256 * 120 + 120 * 84 + 84 * 10
    assert t.n_xbars * t.xbar_rows * t.weight_cols < lenet_weights  # rewrites must happen
    assert t.adc_bits == t.adc_exact_bits == 6
    assert ta.adc_bits < ta.adc_exact_bits and not ta.adc_exact


def test_default_write_tables():
    c = preset("paper")
    assert c.write_pulses[0] == (0, 1, 2, 3) and c.write_pulses[3][1] == 2
    assert c.write_energy_pj[1][3] == pytest.approx(1.2)
    assert c.cycles(10.0) == 10 and c.cycles(0.5) == 1 and c.cycles(0) == 0
    assert c.replace(clock_ghz=0.25).cycles(10.0) == 3  # ceil(2.5)


@pytest.mark.parametrize("field,value,msg", [
    ("xbar_rows", 0, "'xbar_rows' must be > 0"),
    ("n_pe", -1, "'n_pe' must be > 0"),
    ("adc_bits", 8, "'adc_bits' is 8 but adc_exact=true needs >= 9"),
    ("cell_bits", 3, "'cell_bits' must divide"),
    ("cols_per_adc", 7, "'cols_per_adc' must divide"),
    ("xbar_cols", 100, "'xbar_cols' must be a multiple"),
    ("write_buffer_bytes", 100, "'write_buffer_bytes' must hold one tile"),
    ("write_pulses", [[0, 1], [1, 0]], "'write_pulses' must be a 4x4 table"),
    ("write_energy_pj", [[1, 1, 1, 1]] * 4, "'write_energy_pj' must be zero on the diagonal"),
    ("write_drivers_per_pe", 1000, "'write_drivers_per_pe' exceeds"),
    ("adc_exact", "yes", "'adc_exact' must be bool"),
    ("e_adc8_pj", -1.0, "'e_adc8_pj' must be >= 0"),
    ("gbuf_banks", 256, "'gbuf_banks' must be <= 128"),
    ("host_handoff_cycles", -1, "'host_handoff_cycles' must be >= 0"),
])
def test_invalid_config_names_the_field(field, value, msg):
    with pytest.raises(ArasError, match=msg.replace("(", r"\(")):
        preset("paper").replace(**{field: value})


def test_tiny_adc_may_be_narrow_but_not_when_declared_exact():
    with pytest.raises(ArasError, match="adc_bits"):
        preset("tiny-adc").replace(adc_exact=True)


def test_load_toml_and_json(tmp_path):
    (tmp_path / "a.toml").write_text('base = "tiny"\nxbar_rows = 8\nadc_bits = 5\n')
    c = load(str(tmp_path / "a.toml"))
    assert (c.name, c.xbar_rows, c.n_pe, c.adc_bits) == ("a", 8, 2, 5)
    (tmp_path / "b.json").write_text(json.dumps({"base": "paper", "cell_bits": 4, "adc_bits": 11}))
    c = load(str(tmp_path / "b.json"))
    assert c.levels == 16 and c.write_pulses[0][15] == 15  # tables re-derived for the new cell
    assert load(str(tmp_path / "b.json")) == c  # deterministic, comparable


@pytest.mark.parametrize("text,msg", [
    ('xbar_rowz = 3\n', "unknown config field 'xbar_rowz'"),
    ('xbar_rows = "many"\n', "'xbar_rows' must be int"),
    ('base = "huge"\n', "unknown config 'huge'"),
    ('xbar_rows = [\n', "cannot parse config"),
])
def test_bad_config_files(tmp_path, text, msg):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ArasError, match=msg):
        load(str(p))


def test_missing_config():
    with pytest.raises(ArasError, match="neither a preset"):
        load("no-such.toml")


def test_round_trip_dict():
    c = preset("tiny-adc")
    from aras.config import from_dict
    assert from_dict(c.to_dict()) == c


def test_derived_energies_follow_the_spec_table():
    p, t = preset("paper"), preset("tiny")
    assert p.e_adc_pj == pytest.approx(3.125) and t.e_adc_pj == pytest.approx(0.390625)
    assert p.e_dac_pj == pytest.approx(0.039) and t.e_dac_pj == pytest.approx(0.0078)
    assert p.e_xbar_read_pj == pytest.approx(3.0) and t.e_xbar_read_pj == pytest.approx(0.009375)
    assert p.e_gbuf_access_pj == pytest.approx(17.2) and t.e_gbuf_access_pj == pytest.approx(2.15)
    assert p.write_buffer_slots == 16 and t.write_buffer_slots == 2
    assert p.host_handoff_cycles == 0 and p.gbuf_adaptive


# ---------------------------------------------------------------------------------------------- validation by type
NAN, INF = float("nan"), float("inf")


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


@pytest.mark.parametrize("kw,msg", [
    ({"clock_ghz": "fast"}, "field 'clock_ghz' must be float, got 'fast'"),  # string for a number
    ({"xbar_rows": "128"}, "field 'xbar_rows' must be int, got '128'"),
    ({"n_pe": True}, "field 'n_pe' must be int, got True (a bool)"),  # bool is an int in Python
    ({"clock_ghz": True}, "field 'clock_ghz' must be float, got True (a bool)"),
    ({"clock_ghz": NAN}, "field 'clock_ghz' must be finite, got nan"),
    ({"t_pulse_ns": INF}, "field 't_pulse_ns' must be finite, got inf"),
    ({"e_set_pj": -INF}, "field 'e_set_pj' must be finite, got -inf"),
    ({"xbar_rows": 16.5}, "field 'xbar_rows' must be int (a whole number), got 16.5"),  # fractional int
    ({"host_handoff_cycles": 0.5}, "field 'host_handoff_cycles' must be int"),
    ({"batch": -2}, "field 'batch' must be > 0, got -2"),  # non-positive
    ({"t_read_ns": 0.0}, "field 't_read_ns' must be > 0, got 0.0"),
    ({"n_pe": -10 ** 400}, "field 'n_pe' must be > 0, got ~-1e400"),
    ({"batch": 2 ** 62}, "field 'batch' must be <= 2**40, got 4611686018427387904"),  # overflow
    ({"dram_latency_cycles": 10 ** 400}, "field 'dram_latency_cycles' must be <= 2**40, got ~1e400"),
    ({"clock_ghz": 10 ** 400}, "field 'clock_ghz' must be <= 2**40"),
    ({"xbar_rows": 2 ** 26, "adc_exact": False}, "field 'xbar_rows' gives 2199023255552 cells "
                                                 "(xbar_rows x xbar_cols x 256 crossbars); must be <= 2**40"),
    ({"gbuf_bank_bytes": 2 ** 34}, "field 'gbuf_bank_bytes' gives a 2199023255552 B Gbuffer"),
    ({"write_buffer_bytes": 2 ** 39}, "field 'write_buffer_bytes' gives 2199023255552 B of write buffers"),
    ({"t_pulse_ns": 2.0 ** 40, "clock_ghz": 2.0}, "field 't_pulse_ns' gives 2.2e+12 cycles"),
    ({"clock_ghz": 1e-300}, "field 'clock_ghz' must be >= 1e-6"),
    ({"write_pulses": [[0, 1.5], [1, 0]]}, "field 'write_pulses[0][1]' must be int (a whole number)"),
    ({"write_pulses": [[0, True], [1, 0]]}, "field 'write_pulses[0][1]' must be int, got True"),
    ({"write_pulses": "abc"}, "field 'write_pulses' must be a 4x4 table of int"),
    ({"write_energy_pj": [[0, NAN, 1, 1]] * 4}, "field 'write_energy_pj[0][1]' must be finite, got nan"),
    ({"adc_exact": 1}, "field 'adc_exact' must be bool, got 1"),
    ({"name": 3}, "field 'name' must be str, got 3"),
])
def test_config_fields_are_checked_by_type(kw, msg):
    with pytest.raises(ArasError) as e:
        Config(**kw)
    assert msg in _one_line(e), e.value
    with pytest.raises(ArasError) as e:  # the same through replace (from_dict)
        preset("paper").replace(**kw)
    assert msg in _one_line(e), e.value


def test_config_numbers_are_normalised():
    c = Config(xbar_rows=np.int64(64), adc_bits=8, clock_ghz=2, t_pulse_ns=np.float32(5), batch=4.0)
    assert (c.xbar_rows, c.clock_ghz, c.t_pulse_ns, c.batch) == (64, 2.0, 5.0, 4)
    assert type(c.xbar_rows) is int and type(c.clock_ghz) is float and type(c.batch) is int
    assert c == Config(xbar_rows=64, adc_bits=8, clock_ghz=2.0, t_pulse_ns=5.0, batch=4)
    table = [[float(abs(n - o)) for n in range(4)] for o in range(4)]  # 1.0 pulses are whole numbers
    assert Config(write_pulses=table) == Config() and type(Config(write_pulses=table).write_pulses[0][1]) is int


@pytest.mark.parametrize("text,msg", [
    ('base = "tiny"\nclock_ghz = "fast"\n', "field 'clock_ghz' must be float, got 'fast'"),
    ('xbar_rows = true\n', "field 'xbar_rows' must be int, got True (a bool)"),
    ('clock_ghz = nan\n', "field 'clock_ghz' must be finite, got nan"),
    ('t_pulse_ns = inf\n', "field 't_pulse_ns' must be finite, got inf"),
    ('base = "tiny"\nxbar_rows = 16.5\n', "field 'xbar_rows' must be int (a whole number), got 16.5"),
    ('n_pe = -1\n', "field 'n_pe' must be > 0, got -1"),
    ('batch = 1237940039285380274899124224\n', "field 'batch' must be <= 2**40, got ~1e27"),
    ('base = "tiny-adc"\nxbar_rows = 1099511627776\n', "field 'xbar_rows' gives 140737488355328 cells"),
    ('gbuf_bank_bytes = 17179869184\n', "field 'gbuf_bank_bytes' gives a 2199023255552 B Gbuffer"),
    ('base = "tiny"\nwrite_pulses = [[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 0.5, 0]]\n',
     "field 'write_pulses[3][2]' must be int (a whole number), got 0.5"),
    ('base = ["tiny"]\n', "field 'base' must be a preset name"),
])
def test_bad_config_values_in_files_name_file_and_field(tmp_path, text, msg):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ArasError) as e:
        load(str(p))
    got = _one_line(e)
    assert got.startswith(f"{p}: ") and msg in got, got


def test_bad_config_values_in_json(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"base": "tiny", "clock_ghz": NaN}')
    with pytest.raises(ArasError, match=f"^{p}: config 'bad': field 'clock_ghz' must be finite, got nan$"):
        load(str(p))


@pytest.mark.parametrize("text,field", [
    ('clock_ghz = "fast"\n', "'clock_ghz' must be float"),
    ('xbar_rows = 16.5\n', "'xbar_rows' must be int (a whole number)"),
    ('clock_ghz = nan\n', "'clock_ghz' must be finite"),
    ('gbuf_bank_bytes = 17179869184\n', "'gbuf_bank_bytes' gives a 2199023255552 B Gbuffer"),
])
def test_cli_reports_bad_config_in_one_line(tmp_path, text, field):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    r = subprocess.run([sys.executable, "-m", "aras.cli", "config", str(p)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert "Traceback" not in r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"aras: {p}: config 'bad': field {field}"), r.stderr


# ---------------------------------------------------------------- faults (docs/architecture.md §8.7)
def test_fault_fields_defaults_and_sources():
    for name in PRESETS:
        c = preset(name)
        assert c.max_verify_pulses == 255 and c.watchdog_cycles == 1_000_000
        assert c.max_verify_pulses >= max(map(max, c.write_pulses))
    src = Config.sources()
    assert "255" in src["max_verify_pulses"] and "tRFC" in src["watchdog_cycles"]
    # every default table fits the default bound, up to 4-bit cells (L - 1 = 15 steps)
    assert preset("tiny").replace(cell_bits=4, adc_bits=8).write_pulses[0][15] == 15


@pytest.mark.parametrize("kw, msg", [
    (dict(max_verify_pulses=2), "field 'max_verify_pulses' is 2 but write_pulses[0][3] = 3 exceeds it"),
    (dict(max_verify_pulses=5, write_pulses=[[0, 1, 2, 3], [1, 0, 1, 2], [6, 1, 0, 1], [3, 2, 1, 0]]),
     "field 'max_verify_pulses' is 5 but write_pulses[2][0] = 6 exceeds it"),
    (dict(max_verify_pulses=0), "field 'max_verify_pulses' must be > 0, got 0"),
    (dict(max_verify_pulses=1 << 40), "field 'max_verify_pulses' with 2 cycles per pulse gives more than 2**40"),
    (dict(max_verify_pulses=3.5), "field 'max_verify_pulses' must be int (a whole number), got 3.5"),
    (dict(watchdog_cycles=0), "field 'watchdog_cycles' must be > 0, got 0"),
    (dict(watchdog_cycles=True), "field 'watchdog_cycles' must be int, got True (a bool)"),
    (dict(watchdog_cycles=(1 << 40) + 1), "field 'watchdog_cycles' must be <= 2**40"),
])
def test_fault_fields_are_validated(kw, msg):
    with pytest.raises(ArasError) as e:
        preset("tiny").replace(**kw)
    assert msg in _one_line(e), e.value


def test_fault_fields_from_a_file(tmp_path):
    p = tmp_path / "f.toml"
    p.write_text('base = "tiny"\nmax_verify_pulses = 3\nwatchdog_cycles = 40\n')
    c = load(str(p))
    assert (c.max_verify_pulses, c.watchdog_cycles) == (3, 40)
    p.write_text('base = "tiny"\nmax_verify_pulses = 1\n')
    with pytest.raises(ArasError, match=f"^{p}: config 'f': field 'max_verify_pulses' is 1 but write_pulses"):
        load(str(p))
