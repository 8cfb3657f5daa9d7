"""Faults in the golden model (docs/architecture.md §8.7): stuck cells and program-and-verify
(``sim_models.write_engine.write_tile_stuck``: the failing row's time, counters, contents), and whole runs
(``sim_models.timing.run(..., faults=...)``) that end with a verify failure, a host that never
acknowledges or a DRAM stalled for ever — the error code, crossbar, row and cycle, what still starts and
drains, every counter and window — worked out by hand on the §10.6 / §10.8 examples (§8.7's worked
example). Without faults (or with an empty fault map) a run is the fault-free one, field for field."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from sim_models.scheduler import Options, schedule
from sim_models.tiling import write_levels
from sim_models.timing import run
from sim_models.write_engine import INF, NO_FAULT, Faults, WriteTables, write_tile, write_tile_stuck
from verif.golden.smallnets import mixed_cnn
from verif.golden.test_spec_example import example_trace, psum_example, vector_host_example
from verif.golden.tracegen import random_multipliers, weight_layer_trace

# tiny with a short verify bound and watchdog (T_rd = T_set = T_pul = T_ver = T_rst = 1: a pulse step is 2 cycles)
CFG = preset("tiny").replace(max_verify_pulses=6, watchdog_cycles=40)


def _spec():
    tr = example_trace()
    return tr, schedule(tr, CFG, "aras", Options(reencode=False, placement=False))


def _nonzero(r) -> dict:
    return {k: v for k, v in r.counters.items() if v}


def _changed(r) -> dict:
    L = r.cells_changed.shape[0]
    return {(o, n): int(r.cells_changed[o, n]) for o in range(L) for n in range(L) if r.cells_changed[o, n]}


def _windows(r) -> dict:
    return {li: (lt.start, lt.end, lt.wstart, lt.wend) for li, lt in r.layers.items()}


# ---------------------------------------------------------------- one tile over stuck cells
def test_failing_row_times_counters_and_contents():
    """A 3-row differential tile over level 0, target level 3 everywhere; cell (1, 2) stuck at 0: row 0 is
    written (8 cycles); row 1 fails: T_rd + T_set + max(slowest 6, M·2 = 12) = 14 cycles, counted as
    written; row 2 is not written."""
    tb = WriteTables.of(CFG)
    old = np.zeros((3, 4), np.uint8)
    new = np.full((3, 4), 3, np.uint8)
    stuck = np.zeros((3, 4), bool)
    stuck[1, 2] = True
    tw = write_tile_stuck(old, new, 1, tb, stuck, np.zeros((3, 4), np.uint8), 6)
    assert tw.failed_row == 1 and list(tw.row_cycles) == [8, 14] and tw.cycles == 22
    assert (tw.rows_written, tw.rows_skipped, tw.row_reads, tw.cells_read) == (2, 0, 2, 8)
    assert tw.cells_changed[0 * 4 + 3] == 8  # 2 rows x 4 cells 0 -> 3 (the stuck one is programmed too)
    assert tw.after.tolist() == [[3, 3, 3, 3], [3, 3, 0, 3], [0, 0, 0, 0]]
    assert tw.programmed.tolist() == [[True] * 4, [True] * 4, [False] * 4]


def test_failing_row_via_reset_and_blind():
    """A failing cell on a reset path (3 -> 0 goes via RESET, §8.3) pulses after T_rst: 1 + 1 + (1 + 12);
    a blind row fails in T_set + T_rst + M·(T_pul + T_ver) = 1 + 1 + 12."""
    tb = WriteTables.of(CFG)
    stuck, lv = np.ones((1, 4), bool), np.full((1, 4), 3, np.uint8)
    stuck[0, 1:] = False
    old = np.array([[3, 3, 3, 3]], np.uint8)
    new = np.array([[0, 3, 3, 3]], np.uint8)
    assert write_tile(old, new, 1, tb).row_cycles.tolist() == [3]  # healthy: T_rd + T_set + T_rst
    tw = write_tile_stuck(old, new, 1, tb, stuck, lv, 6)
    assert tw.row_cycles.tolist() == [15] and tw.after.tolist() == [[3, 3, 3, 3]]
    tw = write_tile_stuck(old, new, 0, tb, stuck, lv, 6)
    assert tw.row_cycles.tolist() == [14] and tw.cells_written_blind == 4 and tw.rows_written == 1


def test_bound_reached_by_a_slow_healthy_cell():
    """M = 3 (the largest default pulse count): a failing direct cell pulses M·2 = 6 cycles, no longer than
    a healthy 0 -> 3 cell of the same row, so the failing row takes its nominal time."""
    cfg = CFG.replace(max_verify_pulses=3)
    tb = WriteTables.of(cfg)
    old = np.array([[0, 2]], np.uint8)
    new = np.array([[3, 3]], np.uint8)
    stuck = np.array([[False, True]])
    tw = write_tile_stuck(old, new, 1, tb, stuck, np.array([[0, 2]], np.uint8), 3)
    assert tw.failed_row == 0 and tw.row_cycles.tolist() == write_tile(old, new, 1, tb).row_cycles.tolist() == [8]


def test_stuck_at_its_target_is_no_failure():
    tb = WriteTables.of(CFG)
    rng = np.random.default_rng(1)
    old = rng.integers(0, 4, (5, 8)).astype(np.uint8)
    new = rng.integers(0, 4, (5, 8)).astype(np.uint8)
    stuck = rng.random((5, 8)) < 0.3
    old[stuck] = new[stuck]  # stuck at the target (the reads already show it)
    for mode in (0, 1):
        tw, ref = write_tile_stuck(old, new, mode, tb, stuck, new.copy(), 6), write_tile(old, new, mode, tb)
        assert tw.failed_row is None and tw.cycles == ref.cycles and np.array_equal(tw.cells_changed, ref.cells_changed)


# ---------------------------------------------------------------- whole runs (the §8.7 worked example)
def test_verify_failure_in_the_worked_example():
    """§10.6's program, x0 (W0) cell (3, 0) stuck at level 1 (its target is 3). W0 programs rows 0-2
    (8 cycles each) from 20; row 3 fails: 1 + 1 + max(6, 6·2) = 14 → error (1, x0, row 3) in F = 20 + 24 + 14
    = 58. Started before 58: W0 (given up), W1 (finishes at 42), the transfers of W2 (26-46) and W3 (46-58);
    W3's programming would start at 58 = F and does not; E0 (reads x0) never starts. cycles = 58."""
    tr, prog = _spec()
    r = run(prog, tr, CFG, faults=Faults(stuck={(0, 3, 0): 1}))
    assert r.cycles == 58
    assert _nonzero(r) == {"cycles": 58, "fault_code": 1, "fault_row": 3, "fault_cycle": 58,
                           "rows_written": 4 + 2, "row_reads_before_write": 6, "cells_read_before_write": 6 * 16,
                           "dram_bytes": 64 + 8 + 64 + 32, "write_buffer_bytes": 168 + 4 * 4 + 2 * 4,
                           "gbuf_active_bank_cycles": 58}
    assert _changed(r) == {(0, 3): 3 * 16 + 15 + 2 * 16, (1, 3): 1}
    assert _windows(r) == {0: (None, None, 20, 41), 2: (None, None, None, None)}
    assert r.final_levels[0, :4].tolist() == [[3] * 16] * 3 + [[1] + [3] * 15] and not r.final_levels[0, 4:].any()
    assert r.final_levels[4, :2].tolist() == [[3] * 16] * 2 and not r.final_levels[[1, 2, 3, 5, 6, 7]].any()


def test_the_first_error_wins_and_the_rest_drains():
    """Also x6 (W3, PE1) row 5 stuck: W3 would fail at 58 + 5·8 + 14 = 112, but its programming never
    starts (58 = F). With x4 (W1) row 1 stuck instead, W1 fails at 26 + 8 + 14 = 48 < 58: that error is
    recorded; W0 then keeps programming until its own give-up at 58, and the run ends there."""
    tr, prog = _spec()
    r = run(prog, tr, CFG, faults=Faults(stuck={(0, 3, 0): 1, (6, 5, 0): 0}))
    assert (r.counters["fault_xbar"], r.counters["fault_cycle"], r.cycles) == (0, 58, 58)
    r = run(prog, tr, CFG, faults=Faults(stuck={(0, 3, 0): 1, (4, 1, 7): 2}))
    assert [r.counters[k] for k in ("fault_code", "fault_xbar", "fault_row", "fault_cycle")] == [1, 4, 1, 48]
    assert r.cycles == 58  # W0 started before 48 and is given up at 58
    assert r.counters["rows_written"] == 4 + 2 and r.counters["dram_bytes"] == 64 + 8 + 64 + 32  # W3's: 46 < 48
    assert _windows(r)[0] == (None, None, 20, None)


def test_host_watchdog_in_the_vector_host_example():
    """§10.8 with the softmax host never acknowledging: E3 starts at 57, host_req stays high, the watchdog
    (W = 40) raises error 2 in 57 + 40 = 97; E3 never retires, so its off mask (bank 2) is never applied."""
    tr, prog, cfg = vector_host_example()
    r = run(prog, tr, cfg.replace(watchdog_cycles=40), faults=Faults(host_hang=frozenset({4})))
    assert r.exec_times[:3] == [(0, 43), (43, 50), (50, 57)] and r.exec_times[3][0] == 57
    assert r.exec_times[3][1] >= INF and r.cycles == 97
    assert _nonzero(r) == {"cycles": 97, "fault_code": 2, "fault_cycle": 97, "vector_ops": 198, "gbuf_reads": 40,
                           "gbuf_writes": 15, "gbuf_active_bank_cycles": 97 + 57 + 47}  # banks 0, 1 [0, 57), 2 [50, 97)
    assert _windows(r)[4] == (57, None, None, None)


@pytest.mark.parametrize("stall, fault, dram", [(30, 70, 64 + 8), (35, 75, 64 + 8 + 5 * 4), (26, 70, 64 + 8),
                                                (45, 85, 64 + 8 + 60)])
def test_dram_watchdog_in_the_worked_example(stall, fault, dram):
    """§10.6 with dram_stall held from ``stall`` on: W2's transfer (26-46, first beat due at 30) holds its
    first beat at max(stall, 30) and the watchdog raises error 3 (crossbar of W2) 40 cycles later; the beats
    before it count; W3's transfer never starts; W0 and W1 drain (cycles = W0's B_fin 148)."""
    tr, prog = _spec()
    r = run(prog, tr, CFG, faults=Faults(dram_stall_from=stall))
    assert [r.counters[k] for k in ("fault_code", "fault_xbar", "fault_row", "fault_cycle")] == \
           [3, prog.writes[2].xbar, 0, fault]
    assert r.cycles == 148 and r.counters["dram_bytes"] == dram
    assert r.counters["write_buffer_bytes"] == dram + 64 + 8 and r.counters["rows_written"] == 18
    assert _windows(r) == {0: (None, None, 20, 147), 2: (None, None, None, None)}


def test_a_stall_after_the_last_transfer_is_harmless():
    tr, prog = _spec()
    assert _nonzero(run(prog, tr, CFG, faults=Faults(dram_stall_from=58))) == _nonzero(run(prog, tr, CFG))


# ---------------------------------------------------------------- no faults: the run is the fault-free one
def _same(a, b):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert np.array_equal(x, y), f.name
        elif f.name == "layers":
            assert {k: dataclasses.asdict(v) for k, v in x.items()} == {k: dataclasses.asdict(v) for k, v in y.items()}
        else:
            assert x == y, f.name


def _mixed():
    from aras.models import ModelSource
    from aras.quantize import quantize
    g = mixed_cnn()
    x = np.random.default_rng(1).normal(size=(32,) + g.input_shape)
    mixed = quantize(ModelSource(g, x, x[:4]))
    return mixed, schedule(mixed, CFG, "aras"), CFG


def _linear(mode):
    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (5, 150))
    m, s = random_multipliers(rng, 5)
    lin = weight_layer_trace(w, in_shape=(2, 150), mult=m, shift=s, zx=7, zo=-4)
    return lin, schedule(lin, CFG, mode), CFG


PROGRAMS = {"spec": lambda: (*_spec(), CFG), "mixed cnn": _mixed, "linear spill": lambda: _linear("aras"),
            "linear baseline": lambda: _linear("baseline"), "psum example": psum_example}


@pytest.mark.parametrize("name", PROGRAMS)
def test_no_faults_is_the_fault_free_run(name):
    tr, prog, cfg = PROGRAMS[name]()
    ref = run(prog, tr, cfg)
    assert {ref.counters[n] for n in NO_FAULT} == {0}
    _same(run(prog, tr, cfg, faults=Faults()), ref)
    # cells stuck where the program never writes, or (a crossbar written once) at what it writes there,
    # change nothing: the run is the one from contents that hold those levels at cycle 0
    written = np.zeros(ref.final_levels.shape, bool)
    once = np.bincount([w.xbar for w in prog.writes], minlength=cfg.n_xbars) == 1
    for w in prog.writes:
        written[w.xbar, : w.tile.rows, : write_levels(w, cfg.cell_bits, cfg.slices).shape[1]] = True
    cells = zip(*np.nonzero(~written | once[:, None, None]), strict=True)
    stuck = {(int(x), int(r), int(j)): int(ref.final_levels[x, r, j])
             for x, r, j in cells if (r * 7 + j * 3 + x) % 11 == 0}
    if name == "spec":  # both kinds: crossbars the program never writes, and each written crossbar once
        assert any(not written[k] for k in stuck) and any(written[k] for k in stuck)
    init = np.zeros_like(ref.final_levels)
    for k, lv in stuck.items():
        init[k] = lv
    _same(run(prog, tr, cfg, faults=Faults(stuck=stuck)), run(prog, tr, cfg, init))


def test_steady_state_after_a_failure_starts_from_its_contents():
    tr, prog = _spec()
    bad = run(prog, tr, CFG, faults=Faults(stuck={(0, 3, 0): 1}))
    again = run(prog, tr, CFG, bad.final_levels, faults=Faults(stuck={(0, 3, 0): 1}))
    assert again.counters["fault_cycle"] == 20 + 3 * 1 + 14  # rows 0-2 hold their targets: skipped (T_rd)
    assert again.counters["rows_skipped"] == 3 + 2


@pytest.mark.parametrize("faults, match", [
    (Faults(stuck={(8, 0, 0): 1}), r"stuck cell \(8, 0, 0\) is not a \(crossbar < 8"),
    (Faults(stuck={(0, 16, 0): 1}), "row < 16"),
    (Faults(stuck={(0, 0, 0): 4}), r"level 4 is not in \[0, 3\]"),
    (Faults(stuck={(0, 0): 1}), r"stuck cell \(0, 0\) is not"),
    (Faults(dram_stall_from=-1), "dram_stall_from must be a cycle"),
])
def test_bad_fault_maps(faults, match):
    tr, prog = _spec()
    with pytest.raises(ArasError, match=match):
        run(prog, tr, CFG, faults=faults)
