"""The claims map behind ``aras claims``: where, on a 2-D grid of two parameters, ARAS reaches the paper's
four headline numbers against the baseline PUM and the TPU-like design (docs/claims.md).

The two axes take exactly the parameters of ``aras dse --grid`` (:func:`aras.dse.parse_grid`): a sweep
parameter (``write_energy`` sets ``e_set_pj`` = ``e_reset_pj``, ``write_latency``, ``dram_energy``,
``batch``, ``xbars``, ``cell_bits``, ``lookahead``) or any numeric/boolean config field (``pulses_per_level``,
``e_adc8_pj``, ``dram_pj_per_bit``, ``n_pe``, ...), and each combination is configured by
:mod:`aras.dse`'s rules. At every point and on every network four designs run in steady state --
ARAS (mode ``aras``), the baseline PUM, the ideal PUM and the TPU-like design -- as tasks of the shared
execution layer (:mod:`aras.execution`: serial, local Dask or an existing cluster) with the same task
function and arguments as ``aras sweep`` and ``aras dse``, so the result cache (:mod:`aras.cache`) serves
runs any of these commands already made. The ratios are those of ``aras sweep``
(:func:`aras.experiments.sweep_summary`): speedup = latency of the reference / ARAS's, energy saving =
1 - E_ARAS / E_reference, both per run of ``batch`` inputs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .errors import ArasError
from .execution import Task, plain, simulate_run
from .execution import run as execute


@dataclass(frozen=True)
class Claim:
    key: str  # the ratio's key in aras.experiments.sweep_summary
    kind: str  # "speedup" or "saving"
    reference: str  # the design compared against
    level: float
    label: str


# The paper's four headline numbers: Sabri, Riera, González, "ARAS: an adaptive low-cost ReRAM-based
# accelerator for DNNs", arXiv 2410.17931, abstract ("up to 2.2x speedup and 45 % energy savings" over a
# baseline ReRAM accelerator, "1.5x speedup and 61 % energy savings" over a TPU-like accelerator); the
# same four numbers as issue 14 and docs/results.md section 2.
PAPER = "Sabri, Riera, González, arXiv 2410.17931 (abstract)"
CLAIMS = (
    Claim("speedup_vs_baseline", "speedup", "baseline", 2.2, "2.2×"),
    Claim("energy_saving_vs_baseline", "saving", "baseline", 0.45, "45 %"),
    Claim("speedup_vs_tpu", "speedup", "tpu", 1.5, "1.5×"),
    Claim("energy_saving_vs_tpu", "saving", "tpu", 0.61, "61 %"),
)
DESIGNS = ("aras", "baseline", "ideal", "tpu")
DESIGN_LABEL = {"aras": "ARAS", "baseline": "baseline PUM", "ideal": "ideal PUM", "tpu": "TPU-like"}
FILES = ("claims.png", "claims.json", "report.md", "report.html")
LOG_SPAN = 10.0  # an axis whose values (all > 0) span more than this factor is drawn on a log scale (the brief)
MAX_POINTS = 10_000  # grid points per network (each is four runs)


# ---------------------------------------------------------------------------------------------- input
def _reflag(e: ArasError, flag: str) -> ArasError:
    return ArasError(str(e).replace("--grid", flag))


def parse_axes(x: str, y: str) -> dict[str, list]:
    """``--x PARAM=V1,...`` and ``--y PARAM=V1,...`` -> {x_param: values, y_param: values} (``aras dse
    --grid``'s syntax and parameters); one-line errors name the flag."""
    from .dse import parse_grid

    for flag, spec in (("--x", x), ("--y", y)):
        if spec is None:
            raise ArasError(f"claims: give {flag} PARAM=V1,V2,...")
        try:
            parse_grid([spec])
        except ArasError as e:
            raise _reflag(e, flag) from None
    xp, yp = x.partition("=")[0].strip(), y.partition("=")[0].strip()
    if xp == yp:
        raise ArasError(f"--x and --y: both are {xp!r}; give two different parameters")
    try:
        grid = parse_grid([x, y])
    except ArasError as e:
        raise _reflag(e, "--x/--y") from None
    n = math.prod(len(v) for v in grid.values())
    if n > MAX_POINTS:
        raise ArasError(f"--x/--y: {n:,} grid points (more than {MAX_POINTS:,}, each four runs per network)")
    return grid


def check_models(models) -> None:
    """Every model reference names a built-in model or a trace directory (or is a Trace), before any
    trace is built; one-line error naming the first that does not."""
    from .models import REGISTRY
    from .trace import Trace

    if not models:
        raise ArasError("claims: give at least one model")
    for ref in models:
        if isinstance(ref, Trace) or Path(str(ref)).is_dir() or str(ref) in REGISTRY:
            continue
        raise ArasError(f"{str(ref)!r} is neither a trace directory nor a model name (models: "
                        f"{', '.join(REGISTRY)}; see `aras models`)")


def _probe(tr):
    """``tr`` without layers: a config built on it is validated by the configuration alone (no fit check)."""
    from .trace import Trace

    return Trace(name=tr.name, weights=tr.weights, input=tr.input, tensors=tr.tensors, layers=[], outputs=[])


def check_values(cfg, grid: dict, traces: dict) -> None:
    """A value the configuration rejects on its own (the other axis at the base config) is bad input: a
    one-line error naming its axis. Combinations of valid values that a network does not fit (or that the
    configuration rejects together) become empty cells of the map."""
    from .dse import _configure

    for flag, (param, values) in zip(("--x", "--y"), grid.items(), strict=True):
        for v in values:
            for tr in traces.values():
                try:
                    _configure(cfg, {param: v}, _probe(tr))
                except ArasError as e:
                    shown = "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v).lower()
                    raise ArasError(f"{flag} {param}={shown}: {e}") from None


# ---------------------------------------------------------------------------------------------- run
def _design(r: dict) -> dict:
    e = r["energy_j"]
    out = {"cycles": r["cycles"], "latency_s": r["latency_s"], "energy_j": e["total"],
           "energy_breakdown_j": {k: v for k, v in e.items() if k != "total"}}
    if r.get("mode") == "tpu" and r.get("tpu"):
        out["tpu_array"] = [r["tpu"].get("rows"), r["tpu"].get("cols")]
    return out


def ratios(runs: dict) -> dict:
    """ARAS against the other designs at one point: :func:`aras.experiments.sweep_summary`'s ratios and
    ARAS's cycles over the ideal PUM's (None where a run is missing)."""
    from .experiments import _ratio, sweep_summary

    s = sweep_summary(runs)
    a, i = runs.get("aras"), runs.get("ideal")
    ok = a is not None and i is not None and "error" not in a and "error" not in i
    s["cycles_over_ideal"] = _ratio(a["cycles"], i["cycles"]) if ok else None
    return s


def reached(claim: Claim, value) -> bool | None:
    """Whether ``value`` (the claim's ratio) is at least the paper's number (the side of the contour at
    exactly that level the claim holds on); None when undefined."""
    return None if value is None else bool(value >= claim.level)


def run_claims(models: list, cfg, grid: dict, out_dir, jobs: int | None = None, scheduler: str | None = None,
               cache=None, progress: bool = True, command: str | None = None) -> dict:
    """The claims map of ``models`` on the base config ``cfg`` over ``grid`` (:func:`parse_axes`: two
    parameters, x first); writes ``claims.png``, ``claims.json``, ``report.md`` and ``report.html`` into
    ``out_dir``. jobs, scheduler, cache, progress, command: as :func:`aras.experiments.run_compare`.
    Returns the ``claims.json`` content."""
    from sim_models.perf import fits

    from .dse import combinations
    from .experiments import _cache, _config, _cost, _failures, _write_json, provenance, resolve_models

    t0 = time.perf_counter()
    if len(grid) != 2:
        raise ArasError(f"claims: the grid needs exactly two parameters (x, y), got {len(grid)}")
    check_models(models)
    cfg = _config(cfg)
    ms = resolve_models(models, progress, "claims")
    names = [m.trace.name for m in ms]
    traces = {m.trace.name: m.trace for m in ms}
    check_values(cfg, grid, traces)
    valid, invalid, _ = combinations(cfg, grid, traces)
    combos = sorted(valid + invalid, key=lambda c: c.index)
    if not any(c.configs for c in combos):
        c = combos[0]
        raise ArasError("claims: no grid point is valid on any network (first: "
                        + "; ".join(f"{n}: {r}" for n, r in c.reasons.items()) + ")")
    xp, yp = grid
    tasks = []
    for c in combos:
        ix, iy = c.index
        for m in ms:
            n = m.trace.name
            if n not in c.configs:
                continue
            for d in DESIGNS:
                ov = c.options if d == "aras" else ()
                tasks.append(Task((n, ix, iy, d), simulate_run, (c.configs[n], d, ov, True), n,
                                  {"model": n, xp: c.params[xp], yp: c.params[yp], "mode": d}, _cost(d, m.n_weights)))
    out = execute(tasks, traces, jobs=jobs, scheduler=scheduler, cache=_cache(cache), progress=progress,
                  desc="claims", weights=max(m.n_weights for m in ms))
    res = out.by_key(tasks)
    for f in out.failures:
        res[f.key] = {"error": f"failed: {f.error}"}
    points = []
    for m in ms:
        n = m.trace.name
        for c in combos:
            ix, iy = c.index
            pt = {"model": n, "ix": ix, "iy": iy, "x": c.params[xp], "y": c.params[yp]}
            if n not in c.configs:
                pt["error"] = c.reasons[n]
                points.append(pt)
                continue
            cf = c.configs[n]
            pt.update(changes=plain(c.changes[n]), options=plain(dict(c.options)), n_xbars=cf.n_xbars,
                      fits=fits(m.trace, cf))
            runs = {d: res[(n, ix, iy, d)] for d in DESIGNS}
            bad = {d: r["error"] for d, r in runs.items() if "error" in r}
            if bad:
                pt["error"] = "; ".join(f"{DESIGN_LABEL[d]}: {e}" for d, e in bad.items())
            pt["designs"] = {d: ({"error": r["error"]} if "error" in r else _design(r)) for d, r in runs.items()}
            pt["ratios"] = ratios({d: r for d, r in runs.items() if "error" not in r})
            pt["claims"] = {cl.key: reached(cl, pt["ratios"][cl.key]) for cl in CLAIMS}
            points.append(pt)
    data = {
        "format": "aras-claims", "version": 1, "aras_version": __version__, "provenance": provenance(command),
        "config": cfg.to_dict(),
        "models": [{"name": m.trace.name, "ref": m.label, "weights": m.trace.weights, "notes": m.trace.notes,
                    "weight_count": m.n_weights} for m in ms],
        "x": {"param": xp, "values": plain(grid[xp])}, "y": {"param": yp, "values": plain(grid[yp])},
        "designs": list(DESIGNS),
        "claims": [{"key": cl.key, "kind": cl.kind, "reference": cl.reference, "level": cl.level, "label": cl.label,
                    "source": PAPER} for cl in CLAIMS],
        "points": points,
        "summary": {n: summarize([p for p in points if p["model"] == n]) for n in names},
        "jobs": out.workers, "execution": out.summary(),
    }
    if out.failures:
        data["failures"] = _failures(out)
    data["wall_s"] = time.perf_counter() - t0
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    _write_json(d / "claims.json", data)
    write_report(data, d)
    return data


def summarize(points: list[dict]) -> dict:
    """Per claim on one network: the points (x, y) reaching it, how many points have the ratio, and the
    best value with its point."""
    out = {}
    for cl in CLAIMS:
        have = [p for p in points if p.get("ratios", {}).get(cl.key) is not None]
        best = max(have, key=lambda p: p["ratios"][cl.key], default=None)
        out[cl.key] = {"level": cl.level, "reached": [[p["x"], p["y"]] for p in have if p["claims"][cl.key]],
                       "points": len(have), "best": None if best is None else best["ratios"][cl.key],
                       "best_at": None if best is None else [best["x"], best["y"]]}
    return out


# ---------------------------------------------------------------------------------------------- text
def _v(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _value_text(cl: Claim, v) -> str:
    from .report import fmt_pct, fmt_x

    return fmt_x(v) if cl.kind == "speedup" else fmt_pct(v)


def region_text(data: dict, name: str, cl: Claim) -> str:
    """Where on ``name``'s map the claim is reached, in words."""
    xp, yp = data["x"]["param"], data["y"]["param"]
    s = data["summary"][name][cl.key]
    what = f"{'speedup' if cl.kind == 'speedup' else 'energy saving'} vs {DESIGN_LABEL[cl.reference]} ≥ {cl.label}"
    if not s["points"]:
        return f"{what}: no point has the ratio (every run failed or no point is valid)."
    total = sum(1 for p in data["points"] if p["model"] == name)
    valid = "" if s["points"] == total else f" with a result (of {total})"
    best = f"best {_value_text(cl, s['best'])} at {xp}={_v(s['best_at'][0])}, {yp}={_v(s['best_at'][1])}"
    if not s["reached"]:
        return f"{what}: not reached at any of the {s['points']} points{valid} ({best})."
    by_y: dict = {}
    for xv, yv in s["reached"]:
        by_y.setdefault(repr(yv), (yv, []))[1].append(xv)
    parts = [f"{yp}={_v(yv)}: {xp} ∈ {{{', '.join(_v(x) for x in xs)}}}" for yv, xs in by_y.values()]
    return (f"{what}: reached at {len(s['reached'])} of the {s['points']} points{valid} — " + "; ".join(parts)
            + f" ({best}).")


def summary_lines(data: dict) -> list[str]:
    lines = []
    for m in data["models"]:
        for cl in CLAIMS:
            lines.append(f"{m['name']}: {region_text(data, m['name'], cl)}")
    return lines


# ---------------------------------------------------------------------------------------------- report
def write_report(data: dict, out: Path) -> list[Path]:
    """``claims.png``, ``report.md`` and ``report.html`` of :func:`run_claims`'s ``data``."""
    from .report import (
        DASH,
        WEIGHTS_LEGEND,
        Doc,
        _cfg,
        _docs_pointer,
        _write,
        config_lines,
        fmt_int,
        fmt_pct,
        fmt_uj,
        fmt_x,
        provenance_line,
        split_notes,
    )

    out = Path(out)
    c = _cfg(data["config"])
    xp, yp = data["x"]["param"], data["y"]["param"]
    png = "claims.png"
    claims_figure(data, out / png)
    from .dse import NAMED_SETS

    def sets(k):
        if k == "lookahead":
            return "scheduler option `lookahead` (ARAS)"
        if k in NAMED_SETS:
            return ", ".join(f"`{f}`" for f in NAMED_SETS[k])
        return f"config field `{k}`"

    d = Doc()
    d.h(1, f"Where ARAS reaches the paper's claims: config `{c.name}`, {xp} × {yp}")
    nets = ", ".join(f"{m['name']} ({m['weights']} weights)" for m in data["models"])
    d.p(f"Networks: {nets}. Generated by aras "
        f"{data.get('aras_version', '')} (`aras claims`); every number below comes from `claims.json` in this "
        "directory. At every grid point four designs run on every network (`sim_models.perf.simulate`, steady "
        f"state, per run of `batch` inputs): {', '.join(DESIGN_LABEL.values())}. Speedup = reference latency / "
        "ARAS latency; energy saving = 1 − E(ARAS) / E(reference).")
    d.p(provenance_line(data))
    d.p(WEIGHTS_LEGEND)
    none = "the trace has no notes on their source"
    d.ul([f"{m['name']}: {m['weights']} weights — {split_notes(m['notes'])[0] or none}" for m in data["models"]])
    d.p("Inputs: none run (cycles and energy do not depend on input values).")
    d.p(f"Base config `{c.name}` (every field not on an axis):")
    d.ul(config_lines(data["config"]))
    d.p(_docs_pointer())
    d.table(["axis", "parameter", "values", "sets"],
            [["x", xp, ", ".join(_v(v) for v in data["x"]["values"]), sets(xp)],
             ["y", yp, ", ".join(_v(v) for v in data["y"]["values"]), sets(yp)]])
    d.h(2, "The paper's four numbers")
    d.table(["claim", "level", "source"],
            [[f"{'speedup' if cl.kind == 'speedup' else 'energy saving'} vs {DESIGN_LABEL[cl.reference]}", cl.label,
              PAPER] for cl in CLAIMS])
    d.p("A point reaches a claim when its ratio is at least the paper's number (not rounded).")
    d.h(2, "Where the claims are reached")
    for m in data["models"]:
        d.p(f"**{m['name']}** ({m['weights']} weights):")
        d.ul([region_text(data, m["name"], cl) for cl in CLAIMS])
    d.img(png, f"Per network, ARAS against the baseline PUM and the TPU-like design over {xp} (x) and {yp} (y): each "
               "cell is one grid point with its value; cells outlined in black reach the paper's number; the thick "
               "black contour is the paper's level (interpolated linearly between the grid points, in the axes' "
               "scale), thin grey contours are round levels, the dashed one parity (1× or 0 %); blue = ARAS better, "
               "red = worse; grey hatched cells are not valid (see below).")

    for m in data["models"]:
        n = m["name"]
        pts = [p for p in data["points"] if p["model"] == n]
        d.h(2, f"{n}: every point")
        rows = []
        for p in pts:
            if "designs" not in p:
                rows.append([_v(p["x"]), _v(p["y"])] + [DASH] * 13 + [p["error"]])
                continue
            D, R = p["designs"], p["ratios"]

            def cyc(k, D=D):
                return fmt_int(D[k].get("cycles"))

            def uj(k, D=D):
                return fmt_uj(D[k].get("energy_j"))

            def cell(cl, R=R, p=p):
                t = fmt_x(R[cl.key]) if cl.kind == "speedup" else fmt_pct(R[cl.key])
                return f"**{t}**" if p["claims"][cl.key] else t

            rows.append([_v(p["x"]), _v(p["y"]), fmt_int(p["n_xbars"]), "yes" if p["fits"] else "no"]
                        + [cyc(k) for k in DESIGNS] + [uj(k) for k in ("aras", "baseline", "tpu")]
                        + [cell(cl) for cl in CLAIMS] + [p.get("error", "")])
        d.table([xp, yp, "crossbars", "fits", "ARAS cycles", "baseline cycles", "ideal cycles", "TPU-like cycles",
                 "ARAS energy (µJ)", "baseline energy (µJ)", "TPU-like energy (µJ)", "speedup vs baseline",
                 "energy saving vs baseline", "speedup vs TPU-like", "energy saving vs TPU-like", "error"], rows)
        d.p("Bold: the paper's number is reached. `fits`: every tile of the network has a crossbar of its own; then "
            "the baseline PUM still rewrites every tile on every run while ARAS keeps them (docs/results.md §2).")
    if data.get("failures"):
        d.h(2, "Failed runs")
        d.ul([", ".join(f"{k}={_v(v)}" for k, v in f["params"].items()) + f": {f['error']}" for f in data["failures"]])
    e = data.get("execution") or {}
    d.h(2, "Runs")
    d.p(f"{e.get('tasks', 0)} runs: {e.get('computed', 0)} computed, {e.get('cached', 0)} from the result cache, "
        f"{e.get('failed', 0)} failed; {e.get('backend', 'unknown')} ({e.get('workers', 0)} workers); "
        f"{e.get('cpu_s', 0):.3g} CPU seconds in the runs; total wall time {data.get('wall_s', 0):.3g} s.")
    md, ht = out / "report.md", out / "report.html"
    _write(md, d.markdown())
    _write(ht, d.html(out, f"ARAS claims map on config {c.name}"))
    return [md, ht, out / png]


# ---------------------------------------------------------------------------------------------- figure
def _run_failed(p: dict) -> bool:
    """A point whose run crashed, as opposed to one the model refused (a one-line ArasError such as a batch whose
    activations cannot be allocated in the Gbuffer banks): that one is "not valid" like the pre-checked ones."""
    return any(d.get("error", "").startswith("failed:") for d in p.get("designs", {}).values())


def axis_scale(values: list) -> str:
    """``log`` (all numbers > 0 spanning more than :data:`LOG_SPAN`), ``linear`` (numbers) or ``category``."""
    nums = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not nums:
        return "category"
    if min(values) > 0 and max(values) / min(values) > LOG_SPAN:
        return "log"
    return "linear"


def _coords(values: list) -> tuple[np.ndarray, np.ndarray, list[int], str]:
    """(cell centres, cell edges, order of the values along the axis, scale) in plot coordinates
    (log10 of the value on a log axis, the value on a linear one, the index for categories)."""
    scale = axis_scale(values)
    if scale == "category":
        order = list(range(len(values)))
        u = np.arange(len(values), dtype=float)
    else:
        order = sorted(range(len(values)), key=lambda i: values[i])
        u = np.array([math.log10(values[i]) if scale == "log" else float(values[i]) for i in order])
    if len(u) == 1:
        half = 0.5 if scale != "linear" else max(0.5, abs(u[0]) / 2)
        edges = np.array([u[0] - half, u[0] + half])
    else:
        mid = (u[1:] + u[:-1]) / 2
        edges = np.concatenate([[u[0] - (mid[0] - u[0])], mid, [u[-1] + (u[-1] - mid[-1])]])
    return u, edges, order, scale


UNITS = {"write_energy": "pJ per SET/RESET pulse", "write_latency": "ns per pulse", "dram_energy": "pJ/bit",
         "batch": "inputs per run", "xbars": "fraction of the network's tiles", "lookahead": "rounds"}
_SUFFIX_UNITS = {"_pj": "pJ", "_ns": "ns", "_mw": "mW", "_uw": "µW", "_mm2": "mm²", "_ghz": "GHz", "_bytes": "B",
                 "_pj_per_bit": "pJ/bit", "_cycles": "cycles"}


def axis_label(param: str, scale: str) -> str:
    """``param`` with its unit (the sweep parameters' meaning, a config field's name suffix) and scale."""
    unit = UNITS.get(param) or next((u for sfx, u in sorted(_SUFFIX_UNITS.items(), key=lambda kv: -len(kv[0]))
                                     if param.endswith(sfx)), None)
    return param + (f" ({unit})" if unit else "") + (", log scale" if scale == "log" else "")


ROUND_SPEEDUP = (0.25, 0.5, 2.0, 4.0, 8.0)  # thin contours (×); parity 1× dashed
ROUND_SAVING = (-2.0, -1.0, -0.5, 0.25, 0.5, 0.75)  # thin contours; parity 0 % dashed


def _label_spots(cs, ux, uy, ex, ey) -> list[tuple[float, float]]:
    """Per contour level one label position: the vertex of its line farthest (in cell units) from every
    cell centre, where the cell's value is written, so the label does not hide it."""
    spots = []
    cx, cy = np.meshgrid(ux, uy)
    wx = np.interp(cx, ux, np.diff(ex)) if len(ux) > 1 else np.full_like(cx, ex[-1] - ex[0])
    wy = np.interp(cy, uy, np.diff(ey)) if len(uy) > 1 else np.full_like(cy, ey[-1] - ey[0])
    for segs in cs.allsegs:
        # the vertices and the midpoints of each line (a straight two-vertex line is labelled between its ends)
        pts = np.concatenate([np.concatenate([sg, (sg[1:] + sg[:-1]) / 2]) for sg in segs if len(sg)]
                             or [np.empty((0, 2))])
        if not len(pts):
            continue
        d = np.min(np.hypot((pts[:, None, 0] - cx.ravel()) / wx.ravel(), (pts[:, None, 1] - cy.ravel()) / wy.ravel()),
                   axis=1)
        spots.append(tuple(pts[int(np.argmax(d))]))
    return spots


def claims_figure(data: dict, path: Path) -> None:
    """One row of four heatmaps per network: speedup and energy saving against the baseline PUM and the
    TPU-like design, contour lines at the paper's numbers (thick, labelled), parity (dashed) and round
    levels (thin), cells reaching a claim outlined."""
    from matplotlib import colormaps
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from .report import _save

    xp, yp = data["x"]["param"], data["y"]["param"]
    xv, yv = data["x"]["values"], data["y"]["values"]
    ux, ex, ox, sx = _coords(xv)
    uy, ey, oy, sy = _coords(yv)
    models = data["models"]
    fig = Figure(figsize=(18, 4.3 * len(models)), dpi=100, layout="constrained")
    subs = fig.subfigures(len(models), 1, squeeze=False)[:, 0]
    cmap = colormaps["RdBu"].with_extremes(bad=(0, 0, 0, 0))  # masked cells show the hatched "not valid" patches
    annotate = len(xv) * len(yv) <= 150
    for sub, m in zip(subs, models, strict=True):
        n = m["name"]
        pts = {(p["ix"], p["iy"]): p for p in data["points"] if p["model"] == n}
        sub.suptitle(f"{n} ({m['weights']} weights), config {data['config']['name']}: ARAS vs the baseline PUM and "
                     "the TPU-like design", fontsize=13)
        axes = sub.subplots(1, 4)
        for ax, cl in zip(axes, CLAIMS, strict=True):
            raw = np.full((len(yv), len(xv)), np.nan)
            for (ix, iy), p in pts.items():
                v = p.get("ratios", {}).get(cl.key)
                if v is not None:
                    raw[oy.index(iy), ox.index(ix)] = v
            speed = cl.kind == "speedup"
            with np.errstate(divide="ignore", invalid="ignore"):
                z = np.log10(raw) if speed else raw
            zl = math.log10(cl.level) if speed else cl.level
            fin = z[np.isfinite(z)]
            lo, hi = (float(fin.min()), float(fin.max())) if fin.size else (-1.0, 1.0)
            span = max(max(hi, zl) - min(lo, zl), 0.05)  # the colour range always shows the paper's level
            norm = TwoSlopeNorm(vcenter=0.0, vmin=min(lo, zl, -0.05 * span), vmax=max(hi, zl, 0.05 * span))
            for (ix, iy), p in pts.items():
                if p.get("ratios", {}).get(cl.key) is None:
                    i, j = ox.index(ix), oy.index(iy)
                    ax.add_patch(Rectangle((ex[i], ey[j]), ex[i + 1] - ex[i], ey[j + 1] - ey[j], facecolor="#e4e4e4",
                                           hatch="//", edgecolor="#9a9a9a", lw=0.5, zorder=0))
            mesh = ax.pcolormesh(ex, ey, np.ma.masked_invalid(z), cmap=cmap, norm=norm, zorder=1)
            cb = sub.colorbar(mesh, ax=ax, shrink=0.9, pad=0.02)
            fmt = (lambda t: f"{10 ** t:.2g}×") if speed else (lambda t: f"{100 * t:.0f} %")
            vr = norm.vmax - norm.vmin
            ticks = [t for t in cb.get_ticks() if norm.vmin <= t <= norm.vmax and abs(t - zl) > 0.1 * vr]
            labels = [fmt(t) for t in ticks]
            if speed and len(set(labels)) < len(labels):  # 2 digits do not tell close ticks apart
                labels = [f"{10 ** t:.3g}×" for t in ticks]
            cb.set_ticks(ticks + [zl], labels=labels + [f"paper {cl.label}"])
            cb.ax.get_yticklabels()[-1].set_fontweight("bold")
            cb.ax.axhline(zl, color="black", lw=2.8)
            contourable = len(ux) > 1 and len(uy) > 1 and sx != "category" and sy != "category" and fin.size
            if contourable:
                zz = np.ma.masked_invalid(z)
                rounds = [math.log10(r) for r in ROUND_SPEEDUP] if speed else list(ROUND_SAVING)
                rounds = [r for r in rounds if lo < r < hi and abs(r - zl) > 1e-9]
                fmt_round = (lambda t: f"{10 ** t:.2g}×") if speed else (lambda t: f"{100 * t:.0f} %")
                def boxed(cs, fmt, size, weight="normal", ax=ax):
                    texts = ax.clabel(cs, fmt=fmt, fontsize=size, inline=False, manual=_label_spots(cs, ux, uy, ex, ey))
                    for t in texts:
                        t.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85})
                        t.set_fontweight(weight)
                        t.set_zorder(7)
                        t.set_rotation(0)

                if rounds:
                    cs = ax.contour(ux, uy, zz, levels=rounds, colors="#555555", linewidths=0.8, zorder=3)
                    if not annotate:  # with every cell's value written, labels of round levels only clutter
                        boxed(cs, fmt_round, 7)
                if lo < 0 < hi:
                    cs = ax.contour(ux, uy, zz, levels=[0.0], colors="#333333", linewidths=1.0, linestyles="--",
                                    zorder=3)
                    parity = "1×" if speed else "0 %"
                    boxed(cs, lambda t, s=parity: s, 7)
                if lo <= zl <= hi:
                    cs = ax.contour(ux, uy, zz, levels=[zl], colors="black", linewidths=2.8, zorder=4)
                    boxed(cs, lambda t, s=f"paper {cl.label}": s, 8, "bold")
            for (ix, iy), p in pts.items():
                i, j = ox.index(ix), oy.index(iy)
                cx, cy = ux[i], uy[j]
                v = raw[j, i]
                hit = p.get("claims", {}).get(cl.key)
                if hit:
                    ax.add_patch(Rectangle((ex[i], ey[j]), ex[i + 1] - ex[i], ey[j + 1] - ey[j], fill=False,
                                           edgecolor="black", lw=3, zorder=5))
                if annotate:
                    if np.isfinite(v):
                        rgba = cmap(norm(z[j, i]))
                        dark = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] < 0.5
                        txt = _value_text(cl, v) + (" ✓" if hit else "")
                        ax.text(cx, cy, txt, ha="center", va="center", fontsize=9,
                                fontweight="bold" if hit else "normal", color="white" if dark else "black",
                                zorder=6)
                    else:
                        ax.text(cx, cy, "failed" if _run_failed(p) else "not valid", ha="center",
                                va="center", fontsize=7, color="#444444", zorder=6)
            s = data["summary"][n][cl.key]
            ref = DESIGN_LABEL[cl.reference]
            head = f"{'speedup' if speed else 'energy saving'} vs {ref}"
            if s["reached"]:
                tail = f"paper {cl.label}: reached at {len(s['reached'])} of {s['points']} points"
            else:
                tail = f"paper {cl.label}: not reached (best {_value_text(cl, s['best'])})"
            ax.set_title(f"{head}\n{tail}", fontsize=10)
            for axis, u, order, scale, vals, param in ((ax.xaxis, ux, ox, sx, xv, xp), (ax.yaxis, uy, oy, sy, yv, yp)):
                axis.set_ticks(u, [_v(vals[k]) for k in order])
                axis.set_label_text(axis_label(param, scale))
            ax.set_xlim(ex[0], ex[-1])
            ax.set_ylim(ey[0], ey[-1])
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rounds = ", ".join(f"{r:g}×" for r in ROUND_SPEEDUP) + "; " + ", ".join(f"{100 * r:g} %" for r in ROUND_SAVING)
    handles = [Line2D([], [], color="black", lw=2.8, label="paper's number (contour)"),
               Line2D([], [], color="#333333", lw=1.0, ls="--", label="parity: 1× / 0 %"),
               Line2D([], [], color="#555555", lw=0.8, label=f"round levels ({rounds})"),
               Patch(facecolor="white", edgecolor="black", lw=3, label="✓ point reaches the paper's number"),
               Patch(facecolor="#e4e4e4", edgecolor="#9a9a9a", hatch="//", label="not valid (does not fit, or "
                     "the config rejects it)")]
    subs[-1].legend(handles=handles, loc="outside lower center", ncols=5, fontsize=9, frameon=False)
    _save(fig, path)
