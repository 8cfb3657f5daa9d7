"""ReRAM row writes of one tile (docs/architecture.md §8.3): blind or differential, with the
(old level, new level) pulse and energy tables, per-row cycles, event counters and wear.

Faults (§8.7): :class:`Faults` describes a run's stuck cells, a host that never acknowledges and a DRAM
that stalls for ever; :func:`write_tile_stuck` is a tile write over stuck cells (program-and-verify,
retries, give-up); :class:`FaultRun` holds the hooks through which ``sim_models.timing.run`` applies them
(the error, what still starts and is counted, when the run ends).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from aras.config import Config
from aras.errors import ArasError


@dataclass
class WriteTables:
    """Per-cell costs of a write, flattened for vectorised lookups at index old * L + new.

    A changed cell of a differential write takes the cheaper (in energy; ties: direct) of two paths
    (docs/architecture.md §8.3): direct program-and-verify, ``write_pulses[old][new]`` steps of
    ``T_pul + T_ver`` and ``write_energy_pj[old][new]``; or one RESET pulse to level 0 then programming
    up, ``T_rst + write_pulses[0][new]`` steps and ``e_reset_pj + write_energy_pj[0][new]``. So a
    differential write never programs a cell at a higher energy than a blind write does.
    """

    L: int
    pulses: np.ndarray  # config table (blind writes use row 0)
    energy: np.ndarray  # config table
    diff_energy: np.ndarray  # per changed cell of a differential write (0 on the diagonal)
    diff_cycles: np.ndarray  # cell programming cycles of a differential write (0 on the diagonal)
    diff_reset: np.ndarray  # bool: the differential write resets this (old, new) cell first
    t_rd: int
    t_set: int
    t_step: int  # T_pul + T_ver
    t_rst: int
    e_reset: float
    e_cell_read: float
    diff_energy32: np.ndarray  # float32 copies for fast ranking in the scheduler
    blind_energy32: np.ndarray

    @staticmethod
    def of(cfg: Config) -> WriteTables:
        L = cfg.levels
        p = np.asarray(cfg.write_pulses, np.int64)
        e = np.asarray(cfg.write_energy_pj, np.float64)
        step = cfg.cycles(cfg.t_pulse_ns) + cfg.cycles(cfg.t_verify_ns)
        t_rst = cfg.cycles(cfg.t_reset_ns)
        via_reset_e = cfg.e_reset_pj + e[0][None, :]
        reset = (via_reset_e < e) & ~np.eye(L, dtype=bool)
        de = np.where(reset, via_reset_e, e)
        dc = np.where(reset, t_rst + p[0][None, :] * step, p * step)
        np.fill_diagonal(dc, 0)
        blind_e = np.broadcast_to(cfg.e_reset_pj + e[0][None, :], (L, L))
        return WriteTables(L, p.ravel(), e.ravel(), de.ravel(), dc.ravel(), reset.ravel(), cfg.cycles(cfg.t_read_ns),
                           cfg.cycles(cfg.t_write_setup_ns), step, t_rst, cfg.e_reset_pj, cfg.e_cell_read_pj,
                           de.ravel().astype(np.float32), blind_e.ravel().astype(np.float32))

    # Derived lookups of :func:`write_tile` (same values, faster gathers), computed once per table.
    @functools.cached_property
    def diff_cycles_small(self) -> np.ndarray:
        """``diff_cycles`` in the narrowest unsigned dtype that holds it (int64 if any is negative)."""
        dc = self.diff_cycles
        if dc.size and dc.min() >= 0:
            for dt in (np.uint8, np.uint16, np.uint32):
                if dc.max() <= np.iinfo(dt).max:
                    return dc.astype(dt)
        return dc

    @functools.cached_property
    def diff_energy_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """``diff_energy`` (float64, float32) of two adjacent cells at once: entry v of the uint16 view of two
        uint8 indices (i0, i1) holds (table[i0], table[i1]) as one complex value (halves the gathers)."""
        byte_pairs = np.arange(1 << 16, dtype=np.uint16).view(np.uint8).reshape(-1, 2)  # memory order
        out = []
        for t, c in ((self.diff_energy, np.complex128), (self.diff_energy32, np.complex64)):
            pad = np.zeros(256, t.dtype)
            pad[: t.size] = t
            out.append(np.ascontiguousarray(pad[byte_pairs]).view(c).reshape(-1))
        return out[0], out[1]

    @functools.cached_property
    def diff_cycles_pairs(self) -> np.ndarray | None:
        """max(diff_cycles[i0], diff_cycles[i1]) at entry v of the uint16 view of two uint8 indices (i0, i1)
        (None when ``diff_cycles_small`` is int64)."""
        dc = self.diff_cycles_small
        if dc.dtype == np.int64:
            return None
        byte_pairs = np.arange(1 << 16, dtype=np.uint16).view(np.uint8).reshape(-1, 2)
        pad = np.zeros(256, dc.dtype)
        pad[: dc.size] = dc
        return pad[byte_pairs].max(axis=1)

    @functools.cached_property
    def changed_costs_cycles(self) -> bool:
        """Every off-diagonal (changed) cell of a differential write takes > 0 cycles, so a row has a
        changed cell exactly when its slowest cell takes > 0 cycles."""
        off = ~np.eye(self.L, dtype=bool).ravel()
        return bool((self.diff_cycles[off] > 0).all())


@dataclass
class TileWrite:
    """Outcome of writing one tile: per-row cycles and the counters of §11."""

    row_cycles: np.ndarray  # (rows,)
    cells_changed: np.ndarray  # (L*L,) old-major
    rows_written: int
    rows_skipped: int
    cells_written_blind: int
    row_reads: int
    cells_read: int
    programmed: np.ndarray  # (rows, C) bool: cells whose wear count increments

    @property
    def cycles(self) -> int:
        return int(self.row_cycles.sum())

    blind: bool = False
    failed_row: int | None = None  # §8.7: the row whose verify failed (rows after it are not written)
    after: np.ndarray | None = None  # (rows, C) levels after the write, stuck cells included (faults only)

    def program_energy_pj(self, tb: WriteTables) -> float:
        """Energy of the programming pulses (resets included), without the read-before-write."""
        if self.blind:
            return float(self.cells_changed @ tb.energy + self.cells_written_blind * tb.e_reset)
        return float(self.cells_changed @ tb.diff_energy)

    def read_energy_pj(self, tb: WriteTables) -> float:
        return float(self.cells_read * tb.e_cell_read)

    def energy_pj(self, tb: WriteTables) -> float:
        return self.program_energy_pj(tb) + self.read_energy_pj(tb)


def write_tile(old: np.ndarray, new: np.ndarray, mode: int, tb: WriteTables) -> TileWrite:
    """Write ``new`` (rows, C) over ``old`` (same shape) row by row; ``mode`` 1 differential, 0 blind."""
    rows, c = new.shape
    L = tb.L
    if mode == 1:
        idx = old * np.uint8(L) + new  # uint8: L*L <= 256
        changed = old != new
        pairs = tb.diff_cycles_pairs
        if pairs is not None and idx.dtype == np.uint8 and c % 2 == 0 and idx.flags.c_contiguous:
            per_cell = np.take(pairs, idx.view(np.uint16))  # the slower of each two adjacent cells
        else:
            per_cell = np.take(tb.diff_cycles_small, idx)
        slowest = per_cell.max(axis=1, initial=0).astype(np.int64)  # the diagonal costs 0
        any_changed = slowest > 0 if tb.changed_costs_cycles else changed.any(axis=1)
        row_cycles = tb.t_rd + np.where(any_changed, tb.t_set + slowest, 0)
        hist = np.bincount(idx.ravel(), minlength=L * L)
        hist[:: L + 1] = 0  # unchanged cells are not programmed
        nw = int(np.count_nonzero(any_changed))
        return TileWrite(row_cycles, hist, nw, rows - nw, 0, rows, rows * c, changed)
    p0 = np.take(tb.pulses, new)  # row 0 of the tables: programming up from level 0
    row_cycles = tb.t_set + tb.t_rst + p0.max(axis=1, initial=0) * tb.t_step
    hist = np.bincount(new.ravel(), minlength=L * L)
    hist[0] = 0
    return TileWrite(row_cycles, hist, rows, 0, rows * c, 0, 0, np.ones_like(new, dtype=bool), blind=True)


def column_costs(old: np.ndarray, new: np.ndarray, mode: int, tb: WriteTables, exact: bool = True) -> np.ndarray:
    """Programming energy (pJ) per physical column of writing ``new`` over ``old`` (the encoding choice).
    The blind write's per-cell reset is included; the read-before-write (the same for every encoding)
    is not. ``old`` may carry leading axes (candidate crossbars); ``exact=False`` uses float32 tables."""
    if mode == 1:
        idx = old * np.uint8(tb.L) + new
        if idx.dtype == np.uint8 and idx.shape[-1] % 2 == 0 and idx.flags.c_contiguous:  # table[idx], 2 cells a gather
            pairs = tb.diff_energy_pairs[0 if exact else 1]
            vals = np.take(pairs, idx.view(np.uint16)).view(np.float64 if exact else np.float32)
        else:
            vals = np.take(tb.diff_energy if exact else tb.diff_energy32, idx)  # np.take: table[idx], faster
        return vals.sum(axis=-2)
    table = tb.energy[: tb.L] + tb.e_reset if exact else tb.blind_energy32[: tb.L]
    return np.broadcast_to(np.take(table, new), old.shape).sum(axis=-2)


# ----------------------------------------------------------------------------------------------------
# Faults (docs/architecture.md §8.7)
# ----------------------------------------------------------------------------------------------------
INF = 1 << 62  # the finish of an activity that never ends: whatever waits for it never starts
FAULT_VERIFY, FAULT_HOST, FAULT_DRAM = 1, 2, 3  # fault_code values
FAULT_REGS = ("fault_code", "fault_xbar", "fault_row", "fault_cycle")  # status registers, §11.3
NO_FAULT = dict.fromkeys(FAULT_REGS, 0)


@dataclass(frozen=True)
class Faults:
    """What goes wrong in a run (§8.7): ``stuck`` maps (crossbar, row, physical column) to the level the
    cell is stuck at (a property of the chip: it holds that level from power-up whatever is written);
    the host never acknowledges the HOST instructions of the layers in ``host_hang``; ``dram_stall`` is
    held high from cycle ``dram_stall_from`` on, for ever (None: never)."""

    stuck: Mapping[tuple[int, int, int], int] = field(default_factory=dict)
    host_hang: frozenset[int] = frozenset()
    dram_stall_from: int | None = None

    def check(self, cfg: Config) -> None:
        for key, lv in self.stuck.items():
            if (not isinstance(key, tuple) or len(key) != 3 or not all(isinstance(v, (int, np.integer)) for v in key)
                    or not (0 <= key[0] < cfg.n_xbars and 0 <= key[1] < cfg.xbar_rows and 0 <= key[2] < cfg.xbar_cols)):
                raise ArasError(f"faults: stuck cell {key!r} is not a (crossbar < {cfg.n_xbars}, row < "
                                f"{cfg.xbar_rows}, column < {cfg.xbar_cols}) of config {cfg.name!r}")
            if not isinstance(lv, (int, np.integer)) or not 0 <= lv < cfg.levels:
                raise ArasError(f"faults: stuck cell {key!r}: level {lv!r} is not in [0, {cfg.levels - 1}]")
        if self.dram_stall_from is not None and (not isinstance(self.dram_stall_from, int) or self.dram_stall_from < 0):
            raise ArasError(f"faults: dram_stall_from must be a cycle >= 0 or None, got {self.dram_stall_from!r}")


def write_tile_stuck(old: np.ndarray, new: np.ndarray, mode: int, tb: WriteTables, stuck: np.ndarray,
                     stuck_lv: np.ndarray, max_pulses: int) -> TileWrite:
    """:func:`write_tile` over stuck cells (§8.7). ``old`` holds the stuck cells' levels (their reads);
    ``stuck`` / ``stuck_lv`` (same shape) mark them and their levels. A used cell stuck at a level other
    than its target fails the read-back of its row: that row takes the failing time (its failing cells are
    pulsed until ``max_pulses``), is counted as written, and the rows after it are not written."""
    fail = stuck & (stuck_lv != new)
    bad = np.flatnonzero(fail.any(axis=1))
    if not bad.size:
        tw = write_tile(old, new, mode, tb)
        tw.after = new.copy()  # every stuck cell of the tile is stuck at its target
        return tw
    r = int(bad[0])
    tw = write_tile(old[: r + 1], new[: r + 1], mode, tb)
    rc = tw.row_cycles.copy()
    give_up = max_pulses * tb.t_step  # a failing cell's pulses
    if mode == 1:
        idx = old[r] * np.uint8(tb.L) + new[r]
        slowest = int(tb.diff_cycles[idx].max(initial=0))
        on_reset = bool((fail[r] & tb.diff_reset[idx]).any())  # its pulses follow a RESET (§8.3)
        rc[r] = tb.t_rd + tb.t_set + max(slowest, give_up + (tb.t_rst if on_reset else 0))
    else:
        rc[r] = tb.t_set + tb.t_rst + give_up
    programmed = np.zeros(new.shape, bool)
    programmed[: r + 1] = tw.programmed
    after = old.copy()
    after[: r + 1] = new[: r + 1]
    after[stuck] = stuck_lv[stuck]
    return TileWrite(rc, tw.cells_changed, tw.rows_written, tw.rows_skipped, tw.cells_written_blind, tw.row_reads,
                     tw.cells_read, programmed, tw.blind, failed_row=r, after=after)


class FaultRun:
    """The fault side of one pass of ``sim_models.timing.run`` (§8.7), called from its loop.

    A stuck activity (a tile whose verify failed, a HOST never acknowledged, a DRAM transfer held for ever)
    finishes at :data:`INF` for everything that waits on it, and is given up at its error cycle. The run
    takes two passes: the first (``stop`` = INF) finds the first error; in the second (``stop`` = its cycle
    F) nothing that would start at F or later starts or counts, and the run ends when everything that did
    start has finished or been given up (:meth:`end`)."""

    def __init__(self, faults: Faults, cfg: Config, stop: int = INF):
        faults.check(cfg)
        self.faults, self.stop = faults, stop
        shape = (cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols)
        self.stuck = np.zeros(shape, bool)
        self.stuck_lv = np.zeros(shape, np.uint8)
        for (x, r, j), lv in faults.stuck.items():
            self.stuck[x, r, j] = True
            self.stuck_lv[x, r, j] = lv
        self.max_pulses, self.watchdog, self.lat = cfg.max_verify_pulses, cfg.watchdog_cycles, cfg.dram_latency_cycles
        self.events: list[tuple[int, int, int, int]] = []  # (cycle raised, code, crossbar, row)
        self.given_up: dict[tuple[str, int], int] = {}  # ("dram" | "prog" | "exec", index) -> cycle given up
        self.bpc = cfg.dram_bytes_per_cycle
        self.sent: dict[int, int] = {}  # write index -> bytes a held transfer sent before its first held beat

    def _raise(self, key, cycle: int, code: int, xbar: int = 0, row: int = 0) -> None:
        self.events.append((cycle, code, xbar, row))
        self.given_up[key] = cycle

    @property
    def first(self) -> tuple[int, int, int, int] | None:
        """The error recorded: the earliest; in one cycle the lowest code, then the lowest crossbar."""
        return min(self.events) if self.events else None

    # ---------------------------------------------------------------- hooks of the timing loop
    def stick(self, levels: np.ndarray) -> None:
        """Stuck cells hold their levels at cycle 0 (cold or steady)."""
        levels[self.stuck] = self.stuck_lv[self.stuck]

    def dram(self, index: int, a_start: int, a_fin: int, xbar: int) -> int:
        """A_fin of write ``index``'s transfer: INF if ``dram_stall`` holds one of its beats (then the
        watchdog gives it up W cycles after the first held beat)."""
        t_s = self.faults.dram_stall_from
        if t_s is None or a_start >= INF or a_fin - 1 < t_s:
            return a_fin
        held = max(t_s, a_start + self.lat)  # its first held beat (not the last: a_fin - 1 >= t_s)
        self.sent[index] = (held - a_start - self.lat) * self.bpc  # whole beats before it
        self._raise(("dram", index), held + self.watchdog, FAULT_DRAM, xbar)
        return INF

    def write(self, tw: TileWrite, xbar: int, old: np.ndarray, new: np.ndarray, mode: int,
              tb: WriteTables) -> TileWrite:
        rows, c = new.shape
        stuck = self.stuck[xbar, :rows, :c]
        if not stuck.any():
            return tw
        return write_tile_stuck(old, new, mode, tb, stuck, self.stuck_lv[xbar, :rows, :c], self.max_pulses)

    def finish(self, index: int, tw: TileWrite, b_fin: int, xbar: int) -> int:
        """B_fin of write ``index``: INF if its verify failed (given up at its error cycle)."""
        if tw.failed_row is None:
            return b_fin
        self._raise(("prog", index), b_fin, FAULT_VERIFY, xbar, tw.failed_row)
        return INF

    def skip_write(self, cnt: dict, w_times: list, times: tuple, nbytes: int) -> bool:
        """True if the write's programming never starts: then only its transfer counts (if it started)."""
        a_start, _, b_start, _ = times
        if b_start < self.stop:
            return False
        if a_start < self.stop:
            sent = self.sent.get(len(w_times), nbytes)
            cnt["dram_bytes"] += sent
            cnt["write_buffer_bytes"] += sent  # filled, never read
        w_times.append(times)
        return True

    def settle(self, levels: np.ndarray, cnt: dict, xbar: int, tile, tw: TileWrite) -> None:
        """Cell contents after the write (stuck cells, unwritten rows of a failed tile) and the rows of a
        failed tile that the write engine never read from the write buffer."""
        if tw.after is not None:
            levels[xbar, : tile.rows, : tw.after.shape[1]] = tw.after
        if tw.failed_row is not None:
            cnt["write_buffer_bytes"] -= (tile.rows - tw.failed_row - 1) * tile.wcols

    def host(self, index: int, layer: int, start: int, dur: int) -> int:
        """Duration of HOST ``index``: INF if its host never acknowledges (given up W cycles after E_start)."""
        if layer not in self.faults.host_hang:
            return dur
        self._raise(("exec", index), start + self.watchdog, FAULT_HOST)
        return INF

    def registers(self) -> dict[str, int]:
        """The fault registers of the status block (§11.3): all 0 without an error."""
        first = self.first
        if first is None:
            return dict(NO_FAULT)
        return dict(zip(FAULT_REGS, (first[1], first[2], first[3], first[0]), strict=True))

    def end(self, w_times: list, e_times: list, bank_events: list, layers: dict, prog) -> tuple[int, list]:
        """(cycles, the bank events of the instructions that started); sets every layer window from the
        activities that started (and finished) before the error."""
        first = self.first
        stop = self.stop if first is None else min(self.stop, first[0])
        ends = [stop] if first is not None else [0]
        for lt in layers.values():
            lt.start = lt.end = lt.wstart = lt.wend = None

        def widen(lt, lo, hi, k_lo, k_hi):
            if lo is not None:
                setattr(lt, k_lo, lo if getattr(lt, k_lo) is None else min(getattr(lt, k_lo), lo))
            if hi is not None:
                setattr(lt, k_hi, hi if getattr(lt, k_hi) is None else max(getattr(lt, k_hi), hi))

        for i, (w, (a0, a1, b0, b1)) in enumerate(zip(prog.writes, w_times, strict=True)):
            if a0 < stop:
                ends.append(self.given_up.get(("dram", i), a1))
            if b0 < stop:
                failed = ("prog", i) in self.given_up
                ends.append(self.given_up[("prog", i)] if failed else b1)
                widen(layers[w.tile.layer], b0, None if failed else b1 - 1, "wstart", "wend")
        for i, (ins, (s, f)) in enumerate(zip(prog.execs, e_times, strict=True)):
            if s < stop:
                hung = ("exec", i) in self.given_up
                ends.append(self.given_up[("exec", i)] if hung else f)
                widen(layers[ins.layer], s, None if hung else f - 1, "start", "end")
        return max(ends), [e for e in bank_events if e[0] < stop]
