"""ReRAM row writes of one tile (docs/architecture.md §8.3): blind or differential, with the
(old level, new level) pulse and energy tables, per-row cycles, event counters and wear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aras.config import Config


@dataclass
class WriteTables:
    """Config tables flattened for vectorised lookups at index old * L + new."""

    L: int
    pulses: np.ndarray
    energy: np.ndarray
    t_rd: int
    t_set: int
    t_step: int  # T_pul + T_ver
    t_rst: int
    e_reset: float
    e_cell_read: float
    energy32: np.ndarray  # float32 copy of ``energy`` for fast ranking in the scheduler

    @staticmethod
    def of(cfg: Config) -> WriteTables:
        return WriteTables(cfg.levels, np.asarray(cfg.write_pulses, np.int64).ravel(),
                           np.asarray(cfg.write_energy_pj, np.float64).ravel(), cfg.cycles(cfg.t_read_ns),
                           cfg.cycles(cfg.t_write_setup_ns), cfg.cycles(cfg.t_pulse_ns) + cfg.cycles(cfg.t_verify_ns),
                           cfg.cycles(cfg.t_reset_ns), cfg.e_reset_pj, cfg.e_cell_read_pj,
                           np.asarray(cfg.write_energy_pj, np.float32).ravel())


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

    def energy_pj(self, tb: WriteTables) -> float:
        return float(self.cells_changed @ tb.energy + self.cells_written_blind * tb.e_reset
                     + self.cells_read * tb.e_cell_read)


def write_tile(old: np.ndarray, new: np.ndarray, mode: int, tb: WriteTables) -> TileWrite:
    """Write ``new`` (rows, C) over ``old`` (same shape) row by row; ``mode`` 1 differential, 0 blind."""
    rows, c = new.shape
    L = tb.L
    if mode == 1:
        idx = old * np.uint8(L) + new  # uint8: L*L <= 256
        changed = old != new
        any_changed = changed.any(axis=1)
        maxp = tb.pulses[idx].max(axis=1, initial=0)  # the diagonal has 0 pulses
        row_cycles = tb.t_rd + np.where(any_changed, tb.t_set + maxp * tb.t_step, 0)
        hist = np.bincount(idx.ravel(), minlength=L * L)
        hist[:: L + 1] = 0  # unchanged cells are not programmed
        nw = int(any_changed.sum())
        return TileWrite(row_cycles, hist, nw, rows - nw, 0, rows, rows * c, changed)
    p0 = tb.pulses[new]  # row 0 of the tables: programming up from level 0
    row_cycles = tb.t_set + tb.t_rst + p0.max(axis=1, initial=0) * tb.t_step
    hist = np.bincount(new.ravel(), minlength=L * L)
    hist[0] = 0
    return TileWrite(row_cycles, hist, rows, 0, rows * c, 0, 0, np.ones_like(new, dtype=bool))


def column_costs(old: np.ndarray, new: np.ndarray, mode: int, tb: WriteTables) -> np.ndarray:
    """Write energy (pJ) per physical column of writing ``new`` over ``old`` (flag choice helper).
    Constant terms (reads, resets) are the same for every encoding and left out."""
    idx = (old * np.uint8(tb.L) + new) if mode == 1 else new
    return tb.energy[idx].sum(axis=0)
