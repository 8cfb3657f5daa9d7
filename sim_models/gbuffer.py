"""Gbuffer: bank allocation, liveness bank events and word-access counting (docs/architecture.md §7).

Tensors own whole banks while live (from the start of their producer's first execute instruction to
the finish of their last consumer's); aliases (reshape) share their source's banks. Access counts
follow the stream rules of §7.4: a stream counts one word each time it touches a byte in a word
other than its last one.
"""

from __future__ import annotations

import numpy as np

from aras.config import Config
from aras.errors import ArasError
from aras.program import (
    PMODE_COMPLETE,
    PMODE_FIRST,
    PMODE_LAST,
    PMODE_MIDDLE,
    Compute,
    Program,
    TensorAlloc,
    positions_of,
)
from aras.tiling import block_channels, positions
from aras.trace import Trace


def _item_bytes(trace: Trace, name: str) -> int:
    return int(np.prod(trace.tensors[name].shape))


def allocate(prog: Program, trace: Trace, cfg: Config) -> None:
    """Assign banks to every tensor and bank on/off events to every execute instruction (in place)."""
    B = prog.batch
    execs = prog.execs
    layer_execs: dict[int, list[int]] = {}
    for e, ins in enumerate(execs):
        layer_execs.setdefault(ins.layer, []).append(e)
    alias = {ly.output: ly.inputs[0] for ly in trace.layers if ly.op in ("reshape", "flatten")}

    def root(t):
        while t in alias:
            t = alias[t]
        return t

    first: dict[str, int] = {trace.input: -1}  # execute index where the tensor becomes live
    last: dict[str, int] = {}
    end = len(execs)
    for li, ly in enumerate(trace.layers):
        if li not in layer_execs:
            continue
        es = layer_execs[li]
        first.setdefault(root(ly.output), es[0])
        for t in ly.inputs:
            r = root(t)
            last[r] = max(last.get(r, -1), es[-1])
    for o in trace.outputs:
        last[root(o)] = end
    # psum buffers of split output blocks: live from their first to their last round.
    psums: dict[str, tuple[int, int, int]] = {}
    for e, ins in enumerate(execs):
        if isinstance(ins, Compute):
            for b in ins.blocks:
                if b.psum:
                    f, _, size = psums.get(b.psum, (e, e, 0))
                    P = positions(trace, ins.layer)
                    psums[b.psum] = (f, e, B * P * b.ncols * 4)
    items = {t: B * _item_bytes(trace, t) for t in first}
    for name, (f, l_, size) in psums.items():
        first[name], last[name], items[name] = f, l_, size
    for t in first:
        last.setdefault(t, first[t])  # produced but never read (dead output of a layer)

    nb, bank = cfg.gbuf_banks, cfg.gbuf_bank_bytes
    owner = [None] * nb
    allocs: dict[str, TensorAlloc] = {}
    on: dict[int, set] = {}
    off: dict[int, set] = {}
    # Walk execute indices; at index e allocate tensors becoming live, then free those whose last use is e.
    by_first: dict[int, list[str]] = {}
    for t, f in first.items():
        by_first.setdefault(f, []).append(t)
    by_last: dict[int, list[str]] = {}
    for t, lu in last.items():
        by_last.setdefault(lu, []).append(t)
    for e in range(-1, end + 1):
        for t in sorted(by_first.get(e, []), key=lambda s: (s not in psums, s)):
            n = max(1, -(-items[t] // bank))
            start = _first_fit(owner, n)
            if start is None:
                lname = trace.layers[execs[e].layer].name if 0 <= e < end else "input"
                raise ArasError(f"config {cfg.name!r}: Gbuffer too small at layer {lname!r}: tensor {t!r} needs {n} "
                                f"banks of {bank} B (batch {B}); fields 'gbuf_banks' x 'gbuf_bank_bytes'")
            banks = tuple(range(start, start + n))
            for b in banks:
                owner[b] = t
            allocs[t] = TensorAlloc(t, items[t] // B if t not in psums else items[t], banks, start * bank,
                                    dtype="int32" if t in psums else "int8")
            if e >= 0:
                on.setdefault(e, set()).update(banks)
        if e >= 0:
            for t in by_last.get(e, []):
                if t in allocs and e < end:
                    for b in allocs[t].banks:
                        owner[b] = None
                    off.setdefault(e, set()).update(allocs[t].banks)
    for t, src in alias.items():
        r = root(src)
        if r in allocs:
            a = allocs[r]
            allocs[t] = TensorAlloc(t, a.item_bytes, a.banks, a.base, alias_of=r)
    for e, ins in enumerate(execs):
        ins.bank_on = tuple(sorted(on.get(e, ())))
        ins.bank_off = tuple(sorted(off.get(e, ())))
    prog.tensors = allocs
    prog.banks_init = allocs[trace.input].banks


def _first_fit(owner: list, n: int) -> int | None:
    run = 0
    for i, o in enumerate(owner):
        run = run + 1 if o is None else 0
        if run == n:
            return i - n + 1
    return None


# ------------------------------------------------------------------------------------------- counting
def _count_words(words: np.ndarray, valid: np.ndarray) -> int:
    """Σ over rows of the word changes along each row, skipping invalid entries (first valid counts 1)."""
    if words.size == 0:
        return 0
    # The valid entries in row-major order: each counts when it starts a row or its word differs from the
    # previous valid entry's (the previous one of the same row). Words of valid entries are >= 0.
    if valid.all():
        return words.shape[0] + int(np.count_nonzero(words[:, 1:] != words[:, :-1]))
    rows = np.nonzero(valid)[0]
    w = words[valid]
    if w.size == 0:
        return 0
    return 1 + int(np.count_nonzero((w[1:] != w[:-1]) | (rows[1:] != rows[:-1])))


def compute_traffic(prog: Program, trace: Trace, cfg: Config, ins: Compute) -> tuple[int, int, int]:
    """(gbuf_reads, gbuf_writes, psum_spill_words) of one COMPUTE (§7.4)."""
    ly = trace.layers[ins.layer]
    lt = prog.tilings[ins.layer]
    B, W = prog.batch, cfg.gbuf_word_bytes
    tin = prog.tensors[ly.inputs[0]]
    tout = prog.tensors[ly.output]
    in_shape = trace.tensors[ly.inputs[0]].shape
    out_shape = trace.tensors[ly.output].shape
    reads = writes = spill = 0
    P = positions(trace, ins.layer)
    # --- input fetch: one stream per distinct (gchunk, rchunk, copy), over the copy's positions
    streams = sorted({(te.tag[1], te.tag[2], te.replica) for te in ins.tiles})
    for g, r, q in streams:
        rel, valid = _row_addresses(ly, lt, g, r, cfg, in_shape, P)
        span = positions_of(P, ins.replicas, q)
        rel, valid = rel[span.start:span.stop], valid[span.start:span.stop]
        for b in range(B):
            words = (tin.base + b * tin.item_bytes + rel) // W
            reads += _count_words(words, valid)
    # --- output writes (complete / last blocks) and psum traffic
    chans = []
    for blk in ins.blocks:
        if blk.pmode in (PMODE_COMPLETE, PMODE_LAST):
            chans.extend(block_channels(lt, blk.g, blk.c))
        if blk.psum:
            pa = prog.tensors[blk.psum]
            per = blk.ncols * 4
            start = pa.base + (np.arange(B * P) * per)
            nwords = int(((start + per - 1) // W - start // W + 1).sum())
            if blk.pmode in (PMODE_FIRST, PMODE_MIDDLE):
                writes += nwords
                spill += B * P * blk.ncols
            if blk.pmode in (PMODE_MIDDLE, PMODE_LAST):
                reads += nwords
                spill += B * P * blk.ncols
    if chans:
        ch = np.asarray(chans, np.int64)
        p = np.arange(P, dtype=np.int64)
        if ly.op == "conv2d":
            rel = ch[None, :] * (out_shape[1] * out_shape[2]) + p[:, None]
        else:
            rel = p[:, None] * out_shape[-1] + ch[None, :]
        ok = np.ones(rel.shape, bool)
        for b in range(B):
            writes += _count_words((tout.base + b * tout.item_bytes + rel) // W, ok)
    return reads, writes, spill


def _row_addresses(ly, lt, g: int, r: int, cfg: Config, in_shape, P: int):
    """Byte offsets (P, rows) of a tile's input vector entries within one item, and their validity."""
    R = cfg.xbar_rows
    if ly.op == "linear":
        K = in_shape[-1]
        k = np.arange(r * R, min(lt.kg, (r + 1) * R))
        rel = np.arange(P)[:, None] * K + k[None, :]
        return rel, np.ones(rel.shape, bool)
    C, H, Wd = in_shape
    kh, kw = ly.arrays["weight"].shape[2:]
    sh, sw = ly.attrs["stride"]
    pt, pl = ly.attrs["pads"][0], ly.attrs["pads"][1]
    dh, dw = ly.attrs["dilation"]
    out_w = (Wd + pl + ly.attrs["pads"][3] - dw * (kw - 1) - 1) // sw + 1
    cin_g = C // lt.groups
    if lt.packed:
        groups = range(g * lt.pack, min(lt.groups, (g + 1) * lt.pack))
        rows = [(gr, kk) for gr in groups for kk in range(lt.kg)]
    else:
        rows = [(g, kk) for kk in range(r * R, min(lt.kg, (r + 1) * R))]
    gr = np.array([a for a, _ in rows])
    kk = np.array([b for _, b in rows])
    c = gr * cin_g + kk // (kh * kw)
    i = (kk // kw) % kh
    j = kk % kw
    # Position p = (oh, ow) = divmod(p, out_w): the row part (oh) and the column part (ow) of every address
    # and validity term are computed once per output row / column and combined by broadcasting.
    oh = np.arange(-(-P // out_w))
    ow = np.arange(out_w)
    ih = oh[:, None] * sh - pt + i[None, :] * dh
    iw = ow[:, None] * sw - pl + j[None, :] * dw
    n = len(rows)
    valid = (((ih >= 0) & (ih < H))[:, None, :] & ((iw >= 0) & (iw < Wd))[None, :, :]).reshape(-1, n)[:P]
    rel = ((c[None, :] * (H * Wd) + ih * Wd)[:, None, :] + iw[None, :, :]).reshape(-1, n)[:P]
    return rel, valid


def vector_traffic(prog: Program, trace: Trace, cfg: Config, li: int) -> tuple[int, int]:
    ly = trace.layers[li]
    B, W = prog.batch, cfg.gbuf_word_bytes
    reads = sum(-(-B * _item_bytes(trace, t) // W) for t in ly.inputs)
    return reads, -(-B * _item_bytes(trace, ly.output) // W)
