# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/controller.py`` (docs/architecture.md §3.12, §7.3, §9.6, §10, §11).

The controller runs real programs from ``sim_models.scheduler`` with the real ``hw.dram`` channel and
RTL stand-ins for the units whose durations are data dependent: per-PE write engines that hold a
driver for the golden ``B_fin − B_start`` of each WRITE (in per-PE program order, §8.4) and execute
units that finish after the golden ``E_fin − E_start`` (HOST: the host acknowledges at once). So the
sequencers, interlocks, slots, drivers, WAR/WAW/RAW, bank mask and layer windows are checked cycle
by cycle against ``sim_models.timing.run``: every ``(A_start, A_fin, B_start, B_fin)``, every
``(E_start, E_fin)``, ``cycles``, the layer windows, ``gbuf_active_bank_cycles`` and ``dram_bytes``.
Programs: the §10.6 worked example (aras and baseline), random single layers, a mixed CNN with vector
and host layers, LeNet-5 (aras and baseline), two drivers per PE with two start lanes, a
steady-state program with resident tiles, and a reset in the middle of a run.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Fragment, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.sim import Simulator

from aras import isa
from aras.config import preset
from aras.errors import ArasError
from aras.models import ModelSource
from aras.program import Compute, Host, Vector
from aras.quantize import quantize
from aras.trace import Trace
from hw.controller import Controller
from hw.dram import Dram
from hw.tree import tree_sum
from sim_models import timing
from sim_models.scheduler import Options, schedule
from verif.golden.smallnets import mixed_cnn
from verif.golden.test_spec_example import example_trace
from verif.golden.tracegen import weight_layer_trace

TINY = preset("tiny")
LENET = "aras/fixtures/lenet5"


def _rom(values, name):
    vals = [int(v) for v in values] or [0]
    return memory.Memory(shape=32, depth=len(vals), init=vals)


class Bench(wiring.Component):
    """Controller + Dram + golden-duration write engines and execute units + a bank-cycle counter."""

    def __init__(self, cfg, image: isa.Image, prog, run: timing.Run, lanes: int = 1):
        self.cfg = cfg
        self.ctrl = Controller(cfg=cfg, debug=True, start_lanes=lanes,
                               program_words=max(64, len(image.words) + 4))
        self.dram = Dram(cfg=cfg, size=max(1, len(image.dram)), init=image.dram)
        XP = cfg.apus_per_pe * cfg.xbars_per_apu
        self.wdur = [[] for _ in range(cfg.n_pe)]
        for w, (_, _, bs, bf) in zip(prog.writes, run.write_times, strict=True):
            self.wdur[w.xbar // XP].append(bf - bs)
        self.edur = [f - s for s, f in run.exec_times]
        self.banks = Signal(64)
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd = ClockDomain("sync")
        cfg, c = self.cfg, self.ctrl
        m.submodules.ctrl, m.submodules.dram = c, self.dram
        wiring.connect(m, c.dram_req, self.dram.req)
        wiring.connect(m, self.dram.done, c.dram_done)
        for f in self.dram.fill:
            m.d.comb += f.ready.eq(1)
        D, lanes = cfg.write_drivers_per_pe, c.start_lanes
        for p in range(cfg.n_pe):
            rom = _rom(self.wdur[p], f"wdur{p}")
            m.submodules[f"wdur{p}"] = rom
            count = Signal(24, name=f"wcount{p}")
            busy = [Signal(name=f"fake_busy{p}_{d}") for d in range(D)]
            rem = [Signal(32, name=f"fake_rem{p}_{d}") for d in range(D)]
            xb = [Signal(range(cfg.apus_per_pe * cfg.xbars_per_apu), name=f"fake_x{p}_{d}") for d in range(D)]
            sl = [Signal(range(cfg.write_buffer_slots), name=f"fake_s{p}_{d}") for d in range(D)]
            ports = [rom.read_port(domain="comb") for _ in range(lanes)]
            idle = [~b for b in busy]
            taken = [0] * D
            for j in range(lanes):
                lane = c.wr_tile[p][j]
                # lane j -> the j-th lowest idle driver
                cand = [idle[d] & ~taken[d] for d in range(D)]
                m.d.comb += lane.ready.eq(tree_sum(cand) > 0)
                m.d.comb += ports[j].addr.eq(count + j)
                first = 1
                new_taken = list(taken)
                for d in range(D):
                    pick = Signal(name=f"pick{p}_{j}_{d}")
                    m.d.comb += pick.eq(lane.valid & cand[d] & first)
                    first = first & ~cand[d]
                    dur = ports[j].data
                    with m.If(pick):
                        m.d.sync += [busy[d].eq(dur > 1), rem[d].eq(dur - 1), xb[d].eq(lane.payload.xbar),
                                     sl[d].eq(lane.payload.slot)]
                    new_taken[d] = taken[d] | pick
                    # a one-cycle tile finishes in its start cycle
                    dn = c.wr_done[p][d]
                    with m.If(pick & (dur == 1)):
                        m.d.comb += [dn.valid.eq(1), dn.payload.xbar.eq(lane.payload.xbar),
                                     dn.payload.slot.eq(lane.payload.slot)]
                taken = new_taken
            m.d.sync += count.eq(count + tree_sum([c.wr_tile[p][j].valid & c.wr_tile[p][j].ready
                                                   for j in range(lanes)]))
            for d in range(D):
                dn = c.wr_done[p][d]
                with m.If(busy[d]):
                    m.d.sync += rem[d].eq(rem[d] - 1)
                    with m.If(rem[d] == 1):
                        m.d.comb += [dn.valid.eq(1), dn.payload.xbar.eq(xb[d]), dn.payload.slot.eq(sl[d])]
                        m.d.sync += busy[d].eq(0)
        # execute units
        rom = _rom(self.edur, "edur")
        m.submodules.edur = rom
        rp = rom.read_port(domain="comb")
        ecount = Signal(24)
        ebusy = Signal()
        erem = Signal(32)
        m.d.comb += rp.addr.eq(ecount)
        with m.If(c.exec_start):
            m.d.sync += [ecount.eq(ecount + 1), ebusy.eq(rp.data > 1), erem.eq(rp.data - 1)]
        fin = Signal()
        m.d.comb += fin.eq((c.exec_start & (rp.data == 1)) | (ebusy & (erem == 1)))
        with m.If(ebusy & ~c.exec_start):
            m.d.sync += erem.eq(erem - 1)
            with m.If(erem == 1):
                m.d.sync += ebusy.eq(0)
        m.d.comb += [c.compute_done.eq(fin), c.vector_done.eq(fin), c.vec_op.ready.eq(~ebusy),
                     c.host_ack.eq(c.host_req)]
        m.d.sync += self.banks.eq(self.banks + tree_sum(list(c.bank_on)))
        return m


def simulate(cfg, prog, trace, initial=None, lanes=1, reset_at=None):
    """Run ``prog`` on the bench; return (golden run, rtl write_times, rtl exec_times, rtl results dict)."""
    gold = timing.run(prog, trace, cfg, initial)
    image = isa.encode(prog, trace, cfg)
    b = Bench(cfg, image, prog, gold, lanes)
    out = {}

    async def bench(ctx):
        b.ctrl.backdoor_load(ctx, image.words)
        await ctx.tick()

        async def start():
            ctx.set(b.ctrl.start, 1)
            await ctx.tick()
            ctx.set(b.ctrl.start, 0)

        if reset_at is not None:
            await start()
            await ctx.tick().repeat(reset_at)
            ctx.set(b.cd.rst, 1)
            for _ in range(4):  # (tick().repeat() stops at a reset)
                await ctx.tick()
            ctx.set(b.cd.rst, 0)
            await ctx.tick()
        await start()
        await ctx.tick().repeat(gold.cycles)  # now in cycle `cycles`
        out["done"] = ctx.get(b.ctrl.done)
        out["cycles"] = ctx.get(b.ctrl.cycle)
        await ctx.tick()
        out["banks"] = ctx.get(b.banks)
        out["dram_bytes"] = ctx.get(b.dram.dram_bytes)
        out["times"] = b.ctrl.trace_times(ctx, len(prog.writes), len(prog.execs))
        regs = []
        for i in range(4 * len(trace.layers)):
            ctx.set(b.ctrl.layer_rd_addr, i)
            regs.append(ctx.get(b.ctrl.layer_rd_data))
        out["layer_regs"] = regs
        out["error"] = ctx.get(b.ctrl.error)

    sim = Simulator(b)
    sim.add_clock(1e-8, domain=b.cd)
    sim.add_testbench(bench)
    sim.run()
    return gold, out


def check(cfg, prog, trace, **kw):
    gold, out = simulate(cfg, prog, trace, **kw)
    w, e = out["times"]
    for i, (got, want) in enumerate(zip(w, gold.write_times, strict=True)):
        assert got == want, f"WRITE #{i}: RTL (A_start, A_fin, B_start, B_fin) {got} != model {want}"
    for i, (got, want) in enumerate(zip(e, gold.exec_times, strict=True)):
        assert got == want, f"execute #{i}: RTL (E_start, E_fin) {got} != model {want}"
    assert out["done"] == 1 and out["cycles"] == gold.cycles
    assert out["error"] == 0
    assert out["banks"] == gold.counters["gbuf_active_bank_cycles"]
    assert out["dram_bytes"] == gold.counters["dram_bytes"]
    ones = (1 << 64) - 1
    for li in range(len(trace.layers)):
        lt = gold.layers.get(li)
        want = [ones] * 4 if lt is None else [ones if v is None else v for v in (lt.start, lt.end, lt.wstart,
                                                                                   lt.wend)]
        assert out["layer_regs"][4 * li:4 * li + 4] == want, f"layer {li} windows"
    return gold


# ------------------------------------------------------------------------------------------------ tests
def test_bad_arguments():
    with pytest.raises(TypeError, match="cfg"):
        Controller(cfg="tiny")
    with pytest.raises(ValueError, match="program_words"):
        Controller(cfg=TINY, program_words=2)
    with pytest.raises(ValueError, match="start_lanes"):
        Controller(cfg=TINY, start_lanes=2)  # tiny has one driver per PE
    c = Controller(cfg=TINY, program_words=100, max_layers=5)
    assert (c.cfg, c.program_words, c.max_layers, c.start_lanes) == (TINY, 100, 5, 1)
    Fragment.get(c, None)  # elaborated, so its memories are used


def test_spec_example_timing():
    tr = example_trace()
    prog = schedule(tr, TINY, "aras", Options(reencode=False, placement=False))
    gold = check(TINY, prog, tr)
    assert gold.cycles == 318  # §10.6


def test_spec_example_baseline():
    tr = example_trace()
    check(TINY, schedule(tr, TINY, "baseline"), tr)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_layers(seed):
    rng = np.random.default_rng(seed)
    if seed % 2:
        w = rng.integers(-127, 128, (int(rng.integers(3, 9)), int(rng.integers(10, 40))))
        tr = weight_layer_trace(w, in_shape=(int(rng.integers(1, 4)), w.shape[1]))
    else:
        cin, cout, k = int(rng.integers(1, 4)), int(rng.integers(2, 9)), 3
        w = rng.integers(-127, 128, (cout, cin, k, k))
        tr = weight_layer_trace(w, in_shape=(cin, 5, 5), pads=(1, 1, 1, 1))
    check(TINY, schedule(tr, TINY, "aras"), tr)
    check(TINY, schedule(tr, TINY, "baseline"), tr)


def _mixed():
    g = mixed_cnn()
    x = np.random.default_rng(1).normal(size=(32,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4]))


def test_mixed_cnn_vector_and_host_layers():
    tr = _mixed()
    prog = schedule(tr, TINY, "aras")
    assert any(isinstance(i, Vector) for i in prog.instrs) and any(isinstance(i, Host) for i in prog.instrs)
    check(TINY, prog, tr)


def test_two_drivers_two_lanes():
    cfg = dataclasses.replace(TINY, name="two-drivers", write_drivers_per_pe=2, write_buffer_bytes=256)
    tr = _mixed()
    prog = schedule(tr, cfg, "aras")
    check(cfg, prog, tr, lanes=2)


def test_host_handoff_cycles():
    cfg = dataclasses.replace(TINY, name="handoff", host_handoff_cycles=3)
    tr = _mixed()
    check(cfg, schedule(tr, cfg, "aras"), tr)


def test_reset_in_the_middle_of_a_run():
    tr = example_trace()
    prog = schedule(tr, TINY, "aras", Options(reencode=False, placement=False))
    check(TINY, prog, tr, reset_at=150)


def test_steady_state_resident_tiles():
    tr = example_trace()
    cold = schedule(tr, TINY, "aras")
    cold_run = timing.run(cold, tr, TINY)
    holders = {}
    for w in cold.writes:
        holders[w.xbar] = w
    steady = schedule(tr, TINY, "aras", initial=cold_run.final_levels, initial_writes=holders)
    if not any(te.need_gen == 0 for ins in steady.instrs if isinstance(ins, Compute) for te in ins.tiles):
        pytest.skip("the scheduler kept no tile resident")
    image = isa.encode(steady, tr, TINY)
    assert image.tables.header["n_initial"] == TINY.n_xbars
    check(TINY, steady, tr, initial=cold_run.final_levels)


@pytest.mark.parametrize("mode", ["aras", pytest.param("baseline", marks=pytest.mark.slow)])
def test_lenet5(mode):
    tr = Trace.load(LENET)
    check(TINY, schedule(tr, TINY, mode), tr)


def test_illegal_opcode_sets_error():
    tr = example_trace()
    prog = schedule(tr, TINY, "aras", Options(reencode=False, placement=False))
    gold = timing.run(prog, tr, TINY)
    image = isa.encode(prog, tr, TINY)
    t = isa.decode(image.program)
    t.execs[1] = {"op": 0, "layer": 0}  # E1 becomes illegal: the stream stops there
    image.program = isa.pack(t)
    b = Bench(TINY, image, prog, gold)
    got = {}

    async def bench(ctx):
        b.ctrl.backdoor_load(ctx, image.words)
        ctx.set(b.ctrl.start, 1)
        await ctx.tick()
        ctx.set(b.ctrl.start, 0)
        await ctx.tick().repeat(gold.exec_times[0][1] + 5)
        got["error"], got["done"] = ctx.get(b.ctrl.error), ctx.get(b.ctrl.done)
        got["retired"] = ctx.get(b.ctrl.exec_retired)

    sim = Simulator(b)
    sim.add_clock(1e-8, domain=b.cd)
    sim.add_testbench(bench)
    sim.run()
    assert got == {"error": 1, "done": 0, "retired": 1}


def test_rejects_unfit_program():
    tr = example_trace()
    prog = schedule(tr, TINY, "aras")
    prog.batch = 2
    with pytest.raises(ArasError, match="batch"):
        isa.encode(prog, tr, TINY)


def test_converts_to_verilog():
    text = verilog.convert(Controller(cfg=TINY, program_words=64, max_layers=4), name="controller",
                           emit_src=False)
    assert "module controller" in text
