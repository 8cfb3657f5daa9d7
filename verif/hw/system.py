"""Whole-program harness for the RTL top level in Amaranth's simulator: runs scheduler programs on one
``Top`` back to back (reset between them) and checks every WRITE/execute window, ``cycles``, layer
windows, every status-block counter, every output and the final crossbar contents against the golden
models. Used by ``verif/hw/test_top.py`` and ``scripts/benchmark_rtl.py``.

Faults (docs/architecture.md §8.7, ``verif/hw/test_faults.py``): ``System(..., faults=...)`` builds the chip
with stuck cells (golden ``sim_models.write_engine.Faults.stuck``); a job's ``host_hang`` layers are never
acknowledged and ``dram_stall_from`` holds ``dram_stall`` from that cycle on. A run that ends with an
error is checked for the cycle ``error`` rises (F) and ``done`` rises (``cycles``), the fault registers,
every counter, the layer windows, the windows of every activity that started before F, the COMPUTEs
that started (monitored) and the final crossbar contents."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from aras import isa
from aras.trace import Trace
from hw.top import COUNTERS, FAULTS, Top
from sim_models import functional, host, timing
from sim_models.functional import plan_from_program
from sim_models.write_engine import INF, Faults
from verif.hw.streams import stream_get, stream_put


@dataclasses.dataclass
class Job:
    trace: Trace
    prog: object
    inputs: np.ndarray
    label: str
    streams: bool = False  # load/unload through the top's streams instead of backdoors
    reset_at: int | None = None  # reset this many cycles into the run, then run the program again
    bad_tag: bool = False  # corrupt a tile entry's tag in the image: the run must flag ``error``
    host_hang: frozenset = frozenset()  # layers whose HOST instruction the host never acknowledges (§8.7)
    dram_stall_from: int | None = None  # dram_stall high from this cycle of the run on (§8.7)


class System:
    """One ``Top`` running a list of jobs back to back (reset between jobs)."""

    def __init__(self, cfg, jobs: list[Job], faults: dict | None = None):
        self.cfg, self.jobs = cfg, jobs
        self.faults = dict(faults or {})  # stuck cells of the chip: (crossbar, row, column) -> level
        self.monitor = bool(self.faults) or any(j.host_hang or j.dram_stall_from is not None for j in jobs)
        self.images = [isa.encode(j.prog, j.trace, cfg) for j in jobs]
        for j, im in zip(jobs, self.images, strict=True):
            if j.bad_tag:
                t = isa.decode(im.program)
                t.tiles[0]["t_row"] ^= 1
                im.program = isa.pack(t)
        words = max(len(im.words) for im in self.images)
        dram = max(len(im.dram) for im in self.images)
        self.top = Top(cfg=cfg, program_words=words + 8, dram_bytes=dram + 32,
                       max_layers=max(len(j.trace.layers) for j in jobs), debug=True, faults=self.faults)
        self.results = []

    def run(self):
        top, cfg = self.top, self.cfg
        g = top.gbuffer
        cur = {}

        async def host_side(ctx):  # the host runs its op between two edges and acknowledges at once
            while True:
                await ctx.changed(top.host_req)
                if not ctx.get(top.host_req):
                    continue
                job = cur["job"]
                tr, prog = job.trace, job.prog
                if ctx.get(top.host_layer) in job.host_hang:
                    continue  # this host never answers (§8.7)
                ly = tr.layers[ctx.get(top.host_layer)]
                xs = []
                for t in ly.inputs:
                    ta = prog.tensors[t]
                    raw = g.backdoor_read(ctx, ta.base, prog.batch * ta.item_bytes)
                    xs.append(np.frombuffer(raw, np.int8).reshape((prog.batch,) + tr.tensors[t].shape))
                y = host.run(ly, xs, [tr.tensors[t] for t in ly.inputs], tr.tensors[ly.output])
                g.backdoor_write(ctx, prog.tensors[ly.output].base, y.astype(np.int8).tobytes())
                ctx.set(top.host_ack, 1)
                await ctx.tick()
                ctx.set(top.host_ack, 0)

        async def reset(ctx):
            ctx.set(self.cd.rst, 1)
            for _ in range(4):  # (tick().repeat() stops at a reset)
                await ctx.tick()
            ctx.set(self.cd.rst, 0)

        async def load(ctx, job, image):
            ta = job.prog.tensors[job.trace.input]
            data = job.inputs.astype(np.int8).tobytes()
            if not job.streams:
                top.controller.backdoor_load(ctx, image.words)
                top.dram.backdoor_write(ctx, 0, image.dram)
                g.backdoor_write(ctx, ta.base, data)
                return
            for w in image.words:
                await stream_put(ctx, top.prog_in, w)
            nl = top.dram._nl
            img = image.dram + bytes(-len(image.dram) % nl)
            for a in range(0, len(img), nl):
                await stream_put(ctx, top.dram_in, {"addr": a, "data": list(img[a:a + nl])})
            wb = cfg.gbuf_word_bytes
            assert ta.base % wb == 0
            data += bytes(-len(data) % wb)
            for k in range(0, len(data), wb):
                await stream_put(ctx, top.act_in, {"addr": (ta.base + k) // wb,
                                                   "data": int.from_bytes(data[k:k + wb], "little"),
                                                   "be": (1 << wb) - 1})

        async def outputs(ctx, job):
            out = {}
            for o in job.trace.outputs:
                tb = job.prog.tensors[o]
                n = job.prog.batch * tb.item_bytes
                if job.streams:
                    wb = cfg.gbuf_word_bytes
                    raw = b""
                    for k in range(tb.base // wb, -(-(tb.base + n) // wb)):
                        await stream_put(ctx, top.act_rd, {"addr": k})
                        raw += (await stream_get(ctx, top.act_data)).data.to_bytes(wb, "little")
                    raw = raw[tb.base % wb:tb.base % wb + n]
                else:
                    raw = g.backdoor_read(ctx, tb.base, n)
                out[o] = np.frombuffer(raw, np.int8).reshape((job.prog.batch,) + job.trace.tensors[o].shape)
            return out

        def levels(ctx):
            return np.array([top.peek_levels_of(ctx, x) for x in range(cfg.n_xbars)], np.uint8)

        async def compute_starts(ctx):  # (cycle, execute index) of every COMPUTE start
            while True:
                await ctx.changed(top.engine.start)
                if ctx.get(top.engine.start):
                    cur["starts"].append((ctx.get(top.controller.cycle), ctx.get(top.controller.exec_retired)))

        def golden(job, initial):
            if not self.faults and not job.host_hang and job.dram_stall_from is None:
                return timing.run(job.prog, job.trace, cfg, initial)
            return timing.run(job.prog, job.trace, cfg, initial, faults=Faults(
                stuck=self.faults, host_hang=frozenset(job.host_hang), dram_stall_from=job.dram_stall_from))

        async def bench(ctx):
            initial = None
            for n, (job, image) in enumerate(zip(self.jobs, self.images, strict=True)):
                cur["job"] = job
                cur["starts"] = []
                if n:
                    await reset(ctx)
                await load(ctx, job, image)
                await ctx.tick()
                ctx.set(top.start, 1)
                await ctx.tick()
                ctx.set(top.start, 0)
                if job.reset_at is not None:
                    await ctx.tick().repeat(job.reset_at)
                    await reset(ctx)
                    initial = levels(ctx)  # rows written before the reset keep their new levels
                    await ctx.tick()
                    ctx.set(top.start, 1)
                    await ctx.tick()
                    ctx.set(top.start, 0)
                gold = golden(job, initial)
                faulty = gold.counters["fault_code"] != 0
                want = None if faulty else functional.run(job.trace, cfg, job.inputs,
                                                          plan=plan_from_program(job.prog, job.trace, cfg))
                t0 = time.perf_counter()
                seen = {}  # cycle -> (error, done) at the marks of an erroneous run
                if faulty or job.dram_stall_from is not None:
                    F = gold.counters["fault_cycle"]
                    marks = {gold.cycles} | ({F - 1, F, gold.cycles - 1} if faulty else set())
                    if job.dram_stall_from is not None:
                        marks.add(job.dram_stall_from)
                    t = 0
                    for mark in sorted(marks):
                        if mark > t:
                            await ctx.tick().repeat(mark - t)  # now in cycle `mark`
                        t = mark
                        if mark == job.dram_stall_from:
                            ctx.set(top.dram_stall, 1)  # held from this cycle on
                        seen[mark] = (ctx.get(top.error), ctx.get(top.done))
                else:
                    await ctx.tick().repeat(gold.cycles)  # now in cycle `cycles`
                res = {"job": job, "gold": gold, "want": want, "seconds": time.perf_counter() - t0,
                       "done": ctx.get(top.done), "error": ctx.get(top.error), "seen": seen}
                await ctx.tick()
                res["status"] = top.read_status(ctx, len(job.trace.layers))
                res["times"] = top.controller.trace_times(ctx, len(job.prog.writes), len(job.prog.execs))
                res["out"] = await outputs(ctx, job)
                res["levels"] = levels(ctx)
                res["starts"] = cur["starts"]
                ctx.set(top.dram_stall, 0)
                initial = res["levels"]
                self.results.append(res)

        wrap = Module()
        wrap.domains.sync = self.cd = ClockDomain("sync")
        wrap.submodules.top = top
        sim = Simulator(wrap)
        sim.add_clock(1e-8, domain=self.cd)
        sim.add_testbench(bench)
        sim.add_testbench(host_side, background=True)
        if self.monitor:
            sim.add_testbench(compute_starts, background=True)
        sim.run()
        return self.results


def _check_cells_and_windows(st, gold, job, cfg, lbl):
    """Status block against the golden run: ``cells_changed`` per transition and every layer window."""
    L = cfg.levels
    got_cc = np.array([[st[f"cells_changed[{o}][{k}]"] for k in range(L)] for o in range(L)])
    assert np.array_equal(got_cc, gold.cells_changed), f"{lbl}: cells_changed"
    ones = (1 << 64) - 1
    for li in range(len(job.trace.layers)):
        lt = gold.layers.get(li)
        want = [ones] * 4 if lt is None else [ones if v is None else v for v in (lt.start, lt.end, lt.wstart, lt.wend)]
        got = [st[f"layer_{k}[{li}]"] for k in ("start", "end", "wstart", "wend")]
        assert got == want, f"{lbl}: layer {li} windows {got} != {want}"


def check(results, cfg):
    for res in results:
        job, gold, st = res["job"], res["gold"], res["status"]
        lbl = job.label
        if job.bad_tag:  # §9.6: the tag is a check; the mismatch is reported, timing is unaffected
            assert res["error"] == 1 and res["done"] == 1 and st["cycles"] == gold.cycles, lbl
            continue
        if gold.counters["fault_code"]:
            check_fault(res, cfg)
            continue
        w, e = res["times"]
        for i, (got, want) in enumerate(zip(w, gold.write_times, strict=True)):
            assert got == want, f"{lbl}: WRITE #{i}: RTL (A_start, A_fin, B_start, B_fin) {got} != model {want}"
        for i, (got, want) in enumerate(zip(e, gold.exec_times, strict=True)):
            assert got == want, f"{lbl}: execute #{i}: RTL (E_start, E_fin) {got} != model {want}"
        assert res["done"] == 1 and st["cycles"] == gold.cycles and res["error"] == 0, lbl
        for name in COUNTERS + FAULTS:
            assert st[name] == gold.counters[name], f"{lbl}: counter {name}: RTL {st[name]} != {gold.counters[name]}"
        _check_cells_and_windows(st, gold, job, cfg, lbl)
        for o in job.trace.outputs:
            np.testing.assert_array_equal(res["out"][o], res["want"][o], err_msg=f"{lbl}: output {o}")
        assert np.array_equal(res["levels"], gold.final_levels), f"{lbl}: crossbar contents"


def check_fault(res, cfg):
    """A run that ended with the error of §8.7, against the golden prediction (see the module docstring)."""
    job, gold, st, lbl = res["job"], res["gold"], res["status"], res["job"].label
    F, end = gold.counters["fault_cycle"], gold.cycles
    seen = res["seen"]
    assert seen[F - 1][0] == 0 and seen[F][0] == 1, f"{lbl}: error (cycle: value) {seen}, expected rising in {F}"
    assert seen[end - 1][1] == 0 and seen[end][1] == 1 and st["cycles"] == end, f"{lbl}: done {seen}, cycles {end}"
    for name in ("cycles",) + COUNTERS + FAULTS:
        assert st[name] == gold.counters[name], f"{lbl}: {name}: RTL {st[name]} != model {gold.counters[name]}"
    _check_cells_and_windows(st, gold, job, cfg, lbl)
    w, e = res["times"]
    for i, (got, want) in enumerate(zip(w, gold.write_times, strict=True)):  # what happened before F
        for k, (start, fin) in enumerate(((want[0], want[1]), (want[2], want[3]))):
            if start < F:
                assert got[2 * k] == start, f"{lbl}: WRITE #{i} {'AB'[k]}_start {got[2 * k]} != {start}"
                if fin < INF:
                    assert got[2 * k + 1] == fin, f"{lbl}: WRITE #{i} {'AB'[k]}_fin {got[2 * k + 1]} != {fin}"
    for i, (got, (s, f)) in enumerate(zip(e, gold.exec_times, strict=True)):
        if s < F:
            assert got[0] == s and (f >= INF or got[1] == f), f"{lbl}: execute #{i}: RTL {got} != model {(s, f)}"
    computes = [(s, i) for i, (ins, (s, _)) in enumerate(zip(job.prog.execs, gold.exec_times, strict=True))
                if s < F and type(ins).__name__ == "Compute"]
    assert res["starts"] == computes, f"{lbl}: COMPUTE starts (cycle, index) {res['starts']} != {computes}"
    assert np.array_equal(res["levels"], gold.final_levels), f"{lbl}: crossbar contents"


def run_jobs(cfg, jobs, faults=None):
    results = System(cfg, jobs, faults).run()
    check(results, cfg)
    return results
