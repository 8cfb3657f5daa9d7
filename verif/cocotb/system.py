# amaranth: UnusedElaboratable=no
"""Run a :class:`~verif.cocotb.system_vectors.Case` through the generated Verilog of ``hw.top.Top`` under
cocotb (``top_tb.py``): one build per config (cached per process and, with ``$ARAS_COCOTB_BUILD`` or
``build_root``, across processes), one simulator process per case. Used by ``test_top_tb.py``,
``scripts/regress.py`` and ``aras verify``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aras.config import Config
from hw.top import Top
from verif.cocotb import runner
from verif.cocotb.runner import write_inputs
from verif.cocotb.system_vectors import TOP_PARAMS, Case, vectors

TOP = "aras_top"
MODULE = "verif.cocotb.top_tb"

_DESIGNS: dict[tuple[str, str], runner.Build] = {}


def design(cfg: Config, build_root: Path, params: dict | None = None) -> runner.Build:
    """The built Top of ``cfg`` with ``params`` (default ``TOP_PARAMS``), generated and compiled once per
    process and build root."""
    params = params or TOP_PARAMS
    key = (json.dumps(cfg.to_dict(), sort_keys=True), json.dumps(params, sort_keys=True), str(build_root))
    if key not in _DESIGNS:
        _DESIGNS[key] = runner.build(Top(cfg=cfg, **params), TOP, build_root)
    return _DESIGNS[key]


def run_case(case: Case, cfg: Config, build_root: Path, test_dir: Path, *, tb_seed: int = 0,
             params: dict | None = None, **kw) -> dict:
    """Drive ``case`` through the RTL; returns the report record (``runs``: golden/RTL figures per run,
    ``seconds``: wall time of the simulator process). Raises ``AssertionError`` on any mismatch (the
    record is still written to ``test_dir/report.json``)."""
    d = design(cfg, build_root, params)
    test_dir = Path(test_dir)
    vec = vectors(case, cfg, params=params, **kw)
    env = write_inputs(test_dir, cfg, vec, seed=tb_seed)
    case.trace.save(test_dir / "trace")
    report = test_dir / "report.json"
    report.unlink(missing_ok=True)
    env.update(ARAS_TRACE=str(test_dir / "trace"), ARAS_REPORT=str(report))
    t0 = time.perf_counter()
    try:
        d.run(MODULE, test_dir, extra_env=env)
    finally:
        seconds = time.perf_counter() - t0
        if report.is_file():
            rec = json.loads(report.read_text())
            rec["seconds"] = seconds
            report.write_text(json.dumps(rec))
    rec = json.loads(report.read_text())
    for r, run in enumerate(rec["runs"]):
        print(f"{case.name} on {cfg.name} run {r}: {run['cycles'][1]} cycles in {run['wall_s']:.1f} s = "
              f"{run['cycles'][1] / max(run['wall_s'], 1e-9):.0f} cycles/s")
    return rec
