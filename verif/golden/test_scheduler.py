"""Scheduler and architecture-model invariants (issue: architecture model, "Done when").

On LeNet-5 (real weights) and a random multi-layer network, in every mode and ablation:
no crossbar holds two tiles at once, no tile computes before it is fully written, no write clobbers
a tile still in use, rounds cover every weight exactly once; re-encoding and differential writes never
increase write energy against their ablation; placement is no worse than first-free in total;
differential write energy equals the table sum over changed cells; no mode beats its lower bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from aras.config import preset
from aras.models import ModelSource
from aras.program import Compute, Write, validate
from aras.quantize import quantize
from aras.trace import Trace
from sim_models.perf import simulate
from sim_models.scheduler import Options, schedule
from sim_models.tiling import write_levels, write_targets
from sim_models.timing import run
from sim_models.write_engine import WriteTables, write_tile
from verif.golden.smallnets import mixed_cnn

TINY = preset("tiny")
LENET = Trace.load("aras/fixtures/lenet5")
ABLATIONS = {"aras": Options(), "no-overlap": Options(overlap=False), "no-reencode": Options(reencode=False),
             "no-diff-write": Options(diff_write=False), "no-placement": Options(placement=False),
             "no-bank-select": Options(bank_select=False), "lookahead-1": Options(lookahead=1),
             "no-replicate": Options(replicate=False), "no-resident": Options(resident=False),
             "baseline": Options.for_mode("baseline")}


@pytest.fixture(scope="module")
def mixed():
    g = mixed_cnn(seed=3)
    x = np.random.default_rng(0).normal(size=(8,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:2]))


def _check_program_invariants(prog, tr, cfg, r):
    validate(prog)
    # rounds cover every weight exactly once: each weight of a layer is in exactly one tile of one round
    for li, lt in prog.tilings.items():
        w = tr.layers[li].arrays["weight"]
        seen = np.zeros(w.size, int)
        ids = np.arange(w.size).reshape(lt.groups, lt.ng, lt.kg).transpose(0, 2, 1)  # (G, K_g, N_g)
        for t in lt.tiles:
            if lt.packed:
                for i in range(t.pack_g):
                    seen[ids[t.g * lt.pack + i].ravel()] += 1
            else:
                R = cfg.xbar_rows
                seen[ids[t.g, t.r * R:t.r * R + t.rows, t.c * lt.cw:t.c * lt.cw + t.wcols].ravel()] += 1
        assert (seen == 1).all(), li
    writes = [i for i in prog.instrs if isinstance(i, Write)]
    w_index = {id(w): n for n, w in enumerate(writes)}
    by_xbar: dict[int, list[int]] = {}
    for w in writes:
        by_xbar.setdefault(w.xbar, []).append(w_index[id(w)])
    e = 0
    last_compute_on: dict[int, int] = {}
    for ins in prog.instrs:
        if isinstance(ins, Write):
            n = w_index[id(ins)]
            b_start = r.write_times[n][2]
            # no write clobbers a tile still in use: it starts after every earlier COMPUTE on the crossbar
            if ins.xbar in last_compute_on:
                assert b_start >= r.exec_times[last_compute_on[ins.xbar]][1]
            # one tile at a time per crossbar: writes to a crossbar never overlap
            prev = [m for m in by_xbar[ins.xbar] if m < n]
            if prev:
                assert b_start >= r.write_times[prev[-1]][3]
            continue
        if isinstance(ins, Compute):
            start = r.exec_times[e][0]
            for te in ins.tiles:
                if te.need_gen == 0:  # resident from the previous run: untouched by this run so far
                    assert prog.initial_writes[te.xbar].tile.tag == te.tag
                    assert not [m for m in by_xbar.get(te.xbar, []) if r.write_times[m][2] < r.exec_times[e][1]]
                    last_compute_on[te.xbar] = e
                    continue
                wn = by_xbar[te.xbar][te.need_gen - 1]
                assert writes[wn].tile.tag == te.tag  # the crossbar holds exactly this tile...
                assert start >= r.write_times[wn][3]  # ...fully written before the compute starts
                later = [m for m in by_xbar[te.xbar] if m > wn]
                if later:  # ...and not overwritten while the compute runs
                    assert r.write_times[later[0]][2] >= r.exec_times[e][1]
                last_compute_on[te.xbar] = e
        e += 1


@pytest.mark.parametrize("name", list(ABLATIONS))
@pytest.mark.parametrize("which", ["lenet5", "mixed"])
def test_schedule_invariants(name, which, mixed):
    tr = LENET if which == "lenet5" else mixed
    opts = ABLATIONS[name]
    mode = "baseline" if name == "baseline" else "aras"
    prog = schedule(tr, TINY, mode, opts)
    r = run(prog, tr, TINY)
    _check_program_invariants(prog, tr, TINY, r)
    r2 = run(prog, tr, TINY, prog.notes["final_levels"])
    _check_program_invariants(prog, tr, TINY, r2)


@pytest.mark.parametrize("cfg_name", ["tiny", "paper"])
def test_steady_state_program_invariants(cfg_name, mixed):
    """The steady-state program (planned against what the previous run leaves, resident tiles not
    rewritten) keeps every invariant when run from its own end state."""
    from sim_models.perf import _steady

    cfg = preset(cfg_name)
    for tr in (LENET, mixed):
        if cfg_name == "tiny" and tr is mixed:
            continue
        prog, r = _steady(tr, cfg, "aras", Options(), {})
        _check_program_invariants(prog, tr, cfg, r)
        if cfg_name == "paper":
            assert prog.notes["placement"]["resident_tiles"] > 0


def test_differential_energy_is_the_table_sum_and_never_above_blind():
    tb = WriteTables.of(TINY)
    rng = np.random.default_rng(0)
    for _ in range(200):
        old = rng.integers(0, 4, (5, 16)).astype(np.uint8)
        new = np.where(rng.random((5, 16)) < 0.5, old, rng.integers(0, 4, (5, 16))).astype(np.uint8)
        d, b = write_tile(old, new, 1, tb), write_tile(old, new, 0, tb)
        table = np.asarray(TINY.write_energy_pj)
        via_reset = TINY.e_reset_pj + table[0][None, :]
        e_cell = np.minimum(table, via_reset)
        want = sum(e_cell[o, n] for o, n in zip(old.ravel(), new.ravel(), strict=True) if o != n)
        assert d.program_energy_pj(tb) == pytest.approx(want, rel=1e-12, abs=1e-12)
        for r in range(5):  # per row: programming energy of a differential row <= blind row
            dr = write_tile(old[r:r + 1], new[r:r + 1], 1, tb).program_energy_pj(tb)
            br = write_tile(old[r:r + 1], new[r:r + 1], 0, tb).program_energy_pj(tb)
            assert dr <= br + 1e-12
        assert d.rows_written + d.rows_skipped == 5 and d.cells_changed.sum() == (old != new).sum()
        assert b.cells_written_blind == old.size


@pytest.mark.parametrize("cfg_name", ["tiny", "paper"])
def test_reencoding_never_increases_write_energy(cfg_name):
    cfg = preset(cfg_name)
    tb = WriteTables.of(cfg)
    prog = schedule(LENET, cfg, "aras")
    levels = np.zeros_like(prog.notes["final_levels"])  # cold start
    for w in prog.writes:
        new = write_levels(w, cfg.cell_bits, cfg.slices)
        old = levels[w.xbar, : w.tile.rows, : new.shape[1]]
        plain = write_targets(w, cfg.cell_bits)[0]
        chosen = write_tile(old, new, w.mode, tb).program_energy_pj(tb)
        ablated = write_tile(old, plain, w.mode, tb).program_energy_pj(tb)
        assert chosen <= ablated + 1e-9
        levels[w.xbar, : w.tile.rows, : new.shape[1]] = new


def _lenet_and_mixed(mixed):
    return [(LENET, TINY), (LENET, preset("paper")), (mixed, TINY)]


def test_ablations_and_bounds(mixed):
    for tr, cfg in _lenet_and_mixed(mixed):
        full = simulate(tr, cfg, "aras")
        res = {k: simulate(tr, cfg, "aras", o) for k, o in ABLATIONS.items() if k not in ("aras", "baseline")}
        res["aras"] = full
        res["baseline"] = simulate(tr, cfg, "baseline")
        # placement is no worse than first-free in total (steady-state write energy)
        assert full["energy_j"]["write"] <= res["no-placement"]["energy_j"]["write"] * (1 + 1e-12)
        # re-encoding and differential writes do not increase the write energy against their ablations
        assert full["energy_j"]["write"] <= res["no-reencode"]["energy_j"]["write"] * (1 + 1e-12)
        assert full["write_energy_detail_j"]["program"] <= res["no-diff-write"]["write_energy_detail_j"]["program"]
        for k, r in res.items():
            lb = r["lower_bound"]
            assert r["cycles"] >= lb["cycles"] > 0, k
            assert r["energy_j"]["write"] >= lb["write_energy_j"] * (1 - 1e-12), k
            e = r["energy_j"]
            assert e["total"] == pytest.approx(sum(v for n, v in e.items() if n != "total"), rel=1e-12)
            # per-layer energies account for every dynamic joule (leakage is per run)
            assert sum(ly["energy_j"]["total"] for ly in r["layers"]) == pytest.approx(
                e["total"] - e["gbuf_static"], rel=1e-9)
        ideal = simulate(tr, cfg, "ideal")
        assert ideal["cycles"] <= min(r["cycles"] for r in res.values() if not r["options"]["replicate"])
        assert res["no-bank-select"]["energy_j"]["gbuf_static"] >= full["energy_j"]["gbuf_static"]


def test_cold_start_reported_and_steady_reuses_contents():
    # LeNet-5 fits the paper chip: in steady state every tile is still resident from the previous run,
    # so the program writes nothing and fetches nothing; the cold start (first inference) writes all.
    r = simulate(LENET, preset("paper"), "aras")
    assert r["program"]["writes"] == 0 and r["program"]["resident_tiles"] > 0
    assert r["counters"]["dram_bytes"] == 0 and r["energy_j"]["write"] == 0
    assert r["cold_start"]["writes"]["rows_written"] > 0 and r["cold_start"]["counters"]["dram_bytes"] > 0
    # Without residency every tile is rewritten onto identical contents: differential writes skip
    # every row, but the weights still cross the DRAM channel.
    nr = simulate(LENET, preset("paper"), "aras", Options(resident=False))
    assert nr["writes"]["rows_written"] == 0 and nr["writes"]["rows_skipped"] > 0
    assert nr["counters"]["dram_bytes"] > 0 and nr["energy_j"]["total"] > r["energy_j"]["total"]


def test_batch_shares_weight_writes():
    cfg = TINY.replace(gbuf_banks=16)
    r1 = simulate(LENET, cfg, "aras")
    r2 = simulate(LENET, cfg.replace(batch=2), "aras")
    assert r2["counters"]["dram_bytes"] == r1["counters"]["dram_bytes"]
    assert r2["counters"]["xbar_reads"] == 2 * r1["counters"]["xbar_reads"]
