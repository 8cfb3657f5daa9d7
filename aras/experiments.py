"""Experiment runners behind ``aras compare`` and ``aras sweep``.

:func:`run_compare` simulates every network in every architecture mode (ARAS, baseline PUM, the ideal
all-weights-resident PUM, the TPU-like baseline) and in the ARAS ablations (one optimization off at a
time), then writes ``results.json`` and the report (``aras.report``). :func:`run_sweep` varies one
parameter (crossbar count, write latency, write energy, look-ahead, cell bits, batch) and compares ARAS
with the baseline (and the TPU-like baseline where the parameter changes it) at every value.

Runs are independent tasks of the execution layer (:mod:`aras.execution`): in this process, on a local
Dask cluster or on an existing one, with results cached on disk (:mod:`aras.cache`).
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__
from .cache import ResultCache
from .config import Config
from .errors import ArasError
from .execution import Outcome, Task, plain, simulate_run
from .execution import run as execute
from .trace import Trace, check_fits

ABLATIONS = ("overlap", "reencode", "diff_write", "placement", "bank_select")
MODES = ("aras", "baseline", "baseline-resident", "ideal", "tpu")
# run only for networks whose tiles all fit the crossbars (sim_models.perf.fits); else a "not_run" entry
FIT_ONLY = ("baseline-resident",)
ENDURANCE = tuple(10.0 ** e for e in range(6, 13))  # write cycles a cell survives: 1e6 ... 1e12

SWEEP_PARAMS = {
    "xbars": "crossbar count as a fraction of the network's tiles (n_pe, and below one PE apus_per_pe / "
             "xbars_per_apu, scaled; write drivers per crossbar kept)",
    "write_latency": "write pulse time t_pulse_ns (t_reset_ns, the blind write's reset pulse, set to the same)",
    "write_energy": "energy per SET and RESET pulse: e_set_pj = e_reset_pj",
    "lookahead": "rounds the writes may run ahead of execution (scheduler Options.lookahead; None = unbounded)",
    "cell_bits": "bits per cell, with the exact ADC width ceil(log2(rows x (2^cell_bits - 1) + 1))",
    "batch": "inputs per run (batch size)",
    "dram_energy": "DRAM energy per bit dram_pj_per_bit (the same for every mode, the TPU-like included)",
}
DEFAULT_SWEEP_VALUES = {
    "xbars": [0.02, 0.05, 0.1, 0.25, 0.5, 1.0],
    "write_latency": [2.0, 5.0, 10.0, 20.0, 50.0, 100.0],
    "write_energy": [0.6, 6.0, 20.0, 60.0, 200.0],
    "lookahead": [1, 2, 4, 8, None],
    "cell_bits": [1, 2, 4],
    "batch": [1, 2, 4, 8],
    "dram_energy": [0.0, 5.0, 10.0, 20.0, 40.0],
}
# Which modes a swept parameter changes (run at every value); the TPU is left out where it does not change.
_SWEEP_MODES = {
    "xbars": ("aras", "baseline", "tpu"),  # the TPU is sized to the ARAS compute area
    "write_latency": ("aras", "baseline"),
    "write_energy": ("aras", "baseline"),
    "lookahead": ("aras",),  # the baseline does not overlap writes
    "cell_bits": ("aras", "baseline", "tpu"),
    "batch": ("aras", "baseline", "tpu"),
    "dram_energy": ("aras", "baseline", "tpu"),
}
_SWEEP_SHARED = {"lookahead": ("baseline",)}  # run once on the base config, the same at every point


def ablations() -> tuple[str, ...]:
    """The ARAS optimizations switched off one at a time: :data:`ABLATIONS`, then any other boolean
    scheduler option that is on by default (e.g. ``replicate``)."""
    import dataclasses

    from sim_models.scheduler import Options

    extra = tuple(f.name for f in dataclasses.fields(Options)
                  if f.default is True and f.name not in ABLATIONS)
    return ABLATIONS + extra


def compare_runs() -> tuple[str, ...]:
    """Run names of :func:`run_compare`: the modes, then ``no_<optimization>`` per ablation."""
    return MODES + tuple(f"no_{a}" for a in ablations())


# ---------------------------------------------------------------------------------------------- execution
_plain = plain


def _cache(cache) -> ResultCache | None:
    """``cache``: a :class:`~aras.cache.ResultCache`, True (the default one under ``$ARAS_CACHE``), or
    None/False (no cache)."""
    if cache is None or cache is False:
        return None
    return ResultCache() if cache is True else cache


def _failures(out: Outcome) -> list[dict]:
    return [{"params": _plain(f.params), "error": f.error} for f in out.failures]


# ---------------------------------------------------------------------------------------------- inputs
@dataclass
class _Model:
    trace: Trace
    label: str  # as the user gave it
    n_weights: int = field(init=False)

    def __post_init__(self):
        self.n_weights = int(sum(ly.arrays["weight"].size for ly in self.trace.weight_layers()))


def _resolve(ref, progress: bool) -> _Model:
    """A model name, a trace directory or a Trace; registry traces are built (and cached) here, once,
    before the execution layer ships them to its workers."""
    from .models import load_trace_or_model

    if isinstance(ref, Trace):
        return _Model(ref, ref.name)
    return _Model(load_trace_or_model(str(ref), progress=progress), str(ref))



def resolve_models(models, progress: bool, what: str) -> list:
    """The models' traces (``_resolve``), refusing two that carry the same trace name."""
    ms = [_resolve(m, progress) for m in models]
    seen: dict[str, str] = {}
    for m in ms:
        if m.trace.name in seen:
            raise ArasError(f"{what}: {m.label} and {seen[m.trace.name]} are both named {m.trace.name!r}")
        seen[m.trace.name] = m.label
    return ms

def _config(cfg) -> Config:
    from .config import load

    return load(cfg) if isinstance(cfg, (str, os.PathLike)) else cfg


def _write_json(path: Path, data: dict) -> None:
    import json

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_plain(data), indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)


def _cost(mode: str, n_weights: int) -> float:
    return n_weights * (0.05 if mode in ("tpu", "ideal") else 1.0)


def git_commit() -> str:
    """The commit of the aras checkout this package runs from (``+ uncommitted changes`` when the
    tracked files differ from it), or ``unknown``: not a git checkout, no git, or git failing."""
    root = Path(__file__).resolve().parent.parent

    def git(*a):
        r = subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        return r.stdout.strip() if r.returncode == 0 else None

    try:
        top = git("rev-parse", "--show-toplevel")
        # the package must be the checkout's own aras/ (an installed copy inside some other repository is not)
        if not top or Path(top).resolve() != root:
            return "unknown"
        head = git("rev-parse", "HEAD")
        if not head:
            return "unknown"
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(command: str | None) -> dict:
    """What made a result: the command line (None: called from Python), the git commit, the date."""
    import datetime

    return {"command": command, "git_commit": git_commit(),
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


# ---------------------------------------------------------------------------------------------- compare
def _ratio(a, b) -> float | None:
    """a / b, or None when undefined."""
    if a is None or b is None or b == 0:
        return None
    return a / b


def lifetime(max_cell_writes: int, latency_s: float) -> list[dict]:
    """Per endurance in :data:`ENDURANCE`: runs until the most-written cell wears out (steady state,
    ``max_cell_writes`` per run) and that many runs back to back in seconds; None = no cell written."""
    out = []
    for e in ENDURANCE:
        runs = int(e // max_cell_writes) if max_cell_writes else None
        out.append({"endurance": e, "runs": runs, "seconds": None if runs is None else runs * latency_s})
    return out


def summarize(runs: dict[str, dict]) -> dict:
    """The derived numbers of one network's runs (what the report's tables show)."""
    a, b, i, t = runs["aras"], runs["baseline"], runs["ideal"], runs["tpu"]

    def e(r, k="total"):
        return r["energy_j"][k]

    br = runs.get("baseline-resident")
    br = br if br and "cycles" in br else None  # run only when the network fits

    s = {
        "fits": br is not None,
        "speedup_vs_baseline_resident": _ratio(br["latency_s"], a["latency_s"]) if br else None,
        "energy_saving_vs_baseline_resident": 1 - _ratio(e(a), e(br)) if br else None,
        "speedup_vs_baseline": _ratio(b["latency_s"], a["latency_s"]),
        "speedup_vs_tpu": _ratio(t["latency_s"], a["latency_s"]),
        "energy_saving_vs_baseline": 1 - _ratio(e(a), e(b)),
        "energy_saving_vs_tpu": 1 - _ratio(e(a), e(t)),
        "energy_ratio_vs_baseline": _ratio(e(b), e(a)),
        "energy_ratio_vs_tpu": _ratio(e(t), e(a)),
        "cycles_over_ideal": _ratio(a["cycles"], i["cycles"]),
        "ablation": {},
        "lifetime": {},
        "lower_bound": {},
        "cold_start": {},
    }
    for abl in [k[3:] for k in runs if k.startswith("no_")]:
        r = runs[f"no_{abl}"]
        s["ablation"][abl] = {"cycles_rel": _ratio(r["cycles"], a["cycles"]),
                              "energy_rel": _ratio(e(r), e(a)),
                              "write_energy_rel": _ratio(e(r, "write"), e(a, "write"))}
    for m in ("aras", "baseline"):
        r = runs[m]
        s["lifetime"][m] = lifetime(r["writes"]["max_cell_writes"], r["latency_s"])
        lb = r["lower_bound"]
        s["lower_bound"][m] = {"cycles_ratio": _ratio(r["cycles"], lb["cycles"]),
                               "write_energy_ratio": _ratio(e(r, "write"), lb["write_energy_j"])}
        c = r["cold_start"]
        s["cold_start"][m] = {"cycles_ratio": _ratio(c["cycles"], r["cycles"]),
                              "energy_ratio": _ratio(c["energy_j"]["total"], e(r))}
    return s


def run_compare(models: list, cfg, out_dir, jobs: int | None = None, progress: bool = True,
                command: str | None = None, scheduler: str | None = None, cache=None) -> dict:
    """Simulate every network in every mode and ablation; write ``results.json`` and the report.

    Parameters
    ----------
    models : registry model names, trace directories or :class:`~aras.trace.Trace` objects.
    cfg : a :class:`~aras.config.Config`, a preset name or a config file.
    out_dir : directory for ``results.json``, ``report.md``, ``report.html`` and the ``*.png`` plots.
    jobs : worker processes of a local Dask cluster (default: all cores, fewer when memory is short;
        1 = in this process, no Dask).
    progress : show a tqdm bar on stderr.
    command : the command line, for the report (None: called from Python).
    scheduler : address of an existing Dask scheduler to run on instead (``tcp://host:port``).
    cache : a :class:`~aras.cache.ResultCache`, True (the one under ``$ARAS_CACHE``) or None (no cache):
        runs found there are not computed again.

    Returns
    -------
    The ``results.json`` content: ``config``, ``models`` (name, weights, notes, ...), ``runs``
    (network -> run name -> the raw ``sim_models.perf.simulate`` result; run names: :func:`compare_runs`),
    ``ablations`` (the optimizations switched off one at a time), ``summary`` (network ->
    :func:`summarize`), ``provenance`` (:func:`provenance`), wall times, ``execution`` (how the runs
    ran: :meth:`aras.execution.Outcome.summary`). When runs failed, ``failures`` lists them (parameters
    and error), ``runs`` holds ``{"error": ...}`` for them, ``summary`` covers only the complete networks,
    and no report is written.
    """
    from . import report

    t0 = time.perf_counter()
    if not models:
        raise ArasError("compare: give at least one model")
    cfg = _config(cfg)
    ms = resolve_models(models, progress, "compare")
    for m in ms:
        check_fits(m.trace, cfg)
    names = compare_runs()
    tasks = []
    from sim_models.perf import fits, n_tiles

    not_run = {}
    for m in ms:
        for run in names:
            if run in FIT_ONLY and not fits(m.trace, cfg):
                not_run[(m.trace.name, run)] = {
                    "mode": run, "not_run": f"{n_tiles(m.trace, cfg):,} tiles do not fit the {cfg.n_xbars} crossbars"}
                continue
            mode, ov = (run, ()) if run in MODES else ("aras", ((run[3:], False),))
            tasks.append(Task((m.trace.name, run), simulate_run, (cfg, mode, ov), m.trace.name,
                              {"model": m.trace.name, "run": run}, _cost(mode, m.n_weights)))
    out = execute(tasks, {m.trace.name: m.trace for m in ms}, jobs=jobs, scheduler=scheduler, cache=_cache(cache),
                  progress=progress, desc="compare", weights=max(m.n_weights for m in ms))
    res = out.by_key(tasks) | not_run
    for f in out.failures:
        res[f.key] = {"error": f"failed: {f.error}", "mode": f.key[1]}
    runs = {m.trace.name: {r: res[(m.trace.name, r)] for r in names} for m in ms}
    failed = {f.key[0] for f in out.failures}
    data = {
        "format": "aras-compare", "version": 1, "aras_version": __version__,
        "provenance": provenance(command),
        "config": cfg.to_dict(), "ablations": list(ablations()),
        "models": [{"name": m.trace.name, "ref": m.label, "weights": m.trace.weights, "notes": m.trace.notes,
                    "weight_count": m.n_weights, "tiles": count_tiles(m.trace, cfg),
                    "crossbar_layers": len(m.trace.weight_layers()),
                    "layers": len(m.trace.layers)} for m in ms],
        "runs": runs,
        "summary": {name: summarize(r) for name, r in runs.items() if name not in failed},
        "jobs": out.workers,
        "simulate_s": {name: sum(x.get("wall_s", 0.0) for x in r.values()) for name, r in runs.items()},
        "execution": out.summary(),
    }
    if out.failures:
        data["failures"] = _failures(out)
    data["wall_s"] = time.perf_counter() - t0
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    _write_json(d / "results.json", data)
    if not out.failures:
        report.write_compare_report(data, d)
    return data


# ---------------------------------------------------------------------------------------------- sweep
def parse_sweep_values(param: str, text: str) -> list:
    """Comma-separated values of ``param`` from the command line ("none"/"inf" = unbounded look-ahead)."""
    _check_param(param)
    out = []
    for s in text.split(","):
        s = s.strip()
        if not s:
            continue
        if param == "lookahead" and s.lower() in ("none", "inf", "unbounded"):
            out.append(None)
            continue
        try:
            v = float(s)
        except ValueError:
            raise ArasError(f"sweep {param}: value {s!r} is not a number") from None
        if param in ("lookahead", "cell_bits", "batch"):
            if v != int(v):
                raise ArasError(f"sweep {param}: value {s!r} must be an integer")
            v = int(v)
        out.append(v)
    if not out:
        raise ArasError(f"sweep {param}: no values in {text!r}")
    return out


def _check_param(param: str) -> None:
    if param not in SWEEP_PARAMS:
        raise ArasError(f"unknown sweep parameter {param!r}; parameters: {', '.join(SWEEP_PARAMS)}")


def count_tiles(trace: Trace, cfg: Config) -> int:
    """Crossbar tiles of the network on ``cfg`` (offset family): the crossbars holding all weights at once."""
    from aras.tiling import tile_layer

    return sum(len(tile_layer(li, ly, cfg).tiles) for li, ly in enumerate(trace.layers) if ly.on_crossbars)


def scale_xbars(cfg: Config, target: int) -> dict:
    """Hierarchy fields giving about ``target`` crossbars (at least 2): whole PEs of the config's shape,
    below one PE fewer APUs (and below one APU fewer crossbars); write drivers per crossbar as in ``cfg``,
    at most the program format's 4096 crossbars."""
    per_pe, per_apu = cfg.apus_per_pe * cfg.xbars_per_apu, cfg.xbars_per_apu
    target = max(2, int(target))
    if target >= per_pe:
        n_pe = min(max(1, round(target / per_pe)), 4096 // per_pe)
        return {"n_pe": n_pe, "apus_per_pe": cfg.apus_per_pe, "xbars_per_apu": per_apu,
                "write_drivers_per_pe": cfg.write_drivers_per_pe}
    if target >= per_apu:
        apus, xpa = max(1, round(target / per_apu)), per_apu
    else:
        apus, xpa = 1, target
    drivers = max(1, min(apus * xpa, round(cfg.write_drivers_per_pe * apus * xpa / per_pe)))
    return {"n_pe": 1, "apus_per_pe": apus, "xbars_per_apu": xpa, "write_drivers_per_pe": drivers}


def _sweep_point(cfg: Config, param: str, value, n_tiles: int) -> tuple[Config, dict, tuple, str]:
    """(config, changed fields, Options overrides, label) of one swept value."""
    if param == "xbars":
        if not isinstance(value, (int, float)) or value <= 0:
            raise ArasError(f"sweep xbars: values are fractions of the network's tiles (> 0), got {value!r}")
        ch = scale_xbars(cfg, round(value * n_tiles))
        c = cfg.replace(**ch)
        return c, dict(ch, n_xbars=c.n_xbars), (), f"{100 * value:g} %"
    if param == "write_latency":
        ch = {"t_pulse_ns": float(value), "t_reset_ns": float(value)}
        return cfg.replace(**ch), ch, (), f"{value:g} ns"
    if param == "write_energy":
        ch = {"e_set_pj": float(value), "e_reset_pj": float(value)}
        return cfg.replace(**ch), ch, (), f"{value:g} pJ"
    if param == "lookahead":
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ArasError(f"sweep lookahead: values are rounds >= 1 or None (unbounded), got {value!r}")
        return cfg, {}, (("lookahead", value),), "unbounded" if value is None else str(value)
    if param == "cell_bits":
        rows, levels = cfg.xbar_rows, 1 << int(value)
        ch = {"cell_bits": int(value), "adc_bits": max(1, math.ceil(math.log2(rows * (levels - 1) + 1)))}
        return cfg.replace(**ch), ch, (), f"{int(value)} b"
    if param == "batch":
        ch = {"batch": int(value)}
        return cfg.replace(**ch), ch, (), str(int(value))
    if param == "dram_energy":
        ch = {"dram_pj_per_bit": float(value)}
        return cfg.replace(**ch), ch, (), f"{value:g} pJ/bit"
    raise AssertionError(param)


def sweep_summary(runs: dict[str, dict]) -> dict:
    """Derived numbers of one sweep point (None where a run is missing or failed)."""
    def ok(m):
        r = runs.get(m)
        return r if r and "error" not in r else None

    a, b, t = ok("aras"), ok("baseline"), ok("tpu")
    s = dict.fromkeys(("speedup_vs_baseline", "energy_saving_vs_baseline", "write_energy_rel_baseline",
                       "speedup_vs_tpu", "energy_saving_vs_tpu", "cycles_over_lb"))
    if a and b:
        s["speedup_vs_baseline"] = _ratio(b["latency_s"], a["latency_s"])
        s["energy_saving_vs_baseline"] = 1 - _ratio(a["energy_j"]["total"], b["energy_j"]["total"])
        s["write_energy_rel_baseline"] = _ratio(a["energy_j"]["write"], b["energy_j"]["write"])
    if a and t:
        s["speedup_vs_tpu"] = _ratio(t["latency_s"], a["latency_s"])
        s["energy_saving_vs_tpu"] = 1 - _ratio(a["energy_j"]["total"], t["energy_j"]["total"])
    if a:
        s["cycles_over_lb"] = _ratio(a["cycles"], a["lower_bound"]["cycles"])
    return s


def run_sweep(model, cfg, param: str, values: list | None, out_dir, jobs: int | None = None,
              progress: bool = True, command: str | None = None, scheduler: str | None = None,
              cache=None) -> dict:
    """Sensitivity study: ARAS vs the baseline (and the TPU-like baseline where ``param`` changes it) at
    every value of ``param``; writes ``sweep_<param>.json``, ``sweep_<param>.md`` and ``sweep_<param>.png``.

    Parameters
    ----------
    model : registry model name, trace directory or :class:`~aras.trace.Trace`.
    cfg : the base :class:`~aras.config.Config`, a preset name or a config file.
    param : one of :data:`SWEEP_PARAMS`: ``xbars`` (fractions of the network's tiles), ``write_latency``
        (t_pulse_ns, ns), ``write_energy`` (e_set_pj = e_reset_pj, pJ), ``lookahead`` (rounds >= 1 or
        None), ``cell_bits`` (1, 2, 4), ``batch``.
    values : the values (None: :data:`DEFAULT_SWEEP_VALUES`); see :func:`parse_sweep_values`.
    out_dir : output directory. jobs, progress, command, scheduler, cache : as :func:`run_compare`.

    Returns
    -------
    The JSON content: ``points`` (per value: ``value``, ``label``, ``changes`` (config fields set),
    ``options`` (scheduler options set), ``runs`` (mode -> simulate result, or {"error": ...} when that
    point does not fit, ``{"error": "failed: ..."}`` when it raised), ``summary``); ``failures`` (when
    runs raised: their parameters and error); ``execution`` (:meth:`aras.execution.Outcome.summary`).
    """
    from . import report

    t0 = time.perf_counter()
    _check_param(param)
    values = list(DEFAULT_SWEEP_VALUES[param] if values is None else values)
    if not values:
        raise ArasError(f"sweep {param}: no values")
    cfg = _config(cfg)
    m = _resolve(model, progress)
    n_tiles = count_tiles(m.trace, cfg)
    swept = _SWEEP_MODES[param]
    points, tasks = [], []
    for i, v in enumerate(values):
        c, ch, ov, label = _sweep_point(cfg, param, v, n_tiles)
        pt = {"value": v, "label": label, "changes": ch, "options": dict(ov), "n_xbars": c.n_xbars, "runs": {}}
        if param == "xbars":
            pt["fraction_of_tiles"] = c.n_xbars / n_tiles
        try:
            check_fits(m.trace, c)
        except ArasError as e:
            pt["error"] = str(e)
        else:
            for mode in swept:
                tasks.append(Task((i, mode), simulate_run, (c, mode, ov if mode == "aras" else (), True),
                                  m.trace.name, {"model": m.trace.name, param: v, "mode": mode},
                                  _cost(mode, m.n_weights)))
        points.append(pt)
    shared = list(_SWEEP_SHARED.get(param, ()))
    if any("error" not in p for p in points):
        for mode in shared:  # runs the swept parameter does not change: once, on the base config
            tasks.append(Task(("shared", mode), simulate_run, (cfg, mode, (), True), m.trace.name,
                              {"model": m.trace.name, param: "base config", "mode": mode},
                              _cost(mode, m.n_weights)))
    out = execute(tasks, {m.trace.name: m.trace}, jobs=jobs, scheduler=scheduler, cache=_cache(cache),
                  progress=progress, desc=f"sweep {param}", weights=m.n_weights)
    res = out.by_key(tasks)
    for f in out.failures:
        res[f.key] = {"error": f"failed: {f.error}", "mode": f.key[1]}
    for i, pt in enumerate(points):
        if "error" in pt:
            pt["summary"] = sweep_summary({})
            continue
        for mode in swept:
            pt["runs"][mode] = res[(i, mode)]
        for mode in shared:
            pt["runs"][mode] = res[("shared", mode)]
        pt["summary"] = sweep_summary(pt["runs"])
    data = {
        "format": "aras-sweep", "version": 1, "aras_version": __version__,
        "provenance": provenance(command),
        "param": param, "param_description": SWEEP_PARAMS[param],
        "model": {"name": m.trace.name, "ref": m.label, "weights": m.trace.weights, "notes": m.trace.notes,
                  "weight_count": m.n_weights, "tiles": n_tiles},
        "config": cfg.to_dict(), "swept_modes": list(swept), "shared_modes": shared,
        "points": points, "jobs": out.workers, "execution": out.summary(),
    }
    if out.failures:
        data["failures"] = _failures(out)
    data["wall_s"] = time.perf_counter() - t0
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    _write_json(d / f"sweep_{param}.json", data)
    report.write_sweep_report(data, d)
    return data
