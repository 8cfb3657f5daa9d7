#!/usr/bin/env python3
"""Stage 0 of docs/uarch-v3.md §4: bandwidth demand of every COMPUTE round, and the defaults.

For each network, the steady-state program of the golden scheduler (mode ``aras``, chosen as
``sim_models.perf.simulate`` chooses it: first-free or similarity placement, whichever writes with
less energy) is walked round by round. For every position of a round the three demand terms of
docs/uarch-v3.md §3 are computed under the D1 layout (channel-blocked words of W = gbuf_word_bytes
channels, NHWC; conv weight rows in (i, j, c) order, D2; flatten an alias with rows in (h, w, c)
order over the real channels, D3):

* ``fetch(p)``: per distinct input stream (gchunk, rchunk, copy), the words its rows touch at p
  (padding touches nothing), grouped in runs of consecutive word addresses;
  fetch_cycles = Σ_streams Σ_runs ⌈run / fetch_ports⌉;
* ``drain(p)``: max over PEs of Σ over the PE's running crossbars ⌈wcols / psum_lanes⌉, plus, for
  each block whose tiles span PEs, ⌈ncols / psum_lanes⌉ per non-leader PE, serialised on the chip bus;
* ``post(p)``: max over PEs of ⌈outputs of the complete/last blocks the PE leads / post_lanes⌉
  (the leader of a block: its lowest crossbar).

``pos_time(p) = max(8·m, fetch(p+1), drain(p−1), post(p−1))``; a round's stall is
``Σ_p pos_time(p) − 8·m·P' + fetch(0)`` (the fill; pipeline constants, configuration load and tail
are not counted). Each position's excess goes to its largest term (ties: fetch, drain, post), the
fill to fetch. VECTOR and HOST instructions are ignored (bounded by the vector unit today). Stall %
is of the new total, today's cycles (``sim_models.timing.run``) + stall; the exact total (the timing
model re-run with every COMPUTE lengthened by its stall) is printed for the selected setting.
Positions of a layer fall into few classes (which kernel rows / columns lie inside the image), so
each term is computed once per class and broadcast with numpy.

Variants, evaluated at every grid point (the rule of §3 is ``stream`` with ``bus``):

fetch      ``stream``        §3 as written;
           ``stream+banks``  D4 literally: a run reads at most as many words per cycle as the input
                             tensor owns banks under D1;
           ``union``         one fetch stream per copy: the union of the round's rows' words, each word
                             read once and broadcast to every row that needs it;
           ``union+banks``   both;
           ``union+dense``   ``union``, and tensors with fewer than W channels stored without channel
                             padding (dense NHWC bytes, several positions per word).
reduction  ``bus``           §3 as written;
           ``bus+balance``   each block's leader is the PE of its tiles with the least post load so far
                             (greedy, largest blocks first) instead of its lowest crossbar's PE;
           ``links+balance`` balanced leaders and one forwarding link per PE into the leader's
                             accumulator instead of one serial chip bus:
                             drain = max_PE max(local + incoming, outgoing).

Usage: .venv/bin/python scripts/bandwidth_study.py --config paper [--models resnet50 vgg16]
       [--fetch-ports 1 2 4 8] [--psum-lanes 8 16 32] [--post-lanes 4 8 16] [--json OUT]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from unittest import mock

import numpy as np

from aras.config import Config
from aras.config import load as load_config
from aras.models import REGISTRY, load_model
from aras.program import PMODE_COMPLETE, PMODE_FIRST, PMODE_LAST, PMODE_MIDDLE, Compute, Program, positions_of
from aras.tiling import LayerTiling, cols_per_weight, positions
from aras.trace import Trace
from sim_models import timing
from sim_models.perf import _steady
from sim_models.scheduler import Options, compute_cycles

TERMS = ("fetch", "drain", "post")
FETCH_VARIANTS = ("stream", "stream+banks", "union", "union+banks", "union+dense")
REDUCTION_VARIANTS = ("bus", "bus+balance", "links+balance")
THRESHOLD = 10.0  # % of the new total

# Rough cost model in gate equivalents (GE, NAND2 = 1), used only to rank feasible grid points.
GE_MUX2 = 2.33  # 2:1 multiplexer, per bit
GE_FA = 6.0  # full adder
GE_MULT32 = 32 * 32 + 32 * 31 * GE_FA  # 32x32 array multiplier: partial-product ANDs + adder array
GE_REQUANT_EXTRA = 64 * GE_FA + 5 * 32 * GE_MUX2 + 200  # SRDHM rounding add, RDBPOT shifter, clamp


# ------------------------------------------------------------------------------------------ program
def steady_program(trace: Trace, cfg: Config) -> tuple[Program, timing.Run, dict]:
    """The steady-state program exactly as ``sim_models.perf.simulate`` picks it in mode aras."""
    opts = Options.for_mode("aras")
    cache: dict = {}
    if not opts.placement:
        prog, run = _steady(trace, cfg, "aras", opts, cache)
        return prog, run, cache
    ff_prog, ff_run = _steady(trace, cfg, "aras", replace(opts, placement=False), cache)
    prog, run = _steady(trace, cfg, "aras", opts, cache, ff_prog.notes["cold_program"])
    if ff_run.write_energy_pj <= run.write_energy_pj:
        prog, run = ff_prog, ff_run
    return prog, run, cache


# ----------------------------------------------------------------------------------- input geometry
@dataclass
class LayerGeo:
    """Where a crossbar layer's rows read in the Gbuffer, with positions grouped in classes.

    A row reads address unit ``base(p) + off`` (units: words for D1, bytes for the dense layout),
    i.e. word ``(res(p) + off) // unit`` relative to the position's base word, if its kernel row i and
    column j lie inside the image. Class ``(a, b, r)`` of a position: row pattern ``pat_a[a]`` (over
    i), column pattern ``pat_b[b]`` (over j), residue ``res[r] = base(p) mod unit``."""

    lt: LayerTiling
    P: int
    pos_class: np.ndarray  # (P,) class index (a·n_b + b)·n_res + r
    pat_a: np.ndarray  # (n_a, kh) bool
    pat_b: np.ndarray  # (n_b, kw) bool
    res: np.ndarray  # (n_res,) residues
    unit: int  # address units per word (1: word offsets; W: byte offsets)
    in_banks: int  # banks the input tensor owns (batch included)
    row_offsets: object  # (group, in-group row) arrays -> (i, j, off)
    cache: dict = field(default_factory=dict)

    @property
    def n_class(self) -> int:
        return len(self.pat_a) * len(self.pat_b) * len(self.res)


def _patterns(n_out: int, stride: int, pad: int, dil: int, k: int, size: int):
    x = np.arange(n_out)[:, None] * stride - pad + np.arange(k)[None, :] * dil
    pats, inv = np.unique((x >= 0) & (x < size), axis=0, return_inverse=True)
    return pats, inv.reshape(-1)


def _source_3d(trace: Trace, name: str) -> tuple[int, int, int] | None:
    """(C, H, W) of the CNN tensor that a flat tensor aliases through flatten/reshape, if any (D3)."""
    prod = {ly.output: ly for ly in trace.layers}
    while name in prod and prod[name].op in ("flatten", "reshape"):
        name = prod[name].inputs[0]
    shape = trace.tensors[name].shape
    return tuple(shape) if len(shape) == 3 else None


def layer_geo(trace: Trace, prog: Program, cfg: Config, li: int, dense_small_c: bool = False) -> LayerGeo:
    ly = trace.layers[li]
    lt = prog.tilings[li]
    W = cfg.gbuf_word_bytes
    P = positions(trace, li)
    in_shape = trace.tensors[ly.inputs[0]].shape
    one = np.ones((1, 1), bool)
    if ly.op == "conv2d":
        C, H, Wd = in_shape
        kh, kw = ly.arrays["weight"].shape[2:]
        sh, sw = ly.attrs["stride"]
        pt, pl = ly.attrs["pads"][0], ly.attrs["pads"][1]
        dh, dw = ly.attrs["dilation"]
        Ho, Wo = trace.tensors[ly.output].shape[1:]
        pat_a, cls_a = _patterns(Ho, sh, pt, dh, kh, H)
        pat_b, cls_b = _patterns(Wo, sw, pl, dw, kw, Wd)
        cin_g = C // lt.groups
        dense = dense_small_c and C < W
        Cb = -(-C // W)
        pix = C if dense else Cb  # address units per pixel
        unit = W if dense else 1

        def row_offsets(gr, kk):  # D2: in-group row kk is (tap, channel) = (kk // cin_g, kk % cin_g)
            tap, cc = kk // cin_g, kk % cin_g
            i, j = tap // kw, tap % kw
            c = gr * cin_g + cc
            return i, j, (i * dh * Wd + j * dw) * pix + (c if dense else c // W)

        oh, ow = np.divmod(np.arange(P), Wo)
        base = ((oh * sh - pt) * Wd + ow * sw - pl) * pix
        res, cls_r = np.unique(base % unit, return_inverse=True)
        pos_class = (cls_a[oh] * len(pat_b) + cls_b[ow]) * res.size + cls_r.reshape(-1)
        item_bytes = H * Wd * (C if dense else Cb * W)
    else:
        src = _source_3d(trace, ly.inputs[0]) if len(in_shape) == 1 else None
        pat_a = pat_b = one
        res, unit = np.zeros(1, np.int64), 1
        pos_class = np.zeros(P, np.int64)
        if src is not None:  # D3: rows in (h, w, c) order over the real channels of a D1 tensor
            C, H, Wd = src
            Cb = -(-C // W)

            def row_offsets(gr, kk):
                return np.zeros_like(kk), np.zeros_like(kk), (kk // C) * Cb + (kk % C) // W

            item_bytes = H * Wd * Cb * W
        else:  # (T, D) sequence or (K,) flat tensor: (t, db) words

            def row_offsets(gr, kk):
                return np.zeros_like(kk), np.zeros_like(kk), kk // W

            item_bytes = int(np.prod(in_shape[:-1])) * -(-in_shape[-1] // W) * W
    in_banks = max(1, -(-cfg.batch * item_bytes // cfg.gbuf_bank_bytes))
    return LayerGeo(lt, P, pos_class, pat_a, pat_b, res, unit, in_banks, row_offsets)


def _stream_rows(lt: LayerTiling, g: int, r: int, R: int) -> tuple[np.ndarray, np.ndarray]:
    """(group, in-group row) of every used row of stream (gchunk g, rchunk r)."""
    if lt.packed:
        grs = np.arange(g * lt.pack, min(lt.groups, (g + 1) * lt.pack))
        return np.repeat(grs, lt.kg), np.tile(np.arange(lt.kg), grs.size)
    kk = np.arange(r * R, min(lt.kg, (r + 1) * R))
    return np.full(kk.size, g), kk


def _run_stats(words: np.ndarray, ports: np.ndarray) -> np.ndarray:
    """[words, runs, Σ_runs ⌈run / q⌉ for q in ports] of sorted distinct word addresses."""
    n = words.size
    if n == 0:
        return np.zeros(2 + ports.size, np.int64)
    cut = np.flatnonzero(np.diff(words) != 1) + 1
    lens = np.diff(np.concatenate(([0], cut, [n])))
    return np.concatenate(([n, lens.size], (-(-lens[None, :] // ports[:, None])).sum(axis=1)))


def class_table(geo: LayerGeo, rows: tuple[tuple[int, int], ...], ports: np.ndarray, R: int) -> np.ndarray:
    """(2 + len(ports), n_class): words, runs and fetch cycles per port count of one fetch stream
    that reads the words of the rows of ``rows`` ((gchunk, rchunk) pairs), per position class."""
    key = (rows, tuple(ports.tolist()))
    if key in geo.cache:
        return geo.cache[key]
    parts = [_stream_rows(geo.lt, g, r, R) for g, r in rows]
    i, j, off = geo.row_offsets(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    nb, nr = len(geo.pat_b), geo.res.size
    out = np.zeros((2 + ports.size, geo.n_class), np.int64)
    for a in range(len(geo.pat_a)):
        for b in range(nb):
            ok = geo.pat_a[a][i] & geo.pat_b[b][j]
            for r, res in enumerate(geo.res):
                out[:, (a * nb + b) * nr + r] = _run_stats(np.unique((res + off[ok]) // geo.unit), ports)
    geo.cache[key] = out
    return out


# ------------------------------------------------------------------------------------- one round
@dataclass
class RoundDemand:
    layer: int
    round: int
    P1: int  # P' (positions per copy)
    replicas: int
    n_tiles: int
    n_streams: int
    base: int  # today's duration (compute_cycles)
    stall: np.ndarray  # (fetch variants, reduction variants, nfp, npl, nol, 3 terms) cycles
    words_mean: dict  # per fetch family: words per position (Σ over streams / copies)
    runs_max: dict
    psum_pe: int  # int32 values over the busiest PE's psum bus per position
    psum_chip: int  # int32 values forwarded between PEs per position
    outs_pe: dict  # outputs requantized by the busiest PE per position, per leader rule
    gbuf_side_words: int  # psum restore + spill + output words per position (restore/out clients)


def _reduction(ins: Compute, cfg: Config, active: np.ndarray, pls: np.ndarray, ols: np.ndarray) -> dict:
    """Drain (npl,) and post (nol,) cycles per position of the running copies ``active``, per
    reduction variant, and the demand in values."""
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    npe = cfg.n_pe
    cpw = cols_per_weight(ins.tiles[0].family, cfg.slices)
    blocks = {(b.g, b.c): b for b in ins.blocks}
    local = np.zeros((pls.size, npe), np.int64)
    vals = np.zeros(npe, np.int64)
    members: dict[tuple, list[int]] = {}
    for te in ins.tiles:
        if active[te.replica]:
            pe = te.xbar // per_pe
            wc = te.cphys // cpw
            local[:, pe] += -(-wc // pls)
            vals[pe] += wc
            members.setdefault((te.tag[1], te.tag[3], te.replica), []).append(te.xbar)
    blks = []  # (ncols, outputs?, PEs of the block, lowest crossbar's PE)
    for (g, c, _), xs in members.items():
        b = blocks[(g, c)]
        blks.append((b.ncols, b.pmode in (PMODE_COMPLETE, PMODE_LAST), sorted({x // per_pe for x in xs}),
                     min(xs) // per_pe))
    # leaders: lowest crossbar (the tile-table rule) or balanced (greedy, largest blocks first)
    lead_low = [b[3] for b in blks]
    load = np.zeros(npe, np.int64)
    lead_bal = [0] * len(blks)
    for k in sorted(range(len(blks)), key=lambda k: (-blks[k][0] * blks[k][1], -blks[k][0], k)):
        nc, is_out, pes, _ = blks[k]
        pe = min(pes, key=lambda q: (load[q], q))
        lead_bal[k] = pe
        load[pe] += nc if is_out else 0
    out = {}
    chip_vals = sum(b[0] * (len(b[2]) - 1) for b in blks)
    outs_pe = {}
    for name, leads in (("low", lead_low), ("balanced", lead_bal)):
        outs = np.zeros(npe, np.int64)
        inc = np.zeros((pls.size, npe), np.int64)
        sent = np.zeros((pls.size, npe), np.int64)
        chip = np.zeros(pls.size, np.int64)
        for (nc, is_out, pes, _), ld in zip(blks, leads, strict=True):
            if is_out:
                outs[ld] += nc
            per = -(-nc // pls)
            for q in pes:
                if q != ld:
                    chip += per
                    inc[:, ld] += per
                    sent[:, q] += per
        post = (-(-outs[None, :] // ols[:, None])).max(axis=1)
        outs_pe[name] = int(outs.max())
        bus = local.max(axis=1) + chip
        links = np.maximum(local + inc, sent).max(axis=1)
        if name == "low":
            out["bus"] = (bus, post)
        else:
            out["bus+balance"] = (bus, post)
            out["links+balance"] = (links, post)
    return {"terms": out, "psum_pe": int(vals.max()), "psum_chip": int(chip_vals), "outs_pe": outs_pe}


def round_demand(ins: Compute, geos: dict, cfg: Config, fps: np.ndarray, pls: np.ndarray,
                 ols: np.ndarray) -> RoundDemand:
    """``geos``: layout name ("d1", "dense") -> the layer's LayerGeo."""
    R, B, W = cfg.xbar_rows, cfg.batch, cfg.gbuf_word_bytes
    m8 = 8 * max(cfg.cycles(cfg.t_read_mvm_ns), cfg.cols_per_adc)
    geo = geos["d1"]
    P, reps = geo.P, ins.replicas
    P1 = -(-P // reps)
    spans = [positions_of(P, reps, q) for q in range(reps)]
    lens = np.array([len(s) for s in spans])
    # ---- fetch per local position: Σ over copies of the copy's streams at the copy's global position
    banked = np.minimum(fps, geo.in_banks)
    ports = np.unique(np.concatenate([fps, banked]))
    i_fp, i_bk = np.searchsorted(ports, fps), np.searchsorted(ports, banked)
    by_copy: dict[int, set] = {}
    for te in ins.tiles:
        by_copy.setdefault(te.replica, set()).add((te.tag[1], te.tag[2]))
    n_streams = sum(len(s) for s in by_copy.values())
    tabs = {}
    for fam, layout in (("stream", "d1"), ("union", "d1"), ("union+dense", "dense")):
        g = geos[layout]
        acc = np.zeros((2 + ports.size, P1), np.int64)
        for q, rows in by_copy.items():
            rows_t = tuple(sorted(rows))
            if fam == "stream":
                tab = sum(class_table(g, (rw,), ports, R) for rw in rows_t)
            else:
                tab = class_table(g, rows_t, ports, R)
            cls = g.pos_class[spans[q].start:spans[q].stop]
            acc[:, :cls.size] += tab[:, cls]
        tabs[fam] = acc
    fetch = {"stream": tabs["stream"][2 + i_fp], "stream+banks": tabs["stream"][2 + i_bk],
             "union": tabs["union"][2 + i_fp], "union+banks": tabs["union"][2 + i_bk],
             "union+dense": tabs["union+dense"][2 + i_fp]}
    # ---- drain and post per set of running copies (copy q runs while p < len_q)
    ul = np.unique(lens[lens > 0])
    state_of_p = np.searchsorted(ul, np.arange(P1), side="right")
    n_state = ul.size
    d_tab = np.zeros((len(REDUCTION_VARIANTS), pls.size, n_state + 1), np.int64)  # last: no previous position
    o_tab = np.zeros((len(REDUCTION_VARIANTS), ols.size, n_state + 1), np.int64)
    red0 = None
    for s in range(n_state):
        red = _reduction(ins, cfg, lens > (0 if s == 0 else ul[s - 1]), pls, ols)
        red0 = red0 or red
        for k, v in enumerate(REDUCTION_VARIANTS):
            d_tab[k, :, s], o_tab[k, :, s] = red["terms"][v]
    # ---- the position sequence (B items x P1 positions): next position's fetch, previous drain/post
    loc = np.tile(np.arange(P1), B)
    nxt = np.roll(loc, -1)
    f_rows = []
    for v in FETCH_VARIANTS:
        f = fetch[v][:, nxt].copy()
        f[:, -1] = 0
        f_rows.append(f)
    prev_state = np.roll(state_of_p[loc], 1)
    prev_state[0] = n_state
    cols, counts = np.unique(np.concatenate(f_rows + [prev_state[None, :]]), axis=1, return_counts=True)
    nfp = fps.size
    stall = np.zeros((len(FETCH_VARIANTS), len(REDUCTION_VARIANTS), nfp, pls.size, ols.size, 3), np.int64)
    for ri in range(len(REDUCTION_VARIANTS)):
        d = d_tab[ri][:, cols[-1]][None, :, None, :]
        o = o_tab[ri][:, cols[-1]][None, None, :, :]
        for vi, v in enumerate(FETCH_VARIANTS):
            f, dd, oo = np.broadcast_arrays(cols[vi * nfp:(vi + 1) * nfp][:, None, None, :], d, o)
            ex = (np.maximum(np.maximum(f, dd), np.maximum(oo, m8)) - m8) * counts
            is_f = f >= np.maximum(dd, oo)
            is_d = ~is_f & (dd >= oo)
            st = stall[vi, ri]
            st[..., 0] = np.where(is_f, ex, 0).sum(axis=-1) + fetch[v][:, 0][:, None, None]  # + fill
            st[..., 1] = np.where(is_d, ex, 0).sum(axis=-1)
            st[..., 2] = np.where(~is_f & ~is_d, ex, 0).sum(axis=-1)
    # ---- other Gbuffer traffic per position (reported; not a term of the rule)
    side = 0
    for b in ins.blocks:
        nw = -(-b.ncols * 4 // W)
        side += reps * nw * ((b.pmode in (PMODE_FIRST, PMODE_MIDDLE)) + (b.pmode in (PMODE_MIDDLE, PMODE_LAST)))
    side += reps * -(-sum(b.ncols for b in ins.blocks if b.pmode in (PMODE_COMPLETE, PMODE_LAST)) // W)
    return RoundDemand(
        ins.layer, ins.round, P1, reps, len(ins.tiles), n_streams, compute_cycles(cfg, P1, B), stall,
        {k: float(v[0].mean()) for k, v in tabs.items()}, {k: int(v[1].max()) for k, v in tabs.items()},
        red0["psum_pe"], red0["psum_chip"], red0["outs_pe"], side)


# ----------------------------------------------------------------------------------- one network
def study_network(name: str, cfg: Config, fps, pls, ols) -> dict:
    t0 = time.time()
    trace = load_model(name)
    t1 = time.time()
    prog, run, cache = steady_program(trace, cfg)
    t2 = time.time()
    geos: dict[int, dict] = {}
    rounds = []
    for ins in prog.execs:
        if isinstance(ins, Compute):
            if ins.layer not in geos:
                geos[ins.layer] = {"d1": layer_geo(trace, prog, cfg, ins.layer),
                                   "dense": layer_geo(trace, prog, cfg, ins.layer, dense_small_c=True)}
            rounds.append(round_demand(ins, geos[ins.layer], cfg, fps, pls, ols))
    t3 = time.time()
    print(f"# {name}: load {t1 - t0:.1f} s, schedule {t2 - t1:.1f} s, study {t3 - t2:.1f} s "
          f"({len(rounds)} COMPUTE rounds)", file=sys.stderr, flush=True)
    stall = sum((r.stall for r in rounds), np.zeros_like(rounds[0].stall)) if rounds else None
    return {"name": name, "trace": trace, "prog": prog, "run": run, "cache": cache, "rounds": rounds,
            "today": run.cycles, "compute_today": sum(r.base for r in rounds), "stall": stall}


def retime(net: dict, cfg: Config, sel: tuple) -> int:
    """Exact new total: the timing model re-run with every COMPUTE lengthened by its stall at ``sel``
    (fetch variant, reduction variant, fp index, pl index, ol index)."""
    extra = iter([int(r.stall[sel].sum()) for r in net["rounds"]])
    calls = [0]

    def lengthened(c, P1, B):
        calls[0] += 1
        return compute_cycles(c, P1, B) + next(extra)

    prog = net["prog"]
    with mock.patch.object(timing, "compute_cycles", lengthened):
        r = timing.run(prog, net["trace"], cfg, prog.notes["final_levels"], cache=net["cache"])
    if calls[0] != len(net["rounds"]):
        raise RuntimeError("retime: the timing model did not call compute_cycles once per COMPUTE")
    return r.cycles


# --------------------------------------------------------------------------------------- costs
def cost(cfg: Config, fp: int, pl: int, ol: int) -> dict:
    """What the three knobs cost (hardware that scales with them) and a rough GE figure."""
    W8 = cfg.gbuf_word_bytes * 8
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    fetch_ge = fp * (cfg.gbuf_banks - 1) * W8 * GE_MUX2  # bank -> fetch port read network
    psum_ge = pl * (cfg.n_pe * ((per_pe - 1) * 32 * GE_MUX2 + 32 * GE_FA)  # crossbar -> PE bus mux, adder
                    + (cfg.n_pe - 1) * 32 * GE_MUX2)  # chip bus
    post_ge = cfg.n_pe * ol * (GE_MULT32 + GE_REQUANT_EXTRA)
    return {
        "fetch_ports": fp, "psum_lanes": pl, "post_lanes": ol,
        "fetch_bus_bits": fp * W8,  # bank read data -> input buffers
        "psum_bus_bits": (cfg.n_pe + 1) * pl * 32,  # n_pe PE buses + the chip bus
        "requant_multipliers": cfg.n_pe * ol,
        "accumulate_adders": cfg.n_pe * pl,
        "sram_ports": {"gbuffer": f"{cfg.gbuf_banks} banks 1R1W (D4), fetch uses {fp} read ports/cycle",
                       "accumulator_per_pe": f"1R1W, {pl * 32} bits",
                       "qparam_per_pe": f"1R, {ol * 16 * 8} bits ({ol} records)"},
        "ge": {"fetch": fetch_ge, "psum": psum_ge, "post": post_ge, "total": fetch_ge + psum_ge + post_ge},
    }


# ------------------------------------------------------------------------------------ reporting
def pct(stall, today):
    return 100.0 * stall / (today + stall)


def worst_grid(nets: list[dict], fv: int, rv: int) -> np.ndarray:
    """Worst stall % over the networks, per grid point (nfp, npl, nol)."""
    return np.max([pct(n["stall"][fv, rv].sum(axis=-1), n["today"]) for n in nets], axis=0)


def pareto(grid: np.ndarray, thr: float) -> list[tuple]:
    feas = [p for p in itertools.product(*map(range, grid.shape)) if grid[p] <= thr]
    return [p for p in feas if not any(q != p and all(q[k] <= p[k] for k in range(3)) for q in feas)]


def fmt_table(head: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in r] for r in [head] + rows]
    w = [max(len(r[k]) for r in cells) for k in range(len(head))]

    def line(r):
        return "| " + " | ".join(c.ljust(w[k]) if k == 0 else c.rjust(w[k]) for k, c in enumerate(r)) + " |"

    return "\n".join([line(cells[0]), "|" + "|".join("-" * (x + 2) for x in w) + "|"] + [line(r) for r in cells[1:]])


LAYER_HEAD = ["layer", "op (weight)", "rounds", "reps", "P'", "streams", "words/pos", "runs/pos", "sel. words",
              "psum/PE", "psum x-PE", "outs/PE", "cycles today", "fetch", "drain", "post"]


def _family(sel: tuple) -> str:
    v = FETCH_VARIANTS[sel[0]]
    return "stream" if v.startswith("stream") else "union+dense" if v == "union+dense" else "union"


def layer_rows(net: dict, sel: tuple, top: int) -> list[list]:
    per: dict[int, dict] = {}
    for r in net["rounds"]:
        d = per.setdefault(r.layer, {"stall": np.zeros(3, np.int64), "base": 0, "r": []})
        d["stall"] += r.stall[sel]
        d["base"] += r.base
        d["r"].append(r)
    rows = []
    tr = net["trace"]
    lead = "balanced" if REDUCTION_VARIANTS[sel[1]] != "bus" else "low"
    for li, d in sorted(per.items(), key=lambda kv: -kv[1]["stall"].sum())[:top]:
        if d["stall"].sum() == 0:
            break
        rs, ly, lt = d["r"], tr.layers[li], net["prog"].tilings[li]
        kind = ("dw" if lt.packed and lt.groups > 1 else "conv") if ly.op == "conv2d" else "fc"
        rows.append([ly.name, f"{kind} {'x'.join(map(str, ly.arrays['weight'].shape))}", len(rs),
                     max(r.replicas for r in rs), max(r.P1 for r in rs), max(r.n_streams for r in rs),
                     f"{max(r.words_mean['stream'] for r in rs):.0f}", max(r.runs_max["stream"] for r in rs),
                     f"{max(r.words_mean[_family(sel)] for r in rs):.0f}", max(r.psum_pe for r in rs),
                     max(r.psum_chip for r in rs), max(r.outs_pe[lead] for r in rs), f"{d['base']:,}"]
                    + [f"{v:,}" for v in d["stall"]])
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="paper", help="preset name or config file (default paper)")
    ap.add_argument("--models", nargs="+", default=list(REGISTRY), help="default: every model `aras models` lists")
    ap.add_argument("--fetch-ports", nargs="+", type=int, default=[1, 2, 4, 8])
    ap.add_argument("--psum-lanes", nargs="+", type=int, default=[4, 8, 16, 32, 64])
    ap.add_argument("--post-lanes", nargs="+", type=int, default=[2, 4, 8, 16, 32])
    ap.add_argument("--threshold", type=float, default=THRESHOLD, help="stall %% of the new total (default 10)")
    ap.add_argument("--select", default="auto", metavar="FETCH/REDUCTION",
                    help="variant pair the defaults are chosen for (e.g. union/bus+balance); auto: the §3 "
                         "rule (stream/bus) if some grid point meets the threshold, else the pair whose cheapest "
                         "feasible grid point costs least (rough GE)")
    ap.add_argument("--also", nargs="*", default=[], metavar="[FETCH/REDUCTION:]FP,PL,OL",
                    help="further settings to tabulate (default pair: the selected one), e.g. 2,16,8 or "
                         "union/bus:4,32,8")
    ap.add_argument("--top", type=int, default=5, help="layers per network in the per-layer tables (default 5)")
    ap.add_argument("--no-retime", action="store_true", help="skip the exact re-timing at the chosen setting")
    ap.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    for flag, vals in (("--fetch-ports", args.fetch_ports), ("--psum-lanes", args.psum_lanes),
                       ("--post-lanes", args.post_lanes)):
        if any(v < 1 for v in vals):
            ap.error(f"{flag}: values must be >= 1")
    unknown = [m for m in args.models if m not in REGISTRY]
    if unknown:
        ap.error(f"unknown model(s) {', '.join(unknown)}; `aras models` lists: {', '.join(REGISTRY)}")
    pairs = [(f, r) for f in range(len(FETCH_VARIANTS)) for r in range(len(REDUCTION_VARIANTS))]
    if args.select != "auto":
        try:
            fsel, rsel = args.select.split("/")
            forced = (FETCH_VARIANTS.index(fsel), REDUCTION_VARIANTS.index(rsel))
        except ValueError:
            ap.error(f"--select {args.select!r}: FETCH/REDUCTION with FETCH in {', '.join(FETCH_VARIANTS)} "
                     f"and REDUCTION in {', '.join(REDUCTION_VARIANTS)}")
    fps, pls, ols = (np.array(sorted(set(v)), np.int64) for v in (args.fetch_ports, args.psum_lanes, args.post_lanes))
    knobs = (fps, pls, ols)
    also = []  # (pair or None, grid index)
    for s in args.also:
        try:
            pair, _, knob_s = s.rpartition(":")
            if pair:
                fa, ra = pair.split("/")
                pair = (FETCH_VARIANTS.index(fa), REDUCTION_VARIANTS.index(ra))
            idx = tuple(int(np.flatnonzero(k == int(x))[0]) for k, x in zip(knobs, knob_s.split(","), strict=True))
            also.append((pair or None, idx))
        except (ValueError, IndexError):
            ap.error(f"--also {s!r}: give [FETCH/REDUCTION:]FP,PL,OL with each value among the candidates")
    m8 = 8 * max(cfg.cycles(cfg.t_read_mvm_ns), cfg.cols_per_adc)

    nets = [n for n in (study_network(m, cfg, fps, pls, ols) for m in args.models) if n["rounds"]]

    def vals(p):
        return tuple(int(k[i]) for k, i in zip(knobs, p, strict=True))

    def ge(p):
        return cost(cfg, *vals(p))["ge"]["total"]

    # ---- decision table: per variant pair, the cheapest grid point meeting the threshold
    decisions = {}
    for pr in pairs:
        g = worst_grid(nets, *pr)
        front = pareto(g, args.threshold)
        best = min(front, key=ge) if front else None
        decisions[pr] = {"grid": g, "front": front, "best": best,
                         "least": tuple(int(v) for v in np.unravel_index(np.argmin(g), g.shape))}
    if args.select == "auto":
        feasible = [pr for pr in pairs if decisions[pr]["best"] is not None]
        sel_pair = (0, 0) if decisions[(0, 0)]["best"] is not None else (
            min(feasible, key=lambda pr: ge(decisions[pr]["best"])) if feasible else (0, 0))
    else:
        sel_pair = forced
    dsel = decisions[sel_pair]
    chosen = dsel["best"] if dsel["best"] is not None else dsel["least"]
    sel = sel_pair + chosen
    if not args.no_retime:
        for n in nets:
            n["retimed"] = retime(n, cfg, sel)
    name = f"{FETCH_VARIANTS[sel_pair[0]]}/{REDUCTION_VARIANTS[sel_pair[1]]}"
    fp, pl, ol = vals(chosen)

    print(f"config {cfg.name}: 8·m = {m8} cycles per position, W = {cfg.gbuf_word_bytes} B, {cfg.n_pe} PEs x "
          f"{cfg.apus_per_pe * cfg.xbars_per_apu} crossbars; fetch_ports {fps.tolist()}, psum_lanes {pls.tolist()}, "
          f"post_lanes {ols.tolist()}; threshold {args.threshold:g} % of the new total\n")
    print(f"## decision: per variant pair, the cheapest grid point with stall ≤ {args.threshold:g} % on every "
          "network\n")
    rows = []
    for pr in pairs:
        d = decisions[pr]
        p = d["best"] if d["best"] is not None else d["least"]
        rows.append([f"{FETCH_VARIANTS[pr[0]]}/{REDUCTION_VARIANTS[pr[1]]}",
                     "yes" if d["best"] is not None else "no", ",".join(map(str, vals(p))), f"{d['grid'][p]:.1f}",
                     f"{ge(p) / 1e3:,.0f}k" if d["best"] is not None else "-"])
    print(fmt_table(["fetch/reduction", "feasible", "fp,pl,ol (or least worst)", "worst stall %", "GE"], rows)
          + "\n")
    if dsel["best"] is None:
        print(f"selected {name}: no grid point keeps every network within {args.threshold:g} %; "
              f"showing the least worst case\n")
    head = ["network", "cycles today", "COMPUTE today", "fetch %", "drain %", "post %", "stall", "stall %",
            "worst layer (+% of its COMPUTE)", "retimed total"]

    def net_rows(s, retimed):
        rows = []
        for n in nets:
            st = n["stall"][s]
            tot = int(st.sum())
            per: dict[int, list] = {}
            for r in n["rounds"]:
                a = per.setdefault(r.layer, [0, 0])
                a[0] += int(r.stall[s].sum())
                a[1] += r.base
            li, (ls, lb) = max(per.items(), key=lambda kv: kv[1][0] / kv[1][1])
            rows.append([n["name"], f"{n['today']:,}", f"{n['compute_today']:,}"]
                        + [f"{100.0 * v / (n['today'] + tot):.1f}" for v in st]
                        + [f"{tot:,}", f"{pct(tot, n['today']):.1f}"]
                        + [f"{n['trace'].layers[li].name} (+{100 * ls / lb:.0f} %)"]
                        + ([f"{n['retimed']:,}" if "retimed" in n else "-"] if retimed else []))
        return rows

    print(f"## {name} at fetch_ports={fp}, psum_lanes={pl}, post_lanes={ol} (selected)\n")
    print(fmt_table(head, net_rows(sel, True)) + "\n")
    for pair, p in also:
        pair = pair or sel_pair
        print(f"## {FETCH_VARIANTS[pair[0]]}/{REDUCTION_VARIANTS[pair[1]]} at fetch_ports={vals(p)[0]}, "
              f"psum_lanes={vals(p)[1]}, post_lanes={vals(p)[2]}\n")
        print(fmt_table(head[:-1], net_rows(pair + p, False)) + "\n")
    if sel_pair != (0, 0):
        print(f"## the rule of §3 (stream/bus) at fetch_ports={fp}, psum_lanes={pl}, post_lanes={ol}\n")
        print(fmt_table(head[:-1], net_rows((0, 0) + chosen, False)) + "\n")
    print(f"## every variant pair at fetch_ports={fp}, psum_lanes={pl}, post_lanes={ol}: stall % per network\n")
    rows = [[f"{FETCH_VARIANTS[a]}/{REDUCTION_VARIANTS[b]}"]
            + [f"{pct(n['stall'][(a, b) + chosen].sum(), n['today']):.1f}" for n in nets] for a, b in pairs]
    print(fmt_table(["fetch/reduction"] + [n["name"] for n in nets], rows) + "\n")
    print(f"## {name}: least value of each knob alone (the other two at their largest candidate)\n")
    g = dsel["grid"]
    row = []
    for k, arr in enumerate(knobs):
        ok = np.flatnonzero(g[tuple(slice(None) if j == k else -1 for j in range(3))] <= args.threshold)
        row.append(str(int(arr[ok[0]])) if ok.size else f"> {int(arr[-1])}")
    print(fmt_table(["fetch_ports", "psum_lanes", "post_lanes"], [row]) + "\n")
    print(f"## {name}: Pareto-minimal grid points meeting the threshold, and their cost\n")
    rows = []
    for p in sorted(dsel["front"], key=ge):
        c = cost(cfg, *vals(p))
        rows.append(list(vals(p)) + [f"{g[p]:.1f}", c["fetch_bus_bits"], c["psum_bus_bits"], c["requant_multipliers"],
                                     c["accumulate_adders"], f"{c['ge']['total'] / 1e3:,.0f}k"
                                     + (" (chosen)" if p == chosen else "")])
    print(fmt_table(["fetch_ports", "psum_lanes", "post_lanes", "worst %", "fetch bus bits", "psum bus bits",
                     "requant mults", "acc adders", "GE (rough)"], rows) + "\n")
    print("## hardware that scales with each knob (rough GE: bank->port read network, crossbar->PE bus mux + "
          "accumulate adder per lane per PE, 32x32 requant multiplier + rounding/shift/clamp per lane per PE)\n")
    rows = []
    for k, arr in enumerate(knobs):
        for v in arr:
            c = cost(cfg, *[int(v) if j == k else 0 for j in range(3)])
            what = ("fetch_ports", "psum_lanes", "post_lanes")[k]
            detail = {0: f"{c['fetch_bus_bits']} bus bits, {int(v)} x ({cfg.gbuf_banks}:1 x "
                         f"{cfg.gbuf_word_bytes * 8} bit) read muxes",
                      1: f"{c['psum_bus_bits']} bus bits ({cfg.n_pe} PE buses + chip), {c['accumulate_adders']} "
                         f"int32 adders, accumulator 1R1W {int(v) * 32} bit per PE",
                      2: f"{c['requant_multipliers']} requant multipliers, qparam read {int(v) * 16} B per PE"}[k]
            rows.append([what, int(v), detail, f"{c['ge']['total'] / 1e3:,.0f}k"])
    print(fmt_table(["knob", "value", "hardware", "GE"], rows) + "\n")
    print(f"## per layer ({name} at {fp},{pl},{ol}): the {args.top} layers with most stall; demand per position\n")
    for n in nets:
        rows = layer_rows(n, sel, args.top)
        if rows:
            print(f"### {n['name']}\n\n" + fmt_table(LAYER_HEAD, rows) + "\n")
    if args.json:
        def knob_dict(p):
            return dict(zip(("fetch_ports", "psum_lanes", "post_lanes"), vals(p), strict=True))

        out = {"config": cfg.name, "m8": m8, "fetch_ports": fps.tolist(), "psum_lanes": pls.tolist(),
               "post_lanes": ols.tolist(), "fetch_variants": list(FETCH_VARIANTS),
               "reduction_variants": list(REDUCTION_VARIANTS), "threshold": args.threshold, "selected": name,
               "chosen": knob_dict(chosen), "feasible": dsel["best"] is not None, "chosen_cost": cost(cfg, fp, pl, ol),
               "decisions": {f"{FETCH_VARIANTS[a]}/{REDUCTION_VARIANTS[b]}": {
                   "best": knob_dict(d["best"]) if d["best"] is not None else None,
                   "pareto": [dict(knob_dict(p), worst_stall_pct=float(d["grid"][p])) for p in d["front"]]}
                   for (a, b), d in decisions.items()},
               "networks": []}
        for n in nets:
            layers: dict[int, dict] = {}
            for r in n["rounds"]:
                d = layers.setdefault(r.layer, {"name": n["trace"].layers[r.layer].name, "rounds": [],
                                                "stall": np.zeros_like(r.stall)})
                d["stall"] = d["stall"] + r.stall
                d["rounds"].append({"round": r.round, "P1": r.P1, "replicas": r.replicas, "tiles": r.n_tiles,
                                    "streams": r.n_streams, "cycles_today": r.base, "words_mean": r.words_mean,
                                    "runs_max": r.runs_max, "psum_pe": r.psum_pe, "psum_chip": r.psum_chip,
                                    "outs_pe": r.outs_pe, "gbuf_side_words": r.gbuf_side_words,
                                    "stall_selected": r.stall[sel].tolist()})
            out["networks"].append({
                "name": n["name"], "cycles_today": n["today"], "compute_today": n["compute_today"],
                "retimed_total_selected": n.get("retimed"),
                "stall": n["stall"].tolist(),  # [fetch variant][reduction variant][fp][pl][ol][term]
                "layers": [dict(d, layer=li, stall=d["stall"][sel_pair].tolist()) for li, d in sorted(layers.items())]})
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
