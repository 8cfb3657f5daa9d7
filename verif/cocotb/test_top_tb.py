"""cocotb system tests of the generated Verilog of ``hw.top.Top`` (the cocotb side is ``top_tb.py``, the
cases come from ``system_vectors.py``): whole scheduler programs loaded through the top's streams,
compared exactly with ``sim_models.timing`` / ``sim_models.functional`` — cycles, every status-block
register, per-layer execute counters and output checksums, every output byte, every crossbar cell.

The Top's SystemVerilog takes ~25 s to generate, so each config is generated once per session and
built once per simulator (the build is cached by content across sessions: ``runner.build``). A
simulator process costs seconds to start, so one process runs a chain of cases (each starts from the
cells the previous one left: cold only for the first). The cases run on the default simulator
(Verilator when installed, ``$SIM`` otherwise); the reset and disturbed cases also run on Icarus
(``cocotb_sim``: both simulators unless ``$SIM`` names one). LeNet-5 (79k cycles) is ``slow`` (also:
``aras verify lenet5 --config tiny``, ``scripts/regress.py --lenet-digits N``).

Every run also goes through ``top_tb.py``'s hazard monitor (``monitor.py``), whose undisturbed runs
carry how many starts each interlock rule decided (``sim_models.hazards``' golden replay; the RTL starts
are checked equal to it). The cases of ``verif/golden/hazard_cases.py`` make every rule decide several
starts; the last test prints the counts over every case of the session and fails if a rule decides
none."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from aras.config import preset
from sim_models import hazards
from sim_models.scheduler import MODES
from sim_models.timing import RULES
from verif.golden import hazard_cases as hc
from verif.testbench import system
from verif.testbench.system_vectors import TOP_PARAMS, Case, case_cycles, make_case

TINY = preset("tiny")
TINY_ADC = preset("tiny-adc")
SEVERAL = 3

# test node id -> the hazard records of its runs (top_tb.py's run records), for the session's table
HAZARDS: dict[str, list[dict]] = {}
HAZARD_CASES = "hazard cases"  # the key of test_hazard_cases' runs


def _record(key: str, rec: dict) -> dict:
    HAZARDS.setdefault(key, []).extend(r["hazards"] for c in rec["cases"] for r in c["runs"])
    return rec


@pytest.fixture
def run_cases(request):
    """``system.run_cases``, recording the hazard counts of its runs under the test's id."""
    return lambda *a, **kw: _record(request.node.nodeid, system.run_cases(*a, **kw))


@pytest.fixture
def run_case(request):
    def run(*a, **kw):
        r = system.run_case(*a, **kw)
        _record(request.node.nodeid, {"cases": [r]})
        return r
    return run


def _cycles(rec):
    return [(c["case"], r["cycles"]) for c in rec["cases"] for r in c["runs"]]


def test_layers_every_mode_and_rounds(cocotb_build_root, tmp_path, run_cases):
    """The §10.6 example cold (318 cycles); a random conv in every mode (baseline, aras, each ablation,
    sign-magnitude); a random linear layer in aras and baseline; three linear layers with ~7x the chip's
    weights (rounds and rewrites) twice (steady state) in aras and once in baseline."""
    cases = [make_case("spec", TINY)]
    cases += [make_case(f"conv@{m}", TINY, seed=3) for m in MODES]
    cases += [make_case(f"fc@{m}", TINY, seed=5) for m in ("aras", "baseline")]
    cases += [make_case("mlp@aras", TINY, seed=4, runs=2), make_case("mlp@baseline", TINY, seed=4)]
    rec = run_cases(cases, TINY, cocotb_build_root, tmp_path)
    got = _cycles(rec)
    assert len(got) == len(cases) + 1 and got[0] == ("spec@aras", [318, 318])  # §10.6


def test_reset_mid_run(cocotb_build_root, cocotb_sim, tmp_path, run_case):
    """Reset in cycle 200 of the cold §10.6 example (WRITEs and a COMPUTE in flight), then a full run."""
    r = run_case(make_case("spec", TINY, seed=5), TINY, cocotb_build_root, tmp_path, reset_at=200, sim=cocotb_sim)
    assert r["runs"][0]["cycles"][1] < 318  # rows the interrupted run wrote are skipped by the second one


def test_mtcnn_pnet(cocotb_build_root, tmp_path, run_case):
    """MTCNN P-Net, real weights, both heads; the softmax is a HOST layer answered by the testbench's host."""
    r = run_case(make_case("mtcnn-pnet", TINY), TINY, cocotb_build_root, tmp_path)
    assert r["runs"][0]["host_layers"] == [5]


def test_disturbed_runs(cocotb_build_root, cocotb_sim, tmp_path, run_cases):
    """Random DRAM-side stalls and a late host on the rounds-and-rewrites net with its host softmax:
    outputs and untimed counters exact, cycles only grow (twice: stalls alone, then with the host)."""
    rec = run_cases([make_case("mlp@aras", TINY, seed=9)], TINY, cocotb_build_root, tmp_path / "stall", stall=0.3,
                    sim=cocotb_sim)
    rec2 = run_cases([make_case("mlp@baseline", TINY, seed=9)], TINY, cocotb_build_root, tmp_path / "host",
                     stall=0.2, host_delay=0.6, sim=cocotb_sim)
    for r in (rec, rec2):
        (gold, got), = [run["cycles"] for c in r["cases"] for run in c["runs"]]
        assert got > gold


def test_tiny_adc(cocotb_build_root, tmp_path, run_cases):
    """Clipping ADCs: a random conv and linear layer in aras, baseline and without differential writes."""
    cases = [make_case(f"{k}@{m}", TINY_ADC, seed=7) for k in ("conv", "fc") for m in ("aras", "baseline",
                                                                                       "no-diff-write")]
    run_cases(cases, TINY_ADC, cocotb_build_root, tmp_path)


# The random regression of CI: random networks over shapes (verif/golden/randnet.py) in random modes,
# on the two configs whose builds the tests above already use; chains of CHAIN cases per simulator
# process (each case starts from the cells the previous one left). scripts/regress.py runs more.
N_RANDOM, CHAIN = 200, 50


@pytest.mark.parametrize("chain", range(N_RANDOM // CHAIN))
def test_random_programs(cocotb_build_root, tmp_path, chain, run_cases):
    import random

    rng = random.Random(1000 + chain)
    cfg = TINY_ADC if chain == 3 else TINY
    cases = [make_case(f"rand@{rng.choice(list(MODES))}", cfg, seed=rng.randrange(1 << 20)) for _ in range(CHAIN)]
    rec = run_cases(cases, cfg, cocotb_build_root, tmp_path)
    assert len(rec["cases"]) == CHAIN


def test_random_resets(cocotb_build_root, tmp_path, run_case):
    """Resets at random cycles of random programs (each one cold run, reset, then a full run)."""
    import random

    rng = random.Random(77)
    for k in range(3):
        case = make_case("rand@aras", TINY, seed=rng.randrange(1 << 20))
        gold = case_cycles(case, TINY)
        run_case(case, TINY, cocotb_build_root, tmp_path / f"r{k}", reset_at=rng.randrange(1, gold))


def test_lenet5_ten_digits(cocotb_build_root, tmp_path, run_case):
    """Real trained weights on ten real test digits back to back (cold, then steady state)."""
    r = run_case(make_case("lenet5", TINY, runs=10), TINY, cocotb_build_root, tmp_path)
    assert len(r["runs"]) == 10


@pytest.mark.slow
def test_lenet5(cocotb_build_root, tmp_path, run_case):
    """Real trained weights on two real test digits (cold, then steady state); predicted digits equal."""
    run_case(make_case("lenet5", TINY, runs=2), TINY, cocotb_build_root, tmp_path)


# ------------------------------------------------------------------------- which interlock rule decides
def hazard_cases() -> list[Case]:
    """The ``tiny`` programs of ``hazard_cases.rule_chains`` (rounds, rewrites, WRITEs twice: WAW) as
    cases, random inputs, one chain in their order. The mixed CNN (10 layers) does not fit the build's
    ``max_layers`` (``TOP_PARAMS``); the two-driver chain would need a build of its own."""
    chain = hc.rule_chains()[0]
    assert chain.cfg == TINY
    rng = np.random.default_rng(11)
    out = []
    for label, tr, prog in chain.runs:
        if len(tr.layers) > TOP_PARAMS["max_layers"]:
            continue
        x = rng.integers(-128, 128, (1, TINY.batch) + tr.input_q.shape).astype(np.int8)
        out.append(Case(label, tr, prog, x, "random int8 (seed 11)"))
    return out


def required_rules(cfgs) -> list[str]:
    """The rules that can decide a start on ``cfgs``: all of ``timing.RULES`` but ``pe_order`` with one
    write driver per PE (the driver is busy for the previous WRITE's whole programming, so the in-order
    start never binds alone; ``hazard_cases.rule_chains``)."""
    return [r for r in RULES if r != "pe_order" or any(c.write_drivers_per_pe > 1 for c in cfgs)]


def _sum(records: list[dict], measure: str = "decides") -> Counter:
    out = Counter({r: 0 for r in RULES})
    for h in records:
        out.update(h.get(measure, {}))
    return out


def _run_hazard_cases(root, path) -> list[dict]:
    HAZARDS.pop(HAZARD_CASES, None)
    _record(HAZARD_CASES, system.run_cases(hazard_cases(), TINY, root, path))
    return HAZARDS[HAZARD_CASES]


def test_hazard_cases(cocotb_build_root, tmp_path):
    """The hazard cases on the RTL: every start as the golden model's, and every rule that can decide on
    ``tiny`` decides several starts (the RTL's, as the golden replay attributes them)."""
    runs = _run_hazard_cases(cocotb_build_root, tmp_path)
    assert len(runs) == len(hazard_cases()) and all("decides" in h for h in runs)
    got = _sum(runs)
    few = {r: got[r] for r in required_rules([TINY]) if got[r] < SEVERAL}
    assert not few, f"hazard cases: rules deciding fewer than {SEVERAL} starts: {few}"


def test_starts_decided_by_rule(cocotb_build_root, tmp_path, emit):
    """Last: the starts each rule decided over every undisturbed run of this session's cases (the hazard
    cases run here if this session did not run them), printed as a table; every rule that can decide on
    these configs must decide some."""
    if HAZARD_CASES not in HAZARDS:
        _run_hazard_cases(cocotb_build_root, tmp_path)
    runs = {k: [h for h in v if "decides" in h] for k, v in HAZARDS.items()}
    ci = [h for k, v in runs.items() if k != HAZARD_CASES for h in v]
    cols = {"CI cases": _sum(ci), "hazard cases": _sum(runs[HAZARD_CASES])}
    cols["all"] = cols["CI cases"] + cols["hazard cases"]
    cols["all, sole"] = _sum(ci + runs[HAZARD_CASES], "sole")
    starts = {k: sum(h["starts"] for h in v) for k, v in (("CI", ci), ("hazard", runs[HAZARD_CASES]))}
    need = required_rules([TINY, TINY_ADC])
    emit(f"starts decided by rule (RTL starts = golden starts; golden replay, sim_models.hazards): "
         f"CI cases {len(ci)} runs / {starts['CI']} starts, hazard cases {len(runs[HAZARD_CASES])} runs / "
         f"{starts['hazard']} starts\n" + hazards.table(cols) + "\nmust decide some: " + ", ".join(need)
         + " (pe_order needs a second write driver per PE)" * ("pe_order" not in need))
    none = [r for r in need if cols["all"][r] == 0]
    assert not none, f"rules that decide no start of the session's cocotb cases: {none}"
