"""Cycle and event-counter model: executes a program under the timing rules of
docs/architecture.md §10 (one pass in program order: every wait points to earlier instructions).

Needs no activation values. Produces the total cycles, per-instruction and per-layer windows,
every counter of §11, the crossbar contents at the end (for steady state) and per-cell wear.

Every start is the max() of the terms of §10 (§9.6's interlocks); :data:`RULES` names them.
``run(..., drop=...)`` removes rules and ``run(..., bounds=...)`` records each start's terms, for
``sim_models.hazards`` (which rule decides each start); by default neither touches the run.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from aras.config import Config
from aras.program import PMODE_COMPLETE, PMODE_LAST, Compute, Host, Program, Vector, Write, positions_of
from aras.tiling import cols_per_weight, positions
from aras.trace import Trace

from . import bandwidth, gbuffer
from .scheduler import compute_cycles
from .tiling import write_levels, write_targets
from .write_engine import INF, NO_FAULT, FaultRun, Faults, WriteTables, column_costs, write_tile

COUNTERS = ("rows_written", "rows_skipped", "cells_written_blind", "row_reads_before_write",
            "cells_read_before_write", "adc_conversions", "xbar_reads", "dac_activations", "input_sum_ops",
            "post_ops", "vector_ops", "gbuf_reads", "gbuf_writes", "gbuf_active_bank_cycles", "dram_bytes",
            "write_buffer_bytes", "psum_spill_words") + bandwidth.COUNTERS

# The terms of every start's max() (docs/architecture.md §9.6, §10.2-10.4; docs/verification.md "Hazard
# rules and which decide"), by the start they bound:
#   WRITE DRAM transfer (A_start): dram (A_fin of the previous WRITE: one channel, write-stream order),
#       slot (a free write-buffer slot in the PE), barrier (E_fin(wait_exec - 1) if the barrier bit is set);
#   WRITE programming (B_start): fetch (its own transfer A_fin), pe_order (B_start of the previous WRITE to
#       the PE: in-order programming start), driver (a free write driver in the PE), war (E_fin(wait_exec - 1):
#       WAR and any barrier / look-ahead raise of wait_exec), waw (B_fin of the previous WRITE to the crossbar);
#   COMPUTE (E_start): exec_order (E_fin of the previous execute instruction), raw (B_fin of the WRITE each tile
#       entry waits for, need_gen), raw_last (the one of those that finishes strictly last: the round's last
#       crossbar to be written), raw_top (the round's highest-numbered crossbar with need_gen >= 1: the last
#       valid entry of the dense tile table); VECTOR / HOST (E_start): exec_order.
# Dropping raw_last or raw_top removes only that tile's wait (none if several tiles finish last together).
RULES = ("dram", "slot", "barrier", "fetch", "pe_order", "driver", "war", "waw", "exec_order", "raw", "raw_last",
         "raw_top")


@dataclass
class LayerTimes:
    start: int | None = None
    end: int | None = None
    wstart: int | None = None
    wend: int | None = None
    compute_cycles: int = 0
    write_cycles: int = 0  # Σ programming time of its tiles
    write_energy_pj: float = 0.0
    counters: dict = field(default_factory=dict)


@dataclass
class Run:
    cycles: int
    counters: dict[str, int]
    cells_changed: np.ndarray  # (L, L)
    layers: dict[int, LayerTimes]
    final_levels: np.ndarray
    wear: np.ndarray  # per-cell program count in this run
    write_energy_pj: float
    write_energy_lb_pj: float  # least write energy over the encodings, same placement and contents
    write_read_pj: float  # the read-before-write part of write_energy_pj
    exec_times: list[tuple[int, int]]
    write_times: list[tuple[int, int, int, int]]  # (A_start, A_fin, B_start, B_fin)


def vector_work(trace: Trace, li: int, batch: int) -> int:
    ly = trace.layers[li]
    out = trace.tensors[ly.output].shape
    if ly.op in ("maxpool", "avgpool"):
        kh, kw = ly.attrs["kernel"]
        return batch * int(np.prod(out)) * kh * kw
    if ly.op == "gap":
        return batch * int(np.prod(trace.tensors[ly.inputs[0]].shape))
    return batch * int(np.prod(out))


def run(prog: Program, trace: Trace, cfg: Config, initial: np.ndarray | None = None,
        lower_bound: bool = False, cache: dict | None = None, drop: frozenset[str] = frozenset(),
        bounds: list | None = None, faults: Faults | FaultRun | None = None) -> Run:
    """Execute ``prog`` from crossbar contents ``initial`` (None: cold). ``lower_bound`` also computes the
    least write energy over the encodings for the same placement and contents. ``cache``: a dict shared
    by runs of programs of the same trace and config (Gbuffer traffic of identical COMPUTEs).

    Analysis only (``sim_models.hazards``), off by default: ``drop``, rules of :data:`RULES` whose terms
    leave every start's max() (``driver``: unlimited drivers); ``bounds``, a list that receives one
    ``(kind, index, start, {rule: term})`` per start in program order — kind ``write_dram`` / ``write_prog``
    (index in the write stream), ``compute`` / ``vector`` / ``host`` (index in the execute stream); a term
    0 waits for nothing (``raw_last`` / ``raw_top``: also when another tile finishes as late).

    ``faults`` (docs/architecture.md §8.7, off by default): stuck cells, a host that never acknowledges,
    a DRAM stalled for ever; the run then ends with the error of §8.7 (``counters["fault_*"]``)."""
    probe = bool(drop) or bounds is not None
    if not set(drop) <= set(RULES):
        raise ValueError(f"unknown rules {sorted(set(drop) - set(RULES))}; rules: {', '.join(RULES)}")
    if isinstance(faults, Faults):  # §8.7: a first pass finds the first error, the second stops at it
        first = run(prog, trace, cfg, initial, cache=cache, drop=drop, faults=FaultRun(faults, cfg)).counters
        faults = FaultRun(faults, cfg, stop=first["fault_cycle"] if first["fault_code"] else INF)
    cache = prog.notes if cache is None else cache
    tb = WriteTables.of(cfg)
    L = cfg.levels
    levels = np.zeros((cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols), np.uint8) if initial is None else initial.copy()
    if faults is not None:
        faults.stick(levels)
    wear = np.zeros(levels.shape, np.uint32)
    cnt = dict.fromkeys(COUNTERS, 0)
    changed = np.zeros(L * L, np.int64)
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    slots = cfg.write_buffer_slots
    lat, bpc = cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle
    B = prog.batch
    layers: dict[int, LayerTimes] = {}
    e_fin: list[int] = []
    e_times: list[tuple[int, int]] = []
    w_times = []
    a_fin_prev = 0
    prev_bcast = False
    pe_bstart = [0] * cfg.n_pe
    pe_heap: list[list[int]] = [[] for _ in range(cfg.n_pe)]
    drivers = [[0] * cfg.write_drivers_per_pe for _ in range(cfg.n_pe)]
    xbar_bfin: dict[int, list[int]] = {}
    energy = energy_lb = energy_read = 0.0
    pending: list = []  # (layer times, counters before) of the previous instruction, attributed lazily
    bank_events = []
    last_finish = 0
    for ins in prog.instrs:
        before = dict(cnt)
        _attribute(layers.setdefault(ins.layer, LayerTimes()), before, cnt, pending)
        if isinstance(ins, Write):
            t, x = ins.tile, ins.xbar
            p = x // per_pe
            lt_e = layers.setdefault(t.layer, LayerTimes())
            war = e_fin[ins.wait_exec - 1] if ins.wait_exec > 0 else 0
            heap = pe_heap[p]
            slot_free = heap[0] if len(heap) == slots else 0
            if probe:
                a_start = _start(bounds, drop, "write_dram", len(w_times),
                                 (("dram", a_fin_prev), ("slot", slot_free), ("barrier", war if ins.barrier else 0)))
            else:
                a_start = max(a_fin_prev, slot_free, war if ins.barrier else 0)
            nbytes = t.rows * t.wcols
            # broadcast WRITE (§9.8, broadcast_writes): the previous transfer's copy, no DRAM access latency
            a_fin = a_start + (0 if ins.bcast else lat) + -(-nbytes // bpc)
            if faults is not None:
                a_fin = faults.dram(len(w_times), a_start, a_fin, x)
            a_fin_prev = a_fin
            d_free = drivers[p]
            bfin_x = xbar_bfin.get(x, [])
            if probe:
                b_start = _start(bounds, drop, "write_prog", len(w_times),
                                 (("fetch", a_fin), ("pe_order", pe_bstart[p]), ("driver", min(d_free)),
                                  ("war", war), ("waw", bfin_x[-1] if bfin_x else 0)))
                if "driver" in drop:
                    d_free = [0]  # unlimited drivers: this WRITE takes a spare one
            else:
                b_start = max(a_fin, pe_bstart[p], min(d_free), war, bfin_x[-1] if bfin_x else 0)
            pe_bstart[p] = b_start
            d = next(i for i, v in enumerate(d_free) if v <= b_start)
            # the row writes themselves
            new = write_levels(ins, cfg.cell_bits, cfg.slices)
            c = new.shape[1]
            old = levels[x, : t.rows, :c]
            tw = write_tile(old, new, ins.mode, tb)
            if faults is not None:
                tw = faults.write(tw, x, old, new, ins.mode, tb)
            w_cycles = tw.cycles
            b_fin = b_start + w_cycles
            if faults is not None:
                b_fin = faults.finish(len(w_times), tw, b_fin, x)
            d_free[d] = b_fin
            heapq.heappush(heap, b_fin)
            if len(heap) > slots:
                heapq.heappop(heap)
            bfin_x.append(b_fin)
            xbar_bfin[x] = bfin_x
            if faults is not None and faults.skip_write(cnt, w_times, (a_start, a_fin, b_start, b_fin), nbytes):
                continue
            e_w = tw.energy_pj(tb)
            energy += e_w
            energy_read += tw.read_energy_pj(tb)
            if lower_bound:
                energy_lb += _least_energy(ins, old, tb, cfg)
            wear[x, : t.rows, :c] += tw.programmed  # bool -> uint32 in place: the same counts, no temporary
            levels[x, : t.rows, :c] = new
            changed += tw.cells_changed
            cnt["rows_written"] += tw.rows_written
            cnt["rows_skipped"] += tw.rows_skipped
            cnt["cells_written_blind"] += tw.cells_written_blind
            cnt["row_reads_before_write"] += tw.row_reads
            cnt["cells_read_before_write"] += tw.cells_read
            cnt["dram_bytes"] += 0 if ins.bcast else nbytes
            # slot write + read; a broadcast also reads the staging copy, the first one of a run also writes it
            cnt["write_buffer_bytes"] += 2 * nbytes + (nbytes * (1 + (not prev_bcast)) if ins.bcast else 0)
            prev_bcast = ins.bcast
            if faults is not None:
                faults.settle(levels, cnt, x, t, tw)
            lt_e.wstart = b_start if lt_e.wstart is None else min(lt_e.wstart, b_start)
            lt_e.wend = b_fin - 1 if lt_e.wend is None else max(lt_e.wend, b_fin - 1)
            lt_e.write_cycles += w_cycles
            lt_e.write_energy_pj += e_w
            w_times.append((a_start, a_fin, b_start, b_fin))
            last_finish = max(last_finish, b_fin)
            continue
        prev = e_fin[-1] if e_fin else 0
        li = ins.layer
        lt_e = layers.setdefault(li, LayerTimes())
        if isinstance(ins, Compute):
            # need_gen 0: the tile is resident from the previous run, nothing to wait for
            if probe:
                start = _compute_start(bounds, drop, len(e_fin), prev,
                                       [(te.xbar, xbar_bfin[te.xbar][te.need_gen - 1]) for te in ins.tiles
                                        if te.need_gen])
            else:
                start = max([prev] + [xbar_bfin[te.xbar][te.need_gen - 1] for te in ins.tiles if te.need_gen])
            P = positions(trace, li)
            dur = compute_cycles(cfg, -(-P // ins.replicas), B)
            if bandwidth.bounded(cfg):  # §10.3: fill, per-slot excess and tail of fetch, drain and post
                key = ("bandwidth", li, ins.replicas, cfg.fetch_ports, cfg.psum_lanes, cfg.post_lanes,
                       tuple((te.xbar, te.tag, te.replica, te.cphys) for te in ins.tiles),
                       tuple((b.g, b.c, b.ncols, b.pmode) for b in ins.blocks))
                if key not in cache:
                    cache[key] = bandwidth.round_terms(prog, trace, cfg, ins, cache)
                bw = cache[key]
                dur += bw.total
                for k, v in bw.counters().items():
                    cnt[k] += v
            for te in ins.tiles:
                n = 8 * B * len(positions_of(P, ins.replicas, te.replica))
                cnt["xbar_reads"] += n
                cnt["dac_activations"] += n * te.rows
                cnt["adc_conversions"] += n * te.cphys
                if te.family == "offset":
                    cnt["input_sum_ops"] += n
            cnt["post_ops"] += sum(B * P * b.ncols for b in ins.blocks if b.pmode in (PMODE_COMPLETE, PMODE_LAST))
            # Gbuffer traffic depends on the COMPUTE's structure and tensor addresses only, not on timing
            key = ("traffic", li, ins.round, ins.replicas, prog.tensors[trace.layers[li].inputs[0]].base,
                   prog.tensors[trace.layers[li].output].base,
                   tuple(sorted({(te.tag[1], te.tag[2], te.replica) for te in ins.tiles})),
                   tuple((b.g, b.c, b.pmode, prog.tensors[b.psum].base if b.psum else -1) for b in ins.blocks))
            if key not in cache:
                cache[key] = gbuffer.compute_traffic(prog, trace, cfg, ins)
            r, w, s = cache[key]
            cnt["gbuf_reads"] += r
            cnt["gbuf_writes"] += w
            cnt["psum_spill_words"] += s
            lt_e.compute_cycles += dur
        elif isinstance(ins, Vector):
            start = _start(bounds, drop, "vector", len(e_fin), (("exec_order", prev),)) if probe else prev
            work = vector_work(trace, li, B)
            dur = -(-work // cfg.vector_lanes) + cfg.vector_latency
            cnt["vector_ops"] += work
            r, w = gbuffer.vector_traffic(prog, trace, cfg, li)
            cnt["gbuf_reads"] += r
            cnt["gbuf_writes"] += w
            lt_e.compute_cycles += dur
        elif isinstance(ins, Host):
            start = _start(bounds, drop, "host", len(e_fin), (("exec_order", prev),)) if probe else prev
            dur = 1 + cfg.host_handoff_cycles
            if faults is not None:
                dur = faults.host(len(e_fin), li, start, dur)
        else:  # pragma: no cover - the program holds only these kinds
            raise TypeError(type(ins).__name__)
        fin = start + dur
        if faults is not None and start >= faults.stop:
            cnt.update(before)  # never starts (§8.7): counts nothing
        e_fin.append(fin)
        e_times.append((start, fin))
        bank_events.append((start, fin, ins.bank_on, ins.bank_off))
        lt_e.start = start if lt_e.start is None else lt_e.start
        lt_e.end = fin - 1
        last_finish = max(last_finish, fin)
    _attribute(None, None, cnt, pending)
    cycles = last_finish
    if faults is not None:
        cycles, bank_events = faults.end(w_times, e_times, bank_events, layers, prog)
    cnt["gbuf_active_bank_cycles"] = (_active_bank_cycles(prog.banks_init, bank_events, cycles)
                                      if prog.gbuf_adaptive else cfg.gbuf_banks * cycles)
    cnt["cycles"] = cycles
    cnt.update(NO_FAULT if faults is None else faults.registers())
    return Run(cycles, cnt, changed.reshape(L, L), layers, levels, wear, energy, energy_lb, energy_read, e_times,
               w_times)


def _start(bounds: list | None, drop: frozenset[str], kind: str, index: int, terms: tuple) -> int:
    """max() of the terms whose rule is not dropped (0 if none); records the terms in ``bounds``."""
    start = max([0] + [t for r, t in terms if r not in drop])
    if bounds is not None:
        bounds.append((kind, index, start, dict(terms)))
    return start


def _compute_start(bounds: list | None, drop: frozenset[str], index: int, prev: int,
                   waits: list[tuple[int, int]]) -> int:
    """E_start of a COMPUTE from E_fin of the previous execute instruction and the (xbar, B_fin) of the
    WRITE each waiting tile entry needs (§10.3), without the dropped rules; records the terms in ``bounds``.
    ``raw_last`` / ``raw_top`` are one tile's wait each (the one written last; the highest-numbered
    crossbar); their recorded term is that wait if it is strictly later than every other tile's, else 0."""
    kept = sorted(b for _, b in waits)
    raw = kept[-1] if kept else 0
    last = raw if kept and (len(kept) == 1 or raw > kept[-2]) else 0  # 0: several tiles finish last
    top = max(waits)[1] if waits else 0
    if "raw" in drop:
        kept = []
    else:
        if "raw_top" in drop and waits:
            kept.remove(top)
        if "raw_last" in drop and last and last in kept:
            kept.remove(last)
    start = max([0 if "exec_order" in drop else prev] + kept)
    if bounds is not None:
        bounds.append(("compute", index, start, {"exec_order": prev, "raw": raw, "raw_last": last,
                                                 "raw_top": top if top == last else 0}))
    return start


def _attribute(lt: LayerTimes | None, before: dict | None, cnt: dict, pending: list) -> None:
    """Add the counter increments of the previous instruction to its layer, then remember this one."""
    if pending:
        plt, pbefore = pending.pop()
        for k, v in cnt.items():
            if v != pbefore[k]:
                plt.counters[k] = plt.counters.get(k, 0) + v - pbefore[k]
    if lt is not None:
        pending.append((lt, before))


def _least_energy(ins: Write, old: np.ndarray, tb: WriteTables, cfg: Config) -> float:
    """Least write energy of this WRITE over its family's encodings (per column), same old contents."""
    t = ins.tile
    cpw = cols_per_weight(ins.family, cfg.slices)
    costs = [column_costs(old, new, ins.mode, tb).reshape(t.wcols, cpw).sum(axis=1)
             for new in write_targets(ins, cfg.cell_bits)]
    reads = t.rows * old.shape[1] * tb.e_cell_read if ins.mode == 1 else 0.0
    return float(np.minimum(*costs).sum() + reads)


def least_write_energy(prog: Program, cfg: Config, initial: np.ndarray | None = None) -> float:
    """``run(prog, trace, cfg, initial, lower_bound=True).write_energy_lb_pj`` without the rest of the run
    (no faults): the WRITEs in program order over the contents they find, each at its least-energy encodings."""
    tb = WriteTables.of(cfg)
    levels = np.zeros((cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols), np.uint8) if initial is None else initial.copy()
    energy_lb = 0.0
    for ins in prog.writes:
        t, x = ins.tile, ins.xbar
        new = write_levels(ins, cfg.cell_bits, cfg.slices)
        c = new.shape[1]
        old = levels[x, : t.rows, :c]
        energy_lb += _least_energy(ins, old, tb, cfg)
        levels[x, : t.rows, :c] = new
    return energy_lb


def _active_bank_cycles(init, events, cycles: int) -> int:
    """Σ_t popcount(active_t): on at an instruction's start, off at its finish (off before on)."""
    timeline = []
    for s, f, on, off in events:
        if on:
            timeline.append((s, 1, on))
        if off:
            timeline.append((f, 0, off))
    timeline.sort(key=lambda e: (e[0], e[1]))
    active = set(init)
    total, t_prev = 0, 0
    for t, kind, banks in timeline:
        t = min(t, cycles)
        total += len(active) * (t - t_prev)
        t_prev = t
        if kind == 0:
            active.difference_update(banks)
        else:
            active.update(banks)
    return total + len(active) * (cycles - t_prev)
