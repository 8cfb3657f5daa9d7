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

import numpy as np
import pytest
from amaranth.back import verilog

from aras import isa
from aras.config import preset
from aras.models import ModelSource
from aras.program import Compute
from aras.quantize import quantize
from aras.trace import Trace
from hw.top import Top
from sim_models import timing
from sim_models.scheduler import Options, schedule
from verif.golden.smallnets import mixed_cnn
from verif.golden.test_spec_example import example_trace
from verif.golden.tracegen import random_multipliers, weight_layer_trace
from verif.hw.system import Job, run_jobs

TINY = preset("tiny")
TINY_ADC = preset("tiny-adc")


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


def _linear(seed, k=150, t=2, n=5):
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (n, k))  # k=150: 10 row chunks > 8 crossbars: spill/restore rounds
    m, s = random_multipliers(rng, n)
    return weight_layer_trace(w, in_shape=(t, k), mult=m, shift=s, zx=7, zo=-4)


def _mixed():
    g = mixed_cnn()
    x = np.random.default_rng(1).normal(size=(32,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4]))


# ------------------------------------------------------------------------------------------------ tests
def test_tiny_programs():
    """§10.6 example cold, steady, steady with resident tiles; convolutions (both families), depthwise
    packing, a replicated round, a mixed CNN with vector and host layers, a linear layer whose output blocks
share Gbuffer words."""
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
    # two output blocks (channels 0-3, 4-5) in one round; at position 1 channels 3 and 4 share a Gbuffer
    # word (bytes 9, 10): §7.4's output stream must not count that word twice (``prev_ch``)
    shared = _linear(9, k=20, t=3, n=6)
    sharedp = schedule(shared, TINY, "aras")
    assert any(len(i.blocks) == 2 for i in sharedp.instrs if isinstance(i, Compute))
    jobs = [Job(spec, sprog, _inputs(spec, 1), "spec cold"),
            Job(spec, sprog, _inputs(spec, 1, 1), "spec steady"),
            Job(spec, resident, _inputs(spec, 1, 2), "spec resident tiles"),
            Job(conv, schedule(conv, TINY, "aras"), _inputs(conv, 1, 1), "conv offset"),
            Job(conv, schedule(conv, TINY, "aras", Options(family="signmag")), _inputs(conv, 1, 2), "conv signmag"),
            Job(dw, dwp, _inputs(dw, 1, 3), "depthwise packed"),
            Job(rep, repp, _inputs(rep, 1, 7), "replicated conv"),
            Job(mixed, schedule(mixed, TINY, "aras"), mixed.samples[:1], "mixed cnn"),
            Job(shared, sharedp, _inputs(shared, 1, 8), "linear, output word shared by two blocks")]
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


def test_two_write_drivers_share_an_apu():
    """Two write drivers per PE program two crossbars of the same APU at once (the APU's per-crossbar
    row ports, §13.2: shared peripherals are no structural hazard)."""
    cfg = dataclasses.replace(TINY, name="two-drivers", write_drivers_per_pe=2, write_buffer_bytes=256)
    lin = _linear(4)  # 10 row chunks over 8 crossbars: tiles re-written while their APU neighbour is
    prog = schedule(lin, cfg, "aras")
    gold = timing.run(prog, lin, cfg)
    spans = [(w.xbar // cfg.xbars_per_apu, b0, b1)  # (global APU, B_start, B_fin)
             for w, (_, _, b0, b1) in zip(prog.writes, gold.write_times, strict=True)]
    assert any(a == a2 and b0 < e2 and b2 < e1 for i, (a, b0, e1) in enumerate(spans) for a2, b2, e2 in spans[i + 1:])
    run_jobs(cfg, [Job(lin, prog, _inputs(lin, 1, 12), "linear, two drivers per PE")])


def test_block_sums_over_chunks_of_crossbars(monkeypatch):
    """With a lower port-bit limit the block sums come from three MemberSum chunks of 3 crossbars (the
    last one padded), as at ``paper`` (5 chunks of 52): a linear layer whose blocks span many tiles."""
    from hw import shared
    from hw.block_post import member_chunks
    from hw.datapath import psum_layout

    lead = isa.TILE["lead"].shape.width
    per_x = psum_layout(TINY).size + 1 + lead  # partial sums, valid and lead of one crossbar
    monkeypatch.setattr(shared, "MAX_PORT_BITS", lead + 3 * per_x)
    assert member_chunks(TINY) == (3, 3)
    lin = _linear(4)
    run_jobs(TINY, [Job(lin, schedule(lin, TINY, "aras"), _inputs(lin, 1, 13), "linear, member sums in chunks")])


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
