"""The long regression's bookkeeping without a simulator (``scripts/regress.py``, ``verif/testbench/coverage.py``):
functional-coverage binning on the §10.6 worked example, Verilator ``coverage.dat`` parsing and merging,
the random configs (valid, small, reproducible), the chain plan and what a failing chain reports (a fake
simulator)."""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from aras.config import preset
from hw.top import check_buildable
from sim_models import hazards
from verif.testbench import coverage
from verif.testbench.system_vectors import make_case

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def regress():
    spec = importlib.util.spec_from_file_location("regress_script", ROOT / "scripts" / "regress.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def spec_starts():
    """The §10.6 example on tiny: 4 WRITEs and 2 COMPUTEs, 318 cycles (docs/architecture.md)."""
    cfg = preset("tiny")
    case = make_case("spec", cfg)
    res = hazards.analyse(case.trace, case.prog, cfg)
    assert res.run.cycles == 318 and len(res.starts) == 10
    return res.starts


def test_functional_bins_spec_example(spec_starts):
    f = coverage.Functional()
    f.add("aras", spec_starts, drivers=1)
    # WRITE 0 starts its transfer in cycle 0 (nothing decides it); transfers 1-3 wait for the channel
    assert f.starts["write_dram", "aras"] == 4 and f.bins["write_dram", "aras", "dram"] == 3
    # every programming start waits for its own transfer; the third also for the one driver, and the
    # second and fourth start earlier without the DRAM channel's order too
    assert f.starts["write_prog", "aras"] == 4 and f.bins["write_prog", "aras", "fetch"] == 4
    assert f.bins["write_prog", "aras", "driver"] == 1 and f.bins["write_prog", "aras", "dram"] == 2
    # COMPUTE 0 waits for its last tile (raw, raw_last); COMPUTE 1 also for COMPUTE 0 (exec_order)
    assert f.starts["compute", "aras"] == 2 and f.bins["compute", "aras", "raw"] == 2
    assert f.bins["compute", "aras", "raw_last"] == 2 and f.bins["compute", "aras", "exec_order"] == 1
    assert f.bins["compute", "aras", "fetch"] == 2  # through earlier WRITEs: counted, not a reachable bin
    assert sum(f.bins.values()) == sum(len(s.decided_by) for s in spec_starts)
    # the same counts as hazards' own per-kind tally of the same starts
    per_kind = hazards.counts(spec_starts)["per_kind"]
    assert {(k, r): n for (k, m, r), n in f.bins.items()} == {k: n for k, n in per_kind.items() if n}
    assert f.bins["compute", "baseline", "raw"] == 0 and f.cases == {"aras": 1}


def test_empty_reachable_bins(spec_starts):
    f = coverage.Functional(modes=("aras", "baseline"))
    f.add("aras", spec_starts, drivers=1)
    aras = {(k, r) for k, m, r in f.empty() if m == "aras"}
    assert aras == {("write_dram", "slot"), ("write_dram", "barrier"), ("write_prog", "war"),
                    ("write_prog", "waw"), ("compute", "raw_top"), ("vector", "exec_order"), ("host", "exec_order")}
    assert len([b for b in f.empty() if b[1] == "baseline"]) == len(f.reachable_bins()) // 2
    assert not coverage.reachable("compute", "fetch", {1}) and not coverage.reachable("write_prog", "pe_order", {1})
    f.add("baseline", [], drivers=2)  # a config with two drivers per PE makes pe_order reachable
    assert ("write_prog", "aras", "pe_order") in f.empty()
    text = f.table()
    assert "(starts)" in text and "raw_last" in text
    with pytest.raises(ValueError, match="unknown mode"):
        f.add("fast", [], drivers=1)


def _dat(path: Path, points: list[tuple[dict, int]]) -> Path:
    lines = [coverage.HEADER]
    for fields, n in points:
        lines.append("C '" + "".join(f"\x01{k}\x02{v}" for k, v in fields.items()) + f"' {n}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_coverage_dat_merge_and_summary(tmp_path):
    line = {"f": "top.sv", "l": "10", "n": "3", "t": "line", "page": "v_line/aras_top.controller", "o": "block"}
    tog0 = {"f": "top.sv", "l": "5", "n": "1", "t": "toggle", "page": "v_toggle/aras_pe", "o": "x[0]:0->1"}
    tog1 = {**tog0, "o": "x[0]:1->0"}
    br = {"f": "top.sv", "l": "12", "n": "4", "t": "branch", "page": "v_branch/aras_gbuf_storage_r9_b128_w32",
          "o": "if", "s": "3"}
    a = _dat(tmp_path / "a.dat", [({**line, "h": "aras_top.controller"}, 0), ({**tog0, "h": "aras_top.pe0"}, 2),
                                  ({**tog1, "h": "aras_top.pe*"}, 0), ({**br, "h": "aras_top.gbuffer"}, 1)])
    b = _dat(tmp_path / "b.dat", [({**line, "h": "aras_top.controller"}, 4), ({**tog0, "h": "aras_top.pe1"}, 1),
                                  ({**br, "h": "aras_top.gbuffer"}, 1)])
    pts = coverage.merge_dat([a, b])
    assert len(pts) == 4  # the hierarchy is no part of a point: pe0's and pe1's toggle are one
    assert sorted(pts.values()) == [0, 2, 3, 4]
    s = coverage.code_summary(pts)
    assert s["types"] == {"line": [1, 1], "toggle": [1, 2], "branch": [0, 1]}  # branch: 2 hits < threshold 3
    assert set(s["units"]) == {"controller", "pe", "gbuf_storage"}
    assert s["modules"]["aras_pe"] == {"toggle": [1, 2]}
    coverage.write_dat(pts, tmp_path / "m.dat")
    assert coverage.read_dat(tmp_path / "m.dat") == pts
    assert "50.0 % (1/2)" in coverage.code_table(s)
    (tmp_path / "bad.dat").write_text("# SystemC::Coverage-3\nX nonsense\n")
    with pytest.raises(ValueError, match="bad.dat:2"):
        coverage.read_dat(tmp_path / "bad.dat")


def test_unit_names():
    assert coverage.unit_of("aras_top") == "top"
    assert coverage.unit_of("aras_top.engine.fetch_in3") == "engine"
    assert coverage.unit_of("aras_top__DOT__dram") == "dram"
    assert coverage.unit_of("aras_pe.decode0") == "pe" and coverage.unit_of("aras_xbar") == "xbar"


def test_random_configs(regress):
    cfgs, rejected = regress.draw_configs(30, seed=5)
    assert len({c.name for c in cfgs}) == 30 and sum(rejected.values()) > 0
    tiny = preset("tiny")
    for c in cfgs:
        check_buildable(c)
        assert c.n_xbars <= regress.SIZE["crossbars"]
        assert c.n_xbars * c.xbar_rows * c.xbar_cols <= regress.SIZE["cells"]
        assert c.write_drivers_per_pe <= c.apus_per_pe * c.xbars_per_apu and c.write_buffer_slots >= 1
        assert c.adc_bits >= c.adc_exact_bits or not c.adc_exact
        assert (c.gbuf_banks, c.t_pulse_ns, c.fetch_ports) == (tiny.gbuf_banks, tiny.t_pulse_ns, 0)
    assert any(not c.adc_exact and c.adc_bits < c.adc_exact_bits for c in cfgs)  # clipping ADCs drawn
    assert len({(c.xbar_rows, c.xbar_cols) for c in cfgs}) == 4
    assert [c.name for c in regress.draw_configs(30, seed=5)[0]] == [c.name for c in cfgs]


def test_plan_and_failure_index(regress):
    args = argparse.Namespace(seed=3, n=7, chain=3, disturbed=2, lenet_digits=7, chunk=5, presets=["tiny"],
                              configs=2, config_seed=4, coverage=True)
    cfgs = [preset("tiny"), preset("tiny-adc")]
    chains = regress.plan(cfgs, args)
    assert [c.id for c in chains] == ["tiny:d", "tiny:0", "tiny:1", "tiny:lenet0", "tiny:lenet1", "tiny-adc:d",
                                      "tiny-adc:0", "tiny-adc:1"]
    assert [c.slots for c in chains[:3]] == [[0, 1], [2, 3, 4], [5, 6]] and chains[0].kw and not chains[1].kw
    assert [c.lenet for c in chains[3:5]] == [(0, 5), (1, 2)]
    assert chains[1].tb_seed == regress.plan(cfgs, args)[1].tb_seed != chains[6].tb_seed
    cmd = regress.rerun_command(args, "tiny:1", "verilator")
    assert cmd.startswith("SIM=verilator ") and "--configs 2 --config-seed 4" in cmd and cmd.endswith("--only tiny:1")
    rec = {"cases": [{"case": "rand@aras#4", "runs": [{"mismatches": []}]},
                     {"case": "fc@baseline#5", "runs": [{"mismatches": ["cycles differ"]}]}]}
    assert regress._failed_index(rec, "") == 5
    assert regress._failed_index({"cases": []}, "program_run: rand@aras#12 on tiny, run 0: done did not rise") == 12
    assert regress._failed_index({"cases": []}, "KeyError") is None


def test_case_slots_are_independent(regress):
    cfg = preset("tiny")
    a, _ = regress.draw_case(cfg, 1, 3)
    b, _ = regress.draw_case(cfg, 1, 3)
    assert (a.name, a.seed) == (b.name, b.seed) and a.name.partition("@")[0] in regress.KINDS


def test_failing_chain_reruns_the_rest(regress, tmp_path, monkeypatch):
    """A chain whose third case fails: the first two pass, the third is the failure, the last two run
    again as a chain of their own (cold); a failure that names no case leaves its cases "not run"."""
    calls = []

    def fake_run_cases(cases, cfg, root, test_dir, *, tb_seed=0, **kw):
        calls.append([c.name for c in cases])
        recs = []
        for c in cases:
            bad = c.name.endswith("#2")
            recs.append({"case": c.name, "runs": [{"cycles": [318, 318], "cpu_s": 1.0,
                                                   "mismatches": ["cycles differ"] if bad else []}]})
            if bad:
                Path(test_dir).mkdir(parents=True, exist_ok=True)
                (Path(test_dir) / "report.json").write_text(json.dumps({"cases": recs, "cpu_s": 2.0}))
                raise AssertionError(f"cocotb failed: {c.name} on {cfg.name}, run 0: cycles differ")
        return {"cases": recs, "cpu_s": 3.0}

    monkeypatch.setattr(regress.system, "run_cases", fake_run_cases)
    cfg = preset("tiny")
    spec = make_case("spec", cfg)
    cases = [(i, dataclasses.replace(spec, seed=10 + i)) for i in range(5)]
    chain = regress.Chain("tiny:0", cfg, list(range(5)), {}, 7)
    reg, rows = regress.Regression(tmp_path, verbose=True), []
    reg.run(chain, cases, rows)
    assert calls == [[f"spec@aras#{i}" for i in range(5)], ["spec@aras#3", "spec@aras#4"]]
    assert [(r.seed, r.verdict) for r in rows] == [(10, "pass"), (11, "pass"), (12, "FAIL"), (13, "pass"), (14, "pass")]
    assert rows[0].cycles == 318 and "cycles differ" in rows[2].why and rows[2].tb_seed == 7
    assert reg.func.cases == {"aras": 4} and reg.sim_cpu == 5.0 and reg.sim_runs == 2

    def crash(cases, *a, **kw):
        raise AssertionError("cocotb failed: KeyError")

    monkeypatch.setattr(regress.system, "run_cases", crash)
    rows = []
    regress.Regression(tmp_path / "b", verbose=True).run(chain, cases, rows)
    assert [r.verdict for r in rows] == ["not run"] * 5 + ["FAIL"] and rows[-1].case == "(chain)"
