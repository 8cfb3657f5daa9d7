"""``aras dse`` (aras/dse.py, the dse report in aras/report.py): grid parsing and its one-line errors,
validation of every combination (invalid ones listed and skipped, or rejected with --strict), random
sampling of valid points only, the Pareto front on hand-made tables, and the files of a run on LeNet-5
(real weights, accuracy) with a small synthetic network on the ``tiny`` config."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aras.config import preset
from aras.dse import combinations, geomean, grid_size, pareto_front, parse_grid, run_dse
from aras.errors import ArasError
from aras.trace import Trace
from verif.golden.tracegen import weight_layer_trace

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "aras" / "fixtures" / "lenet5"
TINY = preset("tiny")


def _small() -> Trace:
    """A one-layer synthetic network (a 24 x 40 linear layer)."""
    rng = np.random.default_rng(0)
    tr = weight_layer_trace(rng.integers(-127, 128, (24, 40)), in_shape=(40,))
    tr.name = "small"
    return tr


@pytest.fixture(scope="module")
def lenet():
    return Trace.load(LENET)


@pytest.fixture(scope="module")
def labelled(lenet):
    """LeNet-5's real weights with 8 random inputs labelled by its own exact (lossless-ADC) outputs:
    every config with exact ADCs must score 100 %."""
    from sim_models import functional

    x = np.random.default_rng(1).integers(-128, 128, (8, *lenet.input_q.shape), dtype=np.int8)
    y = functional.run(lenet, TINY, x)[lenet.outputs[0]].reshape(8, -1).argmax(axis=1)
    return lenet.with_samples(x, y)


# ---------------------------------------------------------------------------------------------- grid
def test_parse_grid_types_and_order():
    g = parse_grid(["adc_bits=7, 8,9", "write_energy=0.6,6", "lookahead=1,none", "gbuf_adaptive=true,false",
                    "clock_ghz=0.5,1"])
    assert g == {"adc_bits": [7, 8, 9], "write_energy": [0.6, 6.0], "lookahead": [1, None],
                 "gbuf_adaptive": [True, False], "clock_ghz": [0.5, 1.0]}
    assert list(g) == ["adc_bits", "write_energy", "lookahead", "gbuf_adaptive", "clock_ghz"]
    assert grid_size(g) == 3 * 2 * 2 * 2 * 2


@pytest.mark.parametrize("specs, match", [
    (["voltage=1", "adc_bits=8", "fins=2"], "unknown parameters 'voltage', 'fins'; parameters: the sweep"),
    (["name=x"], "unknown parameter 'name'"),
    (["write_pulses=1"], "unknown parameter 'write_pulses'"),
    (["adc_bits"], "expected PARAM=V1,V2,..."),
    (["adc_bits=7", "adc_bits=8"], "given twice"),
    (["adc_bits="], "no values"),
    (["adc_bits=7.5"], "must be an integer"),
    (["t_pulse_ns=fast"], "is not a number"),
    (["adc_exact=maybe"], "is not a boolean"),
    (["batch=1,1"], "repeated"),
    (["xbars=0.5", "n_pe=1,2"], "xbars sets n_pe, apus_per_pe, xbars_per_apu, write_drivers_per_pe; it cannot be "
                                "gridded together with n_pe"),
    (["write_energy=1", "e_set_pj=1"], "cannot be gridded together with e_set_pj"),
    ([], "at least one --grid"),
])
def test_parse_grid_errors(specs, match):
    with pytest.raises(ArasError, match=match):
        parse_grid(specs)


def test_cli_unknown_parameter_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "aras.cli", "dse", str(LENET), "--config", "tiny", "--grid", "foo=1",
                        "--grid", "adc_bits=6", "--grid", "bar=2,3", "-o", str(tmp_path / "o")], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env=dict(os.environ, ARAS_CACHE=str(tmp_path)),
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [r.stderr.strip()] and r.stderr.startswith("aras: --grid: unknown parameters "
                                                                               "'foo', 'bar'; ")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------- validation
def test_invalid_combinations_are_listed_and_skipped(lenet):
    g = parse_grid(["adc_bits=5,6", "n_pe=1,2"])  # tiny: exact ADC width 6 with adc_exact
    valid, invalid, s = combinations(TINY, g, {"lenet5": lenet})
    assert s == {"mode": "full factorial", "combinations": 4, "drawn": 4}
    assert [c.params for c in valid] == [{"adc_bits": 6, "n_pe": 1}, {"adc_bits": 6, "n_pe": 2}]
    assert [c.params for c in invalid] == [{"adc_bits": 5, "n_pe": 1}, {"adc_bits": 5, "n_pe": 2}]
    assert "'adc_bits' is 5 but adc_exact=true needs >= 6" in invalid[0].reasons["lenet5"]
    assert valid[1].configs["lenet5"].n_xbars == 8 and valid[0].configs["lenet5"].n_xbars == 4


def test_named_parameters_as_in_sweep(lenet):
    g = parse_grid(["cell_bits=1,4", "xbars=0.5", "write_latency=20", "lookahead=2"])
    valid, invalid, _ = combinations(TINY, g, {"lenet5": lenet})
    assert not invalid
    c1, c4 = (c.configs["lenet5"] for c in valid)
    assert (c1.cell_bits, c1.adc_bits, c4.cell_bits, c4.adc_bits) == (1, 5, 4, 8)  # exact width follows
    assert c1.t_pulse_ns == c1.t_reset_ns == 20.0 and valid[0].options == (("lookahead", 2),)
    from aras.experiments import count_tiles

    assert abs(c4.n_xbars - 0.5 * count_tiles(lenet, c4.replace(n_pe=2))) <= c4.apus_per_pe * c4.xbars_per_apu
    # adc_bits in the grid too: as given, so below the exact width it is invalid
    valid, invalid, _ = combinations(TINY, parse_grid(["cell_bits=4", "adc_bits=7,8"]), {"lenet5": lenet})
    assert [c.params["adc_bits"] for c in valid] == [8] and "needs >= 8" in invalid[0].reasons["lenet5"]


def test_a_network_that_does_not_fit_makes_the_combination_invalid(lenet):
    valid, invalid, _ = combinations(TINY, parse_grid(["batch=1,2"]), {"lenet5": lenet, "small": _small()})
    assert [c.params for c in valid] == [{"batch": 1}]
    assert set(invalid[0].reasons) == {"lenet5"} and "Gbuffer too small" in invalid[0].reasons["lenet5"]


def test_random_sampling_draws_only_valid_points(lenet):
    g = parse_grid(["adc_bits=4,5,6,7,8", "xbars_per_apu=1,2", "n_pe=1,2"])  # 20 combinations, 12 valid
    traces = {"lenet5": lenet}
    valid, invalid, s = combinations(TINY, g, traces, samples=5, seed=3)
    assert len(valid) == 5 and all(c.params["adc_bits"] >= 6 for c in valid)
    assert len({c.index for c in valid}) == 5 and [c.index for c in valid] == sorted(c.index for c in valid)
    assert s["mode"] == "random" and s["drawn"] == len(valid) + len(invalid) and s["combinations"] == 20
    again, _, _ = combinations(TINY, g, traces, samples=5, seed=3)
    assert [c.index for c in again] == [c.index for c in valid]
    other, _, _ = combinations(TINY, g, traces, samples=5, seed=4)
    assert [c.index for c in other] != [c.index for c in valid]
    everything, _, s = combinations(TINY, g, traces, samples=50, seed=0)
    assert len(everything) == 12 and s["drawn"] == 20


def test_strict_rejects_and_nothing_valid_is_an_error(tmp_path, lenet):
    g = parse_grid(["adc_bits=5,6"])
    msg = r"--strict: 1 of 2 combinations are invalid: adc_bits=5 \(lenet5: config 'tiny'"
    with pytest.raises(ArasError, match=msg):
        run_dse([lenet], TINY, g, tmp_path / "o", strict=True, jobs=1, progress=False)
    with pytest.raises(ArasError, match="none of the 1 combinations is valid"):
        run_dse([lenet], TINY, parse_grid(["adc_bits=5"]), tmp_path / "o", jobs=1, progress=False)
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------- pareto
def test_pareto_front_on_a_hand_made_table():
    rows = [[1, 5, 3],  # 0 front (best latency)
            [2, 2, 2],  # 1 front
            [3, 1, 1],  # 2 front
            [2, 2, 3],  # 3 dominated by 1
            [4, 4, 4],  # 4 dominated by 1, 2
            [1, 5, 3],  # 5 equal to 0: neither dominates
            [2, 3, None],  # 6 not measured: never on the front
            [3, 1, 1.5]]  # 7 dominated by 2 in area only
    assert pareto_front(rows) == [0, 1, 2, 5]
    # a fourth, maximised objective (accuracy) saves 3 and 4
    acc = [[*r[:3], a] for r, a in zip(rows, [0.9, 0.9, 0.9, 0.95, 0.99, 0.9, 1.0, 0.8], strict=True)]
    assert pareto_front([r for r in acc if None not in r], [False, False, False, True]) == [0, 1, 2, 3, 4, 5]
    assert pareto_front([]) == [] and pareto_front([[1.0, 1.0]]) == [0]
    assert geomean([1e-3, 1e-1]) == pytest.approx(1e-2) and geomean([1.0, None]) is None


# ---------------------------------------------------------------------------------------------- a run
@pytest.fixture(scope="module")
def dse_run(tmp_path_factory, labelled):
    out = tmp_path_factory.mktemp("dse")
    g = parse_grid(["adc_bits=5,6,7", "n_pe=1,2"])
    cache = tmp_path_factory.mktemp("cache")
    from aras.cache import ResultCache

    data = run_dse([labelled, _small()], TINY, g, out, accuracy=20, jobs=1, progress=False, cache=ResultCache(cache),
                   command="aras dse (test)")
    return out, data, cache


def test_dse_files_and_fronts(dse_run):
    out, data, _ = dse_run
    for f in ("dse.csv", "dse.json", "pareto.png", "report.md", "report.html"):
        assert (out / f).is_file(), f
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data["points"]) == 4 and len(data["invalid"]) == 2
    assert data["objectives"] == ["latency_s", "energy_j", "area_mm2", "accuracy"]
    m = {x["name"]: x for x in data["models"]}
    assert m["lenet5"]["accuracy_samples"] == 8 and m["small"]["accuracy_samples"] is None
    for name in ("lenet5", "small", "geomean"):
        get = (lambda p: p["geomean"]) if name == "geomean" else (lambda p, n=name: p["results"][n])
        keys = ["latency_s", "energy_j", "area_mm2"] + (["accuracy"] if name != "small" else [])
        vals = [[get(p)[k] for k in keys] for p in data["points"]]
        front = pareto_front(vals, [k == "accuracy" for k in keys])
        assert data["fronts"][name] == [data["points"][i]["id"] for i in front] and front
        for i in range(len(data["points"])):  # off the front: some front point dominates it
            if i not in front:
                assert any(all((a >= b) if k == "accuracy" else (a <= b) for k, a, b in zip(keys, vals[j], vals[i],
                                                                                              strict=True))
                           for j in front)
    p = data["points"][0]
    g = p["geomean"]
    assert g["latency_s"] == pytest.approx(math.sqrt(p["results"]["lenet5"]["latency_s"] *
                                                     p["results"]["small"]["latency_s"]))
    assert g["accuracy"] == p["results"]["lenet5"]["accuracy"]
    assert all(p["results"]["lenet5"]["accuracy"] == 1.0 for p in data["points"])  # exact ADCs: its own labels


def test_dse_table_and_report(dse_run):
    out, data, _ = dse_run
    rows = list(csv.DictReader(io.StringIO((out / "dse.csv").read_text())))
    assert len(rows) == 4 * 3 and [r["model"] for r in rows[:3]] == ["lenet5", "small", "geomean"]
    r0 = rows[0]
    assert (r0["weights"], r0["adc_bits"], r0["n_pe"]) == ("real", "6", "1")
    assert float(r0["latency_s"]) == data["points"][0]["results"]["lenet5"]["latency_s"]
    assert r0["accuracy_samples"] == "8" and rows[1]["accuracy"] == "" and rows[1]["weights"] == "synthetic"
    assert {r["pareto"] for r in rows} <= {"yes", "no"}
    md = (out / "report.md").read_text()
    for text in ("# Design-space exploration on config `tiny`", "lenet5 (real weights)", "small (synthetic weights)",
                 "**weights**: `real` = trained weights; `synthetic`", "Command: `aras dse (test)`; git commit: `",
                 "; date: ", "## Pareto front: lenet5 (real weights)", "## Pareto front: small (synthetic weights)",
                 "## Pareto front: geometric mean over lenet5, small", "## Invalid combinations (skipped)",
                 "first 8 labelled samples", "small: not measured (synthetic weights)", "![", "pareto.png"):
        assert text in md, text
    front = md.split("## Pareto front: lenet5", 1)[1].split("\n## ", 1)[0]
    ids = [line.split("|")[1].strip() for line in front.splitlines() if line.startswith("| ") and "point" not in line]
    assert ids == [str(i) for i in data["fronts"]["lenet5"]]
    assert "<img src='data:image/png;base64," in (out / "report.html").read_text()
    saved = json.loads((out / "dse.json").read_text())
    assert saved["fronts"] == data["fronts"] and saved["invalid"][0]["params"] == {"adc_bits": 5, "n_pe": 1}


def test_dse_rerun_is_cached_and_identical(dse_run, tmp_path, labelled):
    out, data, cache = dse_run
    from aras.cache import ResultCache

    again = run_dse([labelled, _small()], TINY, parse_grid(["adc_bits=5,6,7", "n_pe=1,2"]), tmp_path, accuracy=20,
                    jobs=1, progress=False, cache=ResultCache(cache), command="aras dse (test)")
    assert (again["execution"]["computed"], again["execution"]["cached"]) == (0, 8)
    assert (tmp_path / "dse.csv").read_bytes() == (out / "dse.csv").read_bytes()
