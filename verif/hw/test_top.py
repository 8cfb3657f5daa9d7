# amaranth: UnusedElaboratable=no
"""System tests of ``hw/top.py``: whole programs from ``sim_models.scheduler`` run on the RTL and are
compared with the golden models — ``sim_models.timing.run`` for every WRITE's (A_start, A_fin,
B_start, B_fin), every execute instruction's (E_start, E_fin), ``cycles``, the layer windows and every
§11 counter of the status block (``cells_changed`` included), and ``sim_models.functional.run`` (with
the program's encoding plan) for every output value; the crossbar contents at the end equal the model's.

A simulator instance costs seconds to build, so one instance runs several programs back to back with a
reset in between: cells (and PE tile metadata) survive, so each program's expected timing starts from
the previous program's final crossbar contents — the second run of the §10.6 example is its steady
state. Cases: the worked example (cold, steady), convolutions with padding/stride/zero points in both
encoding families on ``tiny`` and ``tiny-adc`` (clipping ADCs), depthwise packing, a replicated round
(2 copies, the second one shorter), a linear layer with
psum spill/restore and batch 2, a mixed CNN with vector and host layers, the load/unload streams, a
reset in the middle of a run, and LeNet-5 (slow)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from aras import isa
from aras.config import preset
from aras.models import ModelSource
from aras.quantize import quantize
from aras.trace import Trace
from hw.top import COUNTERS, Top
from sim_models import functional, host, timing
from sim_models.functional import plan_from_program
from sim_models.program import Compute
from sim_models.scheduler import Options, schedule
from verif.golden.smallnets import mixed_cnn
from verif.golden.test_spec_example import example_trace
from verif.golden.tracegen import random_multipliers, weight_layer_trace
from verif.hw.streams import stream_get, stream_put

TINY = preset("tiny")
TINY_ADC = preset("tiny-adc")


@dataclasses.dataclass
class Job:
    trace: Trace
    prog: object
    inputs: np.ndarray
    label: str
    streams: bool = False  # load/unload through the top's streams instead of backdoors
    reset_at: int | None = None  # reset this many cycles into the run, then run the program again
    bad_tag: bool = False  # corrupt a tile entry's tag in the image: the run must flag ``error``


class System:
    """One ``Top`` running a list of jobs back to back (reset between jobs)."""

    def __init__(self, cfg, jobs: list[Job]):
        self.cfg, self.jobs = cfg, jobs
        self.images = [isa.encode(j.prog, j.trace, cfg) for j in jobs]
        for j, im in zip(jobs, self.images, strict=True):
            if j.bad_tag:
                t = isa.decode(im.program)
                t.tiles[0]["t_row"] ^= 1
                im.program = isa.pack(t)
        words = max(len(im.words) for im in self.images)
        dram = max(len(im.dram) for im in self.images)
        self.top = Top(cfg=cfg, program_words=words + 8, dram_bytes=dram + 32,
                       max_layers=max(len(j.trace.layers) for j in jobs), debug=True)
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

        async def bench(ctx):
            initial = None
            for n, (job, image) in enumerate(zip(self.jobs, self.images, strict=True)):
                cur["job"] = job
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
                gold = timing.run(job.prog, job.trace, cfg, initial)
                want = functional.run(job.trace, cfg, job.inputs, plan=plan_from_program(job.prog, job.trace, cfg))
                t0 = time.perf_counter()
                await ctx.tick().repeat(gold.cycles)  # now in cycle `cycles`
                res = {"job": job, "gold": gold, "want": want, "seconds": time.perf_counter() - t0,
                       "done": ctx.get(top.done), "error": ctx.get(top.error)}
                await ctx.tick()
                res["status"] = top.read_status(ctx, len(job.trace.layers))
                res["times"] = top.controller.trace_times(ctx, len(job.prog.writes), len(job.prog.execs))
                res["out"] = await outputs(ctx, job)
                res["levels"] = levels(ctx)
                initial = res["levels"]
                self.results.append(res)

        wrap = Module()
        wrap.domains.sync = self.cd = ClockDomain("sync")
        wrap.submodules.top = top
        sim = Simulator(wrap)
        sim.add_clock(1e-8, domain=self.cd)
        sim.add_testbench(bench)
        sim.add_testbench(host_side, background=True)
        sim.run()
        return self.results


def check(results, cfg):
    for res in results:
        job, gold, st = res["job"], res["gold"], res["status"]
        lbl = job.label
        if job.bad_tag:  # §9.6: the tag is a check; the mismatch is reported, timing is unaffected
            assert res["error"] == 1 and res["done"] == 1 and st["cycles"] == gold.cycles, lbl
            continue
        w, e = res["times"]
        for i, (got, want) in enumerate(zip(w, gold.write_times, strict=True)):
            assert got == want, f"{lbl}: WRITE #{i}: RTL (A_start, A_fin, B_start, B_fin) {got} != model {want}"
        for i, (got, want) in enumerate(zip(e, gold.exec_times, strict=True)):
            assert got == want, f"{lbl}: execute #{i}: RTL (E_start, E_fin) {got} != model {want}"
        assert res["done"] == 1 and st["cycles"] == gold.cycles and res["error"] == 0, lbl
        for name in COUNTERS:
            assert st[name] == gold.counters[name], f"{lbl}: counter {name}: RTL {st[name]} != {gold.counters[name]}"
        L = cfg.levels
        got_cc = np.array([[st[f"cells_changed[{o}][{k}]"] for k in range(L)] for o in range(L)])
        assert np.array_equal(got_cc, gold.cells_changed), f"{lbl}: cells_changed"
        ones = (1 << 64) - 1
        for li in range(len(job.trace.layers)):
            lt = gold.layers.get(li)
            want = [ones] * 4 if lt is None else [ones if v is None else v for v in (lt.start, lt.end, lt.wstart,
                                                                                       lt.wend)]
            got = [st[f"layer_{k}[{li}]"] for k in ("start", "end", "wstart", "wend")]
            assert got == want, f"{lbl}: layer {li} windows {got} != {want}"
        for o in job.trace.outputs:
            np.testing.assert_array_equal(res["out"][o], res["want"][o], err_msg=f"{lbl}: output {o}")
        assert np.array_equal(res["levels"], gold.final_levels), f"{lbl}: crossbar contents"


def run_jobs(cfg, jobs):
    results = System(cfg, jobs).run()
    check(results, cfg)
    return results


def _inputs(trace, batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-128, 128, (batch,) + trace.input_q.shape).astype(np.int8)


def _conv(seed):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (6, 3, 3, 3))
    m, s = random_multipliers(rng, 6)
    return weight_layer_trace(w, in_shape=(3, 4, 5), zx=-3, zo=5, pads=(1, 1, 0, 1), stride=(1, 2), mult=m, shift=s,
                              bias=rng.integers(-3000, 3000, 6), act=("relu", 5, 127))


def _depthwise(seed):
    """8 groups of K_g = 4 rows: packed 4 groups per tile (block-diagonal, §5.1)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (8, 1, 2, 2))
    m, s = random_multipliers(rng, 8)
    return weight_layer_trace(w, in_shape=(8, 6, 6), groups=8, pads=(1, 0, 0, 1), mult=m, shift=s, zx=-128)


def _small_conv(seed):
    """One small tile over 225 positions: the scheduler replicates it (2 copies, §10.3)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (1, 1, 2, 2))
    return weight_layer_trace(w, in_shape=(1, 16, 16), zx=-128, zo=-128, act=("relu", -128, 127))


def _linear(seed, k=150, t=2):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (5, k))  # 10 row chunks > 8 crossbars: spill/restore rounds
    m, s = random_multipliers(rng, 5)
    return weight_layer_trace(w, in_shape=(t, k), mult=m, shift=s, zx=7, zo=-4)


def _mixed():
    g = mixed_cnn()
    x = np.random.default_rng(1).normal(size=(32,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4]))


# ------------------------------------------------------------------------------------------------ tests
def test_tiny_programs():
    """§10.6 example cold, steady, steady with resident tiles; convolutions (both families), depthwise
    packing, a replicated round, a mixed CNN with vector and host layers."""
    spec = example_trace()
    sprog = schedule(spec, TINY, "aras", Options(reencode=False, placement=False))
    # steady-state program with resident tiles (need_gen 0): relies on cells and tile metadata surviving reset
    after = timing.run(sprog, spec, TINY)
    resident = schedule(spec, TINY, "aras", Options(reencode=False, placement=False), initial=after.final_levels,
                        initial_writes={w.xbar: w for w in sprog.writes})
    assert any(te.need_gen == 0 for ins in resident.instrs if isinstance(ins, Compute) for te in ins.tiles)
    conv = _conv(3)
    dw = _depthwise(5)
    dwp = schedule(dw, TINY, "aras")
    assert max(t.pack_g for t in (w.tile for w in dwp.writes)) == 4
    rep = _small_conv(6)
    repp = schedule(rep, TINY, "aras")
    assert max(i.replicas for i in repp.instrs if isinstance(i, Compute)) == 2
    mixed = _mixed()
    jobs = [Job(spec, sprog, _inputs(spec, 1), "spec cold"),
            Job(spec, sprog, _inputs(spec, 1, 1), "spec steady"),
            Job(spec, resident, _inputs(spec, 1, 2), "spec resident tiles"),
            Job(conv, schedule(conv, TINY, "aras"), _inputs(conv, 1, 1), "conv offset"),
            Job(conv, schedule(conv, TINY, "aras", Options(family="signmag")), _inputs(conv, 1, 2), "conv signmag"),
            Job(dw, dwp, _inputs(dw, 1, 3), "depthwise packed"),
            Job(rep, repp, _inputs(rep, 1, 7), "replicated conv"),
            Job(mixed, schedule(mixed, TINY, "aras"), mixed.samples[:1], "mixed cnn")]
    res = run_jobs(TINY, jobs)
    assert res[0]["gold"].cycles == 318 and res[1]["gold"].counters["rows_skipped"] == 50  # §10.6; steady


def test_tiny_adc_clipping():
    conv = _conv(7)
    lin = _linear(8, k=40, t=3)
    jobs = [Job(conv, schedule(conv, TINY_ADC, "aras"), _inputs(conv, 1, 4), "conv offset"),
            Job(conv, schedule(conv, TINY_ADC, "aras", Options(family="signmag")), _inputs(conv, 1, 5),
                "conv signmag"),
            Job(lin, schedule(lin, TINY_ADC, "baseline"), _inputs(lin, 1, 6), "linear baseline (blind)")]
    run_jobs(TINY_ADC, jobs)


def test_psum_spill_batch_streams_and_reset():
    cfg = TINY.replace(batch=2)
    lin = _linear(4)
    prog = schedule(lin, cfg, "aras")
    assert {b.pmode for ins in prog.instrs if isinstance(ins, Compute) for b in ins.blocks} == {1, 2, 3}
    spec = example_trace()
    sprog = schedule(spec, cfg, "aras")
    jobs = [Job(lin, prog, _inputs(lin, 2, 2), "linear spill/restore"),
            Job(spec, sprog, _inputs(spec, 2, 3), "spec via streams", streams=True),
            Job(spec, sprog, _inputs(spec, 2, 4), "spec reset mid-run", reset_at=200),  # writes and a COMPUTE
            Job(spec, sprog, _inputs(spec, 2, 5), "tag mismatch", bad_tag=True)]
    run_jobs(cfg, jobs)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["aras", "baseline"])
def test_lenet5(mode):
    tr = Trace.load("aras/fixtures/lenet5")
    prog = schedule(tr, TINY, mode)
    # (the fixture holds no samples: random int8 images)
    res = run_jobs(TINY, [Job(tr, prog, _inputs(tr, 1, 9), f"lenet5 {mode}")])
    c, s = res[0]["gold"].cycles, res[0]["seconds"]
    print(f"LeNet-5 {mode}: {c} cycles in {s:.1f} s = {c / s:.0f} cycles/s")


def test_converts_to_verilog():
    micro = dataclasses.replace(TINY, name="micro", xbar_rows=8, xbar_cols=8, n_pe=1, apus_per_pe=1,
                                xbars_per_apu=2, adc_bits=5, gbuf_banks=2, gbuf_bank_bytes=64, write_buffer_bytes=32)
    text = verilog.convert(Top(cfg=micro, program_words=16, dram_bytes=64, max_layers=1), name="aras_top",
                           emit_src=False)
    assert "module aras_top" in text
