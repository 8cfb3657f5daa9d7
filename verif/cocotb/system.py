# amaranth: UnusedElaboratable=no
"""Run a :class:`~verif.cocotb.system_vectors.Case` through the generated Verilog of ``hw.top.Top`` under
cocotb (``top_tb.py``): one build per config (cached per process and, with ``$ARAS_COCOTB_BUILD`` or
``build_root``, across processes), one simulator process per case. Used by ``test_top_tb.py``,
``scripts/regress.py`` and ``aras verify``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from aras.config import Config
from hw.top import Top
from verif.cocotb import runner
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


def run_cases(cases: list[Case], cfg: Config, build_root: Path, test_dir: Path, *, tb_seed: int = 0,
              params: dict | None = None, **kw) -> dict:
    """Drive ``cases`` through the RTL, one after the other in one simulator process (case k starts from
    the cells case k − 1 left; ``kw`` goes to :func:`vectors` for every case). Returns the report record
    (``cases``: per case the golden/RTL figures of every run; ``seconds``: wall time of the simulator
    process). Raises ``AssertionError`` on any mismatch (the record is still in ``test_dir/report.json``)."""
    d = design(cfg, build_root, params)
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    files, traces, initial = [], [], None
    for k, case in enumerate(cases):
        vec = vectors(case, cfg, params=params, initial=initial, **kw)
        initial = vec["exp_levels"][-1].astype(np.uint8)
        files.append(test_dir / f"vectors{k}.npz")
        np.savez(files[-1], **vec)
        traces.append(test_dir / f"trace{k}")
        case.trace.save(traces[-1])
    (test_dir / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    report = test_dir / "report.json"
    report.unlink(missing_ok=True)
    env = {"ARAS_CFG": test_dir / "cfg.json", "ARAS_VECTORS": os.pathsep.join(map(str, files)),
           "ARAS_TRACE": os.pathsep.join(map(str, traces)), "ARAS_TB_SEED": tb_seed, "ARAS_REPORT": report}
    t0 = time.perf_counter()
    try:
        d.run(MODULE, test_dir, extra_env={k: str(v) for k, v in env.items()})
    finally:
        seconds = time.perf_counter() - t0
        if report.is_file():
            rec = json.loads(report.read_text())
            rec["seconds"] = seconds
            report.write_text(json.dumps(rec))
    rec = json.loads(report.read_text())
    for c in rec["cases"]:
        for r, run in enumerate(c["runs"]):
            print(f"{c['case']} on {cfg.name} run {r}: {run['cycles'][1]} cycles in {run['wall_s']:.1f} s = "
                  f"{run['cycles'][1] / max(run['wall_s'], 1e-9):.0f} cycles/s")
    return rec


def run_case(case: Case, cfg: Config, build_root: Path, test_dir: Path, **kw) -> dict:
    """:func:`run_cases` of one case; returns its record (``runs``) with the process's ``seconds``."""
    rec = run_cases([case], cfg, build_root, test_dir, **kw)
    return {**rec["cases"][0], "seconds": rec["seconds"]}
