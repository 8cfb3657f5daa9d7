"""Offline scheduler: maps a layer trace onto the resource-limited chip and emits the program
(docs/scheduler.md explains the algorithm; docs/architecture.md §9 the program).

Per crossbar layer: tile (``tiling``), group output blocks into rounds that fit the chip (a block
larger than the chip is split over rounds with int32 partial sums spilled to the Gbuffer), place
every round's tiles on crossbars (first-free, or similarity-aware), choose each weight column's
encoding against what its crossbar will hold at that point (re-encoding), and emit WRITEs then
the COMPUTE. The write stream runs ahead of execution as far as the interlocks allow, so writes of
later layers overlap the current layer's computation (ARAS) unless overlap is switched off.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from aras.config import Config
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
    TileEntry,
    Vector,
    Write,
    assemble,
)
from aras.tiling import LayerTiling, Tile, block_channels, cols_per_weight, positions, tile_layer
from aras.trace import Trace

from . import gbuffer
from .tiling import tile_levels, tile_weights
from .write_engine import WriteTables, column_costs


@dataclass(frozen=True)
class Options:
    """Switches of the ARAS optimizations (each off for ablation) and scheduler knobs."""

    overlap: bool = True  # computation-write overlap (writes run ahead of execution)
    reencode: bool = True  # per-column encoding choice against the cells' contents
    diff_write: bool = True  # differential (read-before-write) instead of blind writes
    placement: bool = True  # similarity-aware placement instead of first-free
    bank_select: bool = True  # Gbuffer adaptive bank selection
    lookahead: int | None = None  # max rounds a write may run ahead of execution (None: unbounded)
    family: str = "offset"  # encoding family of every crossbar layer
    double_buffer: str = "auto"  # big layers: rounds of the whole chip or half of it ("auto": cost model)
    replicate: bool = True  # copy small compute-bound layers onto spare crossbars (cost model)
    resident: bool = True  # steady state: no WRITE for a tile its crossbar still holds from the last run

    def __post_init__(self):
        if self.lookahead is not None and self.lookahead < 1:
            raise ArasError(f"lookahead must be >= 1 round (or unbounded), got {self.lookahead}")
        if self.family not in ("offset", "signmag"):
            raise ArasError(f"unknown encoding family {self.family!r} (offset, signmag)")
        if self.double_buffer not in ("auto", "on", "off"):
            raise ArasError(f"double_buffer must be auto, on or off, got {self.double_buffer!r}")

    @staticmethod
    def for_mode(mode: str, **kw) -> Options:
        if mode == "baseline":
            base = Options(overlap=False, reencode=False, diff_write=False, placement=False, bank_select=False,
                           double_buffer="off", replicate=False, resident=False)
        else:
            base = Options()
        return replace(base, **kw)


def scan_order(cfg: Config) -> np.ndarray:
    """Crossbar preference order: interleaved over PEs (then APUs) so a round's tiles spread over
    every PE's write drivers; rank[x] is the position of crossbar x."""
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    xs = np.arange(cfg.n_xbars)
    pe, local = xs // per_pe, xs % per_pe
    apu, xb = local // cfg.xbars_per_apu, local % cfg.xbars_per_apu
    key = (xb * cfg.apus_per_pe + apu) * cfg.n_pe + pe
    rank = np.empty(cfg.n_xbars, np.int64)
    rank[np.argsort(key, kind="stable")] = np.arange(cfg.n_xbars)
    return rank


def compute_cycles(cfg: Config, positions: int, batch: int) -> int:
    """Duration of one COMPUTE (§10.3)."""
    t_mvm, c = cfg.cycles(cfg.t_read_mvm_ns), cfg.cols_per_adc
    n = 8 * positions * batch
    return t_mvm + (n - 1) * max(t_mvm, c) + c + cfg.post_latency


def _rounds(lt: LayerTiling, cap: int) -> list[list[tuple[tuple[int, int], list[Tile], int]]]:
    """Group output blocks into rounds of at most ``cap`` tiles. Returns per round a list of
    (block, tiles, pmode); a block with more row chunks than ``cap`` is split over its own rounds."""
    by_block: dict[tuple[int, int], list[Tile]] = {}
    for t in lt.tiles:
        by_block.setdefault((t.g, t.c), []).append(t)
    rounds, cur, n = [], [], 0
    for blk in lt.blocks():
        ts = by_block[blk]
        if len(ts) > cap:
            if cur:
                rounds.append(cur)
                cur, n = [], 0
            pieces = [ts[i:i + cap] for i in range(0, len(ts), cap)]
            for i, piece in enumerate(pieces):
                mode = PMODE_FIRST if i == 0 else PMODE_LAST if i == len(pieces) - 1 else PMODE_MIDDLE
                rounds.append([(blk, piece, mode)])
            continue
        if n + len(ts) > cap:
            rounds.append(cur)
            cur, n = [], 0
        cur.append((blk, ts, PMODE_COMPLETE))
        n += len(ts)
    if cur:
        rounds.append(cur)
    return rounds


def _round_cap(lt: LayerTiling, cfg: Config, positions: int, batch: int, opts: Options) -> int:
    """Round size: the whole chip, or half of it so that a round's writes overlap the previous
    round's computation, whichever the cost model predicts faster (docs/scheduler.md)."""
    X = cfg.n_xbars
    T = len(lt.tiles)
    if T <= X or opts.double_buffer == "off" or not opts.overlap:
        return X
    if opts.double_buffer == "on":
        return X // 2
    tb = WriteTables.of(cfg)
    drivers = cfg.n_pe * cfg.write_drivers_per_pe
    rows = min(cfg.xbar_rows, lt.kg)
    w_tile = rows * (tb.t_rd + tb.t_set + (cfg.levels - 1) * tb.t_step)  # pessimistic per-tile write time
    c_round = compute_cycles(cfg, positions, batch)

    def est(cap):
        n = -(-T // cap)
        w = -(-cap // drivers) * w_tile
        return n * (w + c_round) if cap == X else w + n * max(c_round, w)

    return X // 2 if est(X // 2) < est(X) else X


def _replicas(lt: LayerTiling, P: int, cfg: Config, opts: Options, hide: int) -> int:
    """Copies of a single-round layer: each copy computes ceil(P / r) positions, so the round takes
    about 1/r of the time, at the price of r times the tile writes and DRAM fetches. Chosen to minimise
    the estimated exposed write time (what the previous round's ``hide`` compute cycles cannot cover)
    plus compute time, using at most half the chip (the other half keeps the look-ahead writes going),
    only when that shortens the layer by at least 20 %, and only while the extra fetches and writes
    stay within 10 % of the layer's estimated energy (docs/scheduler.md). With ``broadcast_writes`` a
    copy costs no DRAM fetch, only the staging read and its write-buffer traffic (§9.8)."""
    if not (opts.replicate and opts.overlap):
        return 1
    T = len(lt.tiles)
    r_max = (cfg.n_xbars // 2) // T
    if r_max < 2:
        return 1
    tb = WriteTables.of(cfg)
    drivers = cfg.n_pe * cfg.write_drivers_per_pe
    rows = sum(t.rows for t in lt.tiles) / T
    cols = cfg.xbar_cols
    w_tile = rows * (tb.t_rd + tb.t_set + (cfg.levels - 1) * tb.t_step)
    nbytes = sum(t.rows * t.wcols for t in lt.tiles)
    e_layer = 8 * P * cfg.batch * T * cols * cfg.e_adc_pj + nbytes * 8 * cfg.dram_pj_per_bit
    fetch_pj = 3 * cfg.e_wbuf_byte_pj if cfg.broadcast_writes else 8 * cfg.dram_pj_per_bit + 2 * cfg.e_wbuf_byte_pj
    e_copy = nbytes * fetch_pj + T * rows * cols * float(
        np.mean(tb.diff_energy if opts.diff_write else tb.energy[: tb.L] + tb.e_reset))

    def est(r):
        return max(0, -(-r * T // drivers) * w_tile - hide) + compute_cycles(cfg, -(-P // r), cfg.batch)

    allowed = [r for r in range(1, r_max + 1) if (r - 1) * e_copy <= 0.1 * e_layer]
    best = min(allowed, key=est)
    return best if est(best) <= 0.8 * est(1) else 1


class _Chip:
    """What the scheduler knows of the crossbars in program order: contents, the WRITE that put the
    current tile there (``holder``), whether this program has written the crossbar yet, last use."""

    def __init__(self, cfg: Config, initial: np.ndarray | None, initial_writes: dict | None):
        self.cfg = cfg
        shape = (cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols)
        self.levels = np.zeros(shape, np.uint8) if initial is None else initial.copy()
        self.holder: dict[int, Write] = dict(initial_writes or {})
        self.written = np.zeros(cfg.n_xbars, bool)
        self.last_use = np.full(cfg.n_xbars, -1, np.int64)
        self.rank = scan_order(cfg)

    def resident(self, x: int, t: Tile, new: np.ndarray) -> bool:
        """Crossbar x still holds exactly tile t, as left by the previous run, untouched so far."""
        h = self.holder.get(x)
        return (not self.written[x] and h is not None and h.tile == t
                and np.array_equal(self.levels[x, : t.rows, : new.shape[1]], new))

    def candidates(self, n: int, extra: int) -> np.ndarray:
        order = np.lexsort((self.rank, self.last_use))
        if n > len(order):
            raise ArasError(f"round of {n} tiles does not fit {len(order)} crossbars")
        cutoff = self.last_use[order[n - 1]]
        ok = order[self.last_use[order] <= cutoff]
        return ok[: n + extra]


def _targets(w: np.ndarray, t: Tile, family: str, cell_bits: int, reencode: bool):
    """Cell levels of tile ``t`` under the plain encoding and, with re-encoding, its alternative."""
    f0 = np.zeros(t.wcols, bool)
    new0 = tile_levels(w, t, family, f0, cell_bits)
    return new0, (tile_levels(w, t, family, ~f0, cell_bits) if reencode else None)


def _costs(old: np.ndarray, new0: np.ndarray, new1: np.ndarray | None, mode: int, tb: WriteTables, cpw: int,
           exact: bool = True):
    """Per weight column write energy of both encodings; ``old`` may carry leading candidate axes."""
    def per_col(new):
        e = column_costs(old, new, mode, tb, exact)
        return e.reshape(e.shape[:-1] + (-1, cpw)).sum(axis=-1)

    c0 = per_col(new0)
    return c0, (per_col(new1) if new1 is not None else None)


def _choose(c0, c1):
    """Flags (per column: alternative cheaper) and total cost."""
    if c1 is None:
        return np.zeros(c0.shape, bool), c0.sum(axis=-1)
    return c1 < c0, np.minimum(c0, c1).sum(axis=-1)


# Named scheduling modes -> (scheduler mode, Options overrides): baseline, ARAS and each ablation
# (``aras verify --mode``, the cocotb system cases).
MODES = {
    "aras": ("aras", {}),
    "baseline": ("baseline", {}),
    "no-overlap": ("aras", {"overlap": False}),
    "no-reencode": ("aras", {"reencode": False}),
    "no-diff-write": ("aras", {"diff_write": False}),
    "no-placement": ("aras", {"placement": False}),
    "no-bank-select": ("aras", {"bank_select": False}),
    "signmag": ("aras", {"family": "signmag"}),
}


def schedule(trace: Trace, cfg: Config, mode: str = "aras", opts: Options | None = None,
             initial: np.ndarray | None = None, cache: dict | None = None,
             initial_writes: dict | None = None) -> Program:
    """Emit the program of ``trace`` on ``cfg``. ``initial``: crossbar levels at cycle 0 (None = cold);
    ``initial_writes``: crossbar -> the WRITE of the previous run that left its tile (steady state:
    with ``opts.resident`` such tiles are computed on without being rewritten).
    ``cache``: a dict reused across calls on the same trace/config (tile images and target levels)."""
    cache = {} if cache is None else cache
    if mode not in ("aras", "baseline"):
        raise ArasError(f"unknown scheduling mode {mode!r} (aras, baseline)")
    opts = opts or Options.for_mode(mode)
    B = cfg.batch
    tb = WriteTables.of(cfg)
    wmode = 1 if opts.diff_write else 0
    chip = _Chip(cfg, initial, initial_writes if opts.resident else None)
    instrs: list = []
    tilings: dict[int, LayerTiling] = {}
    n_exec = 0
    round_exec: list[int] = []  # execute index of every COMPUTE, in order (look-ahead)
    dram = 0
    dram_addr: dict = {}
    prev_compute = 0
    prev_write: Write | None = None  # the last WRITE emitted (broadcast WRITEs follow a copy of their tile)
    placement_stats = {"rounds": 0, "similarity_better": 0, "replicated_layers": 0, "resident_tiles": 0}
    for li, ly in enumerate(trace.layers):
        if ly.op in ("reshape", "flatten"):
            continue
        if ly.on_host:
            instrs.append(Host(li))
            n_exec += 1
            continue
        if not ly.on_crossbars:
            instrs.append(Vector(li, VOPS[ly.op]))
            n_exec += 1
            continue
        lt = tile_layer(li, ly, cfg, opts.family)
        tilings[li] = lt
        P = positions(trace, li)
        cap = _round_cap(lt, cfg, P, B, opts)
        cpw = cols_per_weight(opts.family, cfg.slices)
        rounds = _rounds(lt, cap)
        reps = _replicas(lt, P, cfg, opts, prev_compute) if len(rounds) == 1 else 1
        placement_stats["replicated_layers"] += reps > 1
        for r_i, rnd in enumerate(rounds):
            base = [t for _, ts, _ in rnd for t in ts]
            if cfg.broadcast_writes:  # the copies of a tile back to back: one fetch, then broadcasts (§9.8)
                tiles, copy = [t for t in base for _ in range(reps)], [q for _ in base for q in range(reps)]
            else:
                tiles, copy = base * reps, [q for q in range(reps) for _ in base]
            for t in tiles:
                if (t.tag, opts.family, opts.reencode) not in cache:
                    w = tile_weights(ly, lt, t, cfg.xbar_rows)
                    cache[(t.tag, opts.family, opts.reencode)] = (w, _targets(w, t, opts.family, cfg.cell_bits,
                                                                              opts.reencode))
            ws = [cache[(t.tag, opts.family, opts.reencode)][0] for t in tiles]
            targets = [cache[(t.tag, opts.family, opts.reencode)][1] for t in tiles]
            assign = _place(chip, tiles, targets, opts, wmode, tb, cpw)
            placement_stats["rounds"] += 1
            placement_stats["similarity_better"] += int(assign[1])
            wait = 0
            if not opts.overlap:
                wait = n_exec
            elif opts.lookahead is not None and len(round_exec) >= opts.lookahead:
                wait = round_exec[len(round_exec) - opts.lookahead] + 1
            entries = []
            for t, w, (new0, new1), x, flags, q in zip(tiles, ws, targets, assign[0], assign[2], copy, strict=True):
                new = new0 if new1 is None else np.where(np.repeat(flags, cpw)[None, :], new1, new0)
                entries.append(TileEntry(int(x), t.tag, t.rows, t.wcols * cpw, opts.family, replica=q))
                if chip.resident(int(x), t, new):
                    placement_stats["resident_tiles"] += 1
                    continue
                chip.levels[x, : t.rows, : new.shape[1]] = new
                addr = dram_addr.setdefault(t.tag, dram)  # copies of a tile share its DRAM image
                bcast = (cfg.broadcast_writes and prev_write is not None and prev_write.tile.tag == t.tag
                         and prev_write.dram_addr == addr)
                wr = Write(t, int(x), addr, opts.family, wmode, flags, w, wait_exec=wait,
                           barrier=not opts.overlap, levels0=new0, levels1=new1, bcast=bcast)
                instrs.append(wr)
                prev_write = wr
                chip.holder[int(x)] = wr
                chip.written[x] = True
                if addr == dram:
                    dram += t.rows * t.wcols
            blocks = []
            for (g, c), _, pm in rnd:
                ncols = len(block_channels(lt, g, c))
                psum = f"psum:{ly.name}:{g}:{c}" if pm != PMODE_COMPLETE else None
                blocks.append(BlockEntry(g, c, ncols, pm, psum))
            instrs.append(Compute(li, r_i, entries, blocks, replicas=reps))
            prev_compute = compute_cycles(cfg, -(-P // reps), B)
            for x in assign[0]:
                chip.last_use[x] = n_exec
            round_exec.append(n_exec)
            n_exec += 1
    prog = Program(mode, B, instrs, tilings, gbuf_adaptive=opts.bank_select and cfg.gbuf_adaptive,
                   notes={"options": opts, "placement": placement_stats, "final_levels": chip.levels,
                          "final_writes": chip.holder},
                   initial_writes=dict(initial_writes) if opts.resident and initial_writes else {})
    gbuffer.allocate(prog, trace, cfg)
    return assemble(prog)


def _place(chip: _Chip, tiles: list[Tile], targets: list, opts: Options, wmode: int, tb: WriteTables,
           cpw: int) -> tuple[list[int], bool, list[np.ndarray]]:
    """Crossbars and encoding flags for a round's tiles.

    First-free takes the earliest-free crossbars in scan order. Similarity-aware placement lets each
    tile, in order, swap its first-free crossbar for a spare one (free no later than first-free's)
    whose contents it matches better on sampled rows; the crossbar it gives up becomes spare.
    O(tiles x spares) per round. Returns (crossbars, any swap made, per-tile flags)."""
    n = len(tiles)
    cand = chip.candidates(n, min(n, 16) if opts.placement else 0)
    assign = [int(x) for x in cand[:n]]
    swapped = False
    if opts.placement and len(cand) > n:
        step = max(1, chip.cfg.xbar_rows // 16)
        pool = [int(x) for x in cand[n:]]
        for i, (t, (new0, new1)) in enumerate(zip(tiles, targets, strict=True)):
            opts_x = np.array([assign[i]] + pool)
            old = chip.levels[opts_x, : t.rows : step, : new0.shape[1]]  # copies only the sampled rows
            _, cost = _choose(*_costs(old, new0[::step], None if new1 is None else new1[::step], wmode, tb, cpw,
                                      exact=False))
            k = int(np.argmin(cost))
            if k > 0:
                pool[k - 1], assign[i] = assign[i], int(opts_x[k])
                swapped = True
    flags = []
    for t, (new0, new1), x in zip(tiles, targets, assign, strict=True):
        f, _ = _choose(*_costs(chip.levels[x, : t.rows, : new0.shape[1]], new0, new1, wmode, tb, cpw))
        flags.append(f)
    return assign, swapped, flags
