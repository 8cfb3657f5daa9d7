# amaranth: UnusedElaboratable=no
"""Run a :class:`~verif.testbench.system_vectors.Case` through the generated Verilog of ``hw.top.Top`` under
cocotb (``top_tb.py``): the SystemVerilog generated once per config and process, its build cached by
content (``runner.build``: across tests, processes and ``aras verify``), one simulator process per chain
of cases. Used by ``test_top_tb.py``, ``scripts/regress.py`` and ``aras verify``.

A failing chain is run once more with waveforms (unless ``WAVES=0``; with ``WAVES=1`` every run is
traced): the FST goes to ``<test_dir>/waves/aras_top.fst``, and the record and the error name it and the
testbench seed. On Verilator the traced rerun uses a build of its own (``--trace-fst``, cached like the
others), so passing runs never pay for tracing."""

from __future__ import annotations

import json
import os
import pickle
import resource
import time
from pathlib import Path

import numpy as np

from aras.config import Config
from hw.generate import to_sv
from hw.top import Top
from verif.testbench import runner
from verif.testbench.system_vectors import TOP_PARAMS, Case, vectors

TOP = "aras_top"
MODULE = "verif.testbench.top_tb"

_SV: dict[tuple[str, str], str] = {}
_DESIGNS: dict[tuple, runner.Build] = {}


def _key(cfg: Config, params: dict) -> tuple[str, str]:
    return json.dumps(cfg.to_dict(), sort_keys=True), json.dumps(params, sort_keys=True)


def design(cfg: Config, build_root: Path | None = None, params: dict | None = None, *, sim: str | None = None,
           waves: bool | None = None) -> runner.Build:
    """The built Top of ``cfg`` with ``params`` (default ``TOP_PARAMS``) for ``sim`` (default
    ``runner.simulator()``): SystemVerilog generated once per process (shared by the simulators), the
    build from ``runner.build``'s content-hashed cache under ``build_root`` (default its cache root)."""
    params = params or TOP_PARAMS
    sim = sim or runner.simulator()
    waves = runner.waves_requested() if waves is None else waves
    skey = _key(cfg, params)
    key = (*skey, str(build_root), sim, waves)
    if key not in _DESIGNS:
        runner.require(sim)  # before the generation: an unusable simulator fails at once
        if skey not in _SV:
            _SV[skey] = to_sv(Top(cfg=cfg, **params), TOP)
        _DESIGNS[key] = runner.build(None, TOP, build_root, sim=sim, waves=waves, sv=_SV[skey])
    return _DESIGNS[key]


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_cases(cases: list[Case], cfg: Config, build_root: Path | None, test_dir: Path, *, tb_seed: int = 0,
              params: dict | None = None, sim: str | None = None, **kw) -> dict:
    """Drive ``cases`` through the RTL, one after the other in one simulator process (case k starts from
    the cells case k − 1 left; ``kw`` goes to :func:`vectors` for every case) on ``sim`` (default
    ``runner.simulator()``). Returns the report record (``cases``: per case the golden/RTL figures of
    every run, with the wall and CPU seconds of each run inside the simulator; ``seconds`` / ``cpu_s``:
    wall and CPU time of the simulator process; ``simulator``: name and version; ``tb_seed``; ``waves``:
    the FST of a traced run or None). Raises ``AssertionError`` on any mismatch (the record is still in
    ``test_dir/report.json``, with the traced rerun's waveform)."""
    d = design(cfg, build_root, params, sim=sim)
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    files, traces, progs, initial = [], [], [], None
    for k, case in enumerate(cases):
        vec = vectors(case, cfg, params=params, initial=initial, **kw)
        initial = vec["exp_levels"][-1].astype(np.uint8)
        files.append(test_dir / f"vectors{k}.npz")
        np.savez(files[-1], **vec)
        traces.append(test_dir / f"trace{k}")
        case.trace.save(traces[-1])
        progs.append(test_dir / f"program{k}.pkl")  # the hazard monitor's golden replay (sim_models.hazards)
        progs[-1].write_bytes(pickle.dumps(case.prog))
    (test_dir / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    report = test_dir / "report.json"
    report.unlink(missing_ok=True)
    env = {"ARAS_CFG": test_dir / "cfg.json", "ARAS_VECTORS": os.pathsep.join(map(str, files)),
           "ARAS_TRACE": os.pathsep.join(map(str, traces)), "ARAS_PROGRAM": os.pathsep.join(map(str, progs)),
           "ARAS_TB_SEED": tb_seed, "ARAS_REPORT": report}
    extra = {"simulator": {"name": d.sim, "version": d.version}, "tb_seed": tb_seed,
             "waves": str(test_dir / f"{TOP}.fst") if d.waves else None}
    t0, c0 = time.perf_counter(), _cpu_children()
    failure = None
    try:
        d.run(MODULE, test_dir, extra_env={k: str(v) for k, v in env.items()}, seed=tb_seed)
    except AssertionError as e:
        failure = e
    extra.update(seconds=time.perf_counter() - t0, cpu_s=_cpu_children() - c0)
    if failure is not None and not d.waves and runner.waves_mode() == "on-failure":
        extra["waves"], note = _traced_rerun(cfg, build_root, params, d.sim, test_dir / "waves",
                                             {**env, "ARAS_REPORT": test_dir / "waves" / "report.json"}, tb_seed)
        failure = AssertionError(f"{failure}; {note}")
    rec = json.loads(report.read_text()) if report.is_file() else {"cases": []}
    rec.update(extra)
    report.write_text(json.dumps(rec))
    if failure is not None:
        raise failure
    for c in rec["cases"]:
        for r, run in enumerate(c["runs"]):
            n = run["cycles"][1]
            print(f"{c['case']} on {cfg.name}, {d.sim} {d.version}, run {r}: {n} cycles in {run['wall_s']:.1f} s = "
                  f"{n / max(run['wall_s'], 1e-9):.0f} cycles/s wall, {n / max(run['cpu_s'], 1e-9):.0f} "
                  "cycles per CPU-s")
    return rec


def _traced_rerun(cfg, build_root, params, sim, wdir: Path, env: dict, tb_seed: int) -> tuple[str | None, str]:
    """Run a failed chain again with waveforms into ``wdir``: (the FST or None, a note for the error)."""
    try:
        dw = design(cfg, build_root, params, sim=sim, waves=True)
        dw.run(MODULE, wdir, extra_env={k: str(v) for k, v in env.items()}, seed=tb_seed)
        verdict = "the traced rerun passed (not reproduced)"
    except AssertionError:
        verdict = "the traced rerun failed too"
    fst = wdir / f"{TOP}.fst"
    where = f"waveform {fst}" if fst.is_file() else "no waveform written"
    return (str(fst) if fst.is_file() else None), f"{where} (testbench seed {tb_seed}); {verdict}"


def run_case(case: Case, cfg: Config, build_root: Path | None, test_dir: Path, **kw) -> dict:
    """:func:`run_cases` of one case; returns its record (``runs``) with the process's ``seconds``,
    ``cpu_s``, ``simulator``, ``tb_seed`` and ``waves``."""
    rec = run_cases([case], cfg, build_root, test_dir, **kw)
    return {**rec["cases"][0], **{k: rec[k] for k in ("seconds", "cpu_s", "simulator", "tb_seed", "waves")}}
