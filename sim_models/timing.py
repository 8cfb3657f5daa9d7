"""Cycle and event-counter model: executes a program under the timing rules of
docs/architecture.md §10 (one pass in program order: every wait points to earlier instructions).

Needs no activation values. Produces the total cycles, per-instruction and per-layer windows,
every counter of §11, the crossbar contents at the end (for steady state) and per-cell wear.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from aras.config import Config
from aras.program import PMODE_COMPLETE, PMODE_LAST, Compute, Host, Program, Vector, Write, positions_of
from aras.tiling import cols_per_weight, positions
from aras.trace import Trace

from . import gbuffer
from .scheduler import compute_cycles
from .tiling import write_levels, write_targets
from .write_engine import WriteTables, column_costs, write_tile

COUNTERS = ("rows_written", "rows_skipped", "cells_written_blind", "row_reads_before_write",
            "cells_read_before_write", "adc_conversions", "xbar_reads", "dac_activations", "input_sum_ops",
            "post_ops", "vector_ops", "gbuf_reads", "gbuf_writes", "gbuf_active_bank_cycles", "dram_bytes",
            "write_buffer_bytes", "psum_spill_words")


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
        lower_bound: bool = False, cache: dict | None = None) -> Run:
    """Execute ``prog`` from crossbar contents ``initial`` (None: cold). ``lower_bound`` also computes the
    least write energy over the encodings for the same placement and contents. ``cache``: a dict shared
    by runs of programs of the same trace and config (Gbuffer traffic of identical COMPUTEs)."""
    cache = prog.notes if cache is None else cache
    tb = WriteTables.of(cfg)
    L = cfg.levels
    levels = np.zeros((cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols), np.uint8) if initial is None else initial.copy()
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
            a_start = max(a_fin_prev, slot_free, war if ins.barrier else 0)
            nbytes = t.rows * t.wcols
            a_fin = a_start + lat + -(-nbytes // bpc)
            a_fin_prev = a_fin
            d_free = drivers[p]
            bfin_x = xbar_bfin.get(x, [])
            b_start = max(a_fin, pe_bstart[p], min(d_free), war, bfin_x[-1] if bfin_x else 0)
            pe_bstart[p] = b_start
            d = next(i for i, v in enumerate(d_free) if v <= b_start)
            # the row writes themselves
            new = write_levels(ins, cfg.cell_bits, cfg.slices)
            c = new.shape[1]
            old = levels[x, : t.rows, :c]
            tw = write_tile(old, new, ins.mode, tb)
            b_fin = b_start + tw.cycles
            d_free[d] = b_fin
            heapq.heappush(heap, b_fin)
            if len(heap) > slots:
                heapq.heappop(heap)
            bfin_x.append(b_fin)
            xbar_bfin[x] = bfin_x
            e_w = tw.energy_pj(tb)
            energy += e_w
            energy_read += tw.read_energy_pj(tb)
            if lower_bound:
                energy_lb += _least_energy(ins, old, tb, cfg)
            wear[x, : t.rows, :c] += tw.programmed.astype(np.uint32)
            levels[x, : t.rows, :c] = new
            changed += tw.cells_changed
            cnt["rows_written"] += tw.rows_written
            cnt["rows_skipped"] += tw.rows_skipped
            cnt["cells_written_blind"] += tw.cells_written_blind
            cnt["row_reads_before_write"] += tw.row_reads
            cnt["cells_read_before_write"] += tw.cells_read
            cnt["dram_bytes"] += nbytes
            cnt["write_buffer_bytes"] += 2 * nbytes
            lt_e.wstart = b_start if lt_e.wstart is None else min(lt_e.wstart, b_start)
            lt_e.wend = b_fin - 1 if lt_e.wend is None else max(lt_e.wend, b_fin - 1)
            lt_e.write_cycles += tw.cycles
            lt_e.write_energy_pj += e_w
            w_times.append((a_start, a_fin, b_start, b_fin))
            last_finish = max(last_finish, b_fin)
            continue
        prev = e_fin[-1] if e_fin else 0
        li = ins.layer
        lt_e = layers.setdefault(li, LayerTimes())
        if isinstance(ins, Compute):
            # need_gen 0: the tile is resident from the previous run, nothing to wait for
            start = max([prev] + [xbar_bfin[te.xbar][te.need_gen - 1] for te in ins.tiles if te.need_gen])
            P = positions(trace, li)
            dur = compute_cycles(cfg, -(-P // ins.replicas), B)
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
            start = prev
            work = vector_work(trace, li, B)
            dur = -(-work // cfg.vector_lanes) + cfg.vector_latency
            cnt["vector_ops"] += work
            r, w = gbuffer.vector_traffic(prog, trace, cfg, li)
            cnt["gbuf_reads"] += r
            cnt["gbuf_writes"] += w
            lt_e.compute_cycles += dur
        elif isinstance(ins, Host):
            start = prev
            dur = 1 + cfg.host_handoff_cycles
        else:  # pragma: no cover - the program holds only these kinds
            raise TypeError(type(ins).__name__)
        fin = start + dur
        e_fin.append(fin)
        e_times.append((start, fin))
        bank_events.append((start, fin, ins.bank_on, ins.bank_off))
        lt_e.start = start if lt_e.start is None else lt_e.start
        lt_e.end = fin - 1
        last_finish = max(last_finish, fin)
    _attribute(None, None, cnt, pending)
    cycles = last_finish
    cnt["gbuf_active_bank_cycles"] = (_active_bank_cycles(prog.banks_init, bank_events, cycles)
                                      if prog.gbuf_adaptive else cfg.gbuf_banks * cycles)
    cnt["cycles"] = cycles
    return Run(cycles, cnt, changed.reshape(L, L), layers, levels, wear, energy, energy_lb, energy_read, e_times,
               w_times)


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
