"""Independent references written from docs/architecture.md alone (no ``sim_models``, no ``hw``).

``timing_ref``: a plain cycle-by-cycle simulation of a program's two instruction streams (§7-§11),
the second timing reference beside ``sim_models.timing`` (docs/verification.md, "Independent timing
reference").
"""

from .timing_ref import COUNTERS, RefLayer, RefRun, run

__all__ = ["COUNTERS", "RefLayer", "RefRun", "run"]
