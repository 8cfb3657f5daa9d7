"""Time and memory estimates of the RTL jobs (``aras verilog``, ``aras verify``), printed before they start.

Fitted to the generation of the RTL top (`hw/`, v2 contract) on the project's 2-core, 24 GB machine:
``scripts/benchmark_rtl.py --scale`` (wall seconds; each configuration's peak resident memory measured
in a fresh process) and docs/results.md §6 (256 crossbars of 16 rows; `paper`). X = crossbars,
R = crossbar rows (= columns):

| X | R | generation s | peak GB | SystemVerilog MB |
|---|---|---|---|---|
| 8 | 16 | 12 | 0.19 | 4.2 |
| 64 | 16 | 69 | 0.61 | 12.1 |
| 8 | 64 | 68 | 0.29 | 9.2 |
| 32 | 32 | 40 | 0.47 | |
| 256 | 16 | 152 | 3.0 | 66 |
| 256 | 128 | 1,081 | 20.6 | 358 |

Memory grows with the cells (X·R²), the all-to-all block reduction (X²) and the per-row input paths
(X·R); time with the cells, the per-row fetch logic (R²) and X. The fits are within 1.2× (memory) and
1.5× (time) of every row; the text size within 1.2×. Linting adds about the generation time again at
`paper` (module by module, docs/results.md §6). A Verilator simulation build (``aras verify``) holds
~75 bytes per byte of text while it verilates (Verilator's lint of the same text, docs/architecture.md
§3.14) and compiles at ~52 CPU-s per MB (the `tiny` top: 4.2 MB in 215-234 CPU-s,
docs/verification.md). Refit when the RTL changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .config import Config

# peak GB = a + b·X·R² + c·X² + d·X·R   (least squares on relative error over the table above)
_MEM = (0.140, 2.24e-6, 2.91e-5, 2.32e-4)
# seconds = e·X·R² + f·R² + g·X   (non-negative least squares on relative error)
_TIME = (1.54e-4, 1.52e-2, 0.667)
# SystemVerilog MB = h + i·X·R + j·X²
_TEXT = (2.96, 9.74e-3, 3.04e-4)
_BUILD_BYTES_PER_BYTE = 75  # Verilator's memory per byte of source (docs/architecture.md §3.14)
_BUILD_S_PER_MB = 52  # the tiny top's Verilator build (docs/verification.md)


@dataclass(frozen=True)
class Estimate:
    seconds: float
    peak_gb: float

    def line(self, what: str) -> str:
        t = self.seconds
        when = f"{t:.0f} s" if t < 120 else f"{t / 60:.0f} min"
        return f"estimate for {what}: about {when}, {self.peak_gb:.1f} GB peak memory (fit: aras/resources.py)"


def generation(cfg: Config) -> Estimate:
    """Elaborating the top and writing its SystemVerilog."""
    x, r = cfg.n_xbars, cfg.xbar_rows
    a, b, c, d = _MEM
    e, f, g = _TIME
    return Estimate(e * x * r * r + f * r * r + g * x, a + b * x * r * r + c * x * x + d * x * r)


def text_mb(cfg: Config) -> float:
    """Size of the generated SystemVerilog."""
    x, r = cfg.n_xbars, cfg.xbar_rows
    h, i, j = _TEXT
    return h + i * x * r + j * x * x


def verify_job(cfg: Config) -> Estimate:
    """``aras verify`` on Verilator: generation, then the simulator build of that text (simulating the
    run itself is small beside both)."""
    g, mb = generation(cfg), text_mb(cfg)
    return Estimate(g.seconds + _BUILD_S_PER_MB * mb, max(g.peak_gb, _BUILD_BYTES_PER_BYTE * mb * 1e6 / 2**30))


def verilog_job(cfg: Config, lint: bool) -> Estimate:
    """``aras verilog``: generation, then (``lint``) Verilator's lint of about the same time and memory."""
    g = generation(cfg)
    return Estimate(g.seconds * (2 if lint else 1), g.peak_gb)


def machine_memory_gb() -> float:
    """Physical memory of this machine (0 if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return 0.0
