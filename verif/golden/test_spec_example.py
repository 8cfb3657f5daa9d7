"""The worked examples of docs/architecture.md §10: §9.7 / §10.6 reproduced by the scheduler and the timing
model (every start/finish, the total of 318 cycles, the layer windows and the event counters), and the
hand-built programs of §10.7 (partial DRAM beat), §10.8 (VECTOR and HOST durations), §10.9 (psum spill
and restore) and §10.10 (replication), whose every number in the spec is asserted here: the spec is the
oracle, worked out by hand from the rules of §7-§11."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from aras.program import (
    PMODE_COMPLETE,
    PMODE_FIRST,
    PMODE_LAST,
    PMODE_MIDDLE,
    VOPS,
    BlockEntry,
    Compute,
    Host,
    Program,
    TensorAlloc,
    TileEntry,
    Vector,
    Write,
    assemble,
    positions_of,
    validate,
)
from aras.tiling import Tile, tile_layer
from aras.trace import Layer, TensorQ, Trace
from sim_models.scheduler import Options, schedule
from sim_models.timing import run

TINY = preset("tiny")


def example_trace() -> Trace:
    """input (2, 4, 4) -> conv0 3x3, Cin 2, Cout 4, ReLU -> (4, 2, 2) -> flatten (16) -> fc2 16 -> 6.
    Every weight is 127 (offset code 255: all slices at level 3), so with the plain encoding every row
    has cells going 0 -> 3 from a cold start."""
    def wl(shape):
        n = shape[0]
        return {"weight": np.full(shape, 127, np.int8), "bias": np.zeros(n, np.int32),
                "mult": np.full(n, 1 << 30, np.int32), "shift": np.full(n, -8, np.int32)}

    tensors = {"t0": TensorQ((2, 4, 4), 0.1, 0), "t1": TensorQ((4, 2, 2), 0.1, -128),
               "t2": TensorQ((16,), 0.1, -128), "t3": TensorQ((6,), 0.1, 0)}
    layers = [
        Layer("conv0", "conv2d", ["t0"], "t1", {"act": "relu", "act_min": -128, "act_max": 127, "stride": [1, 1],
                                                "pads": [0, 0, 0, 0], "dilation": [1, 1], "groups": 1},
              wl((4, 2, 3, 3))),
        Layer("flat", "reshape", ["t1"], "t2", {"shape": [16]}),
        Layer("fc2", "linear", ["t2"], "t3", {"act": "none", "act_min": -128, "act_max": 127}, wl((6, 16))),
    ]
    tr = Trace("spec-example", "synthetic", "t0", tensors, layers, ["t3"])
    tr.validate()
    return tr


def test_worked_example_timing_and_counters():
    tr = example_trace()
    prog = schedule(tr, TINY, "aras", Options(reencode=False, placement=False))
    kinds = ["W" if isinstance(i, Write) else "E" for i in prog.instrs]
    assert kinds == ["W", "W", "E", "W", "W", "E"]
    w = prog.writes
    pe = [x.xbar // 4 for x in w]
    assert pe == [0, 1, 0, 1]
    assert [x.tile.rows for x in w] == [16, 2, 16, 16] and [x.tile.wcols for x in w] == [4, 4, 4, 2]
    assert all(x.wait_exec == 0 for x in w)  # no WAR: W2/W3 overlap the computation of layer 0
    r = run(prog, tr, TINY)
    assert r.write_times == [(0, 20, 20, 148), (20, 26, 26, 42), (26, 46, 148, 276), (46, 58, 58, 186)]
    assert r.exec_times == [(148, 281), (281, 318)]
    assert r.cycles == 318
    l0, l2 = r.layers[0], r.layers[2]
    assert (l0.start, l0.end, l0.wstart, l0.wend) == (148, 280, 20, 147)
    assert (l2.start, l2.end, l2.wstart, l2.wend) == (281, 317, 58, 275)
    c = r.counters
    assert c["dram_bytes"] == 168 and c["write_buffer_bytes"] == 336
    assert c["row_reads_before_write"] == 50 and c["cells_read_before_write"] == 672 and c["rows_written"] == 50
    assert c["xbar_reads"] == 80 and c["adc_conversions"] == 1216 and c["dac_activations"] == 832
    assert c["input_sum_ops"] == 80 and c["post_ops"] == 22
    assert c["gbuf_reads"] == 32 and c["gbuf_writes"] == 18
    assert c["gbuf_active_bank_cycles"] == 488


def test_worked_example_baseline_banks_all_on_and_no_overlap():
    tr = example_trace()
    prog = schedule(tr, TINY, "baseline")
    assert all(w.barrier and w.mode == 0 for w in prog.writes)
    r = run(prog, tr, TINY)
    assert r.counters["gbuf_active_bank_cycles"] == TINY.gbuf_banks * r.cycles
    e0 = [i for i, ins in enumerate(prog.instrs) if isinstance(ins, Compute)][0]
    later = [ins for ins in prog.instrs[e0 + 1:] if isinstance(ins, Write)]
    # every write of layer 2 waits for layer 0's computation to finish (barrier + wait_exec = 1)
    assert all(w.wait_exec == 1 for w in later)
    fin0 = r.exec_times[0][1]
    assert all(a >= fin0 for a, _, _, _ in r.write_times[2:])


# ------------------------------------------------------------------------------------------------------
# §10.7 - §10.10: hand-built programs (no scheduler); the expected numbers are the spec's.

def _qlayer(name, op, inputs, output, weight, **attrs):
    n = weight.shape[0]
    arrays = {"weight": weight.astype(np.int8), "bias": np.zeros(n, np.int32),
              "mult": np.full(n, 1 << 30, np.int32), "shift": np.full(n, -8, np.int32)}
    return Layer(name, op, inputs, output, {"act": "none", "act_min": -128, "act_max": 127, **attrs}, arrays)


def _write(tile: Tile, xbar: int, image: np.ndarray, dram: int, mode: int = 1, wait_exec: int = 0) -> Write:
    assert image.shape == (tile.rows, tile.wcols)
    return Write(tile, xbar, dram, "offset", mode, np.zeros(tile.wcols, bool), image.astype(np.int8),
                 wait_exec=wait_exec)


def _entry(xbar: int, tile: Tile, need_gen: int, replica: int = 0) -> TileEntry:
    return TileEntry(xbar, tile.tag, tile.rows, tile.wcols * 4, "offset", need_gen, replica)


def _alloc(name: str, item_bytes: int, bank: int, dtype: str = "int8", alias_of: str | None = None) -> TensorAlloc:
    return TensorAlloc(name, item_bytes, (bank,), bank * 1024, alias_of=alias_of, dtype=dtype)


def _check_hand_program(prog: Program) -> None:
    """The hand-written dependency fields are the assembler's (need_gen, WAR wait_exec) and the program is valid."""
    derived = assemble(copy.deepcopy(prog))
    for mine, theirs in zip(prog.instrs, derived.instrs, strict=True):
        if isinstance(mine, Write):
            assert mine.wait_exec == theirs.wait_exec
        elif isinstance(mine, Compute):
            assert [te.need_gen for te in mine.tiles] == [te.need_gen for te in theirs.tiles]
    validate(prog)


def _nonzero_changed(r) -> dict:
    L = r.cells_changed.shape[0]
    return {(o, n): int(r.cells_changed[o, n]) for o in range(L) for n in range(L) if r.cells_changed[o, n]}


def _window(r, li):
    lt = r.layers[li]
    return (lt.start, lt.end, lt.wstart, lt.wend)


def partial_beat_example():
    """§10.7: fc0 21 -> 3 on tiny; the 5-row tile (15 B) is fetched first: 3 full beats + one of 3 bytes."""
    w = np.zeros((3, 21), np.int8)
    w[:, :16] = 127
    tensors = {"t0": TensorQ((21,), 0.1, 0), "t1": TensorQ((3,), 0.1, 0)}
    tr = Trace("spec-partial-beat", "synthetic", "t0", tensors, [_qlayer("fc0", "linear", ["t0"], "t1", w)], ["t1"])
    tr.validate()
    r0 = Tile(0, 0, 0, 0, 16, 3, 1, 16, 3)
    r1 = Tile(0, 0, 1, 0, 5, 3, 1, 5, 3)
    lt = tile_layer(0, tr.layers[0], TINY)
    assert lt.tiles == [r0, r1]
    img = w.T  # (K, N): row k, weight column j
    instrs = [
        _write(r1, 4, img[16:21], 0x000),
        _write(r0, 0, img[0:16], 0x00F),
        Compute(0, 0, [_entry(0, r0, 1), _entry(4, r1, 1)], [BlockEntry(0, 0, 3, PMODE_COMPLETE)],
                bank_on=(1,), bank_off=(0,)),
    ]
    prog = Program("aras", 1, instrs, {0: lt}, {"t0": _alloc("t0", 21, 0), "t1": _alloc("t1", 3, 1)},
                   banks_init=(0,))
    return tr, prog


def test_partial_dram_beat_example():
    tr, prog = partial_beat_example()
    _check_hand_program(prog)
    r = run(prog, tr, TINY)
    assert r.write_times == [(0, 8, 8, 38), (8, 24, 24, 152)]
    assert r.exec_times == [(152, 189)]
    assert r.cycles == 189
    assert _window(r, 0) == (152, 188, 8, 151)
    assert {k: v for k, v in r.counters.items() if v} == {
        "cycles": 189, "dram_bytes": 63, "write_buffer_bytes": 126, "row_reads_before_write": 21,
        "cells_read_before_write": 252, "rows_written": 21, "xbar_reads": 16, "adc_conversions": 192,
        "dac_activations": 168, "input_sum_ops": 16, "post_ops": 3, "gbuf_reads": 6, "gbuf_writes": 1,
        "gbuf_active_bank_cycles": 226}
    assert _nonzero_changed(r) == {(0, 3): 192, (0, 2): 15}


def vector_host_example():
    """§10.8: maxpool 3x3/2 -> clamp -> add -> flatten -> softmax (host), batch 2, no crossbar layer."""
    cfg = TINY.replace(host_handoff_cycles=2, batch=2)
    q = dict(scale=0.1, zero_point=0)
    tensors = {"t0": TensorQ((1, 7, 7), **q), "t1": TensorQ((1, 3, 3), **q), "t2": TensorQ((1, 3, 3), **q),
               "t3": TensorQ((1, 3, 3), **q), "t4": TensorQ((9,), **q), "t5": TensorQ((9,), 1 / 256, -128)}
    act = {"act_min": -128, "act_max": 127}
    layers = [
        Layer("mp", "maxpool", ["t0"], "t1", {"kernel": [3, 3], "stride": [2, 2], **act}),
        Layer("relu", "clamp", ["t1"], "t2", {"act_min": 0, "act_max": 127}),
        Layer("res", "add", ["t1", "t2"], "t3", {"m1": 1 << 30, "m2": 1 << 30, "mo": 1 << 30, "s1": 0, "s2": 0,
                                                 "so": 0, "left_shift": 20, **act}),
        Layer("flat", "reshape", ["t3"], "t4", {"shape": [9]}),
        Layer("sm", "softmax", ["t4"], "t5", {}),
    ]
    tr = Trace("spec-vector-host", "synthetic", "t0", tensors, layers, ["t5"])
    tr.validate()
    instrs = [Vector(0, VOPS["maxpool"], bank_on=(1,), bank_off=(0,)), Vector(1, VOPS["clamp"], bank_on=(0,)),
              Vector(2, VOPS["add"], bank_on=(2,), bank_off=(0, 1)), Host(4, bank_on=(0,), bank_off=(2,))]
    allocs = {"t0": _alloc("t0", 49, 0), "t1": _alloc("t1", 9, 1), "t2": _alloc("t2", 9, 0),
              "t3": _alloc("t3", 9, 2), "t4": _alloc("t4", 9, 2, alias_of="t3"), "t5": _alloc("t5", 9, 0)}
    prog = Program("aras", 2, instrs, {}, allocs, banks_init=(0,))
    return tr, prog, cfg


def test_vector_and_host_durations_example():
    tr, prog, cfg = vector_host_example()
    _check_hand_program(prog)
    r = run(prog, tr, cfg)
    assert r.write_times == []
    assert r.exec_times == [(0, 43), (43, 50), (50, 57), (57, 60)]
    assert r.cycles == 60
    assert _window(r, 0) == (0, 42, None, None) and _window(r, 1) == (43, 49, None, None)
    assert _window(r, 2) == (50, 56, None, None) and _window(r, 4) == (57, 59, None, None)
    assert 3 not in r.layers  # flat: an alias, no instruction
    assert {k: v for k, v in r.counters.items() if v} == {
        "cycles": 60, "vector_ops": 198, "gbuf_reads": 40, "gbuf_writes": 15, "gbuf_active_bank_cycles": 127}
    assert _nonzero_changed(r) == {}


def psum_example():
    """§10.9: fc 48 -> 3 on a (2, 48) sequence, one output block split over 3 one-tile rounds on 2 crossbars."""
    cfg = TINY.replace(n_pe=1, apus_per_pe=1, xbars_per_apu=2)
    w = np.zeros((3, 48), np.int8)
    w[:, :16], w[:, 32:] = 127, -127
    tensors = {"t0": TensorQ((2, 48), 0.1, 0), "t1": TensorQ((2, 3), 0.1, 0)}
    tr = Trace("spec-psum", "synthetic", "t0", tensors, [_qlayer("fc", "linear", ["t0"], "t1", w)], ["t1"])
    tr.validate()
    t = [Tile(0, 0, r, 0, 16, 3, 1, 16, 3) for r in range(3)]
    lt = tile_layer(0, tr.layers[0], cfg)
    assert lt.tiles == t
    img, ps = w.T, "psum:fc:0:0"
    instrs = [
        _write(t[0], 0, img[0:16], 0x000),
        Compute(0, 0, [_entry(0, t[0], 1)], [BlockEntry(0, 0, 3, PMODE_FIRST, ps)], bank_on=(1, 2)),
        _write(t[1], 1, img[16:32], 0x030),
        Compute(0, 1, [_entry(1, t[1], 1)], [BlockEntry(0, 0, 3, PMODE_MIDDLE, ps)]),
        _write(t[2], 0, img[32:48], 0x060, wait_exec=1),
        Compute(0, 2, [_entry(0, t[2], 2)], [BlockEntry(0, 0, 3, PMODE_LAST, ps)], bank_off=(0, 1)),
    ]
    allocs = {"t0": _alloc("t0", 96, 0), ps: _alloc(ps, 24, 1, dtype="int32"), "t1": _alloc("t1", 6, 2)}
    prog = Program("aras", 1, instrs, {0: lt}, allocs, banks_init=(0,))
    return tr, prog, cfg


def test_psum_spill_restore_example():
    tr, prog, cfg = psum_example()
    assert cfg.n_xbars == 2 and cfg.write_buffer_slots == 2 and cfg.write_drivers_per_pe == 1
    _check_hand_program(prog)
    r = run(prog, tr, cfg)
    assert r.write_times == [(0, 16, 16, 144), (16, 32, 144, 240), (144, 160, 240, 336)]
    assert r.exec_times == [(144, 213), (240, 309), (336, 405)]
    assert r.cycles == 405
    assert _window(r, 0) == (144, 404, 16, 335)
    assert {k: v for k, v in r.counters.items() if v} == {
        "cycles": 405, "dram_bytes": 144, "write_buffer_bytes": 288, "row_reads_before_write": 48,
        "cells_read_before_write": 576, "rows_written": 48, "xbar_reads": 48, "adc_conversions": 576,
        "dac_activations": 768, "input_sum_ops": 48, "post_ops": 6, "psum_spill_words": 24, "gbuf_reads": 36,
        "gbuf_writes": 15, "gbuf_active_bank_cycles": 927}
    assert _nonzero_changed(r) == {(0, 3): 192, (0, 2): 48, (3, 1): 48, (3, 0): 144}


def replication_example():
    """§10.10: conv0 3x3, 1 -> 2 channels, P = 5, two copies (x0, x4) written blind, positions [0, 3) and [3, 5)."""
    w = np.zeros((2, 1, 3, 3), np.int8)
    w[:, :, 0, :], w[:, :, 2, :] = 127, -127
    tensors = {"t0": TensorQ((1, 3, 7), 0.1, 0), "t1": TensorQ((2, 1, 5), 0.1, 0)}
    conv = _qlayer("conv0", "conv2d", ["t0"], "t1", w, stride=[1, 1], pads=[0, 0, 0, 0], dilation=[1, 1], groups=1)
    tr = Trace("spec-replication", "synthetic", "t0", tensors, [conv], ["t1"])
    tr.validate()
    t = Tile(0, 0, 0, 0, 9, 2, 1, 9, 2)
    lt = tile_layer(0, conv, TINY)
    assert lt.tiles == [t]
    img = w.reshape(2, 9).T  # row k = 3i + j, weight column = output channel
    instrs = [
        _write(t, 0, img, 0x000, mode=0),
        _write(t, 4, img, 0x000, mode=0),
        Compute(0, 0, [_entry(0, t, 1, replica=0), _entry(4, t, 1, replica=1)],
                [BlockEntry(0, 0, 2, PMODE_COMPLETE)], bank_on=(1,), bank_off=(0,), replicas=2),
    ]
    prog = Program("aras", 1, instrs, {0: lt}, {"t0": _alloc("t0", 21, 0), "t1": _alloc("t1", 10, 1)},
                   banks_init=(0,))
    return tr, prog


def test_replication_example():
    tr, prog = replication_example()
    _check_hand_program(prog)
    assert [list(positions_of(5, 2, q)) for q in range(2)] == [[0, 1, 2], [3, 4]]
    r = run(prog, tr, TINY)
    assert r.write_times == [(0, 9, 9, 63), (9, 18, 18, 72)]
    assert r.exec_times == [(72, 173)]
    assert r.cycles == 173
    assert _window(r, 0) == (72, 172, 9, 71)
    assert {k: v for k, v in r.counters.items() if v} == {
        "cycles": 173, "dram_bytes": 36, "write_buffer_bytes": 72, "rows_written": 18, "cells_written_blind": 144,
        "xbar_reads": 40, "adc_conversions": 320, "dac_activations": 360, "input_sum_ops": 40, "post_ops": 10,
        "gbuf_reads": 23, "gbuf_writes": 10, "gbuf_active_bank_cycles": 274}
    assert _nonzero_changed(r) == {(0, 3): 48, (0, 2): 12, (0, 1): 12}
    # the same round without replication: one copy computes all 5 positions (n = 40: 165 cycles from 63)
    single = copy.deepcopy(prog)
    del single.instrs[1]
    single.instrs[1].tiles, single.instrs[1].replicas = single.instrs[1].tiles[:1], 1
    assert run(single, tr, TINY).cycles == 228


@pytest.mark.parametrize("bad", ["order", "no-psum", "empty-block"])
def test_validate_rejects_inconsistent_psum_rounds_and_empty_blocks(bad):
    """§9.6: psum modes of a block run first, middle..., last on one psum tensor; every block has a tile."""
    _, prog, _ = psum_example()
    rounds = [i for i in prog.instrs if isinstance(i, Compute)]
    if bad == "order":
        rounds[0].blocks[0].pmode, rounds[2].blocks[0].pmode = PMODE_LAST, PMODE_FIRST
    elif bad == "no-psum":
        rounds[1].blocks[0].psum = None
    else:
        rounds[1].blocks.append(BlockEntry(0, 1, 3))
    with pytest.raises(ArasError, match="psum modes|has no tile"):
        validate(prog)


def test_config_without_bank_gating_keeps_every_bank_on():
    """§7.3/§12: a chip with ``gbuf_adaptive`` false runs every program with all banks active."""
    cfg = TINY.replace(gbuf_adaptive=False)
    prog = schedule(example_trace(), cfg, "aras", Options.for_mode("aras"))
    assert not prog.gbuf_adaptive
    r = run(prog, example_trace(), cfg)
    assert r.counters["gbuf_active_bank_cycles"] == cfg.gbuf_banks * r.cycles


BOUNDED = TINY.replace(fetch_ports=1, psum_lanes=2, post_lanes=1)
BW = ("stall_fill", "stall_fetch", "stall_drain", "stall_post", "gbuf_fetch_words")


def test_bandwidth_bounded_example():
    """§10.11: the program of §9.7 and the replicated round of §10.10 with one fetch port, 2 psum lanes and
    one requantization lane per PE; every number below is worked out by hand in the spec."""
    tr = example_trace()
    prog = schedule(tr, BOUNDED, "aras", Options(reencode=False, placement=False))
    r = run(prog, tr, BOUNDED)
    assert r.write_times == [(0, 20, 20, 148), (20, 26, 26, 42), (26, 46, 148, 276), (46, 58, 58, 186)]
    assert r.exec_times == [(148, 295), (295, 342)]  # conv0 133 + 6 + 4 + 4; fc2 37 + 4 + 2 + 4
    assert r.cycles == 342
    assert [r.layers[li].counters.get(k, 0) for li in (0, 2) for k in BW] == [6, 0, 4, 4, 24, 4, 0, 2, 4, 4]
    assert [r.counters[k] for k in BW] == [10, 0, 6, 8, 28]
    tr, prog = replication_example()
    r = run(prog, tr, BOUNDED)
    assert r.exec_times == [(72, 187)]  # 101 + fill 10 + tail 2 + 2
    assert [r.counters[k] for k in BW] == [10, 0, 0, 4, 23]


def test_unbounded_terms_are_the_v1_rule():
    """fetch_ports = psum_lanes = post_lanes = 0 (tiny) leaves every COMPUTE as §10.3's first rule gives it."""
    tr = example_trace()
    prog = schedule(tr, TINY, "aras", Options(reencode=False, placement=False))
    r = run(prog, tr, TINY)
    assert r.cycles == 318 and all(r.counters[k] == 0 for k in BW)
