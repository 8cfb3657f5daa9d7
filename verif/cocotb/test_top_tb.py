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
``aras verify lenet5 --config tiny``, ``scripts/regress.py --lenet-digits N``)."""

from __future__ import annotations

import pytest

from aras.config import preset
from sim_models.scheduler import MODES
from verif.cocotb.system import run_case, run_cases
from verif.cocotb.system_vectors import case_cycles, make_case

TINY = preset("tiny")
TINY_ADC = preset("tiny-adc")


def _cycles(rec):
    return [(c["case"], r["cycles"]) for c in rec["cases"] for r in c["runs"]]


def test_layers_every_mode_and_rounds(cocotb_build_root, tmp_path):
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


def test_reset_mid_run(cocotb_build_root, cocotb_sim, tmp_path):
    """Reset in cycle 200 of the cold §10.6 example (WRITEs and a COMPUTE in flight), then a full run."""
    r = run_case(make_case("spec", TINY, seed=5), TINY, cocotb_build_root, tmp_path, reset_at=200, sim=cocotb_sim)
    assert r["runs"][0]["cycles"][1] < 318  # rows the interrupted run wrote are skipped by the second one


def test_mtcnn_pnet(cocotb_build_root, tmp_path):
    """MTCNN P-Net, real weights, both heads; the softmax is a HOST layer answered by the testbench's host."""
    r = run_case(make_case("mtcnn-pnet", TINY), TINY, cocotb_build_root, tmp_path)
    assert r["runs"][0]["host_layers"] == [5]


def test_disturbed_runs(cocotb_build_root, cocotb_sim, tmp_path):
    """Random DRAM-side stalls and a late host on the rounds-and-rewrites net with its host softmax:
    outputs and untimed counters exact, cycles only grow (twice: stalls alone, then with the host)."""
    rec = run_cases([make_case("mlp@aras", TINY, seed=9)], TINY, cocotb_build_root, tmp_path / "stall", stall=0.3,
                    sim=cocotb_sim)
    rec2 = run_cases([make_case("mlp@baseline", TINY, seed=9)], TINY, cocotb_build_root, tmp_path / "host",
                     stall=0.2, host_delay=0.6, sim=cocotb_sim)
    for r in (rec, rec2):
        (gold, got), = [run["cycles"] for c in r["cases"] for run in c["runs"]]
        assert got > gold


def test_tiny_adc(cocotb_build_root, tmp_path):
    """Clipping ADCs: a random conv and linear layer in aras, baseline and without differential writes."""
    cases = [make_case(f"{k}@{m}", TINY_ADC, seed=7) for k in ("conv", "fc") for m in ("aras", "baseline",
                                                                                       "no-diff-write")]
    run_cases(cases, TINY_ADC, cocotb_build_root, tmp_path)


# The random regression of CI: random networks over shapes (verif/golden/randnet.py) in random modes,
# on the two configs whose builds the tests above already use; chains of CHAIN cases per simulator
# process (each case starts from the cells the previous one left). scripts/regress.py runs more.
N_RANDOM, CHAIN = 200, 50


@pytest.mark.parametrize("chain", range(N_RANDOM // CHAIN))
def test_random_programs(cocotb_build_root, tmp_path, chain):
    import random

    rng = random.Random(1000 + chain)
    cfg = TINY_ADC if chain == 3 else TINY
    cases = [make_case(f"rand@{rng.choice(list(MODES))}", cfg, seed=rng.randrange(1 << 20)) for _ in range(CHAIN)]
    rec = run_cases(cases, cfg, cocotb_build_root, tmp_path)
    assert len(rec["cases"]) == CHAIN


def test_random_resets(cocotb_build_root, tmp_path):
    """Resets at random cycles of random programs (each one cold run, reset, then a full run)."""
    import random

    rng = random.Random(77)
    for k in range(3):
        case = make_case("rand@aras", TINY, seed=rng.randrange(1 << 20))
        gold = case_cycles(case, TINY)
        run_case(case, TINY, cocotb_build_root, tmp_path / f"r{k}", reset_at=rng.randrange(1, gold))


def test_lenet5_ten_digits(cocotb_build_root, tmp_path):
    """Real trained weights on ten real test digits back to back (cold, then steady state)."""
    r = run_case(make_case("lenet5", TINY, runs=10), TINY, cocotb_build_root, tmp_path)
    assert len(r["runs"]) == 10


@pytest.mark.slow
def test_lenet5(cocotb_build_root, tmp_path):
    """Real trained weights on two real test digits (cold, then steady state); predicted digits equal."""
    run_case(make_case("lenet5", TINY, runs=2), TINY, cocotb_build_root, tmp_path)
