"""Program image format (``aras/isa.py``, docs/architecture.md §9): layout sizes, known-answer fields and
bytes of the §9.7 example, decode/pack round trips of real programs (aras, baseline, LeNet-5, a mixed
CNN with vector and host layers, a steady-state program), the DRAM image, and precise errors."""

from __future__ import annotations

import numpy as np
import pytest

from aras import isa
from aras.config import preset
from aras.errors import ArasError
from aras.models import ModelSource
from aras.program import Compute, Host, Vector
from aras.quantize import quantize
from aras.trace import Trace
from sim_models import timing
from sim_models.scheduler import Options, schedule
from verif.golden.smallnets import mixed_cnn
from verif.golden.test_spec_example import example_trace

TINY = preset("tiny")


def test_layout_sizes():
    assert (isa.HEADER.size, isa.LAYER.size, isa.TENSOR.size, isa.QPARAM.size) == (512, 1024, 128, 128)
    assert (isa.TILE.size, isa.BLOCK.size, isa.BANK_EVENT.size, isa.INITIAL.size) == (128, 64, 256, 64)
    for member in ("write", "compute", "vector"):
        assert isa.INSTR[member].shape.size == 256
    assert isa.INSTR.size == 256
    # §9.3: fields packed LSB first in the order given
    w = isa.INSTR["write"].shape
    assert [(n, w[n].offset) for n in ("op", "layer", "xbar", "t_group", "dram_addr", "wait_exec", "flags")] == [
        ("op", 0), ("layer", 4), ("xbar", 16), ("t_group", 28), ("dram_addr", 68), ("wait_exec", 141),
        ("flags", 166)]
    c = isa.INSTR["compute"].shape
    assert [(n, c[n].offset) for n in ("round", "tiles_ptr", "bank_evt", "replicas")] == [
        ("round", 16), ("tiles_ptr", 28), ("bank_evt", 100), ("replicas", 116)]


def test_section_offsets_known_answer():
    counts = {"layers": 3, "tensors": 4, "qparams": 10, "tiles": 4, "blocks": 3, "bank_events": 2, "initial": 0,
              "writes": 4, "execs": 3}
    off = isa.section_offsets(counts)
    # header 64, banks_init 32, layers 3·128, tensors 64, qparams 160, tiles 48 → 64, blocks 24 → 32, events 64
    assert off == {"header": 0, "banks_init": 64, "layers": 96, "tensors": 480, "qparams": 544, "tiles": 704,
                   "blocks": 768, "bank_events": 800, "initial": 864, "writes": 864, "execs": 992, "end": 1088}


def _spec():
    tr = example_trace()
    return tr, schedule(tr, TINY, "aras", Options(reencode=False, placement=False))


def test_spec_example_known_fields():
    tr, prog = _spec()
    im = isa.encode(prog, tr, TINY)
    t = im.tables
    assert len(im.program) == 1280
    assert im.program[:8] == b"ARASPRG\0" and int.from_bytes(im.program[8:10], "little") == 2
    h = t.header
    assert (h["n_layers"], h["n_tensors"], h["n_writes"], h["n_execs"], h["n_tiles"], h["n_blocks"],
            h["n_bank_events"], h["n_qparams"], h["flags"], h["n_initial"]) == (3, 4, 4, 3, 16, 3, 2, 10, 1, 0)
    assert t.banks_init == 0b1  # t0 in bank 0
    # W0: L0 x0 tag(g0,r0,c0) rows 16 wcols 4 offset flags 0 diff dram 0 (§9.7)
    w0 = t.writes[0]
    assert (w0["op"], w0["layer"], w0["xbar"], w0["rows"], w0["wcols"], w0["family"], w0["mode"], w0["flags"],
            w0["dram_addr"], w0["wait_exec"], w0["pack_g"], w0["pack_k"], w0["pack_n"]) == (
        1, 0, 0, 16, 4, 0, 1, 0, 0, 0, 1, 16, 4)
    # the scheduler's scan order places W2/W3 on x2/x6 (§9.7 shows x1/x5)
    assert [(w["xbar"], w["t_row"], w["t_col"], w["rows"], w["wcols"], w["dram_addr"]) for w in t.writes] == [
        (0, 0, 0, 16, 4, 0x000), (4, 1, 0, 2, 4, 0x040), (2, 0, 0, 16, 4, 0x048), (6, 0, 1, 16, 2, 0x088)]
    e0, e1, e2 = t.execs
    assert (e0["op"], e0["tiles_ptr"], e0["tiles_n"], e0["blocks_n"], e0["bank_evt"], e0["replicas"]) == (
        2, 0, 8, 1, 1, 1)
    assert (e1["layer"], e1["tiles_ptr"], e1["blocks_ptr"], e1["blocks_n"]) == (2, 8, 1, 2)
    assert e2["op"] == isa.Opcode.END.value
    # dense tile tables (v2): entry x = crossbar x; L0's two row chunks accumulate into x0 (its leader)
    assert [x["xbar"] for x in t.tiles] == list(range(8)) * 2
    used = [(x["xbar"], x["need_gen"], x["t_row"], x["t_col"], x["leader"], x["sleader"], x["lead"], x["out_first"],
             x["prev_ch"]) for x in t.tiles if x["valid"]]
    assert used == [(0, 1, 0, 0, 1, 1, 0, 1, 0), (4, 1, 1, 0, 0, 1, 0, 1, 0),
                    (2, 1, 0, 0, 1, 1, 2, 1, 0), (6, 1, 0, 1, 1, 0, 6, 0, 3)]
    # first fit (sim_models.gbuffer.allocate): t3 reuses bank 0, freed when E0 finishes
    assert t.bank_events == [{"on_mask": 0b10, "off_mask": 0b1}, {"on_mask": 0b1, "off_mask": 0b10}]
    assert [b["pmode"] for b in t.blocks] == [0, 0, 0] and t.blocks[2]["t_col"] == 1
    # the first WRITE word as bytes: op 1 | layer 0 << 4 | xbar 0 << 16 ...; rows at bit 100
    wbase = isa.section_offsets(t.counts())["writes"]
    word = int.from_bytes(im.program[wbase:wbase + 32], "little")
    assert word & 0xF == 1 and (word >> 100) & 0x1FF == 16 and (word >> 109) & 0x7F == 4
    # layer descriptors
    d0, d1, d2 = t.layers
    assert (d0["kind"], d0["cin"], d0["h"], d0["w"], d0["cout"], d0["ho"], d0["wo"], d0["kh"], d0["p"], d0["kg"],
            d0["ng"], d0["n_rchunks"], d0["zo"], d0["act_kind"]) == (0, 2, 4, 4, 4, 2, 2, 3, 4, 18, 4, 2, -128, 1)
    assert d1["kind"] == isa.Kind.ALIAS.value and d1["in0"] == d0["out"]
    assert (d2["kind"], d2["h"], d2["w"], d2["wo"], d2["p"], d2["kg"], d2["ng"], d2["chan_last"],
            d2["qparam_ptr"]) == (1, 1, 16, 6, 1, 16, 6, 1, 4)
    # qparams: bias_hw = bias − zx·Σw (zx = 0 here), M = 2^30, shift = −8
    assert t.qparams[0] == {"bias_hw": 0, "m": 1 << 30, "m_neg": 0, "shift": -8, "shift_neg": 0, "reserved": 0}
    assert [x["base"] for x in t.tensors] == [0, 1024, 0, 1024] and t.tensors[3]["alias_of"] == 1  # t0 t1 t3 t2
    # DRAM image: every tile's R_used × wcols weights at its address (all 127 here)
    assert im.dram == bytes([127]) * 168


def _mixed():
    g = mixed_cnn()
    x = np.random.default_rng(1).normal(size=(32,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4]))


def _programs():
    tr, prog = _spec()
    yield "spec", tr, prog
    yield "spec-baseline", tr, schedule(tr, TINY, "baseline")
    mixed = _mixed()
    yield "mixed", mixed, schedule(mixed, TINY, "aras")
    yield "mixed-signmag", mixed, schedule(mixed, TINY, "aras", Options(family="signmag"))
    lenet = Trace.load("aras/fixtures/lenet5")
    yield "lenet", lenet, schedule(lenet, TINY, "aras")


@pytest.mark.parametrize("case", range(5))
def test_round_trip_and_semantics(case):
    name, tr, prog = list(_programs())[case]
    im = isa.encode(prog, tr, TINY)
    t = isa.decode(im.program)
    assert isa.pack(t) == im.program, name
    assert t == im.tables
    writes, execs = prog.writes, prog.execs
    assert len(t.writes) == len(writes) and len(t.execs) == len(execs) + 1
    for w, d in zip(writes, t.writes, strict=True):
        tl = w.tile
        assert (d["layer"], d["xbar"], d["t_group"], d["t_row"], d["t_col"], d["rows"], d["wcols"]) == (
            tl.layer, w.xbar, tl.g, tl.r, tl.c, tl.rows, tl.wcols)
        assert (d["wait_exec"], d["barrier"], d["mode"], d["family"]) == (
            w.wait_exec, int(w.barrier), w.mode, int(w.family == "signmag"))
        assert d["flags"] == sum(int(f) << j for j, f in enumerate(w.flags))
        img = im.dram[d["dram_addr"]:d["dram_addr"] + tl.rows * tl.wcols]
        assert np.array_equal(np.frombuffer(img, np.int8).reshape(tl.rows, tl.wcols), w.weights)
    kinds = {Compute: 2, Vector: 3, Host: 4}
    for ins, d in zip(execs, t.execs, strict=False):
        assert d["op"] == kinds[type(ins)] and d["layer"] == ins.layer
        evt = t.bank_events[d["bank_evt"] - 1] if d["bank_evt"] else {"on_mask": 0, "off_mask": 0}
        assert evt["on_mask"] == sum(1 << b for b in ins.bank_on)
        assert evt["off_mask"] == sum(1 << b for b in ins.bank_off)
        if isinstance(ins, Compute):
            ents = t.tiles[d["tiles_ptr"]:d["tiles_ptr"] + d["tiles_n"]]
            assert d["tiles_n"] == TINY.n_xbars and [e["xbar"] for e in ents] == list(range(TINY.n_xbars))
            assert sorted(x for x, e in enumerate(ents) if e["valid"]) == sorted(te.xbar for te in ins.tiles)
            pm = {(b.g, b.c): b.pmode for b in ins.blocks}
            for te in ins.tiles:
                e = ents[te.xbar]
                assert (e["need_gen"], e["t_group"], e["t_row"], e["t_col"], e["replica"], e["pmode"]) == (
                    te.need_gen, te.tag[1], te.tag[2], te.tag[3], te.replica, pm[te.tag[1], te.tag[3]])
                mates = [u.xbar for u in ins.tiles if (u.tag[1], u.tag[3], u.replica) == (te.tag[1], te.tag[3],
                                                                                        te.replica)]
                assert e["lead"] == min(mates) and e["leader"] == (te.xbar == min(mates))
            bl = t.blocks[d["blocks_ptr"]:d["blocks_ptr"] + d["blocks_n"]]
            assert [(b["t_group"], b["t_col"], b["pmode"]) for b in bl] == [(b.g, b.c, b.pmode) for b in ins.blocks]
            for b, e in zip(ins.blocks, bl, strict=True):
                if b.psum:
                    assert t.tensors[e["psum_tensor"]]["base"] == prog.tensors[b.psum].base
    assert t.header["flags"] == int(prog.gbuf_adaptive)


def test_steady_state_initial_map():
    tr = example_trace()
    cold = schedule(tr, TINY, "aras")
    run = timing.run(cold, tr, TINY)
    holders = {w.xbar: w for w in cold.writes}
    steady = schedule(tr, TINY, "aras", initial=run.final_levels, initial_writes=holders)
    t = isa.encode(steady, tr, TINY).tables
    assert len(t.initial) == TINY.n_xbars
    for x, e in enumerate(t.initial):
        w = steady.initial_writes.get(x)
        assert e["valid"] == int(w is not None)
        if w is not None:
            assert (e["layer"], e["t_group"], e["t_row"], e["t_col"]) == w.tile.tag


def test_fingerprint():
    fp = isa.cfg_fingerprint(TINY)
    assert fp == isa.cfg_fingerprint(preset("tiny")) and fp != isa.cfg_fingerprint(preset("tiny-adc"))


def test_errors():
    tr, prog = _spec()
    im = isa.encode(prog, tr, TINY)
    with pytest.raises(ArasError, match="bad magic"):
        isa.decode(b"x" + im.program[1:])
    bad = bytearray(im.program)
    bad[8] = 7
    with pytest.raises(ArasError, match="version 7"):
        isa.decode(bytes(bad))
    with pytest.raises(ArasError, match="the header's counts need 1280"):
        isa.decode(im.program[:500])
    prog.writes[0].dram_addr = 1 << 33
    with pytest.raises(ArasError, match="dram_addr"):
        isa.encode(prog, tr, TINY)
