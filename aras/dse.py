"""Design-space exploration behind ``aras dse``: a grid over config fields and sweep parameters, run
on the execution layer (:mod:`aras.execution`), with the Pareto front of latency, energy and area (and
accuracy, on labelled real-weight networks) per network and for the geometric mean over the networks.

A grid names parameters with their values (``--grid PARAM=V1,V2,...``):

- any numeric (or boolean) field of :class:`~aras.config.Config` (``xbars_per_apu``, ``adc_bits``,
  ``gbuf_banks``, ``t_read_mvm_ns``, ...), set as given;
- the parameters of ``aras sweep --param`` (:data:`aras.experiments.SWEEP_PARAMS`) with their meaning
  there: ``xbars`` (a fraction of each network's tiles: per network a different crossbar count),
  ``write_latency``, ``write_energy``, ``dram_energy``, ``lookahead`` (a scheduler option), ``batch``,
  and ``cell_bits``, whose ADC follows at the exact width unless ``adc_bits`` is in the grid too.

A named parameter and a config field it sets (``xbars`` and ``n_pe``, ``write_energy`` and ``e_set_pj``,
...) cannot both be in a grid. Every combination is validated on every network before anything runs:
a config the configuration rejects, or a network that does not fit it, makes the combination invalid;
invalid combinations are listed, counted and skipped (or, with ``strict``, rejected). Random sampling
draws only valid combinations, without repetition, reproducibly from its seed.

Each valid point is one ARAS run per network (``sim_models.perf.simulate``); with ``accuracy=N``
labelled real-weight networks also run their first N labelled samples through the bit-exact functional
model with the encodings the executed program wrote (a fourth objective, maximised).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .config import Config
from .errors import ArasError
from .execution import Task, plain, simulate_run
from .execution import run as execute
from .trace import check_fits

# The sweep parameters and the config fields each one sets (they cannot be gridded together).
NAMED_SETS = {
    "xbars": ("n_pe", "apus_per_pe", "xbars_per_apu", "write_drivers_per_pe"),
    "write_latency": ("t_pulse_ns", "t_reset_ns"),
    "write_energy": ("e_set_pj", "e_reset_pj"),
    "dram_energy": ("dram_pj_per_bit",),
    "cell_bits": ("cell_bits",),  # and adc_bits at the exact width, unless adc_bits is gridded
    "batch": ("batch",),
    "lookahead": (),  # scheduler Options.lookahead
}
OBJECTIVES = ("latency_s", "energy_j", "area_mm2")  # minimised; "accuracy" maximised when measured
MAX_FULL_GRID = 100_000  # larger grids need --samples
MAX_ENUMERATED = 1_000_000  # random sampling enumerates (and shuffles) grids up to this size
CSV_COLUMNS = ("point", "model", "weights")  # + the grid parameters + the metrics below
METRICS = ("n_xbars", "cycles", "latency_s", "energy_j", "write_energy_j", "area_mm2", "accuracy",
           "accuracy_samples")


# ---------------------------------------------------------------------------------------------- grid
def config_params() -> dict[str, str]:
    """Config fields a grid may set: name -> type ("int", "float" or "bool")."""
    return {f.name: f.type for f in dataclasses.fields(Config) if f.type in ("int", "float", "bool")}


def grid_params() -> list[str]:
    """Every name a grid takes: the sweep parameters, then the config fields."""
    from .experiments import SWEEP_PARAMS

    return list(SWEEP_PARAMS) + [k for k in config_params() if k not in SWEEP_PARAMS]


def _kind(param: str) -> str:
    if param in ("lookahead",):
        return "lookahead"
    if param in ("cell_bits", "batch"):
        return "int"
    if param in NAMED_SETS:
        return "float"
    return config_params()[param]


def _value(param: str, s: str):
    kind = _kind(param)
    if kind == "lookahead" and s.lower() in ("none", "inf", "unbounded"):
        return None
    if kind == "bool":
        if s.lower() in ("true", "1", "yes", "on"):
            return True
        if s.lower() in ("false", "0", "no", "off"):
            return False
        raise ArasError(f"--grid {param}: value {s!r} is not a boolean (true or false)")
    try:
        v = float(s)
    except ValueError:
        raise ArasError(f"--grid {param}: value {s!r} is not a number") from None
    if not math.isfinite(v):
        raise ArasError(f"--grid {param}: value {s!r} is not finite")
    if kind in ("int", "lookahead"):
        if v != int(v):
            raise ArasError(f"--grid {param}: value {s!r} must be an integer")
        return int(v)
    return v


def parse_grid(specs: list[str]) -> dict[str, list]:
    """``PARAM=V1,V2,...`` strings -> {param: values} in the order given. Unknown parameters are one
    error naming all of them; so are a repeated parameter, an empty or malformed value list, and a
    named parameter gridded together with a config field it sets."""
    if not specs:
        raise ArasError("dse: give at least one --grid PARAM=V1,V2,...")
    known = set(grid_params())
    pairs, unknown = [], []
    for spec in specs:
        name, sep, text = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ArasError(f"--grid {spec!r}: expected PARAM=V1,V2,... (e.g. --grid adc_bits=7,8,9)")
        if name not in known:
            unknown.append(name)
        pairs.append((name, text))
    if unknown:
        raise ArasError(f"--grid: unknown parameter{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                        f"parameters: the sweep parameters {', '.join(NAMED_SETS)} and the numeric config fields "
                        "(`aras config paper` lists them)")
    grid: dict[str, list] = {}
    for name, text in pairs:
        if name in grid:
            raise ArasError(f"--grid {name}: given twice; list every value in one --grid {name}=V1,V2,...")
        vals = [_value(name, s.strip()) for s in text.split(",") if s.strip()]
        if not vals:
            raise ArasError(f"--grid {name}: no values in {text!r}")
        if len(set(map(repr, vals))) != len(vals):
            raise ArasError(f"--grid {name}: a value is repeated in {text!r}")
        grid[name] = vals
    for named, fields in NAMED_SETS.items():
        clash = [f for f in fields if f in grid and f != named]
        if named in grid and clash:
            raise ArasError(f"--grid {named} sets {', '.join(fields)}; it cannot be gridded together with "
                            f"{', '.join(clash)}")
    return grid


# ---------------------------------------------------------------------------------------------- points
@dataclass
class Combo:
    """One combination of grid values, and per network its config (or why it is invalid)."""

    index: tuple[int, ...]
    params: dict
    configs: dict  # model name -> Config
    options: tuple  # scheduler Options overrides
    changes: dict  # model name -> config fields set
    reasons: dict  # model name -> why invalid


def _configure(cfg: Config, params: dict, trace) -> tuple[Config, dict, tuple]:
    """(config, fields set, Options overrides) of one combination on one network; ArasError if the
    configuration rejects it or the network does not fit."""
    from .experiments import count_tiles, scale_xbars

    changes: dict = {}
    options: tuple = ()
    for k, v in params.items():
        if k in NAMED_SETS:
            continue
        changes[k] = v
    if "cell_bits" in params:
        changes["cell_bits"] = params["cell_bits"]
        if "adc_bits" not in params:
            rows, levels = changes.get("xbar_rows", cfg.xbar_rows), 1 << params["cell_bits"]
            changes["adc_bits"] = max(1, math.ceil(math.log2(rows * (levels - 1) + 1)))
    for k, fields in (("write_latency", ("t_pulse_ns", "t_reset_ns")), ("write_energy", ("e_set_pj", "e_reset_pj")),
                      ("dram_energy", ("dram_pj_per_bit",)), ("batch", ("batch",))):
        if k in params:
            changes.update(dict.fromkeys(fields, params[k]))
    if "lookahead" in params:
        v = params["lookahead"]
        if v is not None and v < 1:
            raise ArasError(f"lookahead must be >= 1 or none (unbounded), got {v}")
        options = (("lookahead", v),)
    if "xbars" in params:
        v = params["xbars"]
        if v <= 0:
            raise ArasError(f"xbars is a fraction of the network's tiles (> 0), got {v:g}")
        c = cfg.replace(**changes) if changes else cfg
        changes.update(scale_xbars(c, round(v * count_tiles(trace, c))))
    c = cfg.replace(**changes) if changes else cfg
    check_fits(trace, c)
    return c, changes, options


def _combo(cfg: Config, grid: dict, index: tuple, traces: dict) -> Combo:
    params = {k: grid[k][j] for k, j in zip(grid, index, strict=True)}
    combo = Combo(index, params, {}, (), {}, {})
    for name, tr in traces.items():
        try:
            c, ch, opts = _configure(cfg, params, tr)
        except ArasError as e:
            combo.reasons[name] = str(e)
            continue
        combo.configs[name], combo.changes[name], combo.options = c, ch, opts
    return combo


def _indices(grid: dict):
    return itertools.product(*(range(len(v)) for v in grid.values()))


def grid_size(grid: dict) -> int:
    return math.prod(len(v) for v in grid.values())


def combinations(cfg: Config, grid: dict, traces: dict, samples: int | None = None,
                 seed: int = 0) -> tuple[list[Combo], list[Combo], dict]:
    """(valid, invalid, sampling) combinations of ``grid`` on every network of ``traces``.

    Full factorial (``samples`` None): every combination, in grid order (the last parameter varies
    fastest), each validated. Random (``samples`` = N): N distinct valid combinations drawn with
    ``numpy.random.default_rng(seed)`` (all of them when fewer are valid), returned in grid order; the
    invalid ones met while drawing are returned too. ``sampling`` describes what was done."""
    total = grid_size(grid)
    if samples is None:
        if total > MAX_FULL_GRID:
            raise ArasError(f"dse: the grid has {total:,} combinations (more than {MAX_FULL_GRID:,}); "
                            "draw a random sample of them with --samples N")
        combos = [_combo(cfg, grid, ix, traces) for ix in _indices(grid)]
        valid = [c for c in combos if not c.reasons]
        return valid, [c for c in combos if c.reasons], {"mode": "full factorial", "combinations": total,
                                                         "drawn": total}
    rng = np.random.default_rng(seed)
    valid: list[Combo] = []
    invalid: list[Combo] = []
    sizes = [len(v) for v in grid.values()]
    if total <= MAX_ENUMERATED:
        order = rng.permutation(total)
        for flat in order:
            if len(valid) == samples:
                break
            c = _combo(cfg, grid, tuple(int(i) for i in np.unravel_index(flat, sizes)), traces)
            (invalid if c.reasons else valid).append(c)
        drawn = len(valid) + len(invalid)
    else:  # too many to enumerate: draw index tuples, skipping repeats, up to a bounded number of tries
        seen: set = set()
        tries = 0
        while len(valid) < samples and tries < 50 * samples + 1000:
            tries += 1
            ix = tuple(int(rng.integers(n)) for n in sizes)
            if ix in seen:
                continue
            seen.add(ix)
            c = _combo(cfg, grid, ix, traces)
            (invalid if c.reasons else valid).append(c)
        drawn = len(seen)
    valid.sort(key=lambda c: c.index)
    invalid.sort(key=lambda c: c.index)
    return valid, invalid, {"mode": "random", "samples": samples, "seed": seed, "combinations": total,
                            "drawn": drawn}


# ---------------------------------------------------------------------------------------------- pareto
def pareto_front(values, maximize=None) -> list[int]:
    """Indices (ascending) of the rows of ``values`` (points x objectives) that no other row dominates:
    at least as good in every objective and better in one. Objectives are minimised, those flagged in
    ``maximize`` maximised. Rows with a NaN or None never enter the front."""
    v = np.array([[np.nan if x is None else float(x) for x in row] for row in values], dtype=float)
    if v.size == 0:
        return []
    v = v.reshape(len(values), -1)
    if maximize is not None:
        v = np.where(np.asarray(maximize, dtype=bool)[None, :], -v, v)
    ok = np.isfinite(v).all(axis=1)
    front = []
    cand = v[ok]
    for i in np.flatnonzero(ok):
        le = (cand <= v[i]).all(axis=1)
        lt = (cand < v[i]).any(axis=1)
        if not (le & lt).any():
            front.append(int(i))
    return front


def geomean(xs) -> float | None:
    xs = [x for x in xs]
    if not xs or any(x is None or not x > 0 for x in xs):
        return None
    return float(math.exp(sum(math.log(x) for x in xs) / len(xs)))


# ---------------------------------------------------------------------------------------------- tasks
def accuracy_run(trace, cfg, overrides: tuple, n: int) -> dict:
    """ARAS's ``simulate`` result (as :func:`aras.execution.simulate_run`) plus ``accuracy``: the first
    ``n`` labelled samples through the bit-exact functional model, with the encodings the executed
    program wrote (they matter when the ADCs clip)."""
    from sim_models import functional
    from sim_models.perf import simulate
    from sim_models.scheduler import Options

    t0 = time.perf_counter()
    keep: dict = {}
    try:
        res = plain(simulate(trace, cfg, "aras", Options.for_mode("aras", **dict(overrides)), keep=keep))
    except ArasError as e:
        return {"error": str(e), "mode": "aras", "wall_s": time.perf_counter() - t0}
    x, labels = trace.samples[:n], trace.labels[:n]
    plan = functional.plan_from_program(keep["program"], trace, cfg)
    out = functional.run(trace, cfg, x, plan=plan)
    pred = out[trace.outputs[0]].reshape(len(x), -1).argmax(axis=1)
    correct = int((pred == labels).sum())
    res["accuracy"] = {"value": correct / len(x), "correct": correct, "samples": int(len(x))}
    res["wall_s"] = time.perf_counter() - t0
    return res


def labelled(tr) -> bool:
    """A network whose accuracy ``--accuracy`` measures: real weights and labelled samples."""
    return tr.weights == "real" and tr.labels is not None and tr.samples is not None and len(tr.samples) > 0


def _record(r: dict | None, changes: dict, cfg: Config) -> dict:
    if r is None or "error" in r:
        return {"error": (r or {}).get("error", "not run"), "changes": plain(changes), "n_xbars": cfg.n_xbars}
    rec = {"changes": plain(changes), "n_xbars": cfg.n_xbars, "cycles": r["cycles"], "latency_s": r["latency_s"],
           "energy_j": r["energy_j"]["total"], "write_energy_j": r["energy_j"].get("write"),
           "area_mm2": r["area_mm2"]["total"]}
    if "accuracy" in r:
        rec["accuracy"] = r["accuracy"]["value"]
        rec["accuracy_samples"] = r["accuracy"]["samples"]
    return rec


# ---------------------------------------------------------------------------------------------- run
def run_dse(models: list, cfg, grid: dict, out_dir, samples: int | None = None, seed: int = 0,
            accuracy: int | None = None, strict: bool = False, jobs: int | None = None,
            scheduler: str | None = None, cache=None, progress: bool = True, command: str | None = None) -> dict:
    """Explore ``grid`` (:func:`parse_grid`'s form) over ``models`` on the base config ``cfg``; writes
    ``dse.csv``, ``dse.json``, ``pareto.png``, ``report.md`` and ``report.html`` into ``out_dir``.

    ``samples``/``seed``: a random sample of the grid instead of all of it; ``accuracy``: samples per
    labelled real-weight network through the functional model; ``strict``: an invalid combination is an
    error instead of being skipped; jobs, scheduler, cache, progress, command: as
    :func:`aras.experiments.run_compare`. Returns the ``dse.json`` content."""
    from . import report
    from .experiments import _cache, _config, _failures, _write_json, provenance, resolve_models

    t0 = time.perf_counter()
    if not models:
        raise ArasError("dse: give at least one model")
    if accuracy is not None and accuracy < 1:
        raise ArasError(f"--accuracy must be a positive integer (1 or more), got {accuracy}")
    if samples is not None and samples < 1:
        raise ArasError(f"--samples must be a positive integer (1 or more), got {samples}")
    cfg = _config(cfg)
    ms = resolve_models(models, progress, "dse")
    names = [m.trace.name for m in ms]
    traces = {m.trace.name: m.trace for m in ms}
    valid, invalid, sampling = combinations(cfg, grid, traces, samples, seed)
    if invalid and strict:
        shown = "; ".join(f"{_params_text(c.params)} ({_reason_text(c.reasons)})" for c in invalid[:3])
        raise ArasError(f"dse --strict: {len(invalid)} of {sampling['drawn']} combinations are invalid: {shown}"
                        + (" ..." if len(invalid) > 3 else ""))
    if not valid:
        raise ArasError(f"dse: none of the {sampling['drawn']} combinations is valid on every network "
                        f"(first: {_params_text(invalid[0].params)}: {_reason_text(invalid[0].reasons)})")
    acc = {n: accuracy is not None and labelled(traces[n]) for n in names}
    tasks = []
    for p, c in enumerate(valid):
        for m in ms:
            n = m.trace.name
            par = {"point": p, "model": n, **c.params}
            if acc[n]:
                k = min(accuracy, len(m.trace.samples))
                tasks.append(Task((p, n), accuracy_run, (c.configs[n], c.options, k), n, par, m.n_weights))
            else:
                tasks.append(Task((p, n), simulate_run, (c.configs[n], "aras", c.options, True), n, par,
                                  m.n_weights))
    out = execute(tasks, traces, jobs=jobs, scheduler=scheduler, cache=_cache(cache), progress=progress,
                  desc="dse", weights=max(m.n_weights for m in ms))
    res = out.by_key(tasks)
    for f in out.failures:
        res[f.key] = {"error": f"failed: {f.error}"}
    points = []
    for p, c in enumerate(valid):
        recs = {n: _record(res[(p, n)], c.changes[n], c.configs[n]) for n in names}
        pt = {"id": p, "params": plain(c.params), "options": plain(dict(c.options)), "results": recs}
        pt["geomean"] = _geomean_record(recs, names, acc)
        points.append(pt)
    fronts = {n: [points[i]["id"] for i in _front(points, lambda pt, n=n: pt["results"][n], acc[n])] for n in names}
    if len(names) > 1:
        fronts["geomean"] = [points[i]["id"] for i in _front(points, lambda pt: pt["geomean"], any(acc.values()))]
    data = {
        "format": "aras-dse", "version": 1, "aras_version": __version__, "provenance": provenance(command),
        "config": cfg.to_dict(),
        "models": [{"name": m.trace.name, "ref": m.label, "weights": m.trace.weights, "notes": m.trace.notes,
                    "weight_count": m.n_weights, "labelled": m.trace.labels is not None,
                    "accuracy_samples": min(accuracy, len(m.trace.samples)) if acc[m.trace.name] else None}
                   for m in ms],
        "grid": plain(grid), "sampling": sampling, "strict": strict, "accuracy": accuracy,
        "objectives": list(OBJECTIVES) + (["accuracy"] if any(acc.values()) else []),
        "points": points,
        "invalid": [{"params": plain(c.params), "reasons": c.reasons} for c in invalid],
        "fronts": fronts,
        "jobs": out.workers, "execution": out.summary(),
    }
    if out.failures:
        data["failures"] = _failures(out)
    data["wall_s"] = time.perf_counter() - t0
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    _write_json(d / "dse.json", data)
    _write_text(d / "dse.csv", table_csv(data))
    report.write_dse_report(data, d)
    return data


def _geomean_record(recs: dict, names: list, acc: dict) -> dict:
    if any("error" in recs[n] for n in names):
        bad = [n for n in names if "error" in recs[n]]
        return {"error": f"not run on {', '.join(bad)}"}
    g = {k: geomean([recs[n][k] for n in names]) for k in ("latency_s", "energy_j", "area_mm2")}
    a = [recs[n]["accuracy"] for n in names if acc[n] and "accuracy" in recs[n]]
    if a:
        g["accuracy"] = sum(a) / len(a)
    return g


def _front(points: list, get, with_accuracy: bool) -> list[int]:
    keys = list(OBJECTIVES) + (["accuracy"] if with_accuracy else [])
    rows = [[None if "error" in get(pt) else get(pt).get(k) for k in keys] for pt in points]
    return pareto_front(rows, [k == "accuracy" for k in keys])


def _params_text(params: dict) -> str:
    return ", ".join(f"{k}={'none' if v is None else f'{v:g}' if isinstance(v, float) else v}"
                     for k, v in params.items())


def _reason_text(reasons: dict) -> str:
    return "; ".join(f"{n}: {r}" for n, r in reasons.items())


def _fmt(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, float) else str(v)


def table_csv(data: dict) -> str:
    """``dse.csv``: one row per point and network, then (several networks) one ``geomean`` row per
    point; the grid parameters, the metrics, whether the row is on its Pareto front, any error."""
    params = list(data["grid"])
    W = {m["name"]: m["weights"] for m in data["models"]}
    fronts = {k: set(v) for k, v in data["fronts"].items()}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(CSV_COLUMNS) + params + list(METRICS) + ["pareto", "error"])
    groups = [(n, W[n]) for n in W] + ([("geomean", "")] if "geomean" in fronts else [])
    for pt in data["points"]:
        for n, weights in groups:
            r = pt["geomean"] if n == "geomean" else pt["results"][n]
            w.writerow([pt["id"], n, weights] + [_fmt(pt["params"][k]) for k in params]
                       + [_fmt(r.get(k)) for k in METRICS]
                       + ["" if "error" in r else "yes" if pt["id"] in fronts[n] else "no", r.get("error", "")])
    return buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    import os

    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
