"""A second, independent timing and event-counter reference, written from docs/architecture.md ALONE.

The golden model ``sim_models.timing`` and the RTL were both written from the same document, so a
misreading they share survives their comparison. This module is a third reading of §7 (Gbuffer bank
selection and access counting), §8 (write path, row write, drivers, slots), §9 (program, streams,
interlocks §9.6), §10 (timing rules, worked examples §10.6-§10.11, the bandwidth-bounded positions of
§10.3 with the §7.5 layout of their fetch term) and §11 (event counters), written without
looking at ``sim_models/`` or ``hw/``. It imports only the contract: ``aras.config`` (the config and its
cycle conversion), ``aras.program`` (the program the scheduler emits), ``aras.tiling`` / ``aras.trace``
(shapes) and ``aras.errors``. Target cell levels are computed here from the encodings of §4.

Structure: a plain loop over cycles ``t = 0, 1, ...`` with explicit state per unit —
  * the DRAM channel (§3.11, §8.1): idle or serving one transfer (latency cycles, then beats);
  * per PE a write buffer (slot occupancy, §3.5) and ``write_drivers_per_pe`` drivers, each idle or
    programming one row of one tile (§3.6, §8.3, §8.4), plus the PE's in-order programming queue;
  * the controller scoreboard: ``done_gen[x]``, ``busy[x]``, ``exec_retired`` (§3.12, §9.6);
  * the execute unit: idle, or running one COMPUTE (analog read unit, S&H/ADC, post countdown),
    VECTOR (lanes, then pipeline latency) or HOST (handshake) (§10.3, §10.4);
  * the Gbuffer bank mask (§7.3).
Each cycle has three phases: (1) the clock edge at the start of cycle t retires every activity whose
finish is t (§2: finish = first cycle in which a waiter may start); (2) instructions whose interlocks
hold start in cycle t; (3) the activity of cycle t is accounted (beats, rows, items, bank-cycles).
Every activity lasts >= 1 cycle (the config forbids zero times), so what finishes at t is known before
cycle t and the order of phases (1) -> (2) -> (3) within a cycle is the whole "same cycle" rule.

Readings of the document where it leaves room (each is marked "READING" at its place below):
  R1 (§7.3) ``gbuf_adaptive`` is taken from the program (the image header flag, §3.14), not the config.
  R2 (§7.4) "complete output blocks" of the COMPUTE output stream = blocks whose pmode is complete or
     last (the ones that produce int8 results in this round); first/middle blocks write only psums.
  R3 (§7.4) the output stream and the psum streams visit every position p of the layer once (each
     position is produced by the one copy that computes it); the input streams are per copy.
  R4 (§10.3) the S&H samples an item at the end of its read and its conversion starts then, so the
     next read may start only when the read unit is free and the ADC will be free when that read ends;
     this gives the item spacing m = max(T_mvm, c) of the formula.
  R5 (§8.3) a row's old levels are read in the row's first cycle and its new levels committed at the
     end of its last cycle; a packed tile's off-block cells (§5.1) are targets of level 0.
  R6 (§10.4) VECTOR retires ``vector_lanes`` lane-ops per cycle for ceil(work/lanes) cycles, then
     ``vector_latency`` cycles; HOST is busy 1 + host_handoff_cycles cycles.
  R7 (§11) the per-layer counters: write-side events belong to the layer of the WRITE, execute-side
     events to the layer of the execute instruction; ``gbuf_active_bank_cycles`` belongs to no layer.
  R8 (§10.2) "the slots-th largest B_fin among earlier WRITEs to PE p" is read as slot occupancy: a
     transfer may start when fewer than ``slots`` earlier WRITEs to the PE have not finished
     programming (the DRAM stage is in order, so every earlier WRITE has reserved its slot).
  R9 (§7.4, VECTOR) "one stream per input tensor": an ``add`` of a tensor with itself reads it twice.
  B1 (§7.5) the fetch term's word index is taken from the item's start: tensors and batch items start at
     word boundaries, so this shifts every word of one (b, p) by the same whole number of words and
     changes neither U_q(p)'s size nor its runs; fetch(s) therefore does not depend on the batch item.
  B2 (§10.3, §11.1) ``gbuf_fetch_words`` counts the words of the bandwidth-bounded fetch, so it is 0 when
     ``fetch_ports`` = 0 even if ``psum_lanes`` or ``post_lanes`` bound the round (the document gives
     the formula without saying; §11.1 only says all stall and fetch counters are 0 when all three are).

The bandwidth-bounded positions of §10.3 (``fetch_ports``, ``psum_lanes``, ``post_lanes`` > 0) are
computed per COMPUTE at its start, plainly per slot, copy, tile and row (``_bandwidth``): they set the
start of every slot's first item (``E_start + fetch(0) + Σ_{s'<s} pos(s')``), and the finish is taken
after the last item (its conversions, ``post_latency``, the last slot's hold and the tail) and checked
against the document's closed duration formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aras.config import Config
from aras.errors import ArasError
from aras.program import PMODE_COMPLETE, PMODE_FIRST, PMODE_LAST, PMODE_MIDDLE, Compute, Host, Program, Vector, Write
from aras.tiling import block_channels, positions
from aras.trace import Trace

# §11.1 scalar counters (``cells_changed`` is the L x L array beside them).
COUNTERS = ("rows_written", "rows_skipped", "cells_written_blind", "row_reads_before_write",
            "cells_read_before_write", "adc_conversions", "xbar_reads", "dac_activations", "input_sum_ops",
            "post_ops", "vector_ops", "gbuf_reads", "gbuf_writes", "gbuf_active_bank_cycles", "dram_bytes",
            "write_buffer_bytes", "psum_spill_words", "stall_fill", "stall_fetch", "stall_drain", "stall_post",
            "gbuf_fetch_words")


@dataclass
class RefLayer:
    start: int | None = None  # E_start of its first execute instruction (§10.5)
    end: int | None = None  # E_fin - 1 of its last one
    wstart: int | None = None  # write window (§10.2): min B_start ...
    wend: int | None = None  # ... max B_fin - 1
    # Σ (E_fin - E_start) of its COMPUTE and VECTOR instructions. Not defined by the document (a model
    # statistic); HOST handshakes are excluded as in the golden model's report (host time is untimed).
    compute_cycles: int = 0
    write_cycles: int = 0  # Σ programming time of its tiles (§8.3)
    write_energy_pj: float = 0.0  # §8.3 / §11.2 write energy of its tiles
    counters: dict = field(default_factory=dict)  # its events (reading R7), zero entries dropped


@dataclass
class RefRun:
    cycles: int
    counters: dict[str, int]
    cells_changed: np.ndarray  # (L, L) int64
    layers: dict[int, RefLayer]
    exec_times: list[tuple[int, int]]  # (E_start, E_fin) per execute instruction (END excluded)
    write_times: list[tuple[int, int, int, int]]  # (A_start, A_fin, B_start, B_fin) per WRITE
    final_levels: np.ndarray  # (n_xbars, rows, cols) uint8
    wear: np.ndarray  # per-cell program count of this run (§8.5)
    write_energy_pj: float
    write_read_pj: float  # the read-before-write part of write_energy_pj


# ---------------------------------------------------------------------------------------------------
# §4 encodings and §8.3 per-cell costs (pure functions of the config and the WRITE)

def target_levels(w: Write, cfg: Config) -> np.ndarray:
    """Encoder targets (§3.4, §4, §5.1) of a WRITE: (R_used, C_phys) levels."""
    S, cb, L = cfg.slices, cfg.cell_bits, cfg.levels
    wt = np.asarray(w.weights).astype(np.int64)
    rows, wcols = wt.shape
    flags = np.asarray(w.flags).astype(bool)[None, :]
    t = w.tile
    # READING R5: block-diagonal packing; off-block entries are ignored and written to level 0.
    on = (np.arange(rows)[:, None] // t.pack_k) == (np.arange(wcols)[None, :] // t.pack_n)
    if w.family == "offset":
        codes = [np.where(flags, 127 - wt, wt + 128)]  # offset_inv: u = 127 - w; offset: u = w + 128
    elif w.family == "signmag":
        a, b = np.maximum(wt, 0), np.maximum(-wt, 0)
        codes = [np.where(flags, b, a), np.where(flags, a, b)]  # A half, B half (swap: A = max(-w, 0))
    else:
        raise ArasError(f"oracle: unknown family {w.family!r}")
    h = len(codes)
    out = np.zeros((rows, wcols * h * S), np.int64)
    for j in range(wcols):
        for k, code in enumerate(codes):
            for s in range(S):
                lev = (code[:, j] >> (s * cb)) & (L - 1)
                out[:, (j * h + k) * S + s] = np.where(on[:, j], lev, 0)
    return out


class _Cells:
    """Derived per-cell tables of §8.3: Tdiff, Ediff (differential) and the blind costs."""

    def __init__(self, cfg: Config):
        L = cfg.levels
        self.T_rd, self.T_set = cfg.cycles(cfg.t_read_ns), cfg.cycles(cfg.t_write_setup_ns)
        self.T_rst = cfg.cycles(cfg.t_reset_ns)
        self.step = cfg.cycles(cfg.t_pulse_ns) + cfg.cycles(cfg.t_verify_ns)
        P, E = cfg.write_pulses, cfg.write_energy_pj
        self.tdiff = [[0] * L for _ in range(L)]
        self.ediff = [[0.0] * L for _ in range(L)]
        for o in range(L):
            for n in range(L):
                if o == n:
                    continue
                direct_e, reset_e = E[o][n], cfg.e_reset_pj + E[0][n]
                if reset_e < direct_e:  # the cheaper path in energy; ties: direct
                    self.tdiff[o][n] = self.T_rst + P[0][n] * self.step
                    self.ediff[o][n] = reset_e
                else:
                    self.tdiff[o][n] = P[o][n] * self.step
                    self.ediff[o][n] = direct_e
        self.p0 = [P[0][n] for n in range(L)]
        self.e0 = [E[0][n] for n in range(L)]
        self.e_reset, self.e_read = cfg.e_reset_pj, cfg.e_cell_read_pj


# ---------------------------------------------------------------------------------------------------
# §7.4 Gbuffer access counting (per stream, a last-word register)

class _Stream:
    def __init__(self, word: int):
        self.word, self.last, self.n = word, None, 0

    def clear(self):
        self.last = None

    def touch(self, addr: int):
        wd = addr // self.word
        if wd != self.last:
            self.n += 1
            self.last = wd


def _tensor(prog: Program, name: str):
    a = prog.tensors.get(name)
    if a is None:
        raise ArasError(f"oracle: tensor {name!r} has no Gbuffer allocation")
    return a


def _input_rows(trace: Trace, prog: Program, li: int, g: int, r: int, rows: int, cfg: Config):
    """For (gchunk g, rchunk r) of layer li: a function (b, p) -> byte addresses of the used rows in
    ascending row order, ``None`` for a padded element (§5.2: touches nothing)."""
    ly = trace.layers[li]
    lt = prog.tilings[li]
    src = _tensor(prog, ly.inputs[0])
    base, item = src.base, src.item_bytes
    in_shape = trace.tensors[ly.inputs[0]].shape
    R = cfg.xbar_rows
    if ly.op == "conv2d":
        C, H, W = in_shape
        _, cg, kh, kw = ly.arrays["weight"].shape
        sh, sw = ly.attrs.get("stride", [1, 1])
        pt, pl = ly.attrs.get("pads", [0, 0, 0, 0])[:2]
        dh, dw = ly.attrs.get("dilation", [1, 1])
        Wo = trace.tensors[ly.output].shape[2]
        terms = []
        for k in range(rows):
            if lt.packed:
                grp, kk = g * lt.pack + k // lt.kg, k % lt.kg
            else:
                grp, kk = g, r * R + k
            c = grp * cg + kk // (kh * kw)
            i, j = (kk // kw) % kh, kk % kw
            terms.append((c, i, j))

        def addrs(b, p):
            oh, ow = divmod(p, Wo)
            out = []
            for c, i, j in terms:
                ih, iw = oh * sh - pt + i * dh, ow * sw - pl + j * dw
                out.append(base + b * item + (c * H + ih) * W + iw if 0 <= ih < H and 0 <= iw < W else None)
            return out
        return addrs
    K = in_shape[-1]
    k0 = 0 if lt.packed else r * R

    def addrs_lin(b, p):
        return [base + b * item + p * K + k0 + k for k in range(rows)]
    return addrs_lin


def _compute_traffic(trace: Trace, prog: Program, ins: Compute, cfg: Config, B: int):
    """Per (b, p): Gbuffer reads of the input streams (keyed also by copy), output writes, psum spill
    writes and restore reads, post_ops and psum words (§7.4, §10.3)."""
    li = ins.layer
    ly = trace.layers[li]
    lt = prog.tilings[li]
    P = positions(trace, li)
    r_ = ins.replicas
    wb = cfg.gbuf_word_bytes
    # input fetch: one stream per distinct (gchunk, rchunk, copy)
    streams = {}
    for te in ins.tiles:
        streams.setdefault((te.tag[1], te.tag[2], te.replica), te.rows)
    in_reads = {}  # (b, p) -> reads of all input streams of the copy computing p
    for (g, r, q), rows in sorted(streams.items()):
        addrs = _input_rows(trace, prog, li, g, r, rows, cfg)
        per = -(-P // r_)
        for b in range(B):
            for p in range(min(P, q * per), min(P, (q + 1) * per)):
                s = _Stream(wb)
                for a in addrs(b, p):
                    if a is not None:
                        s.touch(a)
                in_reads[(b, p)] = in_reads.get((b, p), 0) + s.n
    # output: one stream; READING R2/R3
    out = _tensor(prog, ly.output)
    o_shape = trace.tensors[ly.output].shape
    blocks = sorted(ins.blocks, key=lambda bl: (bl.g, bl.c))
    done = [bl for bl in blocks if bl.pmode in (PMODE_COMPLETE, PMODE_LAST)]
    chans = [ch for bl in done for ch in block_channels(lt, bl.g, bl.c)]
    out_writes, spill_w, restore_r = {}, {}, {}
    post = sum(bl.ncols for bl in done)
    pwords = sum(bl.ncols * ((bl.pmode in (PMODE_FIRST, PMODE_MIDDLE)) + (bl.pmode in (PMODE_MIDDLE, PMODE_LAST)))
                 for bl in blocks)
    for b in range(B):
        for p in range(P):
            s = _Stream(wb)
            for ch in chans:
                if ly.op == "conv2d":
                    s.touch(out.base + b * out.item_bytes + ch * o_shape[1] * o_shape[2] + p)
                else:
                    s.touch(out.base + b * out.item_bytes + p * o_shape[-1] + ch)
            out_writes[(b, p)] = s.n
            nw = nr = 0
            for bl in blocks:
                if bl.pmode == PMODE_COMPLETE:
                    continue
                pt = _tensor(prog, bl.psum)
                start = pt.base + ((b * P + p) * bl.ncols) * 4
                if bl.pmode in (PMODE_FIRST, PMODE_MIDDLE):  # spill (write stream of the block)
                    s = _Stream(wb)
                    for col in range(bl.ncols):
                        for byte in range(4):
                            s.touch(start + col * 4 + byte)
                    nw += s.n
                if bl.pmode in (PMODE_MIDDLE, PMODE_LAST):  # restore (read stream of the block)
                    s = _Stream(wb)
                    for col in range(bl.ncols):
                        for byte in range(4):
                            s.touch(start + col * 4 + byte)
                    nr += s.n
            spill_w[(b, p)], restore_r[(b, p)] = nw, nr
    return in_reads, out_writes, spill_w, restore_r, post, pwords


def _vector_work(trace: Trace, li: int, B: int) -> int:
    """§10.4 work of a VECTOR layer."""
    ly = trace.layers[li]
    out = trace.tensors[ly.output].shape
    if ly.op in ("maxpool", "avgpool"):
        kh, kw = ly.attrs["kernel"]
        return B * int(np.prod(out)) * kh * kw
    if ly.op == "gap":
        return B * int(np.prod(trace.tensors[ly.inputs[0]].shape))
    return B * int(np.prod(out))  # add, clamp, leaky_relu, prelu: elements


# ---------------------------------------------------------------------------------------------------
# §10.3 "Bandwidth-bounded positions" with the §7.5 activation layout of the fetch term

def _cl_byte(trace: Trace, prog: Program, name: str, wb: int):
    """§7.5: a function (logical element index e of tensor ``name``, row-major) -> byte offset of e in its
    item in the channel-last layout of the bandwidth terms. A flatten / reshape alias reads its source's
    bytes (its element e is the source's element e, a CNN source indexed CHW). READING B1: offsets are
    taken from the item's start; items and tensors start at word boundaries (§7.2, §7.5), so the word
    index differs from the absolute one by a whole number of words, which changes neither a word's
    identity within one (b, p) nor the runs."""
    root = name
    seen = set()
    while True:
        a = _tensor(prog, root)
        if a.alias_of is None:
            break
        if root in seen:
            raise ArasError(f"oracle: alias cycle at tensor {root!r}")
        seen.add(root)
        root = a.alias_of
    shape = tuple(trace.tensors[root].shape)
    if int(np.prod(shape)) != int(np.prod(trace.tensors[name].shape)):
        raise ArasError(f"oracle: alias {name!r} of {root!r} changes the element count")

    def pitch(C: int) -> int:
        return C if C < wb else -(-C // wb) * wb

    if len(shape) == 3:  # (C, H, W'): element (c, h, w) at (h·W' + w)·pitch + c
        C, H, Wd = shape
        pc = pitch(C)

        def cnn(e: int) -> int:
            c, rest = divmod(e, H * Wd)
            h, w = divmod(rest, Wd)
            return (h * Wd + w) * pc + c
        return cnn
    if len(shape) == 2:  # (T, D): element (t, d) at t·pitch + d
        D = shape[1]
        pd = pitch(D)

        def seq(e: int) -> int:
            t, d = divmod(e, D)
            return t * pd + d
        return seq
    if len(shape) == 1:  # (K,): one pixel of K channels
        return lambda e: e
    raise ArasError(f"oracle: no §7.5 layout for tensor {root!r} of shape {shape}")


def _row_elements(trace: Trace, prog: Program, li: int, g: int, r: int, rows: int, cfg: Config):
    """§7.5: for the tile (gchunk g, rchunk r) of layer li, a function p -> the logical element indices of
    its input that its used rows read at position p (ascending rows; padding taps are left out)."""
    ly = trace.layers[li]
    lt = prog.tilings[li]
    in_shape = trace.tensors[ly.inputs[0]].shape
    R = cfg.xbar_rows
    if ly.op == "conv2d":
        C, H, W = in_shape
        _, cg, kh, kw = ly.arrays["weight"].shape
        sh, sw = ly.attrs.get("stride", [1, 1])
        pt, pl = ly.attrs.get("pads", [0, 0, 0, 0])[:2]
        dh, dw = ly.attrs.get("dilation", [1, 1])
        Wo = trace.tensors[ly.output].shape[2]
        terms = []
        for k in range(rows):  # tile row -> (group, in-group row) -> (c, i, j), rows ordered (c, i, j)
            if lt.packed:
                grp, kk = g * lt.pack + k // lt.kg, k % lt.kg
            else:
                grp, kk = g, r * R + k
            terms.append((grp * cg + kk // (kh * kw), (kk // kw) % kh, kk % kw))

        def conv(p: int) -> list[int]:
            ho, wo = divmod(p, Wo)
            out = []
            for c, i, j in terms:
                ih, iw = ho * sh - pt + i * dh, wo * sw - pl + j * dw
                if 0 <= ih < H and 0 <= iw < W:
                    out.append((c * H + ih) * W + iw)
            return out
        return conv
    K = in_shape[-1]
    k0 = 0 if lt.packed else r * R  # a linear layer has one group: packed = one tile of all K rows

    def lin(p: int) -> list[int]:
        return [p * K + k0 + k for k in range(rows)]
    return lin


def _runs(words: list[int]) -> list[int]:
    """Lengths of the maximal runs of consecutive words in a sorted list of distinct words."""
    out = []
    for n, wd in enumerate(words):
        if n and wd == words[n - 1] + 1:
            out[-1] += 1
        else:
            out.append(1)
    return out


@dataclass
class _Bandwidth:
    """The bandwidth terms of one COMPUTE (§10.3)."""
    fill: int  # fetch(0)
    pos: list[int]  # pos(s) per slot
    tail: int  # max(drain(S-1), post(S-2)) + post(S-1)
    extra: int  # the growth of the duration: fill + Σ (pos(s) - 8·m) + tail
    stalls: dict[str, int]  # stall_fill / stall_fetch / stall_drain / stall_post
    fetch_words: int  # gbuf_fetch_words of this COMPUTE


def _bandwidth(trace: Trace, prog: Program, ins: Compute, cfg: Config, B: int, m: int) -> _Bandwidth:
    """§10.3 "Bandwidth-bounded positions", plainly: per slot, per copy, per tile, per row."""
    fp, pl, ql = cfg.fetch_ports, cfg.psum_lanes, cfg.post_lanes
    li = ins.layer
    lt = prog.tilings[li]
    P = positions(trace, li)
    r_ = ins.replicas
    per = -(-P // r_)  # P'
    S = B * per
    n_copies = [max(0, min(P, (q + 1) * per) - min(P, q * per)) for q in range(r_)]  # |positions_of(P, r, q)|
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    wb = cfg.gbuf_word_bytes
    tiles_of = {t.tag: t for t in lt.tiles}
    bounded = fp > 0 or pl > 0 or ql > 0  # the rule applies (a field = 0 makes its term 0)

    def running(s: int) -> list[int]:
        ell = s % per
        return [q for q in range(r_) if ell < n_copies[q]]

    # ---- fetch: per copy q and position p, |U_q(p)| and Σ_runs ⌈run / fetch_ports⌉
    fetch_cyc: dict[tuple[int, int], int] = {}
    fetch_n: dict[tuple[int, int], int] = {}
    if fp:  # READING B2: gbuf_fetch_words counts the words of the bounded fetch only (0 if fetch_ports = 0)
        byte_of = _cl_byte(trace, prog, trace.layers[li].inputs[0], wb)
        for q in range(r_):
            chunks = sorted({(te.tag[1], te.tag[2]): te.rows for te in ins.tiles if te.replica == q}.items())
            elems = [_row_elements(trace, prog, li, g, r, rows, cfg) for (g, r), rows in chunks]
            for p in range(q * per, q * per + n_copies[q]):
                words = set()
                for f in elems:  # the union over the copy's (gchunk, rchunk) tiles
                    for e in f(p):
                        words.add(byte_of(e) // wb)
                u = sorted(words)
                fetch_n[(q, p)] = len(u)
                fetch_cyc[(q, p)] = sum(-(-n // fp) for n in _runs(u))

    def fetch(s: int) -> int:
        if not 0 <= s < S or not fp:
            return 0
        ell = s % per
        return sum(fetch_cyc[(q, q * per + ell)] for q in running(s))  # copies fetch separately

    # ---- leaders: (block, copy) in order of decreasing outputs, each led by the least-loaded PE of its tiles
    pe_of = {}  # (g, c, q) -> the PEs of its tiles
    wcols_on = {}  # (g, c, q) -> [(PE, wcols)] of its tiles
    for te in ins.tiles:
        key = (te.tag[1], te.tag[3], te.replica)
        pe = te.xbar // per_pe
        pe_of.setdefault(key, set()).add(pe)
        wcols_on.setdefault(key, []).append((pe, tiles_of[te.tag].wcols))
    bc = []  # (outputs, ncols, g, c, q)
    for bl in ins.blocks:
        outputs = bl.ncols if bl.pmode in (PMODE_COMPLETE, PMODE_LAST) else 0
        for q in range(r_):
            bc.append((outputs, bl.ncols, bl.g, bl.c, q))
    bc.sort(key=lambda x: (-x[0], -x[1], x[2], x[3], x[4]))
    load = [0] * cfg.n_pe
    leader = {}
    for outputs, _, g, c, q in bc:
        pe = min(sorted(pe_of[(g, c, q)]), key=lambda x: (load[x], x))
        leader[(g, c, q)] = pe
        load[pe] += outputs

    memo: dict[tuple, int] = {}  # the terms depend on the slot only through its running copies

    def drain(s: int) -> int:
        if not 0 <= s < S or not pl:
            return 0
        key = ("drain", tuple(running(s)))
        if key not in memo:
            memo[key] = _drain(s)
        return memo[key]

    def _drain(s: int) -> int:
        local = [0] * cfg.n_pe
        incoming = [0] * cfg.n_pe
        outgoing = [0] * cfg.n_pe
        run = running(s)
        for (_g, _c, q), tl in wcols_on.items():
            if q not in run:
                continue
            for pe, wc in tl:
                local[pe] += -(-wc // pl)
        for _, ncols, g, c, q in bc:
            if q not in run or len(pe_of[(g, c, q)]) < 2:
                continue
            lead = leader[(g, c, q)]
            for pe in sorted(pe_of[(g, c, q)]):
                if pe != lead:
                    outgoing[pe] += -(-ncols // pl)
                    incoming[lead] += -(-ncols // pl)
        return max(max(local[pe] + incoming[pe], outgoing[pe]) for pe in range(cfg.n_pe))

    def post(s: int) -> int:
        if not 0 <= s < S or not ql:
            return 0
        key = ("post", tuple(running(s)))
        if key not in memo:
            memo[key] = _post(s)
        return memo[key]

    def _post(s: int) -> int:
        led = [0] * cfg.n_pe
        run = running(s)
        for outputs, _, g, c, q in bc:
            if q in run and outputs:
                led[leader[(g, c, q)]] += outputs
        return max(-(-v // ql) for v in led)

    stalls = dict.fromkeys(("stall_fill", "stall_fetch", "stall_drain", "stall_post"), 0)
    if not bounded:
        return _Bandwidth(0, [8 * m] * S, 0, 0, stalls, 0)
    F = [fetch(s) for s in range(S + 1)]
    D = [drain(s) for s in range(S)]
    Q = [post(s) for s in range(S)]

    def d_(s):
        return D[s] if 0 <= s < S else 0

    def q_(s):
        return Q[s] if 0 <= s < S else 0

    pos = []
    for s in range(S):
        f, d, q = F[s + 1], d_(s - 1), q_(s - 2)
        ps = max(8 * m, f, d, q)
        pos.append(ps)
        if ps > 8 * m:  # charged to the largest term; ties: fetch, then drain, then post
            k = "stall_fetch" if f >= d and f >= q else "stall_drain" if d >= q else "stall_post"
            stalls[k] += ps - 8 * m
    stalls["stall_fill"] += F[0]
    t1, t2 = max(d_(S - 1), q_(S - 2)), q_(S - 1)
    stalls["stall_drain" if d_(S - 1) >= q_(S - 2) else "stall_post"] += t1
    stalls["stall_post"] += t2
    extra = F[0] + sum(ps - 8 * m for ps in pos) + t1 + t2
    if extra != sum(stalls.values()):  # "The four stalls add up to the growth of the duration."
        raise ArasError(f"oracle: COMPUTE of layer {li}: stalls {stalls} do not add up to {extra}")
    words = B * sum(fetch_n.values())  # B·Σ_ℓ Σ_{q running} |U_q(q·P' + ℓ)|: every (copy, own position) once
    return _Bandwidth(F[0], pos, t1 + t2, extra, stalls, words)


# ---------------------------------------------------------------------------------------------------
# unit state

@dataclass
class _W:
    """One WRITE's dynamic state."""
    ins: Write
    layer: int
    pe: int
    xbar: int
    nbytes: int
    a_start: int | None = None
    a_fin: int | None = None
    b_start: int | None = None
    b_fin: int | None = None
    target: np.ndarray | None = None


@dataclass
class _Driver:
    w: int  # index of the WRITE it programs
    row: int
    row_end: int  # finish of the current row
    new: np.ndarray  # the current row's target levels


@dataclass
class _Exec:
    idx: int
    finish: int | None  # known once the last item issued (COMPUTE) or at start (VECTOR/HOST)
    kind: str
    # COMPUTE pipeline
    n_items: int = 0
    next_item: int = 0
    read_free: int = 0  # first cycle the analog read unit is free
    adc_free: int = 0  # first cycle the ADCs are free
    slot_start: list = field(default_factory=list)  # first cycle of each slot (§10.3 bandwidth terms)
    bw: _Bandwidth | None = None
    # VECTOR lanes
    lane_work: int = 0
    lane_until: int = 0


def run(prog: Program, trace: Trace, cfg: Config, initial: np.ndarray | None = None,
        max_cycles: int = 50_000_000) -> RefRun:
    """Simulate ``prog`` cycle by cycle from crossbar levels ``initial`` (None: cold start, §8.6)."""
    L = cfg.levels
    B = prog.batch
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    slots = cfg.write_buffer_slots
    n_drv = cfg.write_drivers_per_pe
    lat, bpc = cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle
    T_mvm, c_adc, post_lat = cfg.cycles(cfg.t_read_mvm_ns), cfg.cols_per_adc, cfg.post_latency
    m = max(T_mvm, c_adc)
    cells = _Cells(cfg)
    shape = (cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols)
    levels = np.zeros(shape, np.uint8) if initial is None else np.array(initial, np.uint8).copy()
    if levels.shape != shape:
        raise ArasError(f"oracle: initial levels of shape {levels.shape}, expected {shape}")
    wear = np.zeros(shape, np.uint32)

    cnt = dict.fromkeys(COUNTERS, 0)
    changed = np.zeros((L, L), np.int64)
    layers: dict[int, RefLayer] = {}
    energy = [0.0, 0.0]  # total, read part

    def lay(li: int) -> RefLayer:
        return layers.setdefault(li, RefLayer())

    def add(li: int | None, key: str, v: int):
        if v:
            cnt[key] += v
            if li is not None:
                lc = lay(li).counters
                lc[key] = lc.get(key, 0) + v

    # ------------------------------------------------------------------ the two streams (§9.1)
    writes: list[_W] = []
    execs: list = []
    for ins in prog.instrs:
        if isinstance(ins, Write):
            t = ins.tile
            writes.append(_W(ins, ins.layer, ins.xbar // per_pe, ins.xbar, t.rows * t.wcols))
            lay(ins.layer)
        elif isinstance(ins, (Compute, Vector, Host)):
            execs.append(ins)
            lay(ins.layer)
        else:
            raise ArasError(f"oracle: unknown instruction {ins!r}")
    pe_queue: list[list[int]] = [[] for _ in range(cfg.n_pe)]  # per PE: its WRITEs in program order
    for n, w in enumerate(writes):
        pe_queue[w.pe].append(n)
    pe_head = [0] * cfg.n_pe
    e_times: list[list[int | None]] = [[None, None] for _ in execs]

    # ------------------------------------------------------------------ state
    done_gen = [0] * cfg.n_xbars  # completed WRITEs per crossbar (this run)
    busy = [False] * cfg.n_xbars
    exec_retired = 0
    slots_used = [0] * cfg.n_pe
    drivers: list[list[_Driver | None]] = [[None] * n_drv for _ in range(cfg.n_pe)]
    dram_next = 0  # next WRITE in write-stream order to transfer
    dram_cur: int | None = None
    dram_left = 0  # bytes still to deliver
    dram_beat_from = 0
    ex: _Exec | None = None
    ex_next = 0  # next execute instruction
    adaptive = bool(prog.gbuf_adaptive)  # READING R1
    active = 0
    for bk in prog.banks_init:
        active |= 1 << bk
    bank_cycles = 0
    writes_done = 0

    def mask(banks) -> int:
        m = 0
        for bk in banks:
            m |= 1 << bk
        return m

    # per-COMPUTE precomputation (Gbuffer traffic and per-item counters), keyed by execute index
    ctx: dict[int, tuple] = {}

    def compute_ctx(e: int):
        if e in ctx:
            return ctx[e]
        ins = execs[e]
        P = positions(trace, ins.layer)
        r_ = ins.replicas
        per = -(-P // r_)
        agg = []
        for q in range(r_):
            tes = [te for te in ins.tiles if te.replica == q]
            agg.append((len(tes), sum(te.rows for te in tes), sum(te.cphys for te in tes),
                        sum(1 for te in tes if te.family == "offset")))
        traffic = _compute_traffic(trace, prog, ins, cfg, B)
        ctx[e] = (P, per, agg, traffic, _bandwidth(trace, prog, ins, cfg, B, m))
        return ctx[e]

    def start_row(d: _Driver, t: int):
        """Row d.row of its tile begins in cycle t: read-before-write, encoder, row time (§8.3)."""
        w = writes[d.w]
        wi = w.ins
        r = d.row
        new = w.target[r]
        cph = new.shape[0]
        old = levels[w.xbar, r, :cph]
        li = w.layer
        add(li, "write_buffer_bytes", w.ins.tile.wcols)  # the one counted read of the row (§3.5)
        if wi.mode == 1:  # differential
            add(li, "row_reads_before_write", 1)
            add(li, "cells_read_before_write", cph)
            e = cph * cells.e_read
            energy[1] += e
            slow = -1
            ch = 0
            for j in range(cph):
                o, nw = int(old[j]), int(new[j])
                if o != nw:
                    ch += 1
                    changed[o][nw] += 1
                    wear[w.xbar, r, j] += 1
                    e += cells.ediff[o][nw]
                    slow = max(slow, cells.tdiff[o][nw])
            if ch == 0:
                add(li, "rows_skipped", 1)
                rc = cells.T_rd
            else:
                add(li, "rows_written", 1)
                rc = cells.T_rd + cells.T_set + slow
        elif wi.mode == 0:  # blind
            add(li, "rows_written", 1)
            add(li, "cells_written_blind", cph)
            maxp0 = 0
            e = cph * cells.e_reset
            for j in range(cph):
                nw = int(new[j])
                wear[w.xbar, r, j] += 1
                if nw != 0:
                    changed[0][nw] += 1
                    e += cells.e0[nw]
                maxp0 = max(maxp0, cells.p0[nw])
            rc = cells.T_set + cells.T_rst + maxp0 * cells.step
        else:
            raise ArasError(f"oracle: WRITE mode {wi.mode}")
        energy[0] += e
        lay(li).write_energy_pj += e
        d.new = new
        d.row_end = t + rc

    t = 0
    while True:
        if t > max_cycles:
            raise ArasError(f"oracle: no completion after {max_cycles} cycles (deadlock?)")
        # ============ phase 1: the edge at the start of cycle t retires what finishes at t
        if dram_cur is not None and dram_left == 0:  # its last beat was in cycle t - 1
            writes[dram_cur].a_fin = t
            dram_cur = None
        for p in range(cfg.n_pe):
            for k in range(n_drv):
                d = drivers[p][k]
                if d is None or t != d.row_end:
                    continue
                w = writes[d.w]
                levels[w.xbar, d.row, :d.new.shape[0]] = d.new  # the row's cells take their new values
                d.row += 1
                if d.row < w.ins.tile.rows:
                    start_row(d, t)  # rows of a tile back to back
                    continue
                w.b_fin = t
                done_gen[w.xbar] += 1
                busy[w.xbar] = False
                slots_used[p] -= 1  # the slot is freed at the finish of the tile's last row
                drivers[p][k] = None
                writes_done += 1
        if ex is not None and ex.finish is not None and t == ex.finish:
            e_times[ex.idx][1] = t
            exec_retired += 1
            active &= ~mask(execs[ex.idx].bank_off)  # off first ...
            ex = None
        if writes_done == len(writes) and exec_retired == len(execs) and dram_cur is None:
            cycles = t
            break
        # ============ phase 2: starts in cycle t
        # execute stream: one instruction at a time, in program order
        if ex is None and ex_next < len(execs):
            ins = execs[ex_next]
            ok = True
            if isinstance(ins, Compute):  # RAW: done_gen[x] >= need_gen for every tile entry
                ok = all(done_gen[te.xbar] >= te.need_gen for te in ins.tiles)
            if ok:
                e_times[ex_next][0] = t
                active |= mask(ins.bank_on)  # ... then on
                li = ins.layer
                if isinstance(ins, Compute):
                    _, per, _, _, bw = compute_ctx(ex_next)
                    ex = _Exec(ex_next, None, "compute", n_items=8 * per * B, read_free=t, adc_free=t, bw=bw)
                    # §10.3: slot s's items start at E_start + fetch(0) + Σ_{s' < s} pos(s') (+ (i mod 8)·m)
                    ex.slot_start = [t + bw.fill]
                    for ps in bw.pos[:-1]:
                        ex.slot_start.append(ex.slot_start[-1] + ps)
                    for k, v in bw.stalls.items():  # the bandwidth counters of the COMPUTE (reading R7)
                        add(li, k, v)
                    add(li, "gbuf_fetch_words", bw.fetch_words)
                elif isinstance(ins, Vector):
                    work = _vector_work(trace, li, B)
                    ly = trace.layers[li]
                    reads = sum(-(-B * _tensor(prog, nm).item_bytes // cfg.gbuf_word_bytes) for nm in ly.inputs)
                    add(li, "gbuf_reads", reads)  # READING R9
                    add(li, "gbuf_writes", -(-B * _tensor(prog, ly.output).item_bytes // cfg.gbuf_word_bytes))
                    lanes = -(-work // cfg.vector_lanes)
                    ex = _Exec(ex_next, t + lanes + cfg.vector_latency, "vector", lane_work=work,
                               lane_until=t + lanes)
                else:
                    ex = _Exec(ex_next, t + 1 + cfg.host_handoff_cycles, "host")
                ex_next += 1
        # DRAM channel: one transfer at a time, write-stream order
        if dram_cur is None and dram_next < len(writes):
            w = writes[dram_next]
            ok = slots_used[w.pe] < slots  # READING R8
            if ok and w.ins.barrier:
                ok = exec_retired >= w.ins.wait_exec
            if ok:
                slots_used[w.pe] += 1  # reserved when the transfer starts
                w.a_start = t
                dram_cur = dram_next
                dram_next += 1
                dram_left = w.nbytes
                dram_beat_from = t + lat
                add(w.layer, "dram_bytes", w.nbytes)
        # programming: per PE in order, lowest idle driver first; several may start in one cycle
        for p in range(cfg.n_pe):
            q = pe_queue[p]
            while pe_head[p] < len(q):
                w = writes[q[pe_head[p]]]
                if w.a_fin is None or exec_retired < w.ins.wait_exec or busy[w.xbar]:
                    break  # store-and-forward, WAR/barrier, WAW
                free = [k for k in range(n_drv) if drivers[p][k] is None]
                if not free:
                    break
                w.b_start = t
                busy[w.xbar] = True
                w.target = target_levels(w.ins, cfg)
                d = _Driver(q[pe_head[p]], 0, t, w.target[0])
                drivers[p][free[0]] = d
                start_row(d, t)
                pe_head[p] += 1
        # ============ phase 3: the activity of cycle t
        bank_cycles += bin(active).count("1") if adaptive else cfg.gbuf_banks
        if dram_cur is not None and t >= dram_beat_from and dram_left > 0:
            n = min(bpc, dram_left)  # the last beat of a tile is partial
            dram_left -= n
            add(writes[dram_cur].layer, "write_buffer_bytes", n)
        if ex is not None and ex.kind == "compute" and ex.next_item < ex.n_items:
            # READING R4: a read starts when the read unit is free and the ADCs are free when it ends
            # and (§10.3 bandwidth terms) not before its slot's start: a slot held back idles after its items
            if ex.read_free <= t and ex.adc_free <= t + T_mvm and ex.slot_start[ex.next_item // 8] <= t:
                i = ex.next_item
                ins = execs[ex.idx]
                li = ins.layer
                P, per, agg, (in_reads, out_writes, spill_w, restore_r, post, pwords), _ = compute_ctx(ex.idx)
                b, pi, plane = i // (8 * per), (i // 8) % per, i % 8
                for qi, (nx, rows, cph, noff) in enumerate(agg):
                    p = qi * per + pi
                    if p >= P:
                        continue  # a copy whose range is shorter idles at the end
                    add(li, "xbar_reads", nx)
                    add(li, "dac_activations", rows)
                    add(li, "adc_conversions", cph)
                    add(li, "input_sum_ops", noff)
                    if plane == 0:
                        add(li, "gbuf_reads", in_reads.get((b, p), 0))
                    if plane == 7:
                        add(li, "gbuf_writes", out_writes[(b, p)] + spill_w[(b, p)])
                        add(li, "gbuf_reads", restore_r[(b, p)])
                        add(li, "post_ops", post)
                        add(li, "psum_spill_words", pwords)
                ex.read_free = t + T_mvm
                ex.adc_free = t + T_mvm + c_adc
                ex.next_item += 1
                if ex.next_item == ex.n_items:
                    # post-processing of the last position, after the last slot's end and the tail
                    bw = ex.bw
                    ex.finish = ex.adc_free + post_lat + (bw.pos[-1] - 8 * m) + bw.tail
                    e_start = e_times[ex.idx][0]
                    duration = T_mvm + (ex.n_items - 1) * m + c_adc + post_lat + bw.extra  # §10.3's formula
                    if ex.finish != e_start + duration:
                        raise ArasError(f"oracle: COMPUTE #{ex.idx}: item schedule ends in {ex.finish}, "
                                        f"the duration formula in {e_start + duration}")
        elif ex is not None and ex.kind == "vector" and t < ex.lane_until:
            n = min(cfg.vector_lanes, ex.lane_work)
            ex.lane_work -= n
            add(execs[ex.idx].layer, "vector_ops", n)
        t += 1

    cnt["gbuf_active_bank_cycles"] = bank_cycles
    # ------------------------------------------------------------------ windows (§10.2, §10.5)
    for w in writes:
        lt = lay(w.layer)
        lt.wstart = w.b_start if lt.wstart is None else min(lt.wstart, w.b_start)
        lt.wend = w.b_fin - 1 if lt.wend is None else max(lt.wend, w.b_fin - 1)
        lt.write_cycles += w.b_fin - w.b_start
    for ins, (s, f) in zip(execs, e_times, strict=True):
        lt = lay(ins.layer)
        if lt.start is None:
            lt.start = s
        lt.end = f - 1
        if not isinstance(ins, Host):
            lt.compute_cycles += f - s
    return RefRun(cycles, cnt, changed, layers, [(s, f) for s, f in e_times],
                  [(w.a_start, w.a_fin, w.b_start, w.b_fin) for w in writes], levels, wear, energy[0], energy[1])
