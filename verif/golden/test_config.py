"""Configuration: presets, derived widths, loading, and rejection of bad values naming the field."""

from __future__ import annotations

import json

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
