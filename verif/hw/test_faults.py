# amaranth: UnusedElaboratable=no
"""Faults on the RTL top level (docs/architecture.md §8.7) in Amaranth's simulator, against the golden
``sim_models.timing.run(..., faults=...)``: stuck cells (``Top(faults=...)``) that fail program-and-verify
in the middle of a tile, in its last row, at once (the bound reached by a healthy cell), on a reset path
and in blind writes, while a COMPUTE runs; a host that never acknowledges; a DRAM held for ever. For
each, ``verif/hw/system.py`` checks that ``error`` rises in exactly the golden error cycle F with the
predicted code, crossbar and row, that ``done`` rises in the predicted ``cycles``, every counter and
window, that the COMPUTEs that start are exactly the golden ones (none on the bad crossbar, none from
F on), and the crossbar contents (stuck cells included). A fault-free job on the same chip, after a
reset, runs normally."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from hw.crossbar import Crossbar
from hw.generate import to_sv
from hw.top import Top
from sim_models.scheduler import Options, schedule
from verif.golden.test_spec_example import example_trace, vector_host_example
from verif.hw.streams import run_with_reset
from verif.hw.system import Job, run_jobs
from verif.hw.test_top import _conv, _inputs, _linear

CFG = preset("tiny").replace(max_verify_pulses=6, watchdog_cycles=40)  # a pulse step is 2 cycles on tiny


def _fault(res) -> tuple:
    st = res["status"]
    return st["fault_code"], st["fault_xbar"], st["fault_row"], st["fault_cycle"], st["cycles"]


def _spec(cfg, mode="aras"):
    tr = example_trace()
    return tr, schedule(tr, cfg, mode, Options(reencode=False, placement=False))


def test_verify_failure_mid_tile_then_again():
    """§8.7's worked example: x0 cell (3, 0) stuck at 1 (target 3): row 3 of W0 fails, error (1, x0, 3) in
    20 + 3·8 + (1 + 1 + 6·2) = 58, the run ends there (W3's programming would start in 58). Run again
    (after a reset) over the partly written x0: rows 0-2 now hold their targets (skipped, 1 cycle each), so
    the error comes in 20 + 3 + 14 = 37, and the run ends when W2's transfer (26-46) has. (x6 (6, 5, 0) is
    stuck too; W3 never gets there.)"""
    tr, prog = _spec(CFG)
    res = run_jobs(CFG, [Job(tr, prog, _inputs(tr, 1), "spec, x0 row 3 stuck"),
                         Job(tr, prog, _inputs(tr, 1, 1), "spec again over the partly written x0")],
                   faults={(0, 3, 0): 1, (6, 5, 0): 0})
    assert _fault(res[0]) == (1, 0, 3, 58, 58) and _fault(res[1]) == (1, 0, 3, 37, 46)
    assert res[0]["starts"] == [] and res[0]["levels"][0, 3, 0] == 1


def test_verify_failure_while_a_compute_runs():
    """A linear layer in 6 spill/restore rounds; x2 cell (1, 0) stuck at 3, the level its first tile puts
    there: that tile passes, the rewrite W8 fails in row 1 (error in 551) while E1 (546-615) computes on
    other crossbars. E1 finishes (its counters and outputs complete), no later COMPUTE starts (E2 would
    read x2), the run ends at 615."""
    lin = _linear(4)
    prog = schedule(lin, CFG, "aras")
    res = run_jobs(CFG, [Job(lin, prog, _inputs(lin, 1, 12), "linear, rewrite of x2 fails")], faults={(2, 1, 0): 3})
    assert _fault(res[0]) == (1, 2, 1, 551, 615)
    assert [i for _, i in res[0]["starts"]] == [0, 1] and res[0]["starts"][1][0] == 546


def test_last_row_at_once_on_a_reset_path_and_blind():
    """M = 3 (the largest default pulse count). x4 cell (1, 7) stuck at 2 (target 3): W1's last row fails;
    its failing cell pulses 3·2 = 6 cycles, no longer than the row's healthy 0 -> 3 cells, so the driver gives
    up at once: error (1, x4, 1) in 26 + 8 + 8 = 42, and W0 (PE0) drains to 148. x0 cell (0, 0) stuck at 3:
    the spec writes 3 there (passes), the convolution writes 0 — 3 -> 0 goes via RESET, so the failing cell
    pulses after T_rst: 20 + (1 + 1 + 1 + 6) = 29. The baseline (blind writes) fails in W1's last row as
    well (T_set + T_rst + M·2 = 8 = the nominal blind row)."""
    cfg = CFG.replace(max_verify_pulses=3)
    tr, prog = _spec(cfg)
    base = schedule(tr, cfg, "baseline")
    assert {w.mode for w in base.writes} == {0}
    conv = _conv(3)
    jobs = [Job(tr, prog, _inputs(tr, 1), "spec, last row of W1"),
            Job(conv, schedule(conv, cfg, "aras"), _inputs(conv, 1, 1), "conv, 3 -> 0 via reset"),
            Job(tr, base, _inputs(tr, 1, 2), "spec baseline (blind)")]
    res = run_jobs(cfg, jobs, faults={(4, 1, 7): 2, (0, 0, 0): 3})
    assert _fault(res[0]) == (1, 4, 1, 42, 148)
    assert _fault(res[1]) == (1, 0, 0, 29, 35)  # W1's transfer (20-35) drains
    assert _fault(res[2])[:3] == (1, 4, 1)
    assert all(r["levels"][0, 0, 0] == 3 and r["levels"][4, 1, 7] == 2 for r in res)


def test_host_and_dram_watchdogs():
    """§10.8's program with the softmax host never acknowledging: error 2 in 57 + 40 = 97 (the HOST is
    abandoned, bank 2 stays on). The spec program with dram_stall held from 35: W2's transfer (26-46) holds
    its beat at 35, error 3 (W2's crossbar) in 75; W0 drains to 148. Fault-free runs before and after (the
    watchdog never fires on a host that answers; a reset frees the held DRAM)."""
    vtr, vprog, vcfg = vector_host_example()
    vtr.layers[0].attrs.setdefault("pads", [0, 0, 0, 0])  # (the functional model of the outputs wants them)
    cfg = vcfg.replace(watchdog_cycles=40)
    tr, prog = _spec(cfg)
    x = np.random.default_rng(3).integers(-128, 128, (2, 1, 7, 7)).astype(np.int8)
    jobs = [Job(vtr, vprog, x, "vector/host"),
            Job(vtr, vprog, x, "vector/host, the host never answers", host_hang=frozenset({4})),
            Job(tr, prog, _inputs(tr, 2), "spec, DRAM held from 35", dram_stall_from=35),
            Job(tr, prog, _inputs(tr, 2, 1), "spec after the reset")]
    res = run_jobs(cfg, jobs)
    assert _fault(res[0]) == (0, 0, 0, 0, 60) and _fault(res[3])[:4] == (0, 0, 0, 0)
    assert _fault(res[1]) == (2, 0, 0, 97, 97)
    assert _fault(res[2]) == (3, prog.writes[2].xbar, 0, 75, 148)


def test_first_error_wins_and_a_second_one_ends_the_drain():
    """x4 cell (1, 7) stuck at 2 and x0 cell (3, 0) stuck at 1: W1 (x4) fails first, error (1, x4, 1) in
    26 + 8 + 14 = 48; W0 (x0), started before, keeps programming until its own row 3 fails at 58 — that
    second failure is not recorded but frees its driver, and the run ends in 58."""
    tr, prog = _spec(CFG)
    res = run_jobs(CFG, [Job(tr, prog, _inputs(tr, 1), "spec, two failures")], faults={(0, 3, 0): 1, (4, 1, 7): 2})
    assert _fault(res[0]) == (1, 4, 1, 48, 58)


# ---------------------------------------------------------------- the crossbar macro's stuck cells
def test_stuck_cells_in_the_crossbar():
    """A stuck cell keeps its level (from power-up, through writes and resets); rows, MVMs and the write
    port's verify read-back ``fail`` see it: a masked column whose cell will not hold the written level."""
    cfg = preset("tiny")
    dut = Crossbar(cfg=cfg, stuck={(2, 3): 1, (2, 9): 0, (7, 3): 2})

    async def bench(ctx, rst):
        ctx.set(dut.rd.row, 2)
        assert [int(v) for v in ctx.get(dut.rd.levels)][:10] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        ctx.set(dut.wr.row, 2)
        ctx.set(dut.wr.levels, [3] * 16)
        ctx.set(dut.wr.mask, 0xFFFF)
        assert ctx.get(dut.wr.fail) == (1 << 3) | (1 << 9)  # en not looked at
        ctx.set(dut.wr.mask, 0xFFFF & ~(1 << 9))
        assert ctx.get(dut.wr.fail) == 1 << 3
        ctx.set(dut.wr.levels, [1] * 16)  # cell (2, 3) is stuck at what is written: verified
        assert ctx.get(dut.wr.fail) == 0
        ctx.set(dut.wr.levels, [3] * 16)
        ctx.set(dut.wr.row, 5)  # no stuck cell in row 5
        assert ctx.get(dut.wr.fail) == 0
        ctx.set(dut.wr.row, 2)
        ctx.set(dut.wr.mask, 0xFFFF)
        ctx.set(dut.wr.en, 1)
        await ctx.tick()
        ctx.set(dut.wr.en, 0)
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        assert [int(v) for v in ctx.get(dut.rd.levels)] == [3, 3, 3, 1] + [3] * 5 + [0] + [3] * 6
        ctx.set(dut.mvm.bits, (1 << 2) | (1 << 7))
        assert [int(v) for v in ctx.get(dut.mvm.col_sum)][:4] == [3, 3, 3, 1 + 2]

    run_with_reset(dut, bench)
    free = Crossbar(cfg=cfg)

    async def fault_free(ctx, rst):  # no stuck cell: the read-back never flags
        ctx.set(free.wr.levels, [3] * 16)
        ctx.set(free.wr.mask, 0xFFFF)
        for r in range(16):
            ctx.set(free.wr.row, r)
            assert ctx.get(free.wr.fail) == 0

    run_with_reset(free, fault_free)


def test_bad_fault_maps():
    cfg = preset("tiny")
    with pytest.raises(ArasError, match=r"stuck cell \(16, 0\) is not a \(row, column\)"):
        Crossbar(cfg=cfg, stuck={(16, 0): 1})
    with pytest.raises(ArasError, match=r"level 4 is not in \[0, 3\]"):
        Crossbar(cfg=cfg, stuck={(0, 0): 4})
    with pytest.raises(ArasError, match="only possible for the behavioral model"):
        Crossbar(cfg=cfg, blackbox=True, stuck={(0, 0): 1})
    with pytest.raises(ArasError, match=r"\(8, 0, 0\) is not a \(crossbar < 8"):
        Top(cfg=cfg, faults={(8, 0, 0): 1})
    with pytest.raises(ArasError, match="need the behavioural crossbars"):
        Top(cfg=cfg, faults={(0, 0, 0): 1}, blackbox_macros=True)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_generation_rejects_a_fault_map():
    """(The units of the rejected design are never used: their warnings are collected here.)"""
    micro = preset("tiny").replace(xbar_rows=8, xbar_cols=8, n_pe=1, apus_per_pe=1, xbars_per_apu=2, adc_bits=5,
                                   gbuf_banks=2, gbuf_bank_bytes=64, write_buffer_bytes=32)
    with pytest.raises(ArasError, match="is for simulation, it cannot be generated"):
        to_sv(Top(cfg=micro, program_words=16, dram_bytes=64, max_layers=1, faults={(0, 0, 0): 1}), "aras_top")
    gc.collect()
