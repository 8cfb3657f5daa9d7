"""ReRAM row writes of one tile (docs/architecture.md §8.3): blind or differential, with the
(old level, new level) pulse and energy tables, per-row cycles, event counters and wear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aras.config import Config


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
        any_changed = changed.any(axis=1)
        slowest = tb.diff_cycles[idx].max(axis=1, initial=0)  # the diagonal costs 0
        row_cycles = tb.t_rd + np.where(any_changed, tb.t_set + slowest, 0)
        hist = np.bincount(idx.ravel(), minlength=L * L)
        hist[:: L + 1] = 0  # unchanged cells are not programmed
        nw = int(any_changed.sum())
        return TileWrite(row_cycles, hist, nw, rows - nw, 0, rows, rows * c, changed)
    p0 = tb.pulses[new]  # row 0 of the tables: programming up from level 0
    row_cycles = tb.t_set + tb.t_rst + p0.max(axis=1, initial=0) * tb.t_step
    hist = np.bincount(new.ravel(), minlength=L * L)
    hist[0] = 0
    return TileWrite(row_cycles, hist, rows, 0, rows * c, 0, 0, np.ones_like(new, dtype=bool), blind=True)


def column_costs(old: np.ndarray, new: np.ndarray, mode: int, tb: WriteTables, exact: bool = True) -> np.ndarray:
    """Programming energy (pJ) per physical column of writing ``new`` over ``old`` (the encoding choice).
    The blind write's per-cell reset is included; the read-before-write (the same for every encoding)
    is not. ``old`` may carry leading axes (candidate crossbars); ``exact=False`` uses float32 tables."""
    if mode == 1:
        table = tb.diff_energy if exact else tb.diff_energy32
        return table[old * np.uint8(tb.L) + new].sum(axis=-2)
    table = tb.energy[: tb.L] + tb.e_reset if exact else tb.blind_energy32[: tb.L]
    return np.broadcast_to(table[new], old.shape).sum(axis=-2)
