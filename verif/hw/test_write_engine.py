# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/write_engine.py`` (docs/architecture.md §3.6, §8.3, §8.4, §10.2, §11) in a
PE-like harness (write engine + write buffer + the PE's crossbars): random tiles (both modes, both
families, packed and unpacked) over random old contents, checked against the golden ``write_tile``
for the final cell levels, the cycle of every row write, the tile's finish and every counter; the
§8.3 worked example; two drivers working concurrently (and starting in one cycle); random idle and
``done`` back-pressure (own cycle-accurate driver, and the shared ``verif/hw/streams.py`` helpers);
reset in the middle of a tile, then a correct write. Then the whole weight path (dram → write buffers
→ write engines → crossbars, under a §10.2 controller stand-in) against ``sim_models.timing``: every
WRITE's (A_start, A_fin, B_start, B_fin), final levels and counters. Verilog conversion."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.sim import Simulator

from aras.config import preset
from aras.program import Program, Write
from aras.tiling import Tile
from hw.crossbar import Crossbar
from hw.dram import Dram
from hw.write_buffer import WriteBuffer
from hw.write_engine import COUNTERS, WriteEngine
from sim_models import timing
from sim_models.tiling import tile_levels
from sim_models.write_engine import WriteTables, write_tile
from verif.hw.streams import stream_get, stream_put
from verif.hw.test_encoder import odd_tables, random_tile


def two_drivers():
    return dataclasses.replace(preset("tiny"), name="two-drivers", write_drivers_per_pe=2, write_buffer_bytes=256)


def odd_two_drivers():
    return dataclasses.replace(odd_tables(), name="odd-two", write_drivers_per_pe=2, write_buffer_bytes=192)


CONFIGS = {"tiny": lambda: preset("tiny"), "tiny-adc": lambda: preset("tiny-adc"), "odd": odd_tables,
           "two-drivers": two_drivers, "odd-two": odd_two_drivers}


class Harness:
    """Write engine + write buffer + the PE's crossbars (powered up with ``init``), under an explicit
    sync domain. ``peek`` reads the crossbars through their ``rd`` ports while the engine is idle."""

    def __init__(self, cfg, init: np.ndarray):
        self.cfg = cfg
        self.eng = WriteEngine(cfg=cfg)
        self.wb = WriteBuffer(cfg=cfg)
        X = self.eng.xbars
        self.xbars = [Crossbar(cfg=cfg, init=init[x]) for x in range(X)]
        self.peek_en = Signal()
        self.peek_row = Signal(range(cfg.xbar_rows))
        m = self.top = Module()
        m.domains.sync = self.cd = ClockDomain("sync")
        m.submodules.eng = self.eng
        m.submodules.wb = self.wb
        for d in range(self.eng.drivers):
            wiring.connect(m, self.eng.wb[d], self.wb.rd[d])
        for x, xb in enumerate(self.xbars):
            m.submodules[f"xbar{x}"] = xb
            wiring.connect(m, self.eng.xwr[x], xb.wr)
            m.d.comb += [xb.rd.row.eq(Mux(self.peek_en, self.peek_row, self.eng.xrd[x].row)),
                         self.eng.xrd[x].levels.eq(xb.rd.levels)]

    def run(self, bench):
        sim = Simulator(self.top)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()

    def peek(self, ctx) -> np.ndarray:
        assert not ctx.get(self.eng.busy)
        ctx.set(self.peek_en, 1)
        out = np.zeros((len(self.xbars), self.cfg.xbar_rows, self.cfg.xbar_cols), np.uint8)
        for r in range(self.cfg.xbar_rows):
            ctx.set(self.peek_row, r)
            for x, xb in enumerate(self.xbars):
                out[x, r] = [int(v) for v in ctx.get(xb.rd.levels)]
        ctx.set(self.peek_en, 0)
        return out


def tile_payload(x, slot, t: Tile, family, mode, flags) -> dict:
    """The ``tile`` stream payload of a WRITE (``x`` local to the PE)."""
    return {"xbar": x, "slot": slot, "rows": t.rows, "wcols": t.wcols, "family": int(family == "signmag"),
            "mode": mode, "pack_g": t.pack_g, "pack_k": t.pack_k, "pack_n": t.pack_n,
            "flags": int(sum(int(f) << j for j, f in enumerate(flags)))}


@dataclasses.dataclass
class Job:
    """One WRITE for the engine, with its golden outcome filled in when it is issued."""

    x: int
    tile: Tile
    family: str
    mode: int
    flags: np.ndarray
    w: np.ndarray
    gap: int = 0
    slot: int | None = None
    new: np.ndarray | None = None
    golden: object = None
    start: int | None = None
    driver: int | None = None
    rows_at: list = dataclasses.field(default_factory=list)
    done_at: int | None = None

    def payload(self):
        return tile_payload(self.x, self.slot, self.tile, self.family, self.mode, self.flags)


def random_jobs(rng, nrng, cfg, n, xbars):
    jobs = []
    for i in range(n):
        family = rng.choice(["offset", "signmag"])
        t = random_tile(rng, cfg, family, packed=rng.random() < 0.4)
        jobs.append(Job(x=rng.randrange(xbars), tile=t, family=family, mode=int(rng.random() < 0.7),
                        flags=nrng.integers(0, 2, t.wcols).astype(bool), w=nrng.integers(-128, 128, (t.rows, t.wcols)),
                        gap=rng.choice([0, 0, 0, 1, 2, 7])))
        if i % 5 == 3:  # rewrite the previous tile's crossbar with the same weights: many skipped rows
            p = jobs[-2]
            jobs[-1] = dataclasses.replace(p, mode=1, gap=0, slot=None, rows_at=[], start=None, driver=None,
                                          done_at=None)
    return jobs


async def drive(ctx, h: Harness, jobs, model: np.ndarray, tb: WriteTables, done_stall=0.0, rng=None,
                stop_after=None, max_cycles=50000):
    """Cycle-accurate controller stand-in and monitor. Offers ``jobs`` in order on the issue lanes: the
    next job ``gap`` cycles after the previous one was accepted, followed in the same cycle by the
    jobs after it with gap 0 (up to one per lane); a job is offered once it holds a slot (reserved at
    its first offer, image loaded by backdoor) and its crossbar is idle (WAW). Records the start,
    driver, row writes and done of every job and applies the golden write to ``model`` at its start.
    ``stop_after``: return at the start of that cycle."""
    eng = h.eng
    D = eng.drivers
    rng = rng or random.Random(0)
    slot_job = [None] * h.wb.slots
    x_busy = set()
    by_driver = [None] * D
    nxt, offer_at, finished = 0, jobs[0].gap if jobs else 0, 0
    for t in range(max_cycles):
        if stop_after is not None and t == stop_after:
            return t
        lanes = []
        for j in jobs[nxt:nxt + D] if t >= offer_at else []:
            if (lanes and j.gap) or j.x in x_busy or j.x in {o.x for o in lanes}:
                break
            if j.slot is None:
                free = [s for s, o in enumerate(slot_job) if o is None]
                if not free:
                    break
                j.slot = free[0]
                slot_job[j.slot] = j
                h.wb.backdoor_write(ctx, j.slot, 0, j.w.astype(np.int8).tobytes())
            lanes.append(j)
        for k in range(D):
            if k < len(lanes):
                ctx.set(eng.tile[k].payload, lanes[k].payload())
            ctx.set(eng.tile[k].valid, int(k < len(lanes)))
        readies = [int(not (done_stall and rng.random() < done_stall)) for _ in range(D)]
        for d, r in enumerate(readies):
            ctx.set(eng.done[d].ready, r)
        busy = ctx.get(eng.busy)
        idle = [d for d in range(D) if not (busy >> d) & 1]
        for k, j in enumerate(lanes):
            if not ctx.get(eng.tile[k].ready):
                assert k >= len(idle)
                break
            j.driver, j.start = idle[k], t
            by_driver[j.driver] = j
            x_busy.add(j.x)
            c = j.new.shape[1]
            j.golden = write_tile(model[j.x, :j.tile.rows, :c], j.new, j.mode, tb)
            model[j.x, :j.tile.rows, :c] = j.new
            nxt += 1
            if nxt < len(jobs):
                offer_at = t + 1 + jobs[nxt].gap
        assert ctx.get(eng.xact) == sum(1 << jb.x for jb in by_driver if jb is not None)
        for x, wr in enumerate(eng.xwr):
            if ctx.get(wr.en):
                owner = [jb for jb in by_driver if jb is not None and jb.x == x]
                assert len(owner) == 1
                owner[0].rows_at.append((t, ctx.get(wr.row)))
        for d, dn in enumerate(eng.done):
            if ctx.get(dn.valid) and readies[d]:
                j = by_driver[d]
                pay = ctx.get(dn.payload)
                assert (pay.xbar, pay.slot) == (j.x, j.slot)
                j.done_at = t
                by_driver[d] = None
                slot_job[j.slot] = None
                x_busy.discard(j.x)
                finished += 1
        await ctx.tick()
        if finished == len(jobs):
            return t + 1
    raise AssertionError("jobs did not finish")


def prepare(cfg, jobs):
    for j in jobs:
        j.new = tile_levels(j.w, j.tile, j.family, j.flags, cfg.cell_bits).astype(np.uint8)


def check_jobs(jobs, exact_timing: bool):
    for i, j in enumerate(jobs):
        g = j.golden
        ends = j.start + np.cumsum(g.row_cycles) - 1  # each row's write cycle
        got_rows = [r for _, r in j.rows_at]
        assert got_rows == list(range(j.tile.rows)), i
        if exact_timing:
            assert [c for c, _ in j.rows_at] == list(ends), (i, j.tile, j.mode)
            assert j.done_at == j.start + g.cycles - 1, i  # B_fin - 1
        else:
            assert [c for c, _ in j.rows_at][:-1] == list(ends[:-1]), i
            assert j.done_at == j.rows_at[-1][0] >= ends[-1], i


def check_counters(ctx, eng, jobs, L):
    gs = [j.golden for j in jobs]
    exp = {"rows_written": sum(g.rows_written for g in gs), "rows_skipped": sum(g.rows_skipped for g in gs),
           "cells_written_blind": sum(g.cells_written_blind for g in gs),
           "row_reads_before_write": sum(g.row_reads for g in gs),
           "cells_read_before_write": sum(g.cells_read for g in gs)}
    assert {n: ctx.get(getattr(eng, n)) for n in COUNTERS} == exp
    cc = sum((g.cells_changed for g in gs), np.zeros(L * L, np.int64))
    assert [int(v) for v in ctx.get(eng.cells_changed)] == list(cc)


# ---------------------------------------------------------------- construction


def test_bad_arguments():
    with pytest.raises(TypeError, match="cfg must be an aras.config.Config"):
        WriteEngine(cfg=object())


def test_parameters():
    eng = WriteEngine(cfg=two_drivers())
    assert (eng.drivers, eng.xbars) == (2, 4)
    assert len(eng.done) == len(eng.wb) == 2 and len(eng.xrd) == len(eng.xwr) == 4
    assert eng.costs.max_row_cycles == 8  # blind 0 -> 3 on tiny: 1 + 1 + 3·2


# ---------------------------------------------------------------- simulation


@pytest.mark.parametrize("pulses, diff_cycles, blind_cycles", [(1, 4, 8), (3, 8, 20)])
def test_worked_example_8_3(pulses, diff_cycles, blind_cycles):
    """§8.3 on tiny: a differential row, then the same weights blind; by hand (verif/golden/test_devices.py
    works the golden side): one pulse per level step 4 and 8 cycles, three pulses per step 8 and 20 cycles."""
    cfg = preset("tiny").replace(pulses_per_level=pulses)
    init = np.zeros((4, 16, 16), np.uint8)
    init[2, 0, :8] = [0, 1, 2, 3, 3, 0, 1, 2]
    h = Harness(cfg, init)
    tb = WriteTables.of(cfg)
    t = Tile(0, 0, 0, 0, 1, 2, 1, 1, 2)
    jobs = [Job(2, t, "offset", 1, np.zeros(2, bool), np.array([[-88, 87]])),
            Job(2, t, "offset", 0, np.zeros(2, bool), np.array([[-88, 87]]), gap=3)]
    prepare(cfg, jobs)
    assert list(jobs[0].new[0]) == [0, 2, 2, 0, 3, 1, 1, 3]

    async def bench(ctx):
        model = init.copy()
        await drive(ctx, h, jobs, model, tb)
        check_jobs(jobs, exact_timing=True)
        check_counters(ctx, h.eng, jobs, cfg.levels)
        assert jobs[0].start == 0 and jobs[0].rows_at == [(diff_cycles - 1, 0)]
        assert jobs[0].done_at == diff_cycles - 1
        assert jobs[1].done_at - jobs[1].start + 1 == blind_cycles
        if pulses == 1:
            assert jobs[1].start == 4  # offered in 0 + 1 + gap 3, the engine idle from cycle 4
        assert np.array_equal(h.peek(ctx), model)
        assert ctx.get(h.eng.rows_written) == 2 and ctx.get(h.eng.cells_read_before_write) == 8
        assert ctx.get(h.eng.cells_written_blind) == 8
        cc = [int(v) for v in ctx.get(h.eng.cells_changed)]  # level transitions: independent of the pulses
        assert {i: v for i, v in enumerate(cc) if v} == {6: 1, 12: 1, 1: 3, 11: 1, 2: 2, 3: 2}
        assert ctx.get(h.wb.write_buffer_bytes) == 2 + 2  # rows read (the images were backdoor-loaded)

    h.run(bench)


@pytest.mark.parametrize("name", CONFIGS)
def test_random_tiles_vs_golden(name):
    cfg = CONFIGS[name]()
    rng = random.Random(sum(map(ord, name)))
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    X = cfg.apus_per_pe * cfg.xbars_per_apu
    init = nrng.integers(0, cfg.levels, (X, cfg.xbar_rows, cfg.xbar_cols)).astype(np.uint8)
    h = Harness(cfg, init)
    tb = WriteTables.of(cfg)
    jobs = random_jobs(rng, nrng, cfg, 40, X)
    prepare(cfg, jobs)

    async def bench(ctx):
        model = init.copy()
        await drive(ctx, h, jobs, model, tb)
        check_jobs(jobs, exact_timing=True)
        check_counters(ctx, h.eng, jobs, cfg.levels)
        assert ctx.get(h.wb.write_buffer_bytes) == sum(j.tile.rows * j.tile.wcols for j in jobs)
        assert np.array_equal(h.peek(ctx), model)
        assert {j.mode for j in jobs} == {0, 1} and {j.family for j in jobs} == {"offset", "signmag"}
        assert any(j.tile.pack_g > 1 for j in jobs) and any(j.golden.rows_skipped for j in jobs)
        if h.eng.drivers > 1:  # tiles in flight at once (also started in one cycle), on every driver
            assert any(a.start < b.start <= a.done_at for a in jobs for b in jobs if a is not b)
            assert any(a.start == b.start for a in jobs for b in jobs if a is not b)
            assert {j.driver for j in jobs} == set(range(h.eng.drivers))

    h.run(bench)


@pytest.mark.parametrize("name", ["tiny", "odd-two"])
def test_idle_and_done_backpressure(name):
    cfg = CONFIGS[name]()
    rng = random.Random(21)
    nrng = np.random.default_rng(21)
    X = cfg.apus_per_pe * cfg.xbars_per_apu
    init = nrng.integers(0, cfg.levels, (X, cfg.xbar_rows, cfg.xbar_cols)).astype(np.uint8)
    h = Harness(cfg, init)
    tb = WriteTables.of(cfg)
    jobs = random_jobs(rng, nrng, cfg, 16, X)
    prepare(cfg, jobs)

    async def bench(ctx):
        model = init.copy()
        await drive(ctx, h, jobs, model, tb, done_stall=0.5, rng=random.Random(5))
        check_jobs(jobs, exact_timing=False)
        assert any(j.done_at > j.start + j.golden.cycles - 1 for j in jobs)  # stalls did happen
        check_counters(ctx, h.eng, jobs, cfg.levels)
        assert np.array_equal(h.peek(ctx), model)

    h.run(bench)


def test_single_cycle_tiles_back_to_back():
    """One-row differential tiles with nothing to change take T_rd = 1 cycle: a tile per cycle, done in
    the cycle the tile is accepted."""
    cfg = preset("tiny")
    init = np.zeros((4, 16, 16), np.uint8)
    h = Harness(cfg, init)
    tb = WriteTables.of(cfg)
    t = Tile(0, 0, 0, 0, 1, 4, 1, 1, 4)
    w = np.array([[-128, -128, -128, -128]])  # offset code 0: every level 0 = the crossbar's contents
    jobs = [Job(x, t, "offset", 1, np.zeros(4, bool), w) for x in (0, 1, 2, 3, 0, 1)]
    prepare(cfg, jobs)

    async def bench(ctx):
        model = init.copy()
        await drive(ctx, h, jobs, model, tb)
        assert [j.start for j in jobs] == [0, 1, 2, 3, 4, 5] and [j.done_at for j in jobs] == [0, 1, 2, 3, 4, 5]
        assert ctx.get(h.eng.rows_skipped) == 6 and ctx.get(h.eng.rows_written) == 0

    h.run(bench)


def test_shared_stream_helpers():
    """tiny (one driver): tiles sent with ``stream_put`` (random idle), ``done`` taken with ``stream_get``
    (random back-pressure) in a second testbench; contents and counters stay exact."""
    cfg = preset("tiny")
    rng = random.Random(77)
    nrng = np.random.default_rng(77)
    init = nrng.integers(0, cfg.levels, (4, cfg.xbar_rows, cfg.xbar_cols)).astype(np.uint8)
    h = Harness(cfg, init)
    tb = WriteTables.of(cfg)
    jobs = random_jobs(rng, nrng, cfg, 12, 4)
    prepare(cfg, jobs)
    model = init.copy()
    got = []

    async def producer(ctx):
        for k, j in enumerate(jobs):
            # one driver: tile k is sent after tile k-1 was taken, so tile k-2 (same slot) has finished
            j.slot = k % h.wb.slots
            h.wb.backdoor_write(ctx, j.slot, 0, j.w.astype(np.int8).tobytes())
            c = j.new.shape[1]
            j.golden = write_tile(model[j.x, :j.tile.rows, :c], j.new, j.mode, tb)
            model[j.x, :j.tile.rows, :c] = j.new
            await stream_put(ctx, h.eng.tile[0], j.payload(), idle=0.4, rng=random.Random(k))

    async def consumer(ctx):
        for k in range(len(jobs)):
            got.append(await stream_get(ctx, h.eng.done[0], stall=0.5, rng=random.Random(100 + k)))
        assert [(p.xbar, p.slot) for p in got] == [(j.x, j.slot) for j in jobs]
        check_counters(ctx, h.eng, jobs, cfg.levels)
        assert np.array_equal(h.peek(ctx), model)

    sim = Simulator(h.top)
    sim.add_clock(1e-8)
    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    sim.run()


@pytest.mark.parametrize("name, when", [("tiny", "mid-row"), ("odd-two", "mid-row"), ("tiny", "write-cycle"),
                                        ("odd-two", "write-cycle")])
def test_reset_mid_tile_then_correct_write(name, when):
    """Reset during a tile: rows written before the reset cycle keep their new levels, the row in
    progress is not written, even when the reset cycle is its write cycle; then the re-issued tile
    (differential) writes correctly over the partly written crossbar."""
    cfg = CONFIGS[name]()
    nrng = np.random.default_rng(8)
    X = cfg.apus_per_pe * cfg.xbars_per_apu
    init = nrng.integers(0, cfg.levels, (X, cfg.xbar_rows, cfg.xbar_cols)).astype(np.uint8)
    h = Harness(cfg, init)
    tb = WriteTables.of(cfg)
    t = Tile(0, 0, 0, 0, 16, 2, 1, 16, 2)
    w = nrng.integers(-128, 128, (16, 2))
    job = Job(1, t, "signmag", 0, np.array([True, False]), w)  # blind: every row is written
    prepare(cfg, [job])

    ends = np.cumsum(write_tile(init[1, :16, :16], job.new, 0, tb).row_cycles) - 1  # row write cycles from 0
    stop = int(ends[5]) if when == "write-cycle" else int(ends[5]) + 1
    assert stop not in ends or when == "write-cycle"

    async def bench(ctx):
        model = init.copy()
        await drive(ctx, h, [job], model.copy(), tb, stop_after=stop)
        # reset in cycle `stop`: rows written before it keep their new levels
        ctx.set(h.cd.rst, 1)
        await ctx.tick()
        ctx.set(h.cd.rst, 0)
        for lane in h.eng.tile:
            ctx.set(lane.valid, 0)
        assert not ctx.get(h.eng.busy) and all(ctx.get(getattr(h.eng, n)) == 0 for n in COUNTERS)
        done_rows = [r for c, r in job.rows_at if c < stop]
        assert len(done_rows) == (5 if when == "write-cycle" else 6) and job.done_at is None
        expect = model.copy()
        expect[1, done_rows, :16] = job.new[done_rows]
        assert np.array_equal(h.peek(ctx), expect)
        # re-issue it, differential this time, over the partly written crossbar
        again = dataclasses.replace(job, mode=1, slot=None, rows_at=[], start=None, driver=None, done_at=None)
        model = expect.copy()
        await drive(ctx, h, [again], model, tb)
        check_jobs([again], exact_timing=True)
        assert again.golden.rows_skipped >= len(done_rows)
        check_counters(ctx, h.eng, [again], cfg.levels)
        assert np.array_equal(h.peek(ctx), model)
        assert np.array_equal(model[1, :16, :16], job.new)

    h.run(bench)


# ---------------------------------------------------------------- the whole weight path vs sim_models.timing


class WritePath:
    """dram → per-PE write buffer → write engine → crossbars, for every PE of ``cfg``."""

    def __init__(self, cfg, image: bytes, init: np.ndarray):
        self.cfg = cfg
        X = cfg.apus_per_pe * cfg.xbars_per_apu
        self.peek_en = Signal()
        self.peek_row = Signal(range(cfg.xbar_rows))
        m = self.top = Module()
        m.domains.sync = ClockDomain("sync")
        m.submodules.dram = self.dram = Dram(cfg=cfg, size=max(1, len(image)), init=image)
        self.pes = []
        for p in range(cfg.n_pe):
            wb, eng = WriteBuffer(cfg=cfg), WriteEngine(cfg=cfg)
            m.submodules[f"wb{p}"], m.submodules[f"eng{p}"] = wb, eng
            wiring.connect(m, self.dram.fill[p], wb.fill)
            for d in range(eng.drivers):
                wiring.connect(m, eng.wb[d], wb.rd[d])
            xbars = []
            for x in range(X):
                xb = Crossbar(cfg=cfg, init=init[p * X + x])
                m.submodules[f"xbar{p}_{x}"] = xb
                wiring.connect(m, eng.xwr[x], xb.wr)
                m.d.comb += [xb.rd.row.eq(Mux(self.peek_en, self.peek_row, eng.xrd[x].row)),
                             eng.xrd[x].levels.eq(xb.rd.levels)]
                xbars.append(xb)
            self.pes.append((wb, eng, xbars))


async def control(ctx, wp: WritePath, writes, max_cycles=100000):
    """The §10.2 write-path rules as an event-driven controller stand-in (no execute stream, so no WAR):
    DRAM requests in program order once a slot of the PE is free; per PE, tiles in program order on the
    issue lanes once their transfer finished and the previous WRITE to the crossbar finished (WAW).
    Decisions use only events of earlier cycles, as registered controller logic would. Returns
    (A_start, A_fin, B_start, B_fin) per WRITE."""
    cfg = wp.cfg
    X, D, slots = cfg.apus_per_pe * cfg.xbars_per_apu, cfg.write_drivers_per_pe, cfg.write_buffer_slots
    n = len(writes)
    times = [[None] * 4 for _ in range(n)]
    slot_of = [None] * n
    used_slots = [set() for _ in range(cfg.n_pe)]
    pe_queue = [[i for i, w in enumerate(writes) if w.xbar // X == p] for p in range(cfg.n_pe)]
    arrived, finished = set(), set()
    dnext = 0
    for t in range(max_cycles):
        # DRAM stage
        ctx.set(wp.dram.done.ready, 1)
        offer = None
        if dnext < n:
            w = writes[dnext]
            p = w.xbar // X
            free = [s for s in range(slots) if s not in used_slots[p]]
            if free:
                offer = (dnext, p, free[0])
                ctx.set(wp.dram.req.payload, {"addr": w.dram_addr, "bytes": w.tile.rows * w.tile.wcols, "pe": p,
                                              "slot": free[0]})
        ctx.set(wp.dram.req.valid, int(offer is not None))
        if offer and ctx.get(wp.dram.req.ready):
            i, p, s = offer
            times[i][0], slot_of[i] = t, s
            used_slots[p].add(s)
            dnext += 1
        # programming stage, per PE in program order
        starts = []
        for p, (_wb, eng, _xb) in enumerate(wp.pes):
            lanes = []
            for i in pe_queue[p][:D]:
                x = writes[i].xbar
                earlier = [k for k in range(i) if writes[k].xbar == x]
                if i not in arrived or (earlier and earlier[-1] not in finished):
                    break
                lanes.append(i)
            for k in range(D):
                if k < len(lanes):
                    w = writes[lanes[k]]
                    ctx.set(eng.tile[k].payload,
                            tile_payload(w.xbar % X, slot_of[lanes[k]], w.tile, w.family, w.mode, w.flags))
                ctx.set(eng.tile[k].valid, int(k < len(lanes)))
                ctx.set(eng.done[k].ready, 1)
            for k, i in enumerate(lanes):
                if ctx.get(eng.tile[k].ready):
                    starts.append((p, i))
        for p, i in starts:
            times[i][2] = t
            pe_queue[p].remove(i)
        # completions seen at this edge
        if ctx.get(wp.dram.done.valid):
            i = next(k for k in range(n) if times[k][0] is not None and times[k][1] is None)
            times[i][1] = t + 1
            arrived.add(i)
        for p, (_wb, eng, _xb) in enumerate(wp.pes):
            for dn in eng.done:
                if ctx.get(dn.valid):
                    pay = ctx.get(dn.payload)
                    i = next(k for k in range(n) if times[k][2] is not None and times[k][3] is None
                             and writes[k].xbar == p * X + pay.xbar)
                    assert slot_of[i] == pay.slot
                    times[i][3] = t + 1
                    finished.add(i)
                    used_slots[p].discard(pay.slot)
        await ctx.tick()
        if len(finished) == n:
            return [tuple(tm) for tm in times]
    raise AssertionError("the write path did not finish")


def random_program(rng, nrng, cfg, n):
    """``n`` random WRITEs (both families and modes, packed tiles, repeated crossbars) and the DRAM image."""
    writes, image = [], b""
    for i in range(n):
        family = rng.choice(["offset", "signmag"])
        t = random_tile(rng, cfg, family, packed=rng.random() < 0.4)
        x = rng.randrange(cfg.n_xbars) if i % 4 else rng.randrange(2)  # some crossbars get rewritten often
        w = nrng.integers(-128, 128, (t.rows, t.wcols)).astype(np.int8)
        if i % 5 == 4:  # the previous WRITE again, differential: its rows are all skipped
            writes.append(dataclasses.replace(writes[-1], mode=1))
            continue
        writes.append(Write(t, x, len(image), family, int(rng.random() < 0.7), nrng.integers(0, 2, t.wcols)
                            .astype(bool), w))
        image += w.tobytes()
    return writes, image


def lat0_two():
    return dataclasses.replace(odd_two_drivers(), name="lat0-two", dram_latency_cycles=0, dram_bytes_per_cycle=3)


@pytest.mark.parametrize("name", ["tiny", "two-drivers", "lat0-two"])
def test_write_path_matches_timing_model(name):
    """Dram + write buffers + write engines + crossbars under §10.2 control give exactly the golden
    model's (A_start, A_fin, B_start, B_fin) per WRITE, its final cell levels and its counters."""
    cfg = lat0_two() if name == "lat0-two" else CONFIGS[name]()
    rng = random.Random(31)
    nrng = np.random.default_rng(31)
    writes, image = random_program(rng, nrng, cfg, 30)
    init = nrng.integers(0, cfg.levels, (cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols)).astype(np.uint8)
    gold = timing.run(Program("test", 1, writes, {}), None, cfg, initial=init)
    wp = WritePath(cfg, image, init)
    X = cfg.apus_per_pe * cfg.xbars_per_apu

    async def bench(ctx):
        got = await control(ctx, wp, writes)
        assert got == gold.write_times
        assert gold.counters["rows_skipped"] and gold.counters["cells_written_blind"]
        if cfg.write_drivers_per_pe > 1:
            assert any(a[2] == b[2] for a, b in zip(got, got[1:], strict=False))  # two starts in one cycle
        assert ctx.get(wp.dram.dram_bytes) == gold.counters["dram_bytes"]
        assert sum(ctx.get(wb.write_buffer_bytes) for wb, _e, _x in wp.pes) == gold.counters["write_buffer_bytes"]
        for name_ in COUNTERS:
            assert sum(ctx.get(getattr(eng, name_)) for _w, eng, _x in wp.pes) == gold.counters[name_], name_
        cc = sum(np.array([int(v) for v in ctx.get(eng.cells_changed)]) for _w, eng, _x in wp.pes)
        assert np.array_equal(cc, gold.cells_changed.ravel())
        ctx.set(wp.peek_en, 1)
        for r in range(cfg.xbar_rows):
            ctx.set(wp.peek_row, r)
            for p, (_wb, _eng, xbars) in enumerate(wp.pes):
                for x, xb in enumerate(xbars):
                    assert [int(v) for v in ctx.get(xb.rd.levels)] == list(gold.final_levels[p * X + x, r])

    sim = Simulator(wp.top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_verilog_conversion():
    text = verilog.convert(WriteEngine(cfg=two_drivers()), name="write_engine", emit_src=False)
    assert "module write_engine" in text and "cells_changed" in text
