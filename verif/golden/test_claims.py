"""``aras claims`` (aras/claims.py): axis parsing and its one-line errors (also on the command line, in a
subprocess, before any work), the ratios of a small map on LeNet-5 (real weights, ``paper``) against
separate simulations of the same points (one of them through ``aras simulate``), a point the network does
not fit left empty, the files and their provenance, and the result cache (a second run computes nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aras.cache import ResultCache
from aras.claims import CLAIMS, axis_scale, check_models, check_values, parse_axes, reached, run_claims
from aras.config import preset
from aras.errors import ArasError
from aras.execution import strip_volatile
from aras.trace import Trace

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "aras" / "fixtures" / "lenet5"
PAPER = preset("paper")
BIG_BATCH = 4096  # LeNet-5's live activations x 4096 exceed paper's 8 MiB Gbuffer (aras.trace.check_fits)


def _aras(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "aras.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_axes():
    g = parse_axes("write_energy=0.6, 6,60", "batch=1,8")
    assert g == {"write_energy": [0.6, 6.0, 60.0], "batch": [1, 8]}
    assert list(g) == ["write_energy", "batch"]  # x first
    assert parse_axes("pulses_per_level=1,11", "e_adc8_pj=0.5,1.5") == {"pulses_per_level": [1, 11],
                                                                       "e_adc8_pj": [0.5, 1.5]}


@pytest.mark.parametrize("x, y, msg", [
    ("foo=1,2", "batch=1", "--x: unknown parameter 'foo'"),
    ("write_energy=1", "bar=1", "--y: unknown parameter 'bar'"),
    ("write_energy=a", "batch=1", "--x write_energy: value 'a' is not a number"),
    ("write_energy=1", "batch=1.5", "--y batch: value '1.5' must be an integer"),
    ("batch=1,2", "batch=4", "--x and --y: both are 'batch'"),
    ("write_energy=1", "e_set_pj=2", "--x/--y write_energy sets e_set_pj, e_reset_pj"),
    ("write_energy", "batch=1", "--x 'write_energy': expected PARAM=V1,V2,..."),
])
def test_parse_axes_errors(x, y, msg):
    with pytest.raises(ArasError) as e:
        parse_axes(x, y)
    assert str(e.value).startswith(msg) and "\n" not in str(e.value)


def test_values_the_config_rejects_are_errors_points_that_do_not_fit_are_not():
    tr = Trace.load(LENET)
    with pytest.raises(ArasError, match=r"^--x write_energy=-1: .*e_set_pj.* must be >= 0"):
        check_values(PAPER, parse_axes("write_energy=0.6,-1", "batch=1"), {"lenet5": tr})
    with pytest.raises(ArasError, match=r"^--y adc_bits=3: .*adc_exact"):
        check_values(PAPER, parse_axes("write_energy=0.6", "adc_bits=9,3"), {"lenet5": tr})
    check_values(PAPER, parse_axes("write_energy=0.6", f"batch=1,{BIG_BATCH}"), {"lenet5": tr})  # no error
    with pytest.raises(ArasError, match="'nope' is neither a trace directory nor a model name"):
        check_models(["lenet5", "nope"])


def test_helpers():
    assert axis_scale([0.6, 6, 60]) == "log" and axis_scale([1, 8]) == "linear" and axis_scale([1, 11]) == "log"
    assert axis_scale([True, False]) == "category" and axis_scale([1, None]) == "category"
    sp, es = CLAIMS[0], CLAIMS[1]
    assert (sp.level, es.level, CLAIMS[2].level, CLAIMS[3].level) == (2.2, 0.45, 1.5, 0.61)
    assert reached(sp, 2.2) and not reached(sp, 2.19) and reached(es, 0.45) and not reached(es, 0.449)
    assert reached(sp, None) is None


# ---------------------------------------------------------------------------------------------- a map
@pytest.fixture(scope="module")
def lenet_map(tmp_path_factory):
    d = tmp_path_factory.mktemp("claims")
    cache = ResultCache(d / "cache")
    grid = parse_axes("write_energy=0.6,60", f"batch=1,2,{BIG_BATCH}")
    data = run_claims([str(LENET)], PAPER, grid, d / "out", jobs=1, cache=cache, progress=False, command="test")
    return d, cache, grid, data


def _ratio_check(r: dict, runs: dict):
    a, b, t = runs["aras"], runs["baseline"], runs["tpu"]
    assert r["speedup_vs_baseline"] == pytest.approx(b["latency_s"] / a["latency_s"], rel=1e-12)
    assert r["energy_saving_vs_baseline"] == pytest.approx(1 - a["energy_j"]["total"] / b["energy_j"]["total"],
                                                           rel=1e-12)
    assert r["speedup_vs_tpu"] == pytest.approx(t["latency_s"] / a["latency_s"], rel=1e-12)
    assert r["energy_saving_vs_tpu"] == pytest.approx(1 - a["energy_j"]["total"] / t["energy_j"]["total"], rel=1e-12)
    assert r["cycles_over_ideal"] == pytest.approx(a["cycles"] / runs["ideal"]["cycles"], rel=1e-12)


def test_ratios_equal_separate_simulations(lenet_map):
    from sim_models.perf import simulate

    _, _, _, data = lenet_map
    tr = Trace.load(LENET)
    pts = [p for p in data["points"] if "designs" in p]
    assert len(pts) == 4 and len(data["points"]) == 6
    for p in pts:
        cfg = PAPER.replace(e_set_pj=p["x"], e_reset_pj=p["x"], batch=p["y"])
        runs = {m: simulate(tr, cfg, m) for m in ("aras", "baseline", "ideal", "tpu")}
        for m, r in runs.items():
            assert p["designs"][m]["cycles"] == r["cycles"]
            assert p["designs"][m]["energy_j"] == pytest.approx(r["energy_j"]["total"], rel=1e-12)
        _ratio_check(p["ratios"], runs)
        for cl in CLAIMS:
            assert p["claims"][cl.key] == (p["ratios"][cl.key] >= cl.level)
    s = data["summary"]["lenet5"]
    for cl in CLAIMS:
        assert s[cl.key]["reached"] == [[p["x"], p["y"]] for p in pts if p["claims"][cl.key]]
        assert s[cl.key]["best"] == max(p["ratios"][cl.key] for p in pts)


def test_one_point_equals_aras_simulate(lenet_map, tmp_path):
    """write_energy=60, batch=2 through the command line: a TOML config on paper, one --json per design."""
    _, _, _, data = lenet_map
    p = next(p for p in data["points"] if p["x"] == 60.0 and p["y"] == 2)
    (tmp_path / "c.toml").write_text('base = "paper"\ne_set_pj = 60.0\ne_reset_pj = 60.0\nbatch = 2\n')
    runs = {}
    for m in ("aras", "baseline", "ideal", "tpu"):
        r = _aras("simulate", str(LENET), "--config", str(tmp_path / "c.toml"), "--mode", m, "--perf-only",
                  "--json", str(tmp_path / f"{m}.json"))
        assert r.returncode == 0, r.stderr
        runs[m] = json.loads((tmp_path / f"{m}.json").read_text())
        assert p["designs"][m]["cycles"] == runs[m]["cycles"]
    _ratio_check(p["ratios"], runs)


def test_point_that_does_not_fit_is_empty(lenet_map):
    _, _, _, data = lenet_map
    bad = [p for p in data["points"] if p["y"] == BIG_BATCH]
    assert len(bad) == 2 and all("designs" not in p and "Gbuffer too small" in p["error"] for p in bad)
    assert data["execution"]["tasks"] == 16  # 4 valid points x 4 designs, nothing for the others


def test_files_and_provenance(lenet_map):
    d, _, _, data = lenet_map
    out = d / "out"
    for f in ("claims.png", "claims.json", "report.md", "report.html"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    assert (out / "claims.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    j = json.loads((out / "claims.json").read_text())
    assert j["format"] == "aras-claims" and j["x"] == {"param": "write_energy", "values": [0.6, 60.0]}
    assert j["models"][0]["weights"] == "real"
    md = (out / "report.md").read_text()
    for s in ("Command: `test`", "git commit", "lenet5: real weights", "Inputs: none run", "2.2×", "45 %", "1.5×",
              "61 %", "arXiv 2410.17931", "Gbuffer too small"):
        assert s in md, s
    assert "data:image/png;base64," in (out / "report.html").read_text()


def test_second_run_computes_nothing(lenet_map):
    d, cache, grid, data = lenet_map
    again = run_claims([str(LENET)], PAPER, grid, d / "again", jobs=1, cache=cache, progress=False, command="test")
    e = again["execution"]
    assert (e["computed"], e["cached"], e["backend"]) == (0, 16, "cache")
    assert strip_volatile(again) == strip_volatile(data)


# ---------------------------------------------------------------------------------------------- command line
@pytest.mark.parametrize("args, msg", [
    (["--x", "foo=1", "--y", "batch=1"], "aras: --x: unknown parameter 'foo'"),
    (["--x", "write_energy=1,x", "--y", "batch=1"], "aras: --x write_energy: value 'x' is not a number"),
    (["--x", "write_energy=-1", "--y", "batch=1"], "aras: --x write_energy=-1: "),
    (["nope", "--x", "write_energy=1", "--y", "batch=1"], "aras: 'nope' is neither a trace directory nor a model"),
    (["--x", "write_energy=1", "--y", "batch=1", "--config", "nope"], "aras: "),
])
def test_cli_bad_input(tmp_path, args, msg):
    out = tmp_path / "out"
    r = _aras("claims", str(LENET), *args, "-o", str(out))
    assert r.returncode == 2 and r.stderr.startswith(msg) and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


def test_cli_unwritable_output(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    r = _aras("claims", "nope", "--x", "write_energy=1", "--y", "batch=1", "-o", str(f))
    assert r.returncode == 2 and r.stderr.startswith(f"aras: -o {f}: exists and is not a directory"), r.stderr


def test_two_networks_a_boolean_axis_and_a_single_value(tmp_path):
    """Two rows of panels; a categorical (boolean) axis and a one-value axis draw without contours."""
    from verif.golden.tracegen import weight_layer_trace

    rng = np.random.default_rng(0)
    small = weight_layer_trace(rng.integers(-127, 128, (24, 40)), in_shape=(40,))
    small.name = "small"
    grid = parse_axes("write_energy=6", "gbuf_adaptive=true,false")
    data = run_claims([str(LENET), small], PAPER, grid, tmp_path, jobs=1, cache=None, progress=False)
    assert [m["name"] for m in data["models"]] == ["lenet5", "small"] and len(data["points"]) == 4
    assert all("ratios" in p for p in data["points"])
    assert axis_scale(grid["gbuf_adaptive"]) == "category"
    w, h = _png_size(tmp_path / "claims.png")
    assert w > 1500 and h > 700  # 4 panels wide, two networks tall


def _png_size(path: Path) -> tuple[int, int]:
    b = path.read_bytes()
    return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")


def test_refused_runs_are_not_valid_crashed_runs_failed():
    from aras.claims import _run_failed

    refused = {"designs": {"aras": {"error": "config 'paper': Gbuffer too small at layer 'maxpool'"}, "tpu": {}}}
    crashed = {"designs": {"aras": {"error": "failed: ZeroDivisionError: division by zero"}}}
    assert not _run_failed(refused) and _run_failed(crashed) and not _run_failed({"error": "does not fit"})
