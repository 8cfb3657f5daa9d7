"""The bandwidth terms of a COMPUTE (docs/architecture.md §10.3, "Bandwidth-bounded positions").

A COMPUTE's item-positions (slots) s = 0 … S−1 (S = B·P', batch item outer) each last
``pos_time(s) = max(8·m, fetch(s+1), drain(s−1), post(s−2))``: the next slot's inputs are fetched into
the other half of the input buffers during slot s, slot s−1's partial sums are drained into the PE
accumulators and slot s−2's complete blocks are requantized. Before slot 0 the first fetch fills the
buffers; after the last slot its drain and post finish. The terms depend on geometry only (never on
data), so a round is computed once and cached. A zero ``fetch_ports`` / ``psum_lanes`` /
``post_lanes`` makes that term 0 (the v1 rule: unbounded).

fetch(s)  Σ over the copies running in s of Σ over the runs of consecutive words in the word set
          the copy's rows read at its position, ⌈run / fetch_ports⌉ (§7.5 layout: channel-last,
          channels padded to whole words when C ≥ W, dense when C < W; each item word-aligned).
drain(s)  max over PEs of max(local + incoming, outgoing): local = Σ over the PE's running tiles
          ⌈wcols / psum_lanes⌉; each block whose running tiles span PEs sends ⌈ncols / psum_lanes⌉
          from every non-leader PE over its link into the leader PE.
post(s)   max over PEs of ⌈outputs of the complete / last blocks the PE leads / post_lanes⌉.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aras.config import Config
from aras.program import PMODE_COMPLETE, PMODE_LAST, Compute, Program, positions_of
from aras.tiling import LayerTiling, cols_per_weight, positions
from aras.trace import SHAPE_OPS, Trace

STALLS = ("stall_fill", "stall_fetch", "stall_drain", "stall_post")
COUNTERS = STALLS + ("gbuf_fetch_words",)


@dataclass(frozen=True)
class RoundTerms:
    """The added cycles of one COMPUTE by cause (:data:`STALLS`) and the words its fetch reads."""

    fill: int = 0
    fetch: int = 0
    drain: int = 0
    post: int = 0
    fetch_words: int = 0

    @property
    def total(self) -> int:
        return self.fill + self.fetch + self.drain + self.post

    def counters(self) -> dict[str, int]:
        return dict(zip(COUNTERS, (self.fill, self.fetch, self.drain, self.post, self.fetch_words), strict=True))


NONE = RoundTerms()


def bounded(cfg: Config) -> bool:
    return bool(cfg.fetch_ports or cfg.psum_lanes or cfg.post_lanes)


def round_terms(prog: Program, trace: Trace, cfg: Config, ins: Compute, cache: dict | None = None) -> RoundTerms:
    """The bandwidth terms of COMPUTE ``ins`` (module docstring); ``cache`` keeps fetch word sets."""
    if not bounded(cfg):
        return NONE
    cache = {} if cache is None else cache
    m8 = 8 * max(cfg.cycles(cfg.t_read_mvm_ns), cfg.cols_per_adc)
    P, reps, B = positions(trace, ins.layer), ins.replicas, prog.batch
    P1 = -(-P // reps)
    lens = np.array([len(positions_of(P, reps, q)) for q in range(reps)])
    # per local position l: fetch cycles and words of the running copies
    f_cyc = np.zeros(P1, np.int64)
    f_words = np.zeros(P1, np.int64)
    if cfg.fetch_ports:
        rows: dict[int, set] = {}
        for te in ins.tiles:
            rows.setdefault(te.replica, set()).add((te.tag[1], te.tag[2]))
        for q, rs in rows.items():
            words, cyc = fetch_per_position(trace, prog.tilings[ins.layer], cfg, ins.layer, tuple(sorted(rs)), cache)
            span = positions_of(P, reps, q)
            f_words[: len(span)] += words[span.start:span.stop]
            f_cyc[: len(span)] += cyc[span.start:span.stop]
    # drain and post per local position, by the set of running copies (copy q runs while l < lens[q])
    drain = np.zeros(P1, np.int64)
    post = np.zeros(P1, np.int64)
    if cfg.psum_lanes or cfg.post_lanes:
        leaders = block_leaders(ins, cfg)
        for n_run in np.unique(lens[lens > 0])[::-1]:  # longest first: shorter ranges overwrite the early slots
            d, o = _reduction(ins, cfg, lens >= n_run, leaders)
            sel = np.arange(P1) < n_run
            drain[sel], post[sel] = d, o
    # the slot sequence: B items of P' positions
    f_cyc, drain, post = (np.tile(a, B) for a in (f_cyc, drain, post))
    S = f_cyc.size
    nxt = np.append(f_cyc[1:], 0)
    prev_d = np.insert(drain[:-1], 0, 0)
    prev2_o = np.concatenate((np.zeros(min(2, S), np.int64), post[:-2]))
    excess = np.maximum(np.maximum(nxt, prev_d), np.maximum(prev2_o, m8)) - m8
    is_f = nxt >= np.maximum(prev_d, prev2_o)  # ties: fetch, then drain, then post
    is_d = ~is_f & (prev_d >= prev2_o)
    tail_wait = max(int(drain[-1]), int(post[-2]) if S > 1 else 0)  # last slot's drain; post of the one before
    tail_d = int(drain[-1]) if int(drain[-1]) >= tail_wait else 0
    return RoundTerms(
        fill=int(f_cyc[0]), fetch=int(excess[is_f].sum()), drain=int(excess[is_d].sum()) + tail_d,
        post=int(excess[~is_f & ~is_d].sum()) + tail_wait - tail_d + int(post[-1]),
        fetch_words=B * int(f_words.sum()))


# ----------------------------------------------------------------------------------------- fetch
def stored_source(trace: Trace, name: str) -> str:
    """The tensor a flatten/reshape alias chain ends at (the one the Gbuffer holds)."""
    prod = {ly.output: ly for ly in trace.layers}
    while name in prod and prod[name].op in SHAPE_OPS:
        name = prod[name].inputs[0]
    return name


def channel_pitch(C: int, W: int) -> int:
    """Bytes per pixel in the §7.5 layout: C channels padded to whole words, or dense when C < W."""
    return C if C < W else -(-C // W) * W


def element_bytes(shape: tuple[int, ...], W: int, e: np.ndarray) -> np.ndarray:
    """Byte offset within an item of the elements ``e`` (logical row-major index: CHW for a CNN tensor)
    of a stored tensor of ``shape`` under the §7.5 layout."""
    if len(shape) == 3:
        C, H, Wd = shape
        c, pix = np.divmod(e, H * Wd)
    else:
        C = shape[-1]
        pix, c = np.divmod(e, C)
    return pix * channel_pitch(C, W) + c


def _rows(lt: LayerTiling, g: int, r: int, R: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, in-group row) of every used row of the tiles of (gchunk g, rchunk r)."""
    if lt.packed:
        grs = np.arange(g * lt.pack, min(lt.groups, (g + 1) * lt.pack))
        return np.repeat(grs, lt.kg), np.tile(np.arange(lt.kg), grs.size)
    kk = np.arange(r * R, min(lt.kg, (r + 1) * R))
    return np.full(kk.size, g), kk


def run_cost(words: np.ndarray, ports: int) -> tuple[int, int]:
    """(distinct words, Σ over runs of consecutive words ⌈run / ports⌉) of sorted distinct words."""
    if words.size == 0:
        return 0, 0
    cut = np.flatnonzero(np.diff(words) != 1) + 1
    runs = np.diff(np.concatenate(([0], cut, [words.size])))
    return int(words.size), int((-(-runs // ports)).sum())


def fetch_per_position(trace: Trace, lt: LayerTiling, cfg: Config, li: int, streams: tuple, cache: dict):
    """(words, cycles) per position p < P of one copy whose tiles are the (gchunk, rchunk) ``streams``."""
    key = ("fetch", li, streams, cfg.fetch_ports, cfg.gbuf_word_bytes)
    if key in cache:
        return cache[key]
    ly = trace.layers[li]
    W, R = cfg.gbuf_word_bytes, cfg.xbar_rows
    P = positions(trace, li)
    parts = [_rows(lt, g, r, R) for g, r in streams]
    gr, kk = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    src = trace.tensors[stored_source(trace, ly.inputs[0])].shape
    in_shape = trace.tensors[ly.inputs[0]].shape
    if ly.op == "conv2d" and tuple(src) == tuple(in_shape):
        out = _conv_fetch(ly, trace, lt, cfg, gr, kk)
    else:  # linear (or a conv on an alias): explicit word sets, positions with the same shape share one
        if ly.op == "conv2d":
            e, valid = _conv_elements(ly, trace, lt, gr, kk)
        else:
            K = in_shape[-1]
            e = np.arange(P)[:, None] * K + kk[None, :]
            valid = np.ones(e.shape, bool)
        byte = element_bytes(tuple(src), W, e)
        word = np.where(valid, byte // W, -1)
        out = _per_row_cost(word, cfg.fetch_ports)
    cache[key] = out
    return out


def _per_row_cost(word: np.ndarray, ports: int) -> tuple[np.ndarray, np.ndarray]:
    """(words, cycles) per row of a (P, n) word matrix (−1: not read), rows equal up to a shift shared."""
    shift = np.where(word >= 0, word, np.iinfo(np.int64).max).min(axis=1, initial=np.iinfo(np.int64).max)
    shift = np.where(shift == np.iinfo(np.int64).max, 0, shift)
    rel = np.where(word >= 0, word - shift[:, None], -1)
    uniq, inv = np.unique(rel, axis=0, return_inverse=True)
    cost = np.array([run_cost(np.unique(u[u >= 0]), ports) for u in uniq], np.int64).reshape(-1, 2)
    inv = inv.reshape(-1)
    return cost[inv, 0], cost[inv, 1]


def _conv_elements(ly, trace: Trace, lt: LayerTiling, gr: np.ndarray, kk: np.ndarray):
    """Logical input elements (P, n) of rows (gr, kk) (rows ordered (c, i, j) in a group, §5.1) and their
    validity (padding reads nothing)."""
    C, H, Wd = trace.tensors[ly.inputs[0]].shape
    c, ih, iw = _conv_taps(ly, trace, lt, gr, kk)
    valid = (ih >= 0) & (ih < H) & (iw >= 0) & (iw < Wd)
    return c[None, :] * (H * Wd) + ih * Wd + iw, valid


def _conv_taps(ly, trace: Trace, lt: LayerTiling, gr: np.ndarray, kk: np.ndarray):
    """Input channel per row and input (h, w) per (position, row)."""
    C = trace.tensors[ly.inputs[0]].shape[0]
    kh, kw = ly.arrays["weight"].shape[2:]
    sh, sw = ly.attrs["stride"]
    pt, pl = ly.attrs["pads"][0], ly.attrs["pads"][1]
    dh, dw = ly.attrs["dilation"]
    Wo = trace.tensors[ly.output].shape[2]
    c = gr * (C // lt.groups) + kk // (kh * kw)
    i, j = (kk // kw) % kh, kk % kw
    oh, ow = np.divmod(np.arange(positions(trace, lt.layer)), Wo)
    return c, oh[:, None] * sh - pt + i[None, :] * dh, ow[:, None] * sw - pl + j[None, :] * dw


def _conv_fetch(ly, trace: Trace, lt: LayerTiling, cfg: Config, gr: np.ndarray, kk: np.ndarray):
    """Conv on a stored input: positions fall into classes (which kernel rows and columns lie inside the
    image, and the position's base byte modulo W); one word set per class."""
    C, H, Wd = trace.tensors[ly.inputs[0]].shape
    W = cfg.gbuf_word_bytes
    pitch = channel_pitch(C, W)
    kh, kw = ly.arrays["weight"].shape[2:]
    sh, sw = ly.attrs["stride"]
    pt, pl = ly.attrs["pads"][0], ly.attrs["pads"][1]
    dh, dw = ly.attrs["dilation"]
    Ho, Wo = trace.tensors[ly.output].shape[1:]
    c = gr * (C // lt.groups) + kk // (kh * kw)
    i, j = (kk // kw) % kh, kk % kw
    rel = (i * dh * Wd + j * dw) * pitch + c  # bytes from the position's top-left tap

    def pattern(n_out, stride, pad, dil, k, size):
        x = np.arange(n_out)[:, None] * stride - pad + np.arange(k)[None, :] * dil
        return np.unique((x >= 0) & (x < size), axis=0, return_inverse=True)

    pat_a, cls_a = pattern(Ho, sh, pt, dh, kh, H)
    pat_b, cls_b = pattern(Wo, sw, pl, dw, kw, Wd)
    oh, ow = np.divmod(np.arange(Ho * Wo), Wo)
    base = ((oh * sh - pt) * Wd + ow * sw - pl) * pitch
    res, cls_r = np.unique(base % W, return_inverse=True)
    cls = np.stack((cls_a.reshape(-1)[oh], cls_b.reshape(-1)[ow], cls_r.reshape(-1)), axis=1)
    keys, inv = np.unique(cls, axis=0, return_inverse=True)
    cost = np.zeros((len(keys), 2), np.int64)
    for k, (a, b, r) in enumerate(keys):
        ok = pat_a[a][i] & pat_b[b][j]
        cost[k] = run_cost(np.unique((res[r] + rel[ok]) // W), cfg.fetch_ports)
    inv = inv.reshape(-1)
    return cost[inv, 0], cost[inv, 1]


# ------------------------------------------------------------------------------- drain and post
def block_leaders(ins: Compute, cfg: Config) -> dict[tuple[int, int, int], int]:
    """Leader PE of every (gchunk, cchunk, copy) block: among the PEs holding its tiles, the one with the
    least output load so far, blocks taken by decreasing outputs (ties: more columns, then block order;
    among PEs: the lowest)."""
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    pes: dict[tuple, set] = {}
    for te in ins.tiles:
        pes.setdefault((te.tag[1], te.tag[3], te.replica), set()).add(te.xbar // per_pe)
    blocks = {(b.g, b.c): b for b in ins.blocks}
    load = [0] * cfg.n_pe

    def outs(k):
        b = blocks[k[:2]]
        return b.ncols if b.pmode in (PMODE_COMPLETE, PMODE_LAST) else 0

    leaders = {}
    for k in sorted(pes, key=lambda k: (-outs(k), -blocks[k[:2]].ncols, k)):
        pe = min(sorted(pes[k]), key=lambda q: load[q])
        leaders[k] = pe
        load[pe] += outs(k)
    return leaders


def _reduction(ins: Compute, cfg: Config, running: np.ndarray, leaders: dict) -> tuple[int, int]:
    """(drain, post) cycles of one slot in which the copies ``running`` compute."""
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    cpw = cols_per_weight(ins.tiles[0].family, cfg.slices)
    pl, ol = cfg.psum_lanes, cfg.post_lanes
    local = np.zeros(cfg.n_pe, np.int64)
    inc = np.zeros(cfg.n_pe, np.int64)
    sent = np.zeros(cfg.n_pe, np.int64)
    outs = np.zeros(cfg.n_pe, np.int64)
    pes: dict[tuple, set] = {}
    for te in ins.tiles:
        if running[te.replica]:
            pe = te.xbar // per_pe
            if pl:
                local[pe] += -(-(te.cphys // cpw) // pl)
            pes.setdefault((te.tag[1], te.tag[3], te.replica), set()).add(pe)
    blocks = {(b.g, b.c): b for b in ins.blocks}
    for k, ps in pes.items():
        b, lead = blocks[k[:2]], leaders[k]
        if b.pmode in (PMODE_COMPLETE, PMODE_LAST):
            outs[lead] += b.ncols
        if pl:
            for q in ps - {lead}:
                n = -(-b.ncols // pl)
                inc[lead] += n
                sent[q] += n
    drain = int(np.maximum(local + inc, sent).max()) if pl else 0
    post = int((-(-outs // ol)).max()) if ol else 0
    return drain, post
