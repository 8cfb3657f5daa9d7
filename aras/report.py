"""Reports of ``aras compare`` and ``aras sweep``: Markdown, self-contained HTML and PNG plots.

The report is built once as a list of blocks (headings, paragraphs, tables, images) and rendered to
both Markdown (images referenced relatively) and HTML (images inlined as base64). Plots use
matplotlib's Agg canvas through :class:`matplotlib.figure.Figure` (no pyplot state, no display).
Every number comes from the result dicts of :mod:`aras.experiments`; the wording states what the
numbers are and nothing more.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
from pathlib import Path

import numpy as np

DASH = "—"
MODE_LABEL = {"aras": "ARAS", "baseline": "baseline PUM", "baseline-resident": "resident baseline PUM",
              "ideal": "ideal PUM", "tpu": "TPU-like"}
ABLATION_LABEL = {"overlap": "no overlap", "reencode": "no re-encoding", "diff_write": "no differential write",
                  "placement": "no similarity placement", "bank_select": "no bank selection",
                  "replicate": "no replication"}
ABLATION_TEXT = {"overlap": "writes run ahead of execution", "reencode": "per-column encoding choice",
                 "diff_write": "read-before-write, unchanged cells and rows skipped",
                 "placement": "tiles placed on crossbars whose contents they match",
                 "bank_select": "only Gbuffer banks with live data powered",
                 "replicate": "small compute-bound layers copied onto spare crossbars",
                 "resident": "steady state: a tile its crossbar still holds from the last run is not rewritten"}


def _abl_label(a: str) -> str:
    return ABLATION_LABEL.get(a, f"no {a.replace('_', ' ')}")
# Energy components grouped for tables and stacked bars: (label, ARAS keys, TPU-like keys)
ENERGY_GROUPS = [
    ("ReRAM write", ("write",), ()),
    ("ADC", ("adc",), ()),
    ("crossbar read + DAC", ("xbar_read", "dac"), ()),
    ("MAC array", (), ("mac",)),
    ("array registers", (), ("array",)),
    ("digital post-processing", ("digital",), ("post",)),
    ("vector unit", ("vector",), ("vector",)),
    ("SRAM dynamic", ("gbuf_dynamic", "write_buffer"), ("sram_dynamic",)),
    ("SRAM static", ("gbuf_static",), ("sram_static",)),
    ("DRAM", ("dram",), ("dram",)),
]
WEIGHTS_LEGEND = ("**weights**: `real` = trained weights; `synthetic` = shape-only network with Gaussian "
                  "stand-in weights. Timing of a synthetic network follows from its shapes, but its write "
                  "activity, write energy and wear depend on the stand-in weights and are not those of a "
                  "trained network.")


# ---------------------------------------------------------------------------------------------- formatting
def fmt_int(v) -> str:
    return DASH if v is None else f"{int(v):,}"


def fmt_sig(v, n: int = 3) -> str:
    """``v`` to ``n`` significant digits, no exponent, thousands separated."""
    if v is None:
        return DASH
    v = float(f"{v:.{n}g}")  # round first: 0.9996 -> 1.00, not 1.000
    if v == 0:
        return "0"
    d = n - 1 - math.floor(math.log10(abs(v)))
    return f"{v:,.{max(d, 0)}f}"


def fmt_x(v) -> str:
    return DASH if v is None else fmt_sig(v, 3) + "×"


def fmt_pct(v) -> str:
    """A fraction as a percentage with one decimal."""
    return DASH if v is None else f"{100 * v:.1f} %"


def fmt_uj(j) -> str:
    """Joules as µJ, 4 significant digits."""
    return DASH if j is None else fmt_sig(j * 1e6, 4)


def fmt_time(s) -> str:
    if s is None:
        return DASH
    for unit, sec in (("y", 365.25 * 86400), ("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= sec:
            return f"{fmt_sig(s / sec, 3)} {unit}"
    return f"{fmt_sig(s * 1e3, 3)} ms" if s >= 1e-3 else f"{fmt_sig(s * 1e6, 3)} µs"


def fmt_count(v) -> str:
    """A large count in scientific notation (3 significant digits)."""
    if v is None:
        return DASH
    if v < 1e6:
        return f"{int(v):,}"
    m, e = f"{v:.2e}".split("e")
    return f"{m}e{int(e)}"


# ---------------------------------------------------------------------------------------------- document
_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>")]
_CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}th,td{border:1px solid #bbb;padding:3px 6px}
th{background:#eee}td.n{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}
code{background:#f3f3f3;padding:0 3px}figcaption{font-size:0.85em;color:#555}
p.alert{color:#b00;font-weight:bold;border:2px solid #b00;padding:0.5em}"""


class Doc:
    """Blocks of a report, rendered to Markdown or HTML."""

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str) -> None:
        self.blocks.append(("h", level, text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def ul(self, items: list[str]) -> None:
        self.blocks.append(("ul", list(items)))

    def alert(self, text: str) -> None:
        """A paragraph that must be seen first: bold in Markdown, red in HTML."""
        self.blocks.append(("alert", text))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", list(headers), [[str(c) for c in r] for r in rows]))

    def img(self, name: str, caption: str) -> None:
        self.blocks.append(("img", name, caption))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "alert":
                out.append(f"> **{b[1]}**")
            elif b[0] == "ul":
                out.append("\n".join(f"- {i}" for i in b[1]))
            elif b[0] == "table":
                def row(cells):
                    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
                out.append("\n".join([row(b[1]), "|" + "|".join("---" for _ in b[1]) + "|"] + [row(r) for r in b[2]]))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})\n\n*{b[2]}*")
        return "\n\n".join(out) + "\n"

    def html(self, out_dir: Path, title: str) -> str:
        def inline(t):
            t = html.escape(t, quote=False)
            for rx, rep in _INLINE:
                t = rx.sub(rep, t)
            return t

        def cell(tag, c):
            num = re.fullmatch(r"[-−+]?[\d,.]+(e[-+]?\d+)?\s*(×|%|µJ)?", c.strip()) is not None
            return f"<{tag}{' class=n' if num and tag == 'td' else ''}>{inline(c)}</{tag}>"

        out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
               f"<style>{_CSS}</style></head><body>"]
        for b in self.blocks:
            if b[0] == "h":
                out.append(f"<h{b[1]}>{inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                out.append(f"<p>{inline(b[1])}</p>")
            elif b[0] == "alert":
                out.append(f"<p class=alert>{inline(b[1])}</p>")
            elif b[0] == "ul":
                out.append("<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b[1]) + "</ul>")
            elif b[0] == "table":
                out.append("<table><thead><tr>" + "".join(cell("th", c) for c in b[1]) + "</tr></thead><tbody>"
                           + "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in b[2])
                           + "</tbody></table>")
            elif b[0] == "img":
                data = base64.b64encode((out_dir / b[1]).read_bytes()).decode()
                out.append(f"<figure><img src='data:image/png;base64,{data}' alt='{html.escape(b[2])}'>"
                           f"<figcaption>{inline(b[2])}</figcaption></figure>")
        out.append("</body></html>")
        return "\n".join(out) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------------------------- plots
def _figure(w: float, h: float, nrows: int = 1, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)


def _color(i: int):
    from matplotlib import colormaps

    return colormaps["tab10"](i % 10)


def _grouped_bars(ax, groups: list[str], series: list[tuple[str, list]], fmt=None, ref: float | None = None,
                  base: float = 0.0):
    """Bars of every series side by side per group, drawn from ``base`` (1 for ratios whose deviation
    matters); None values leave a gap labelled n/a."""
    n = max(1, len(series))
    w = 0.8 / n
    x = np.arange(len(groups))
    for k, (label, vals) in enumerate(series):
        h = [0.0 if v is None else float(v) - base for v in vals]
        bars = ax.bar(x + (k - (n - 1) / 2) * w, h, w, bottom=base, label=label, color=_color(k))
        if fmt is not None:
            ax.bar_label(bars, labels=["n/a" if v is None else fmt(v) for v in vals], fontsize=7,
                         rotation=90 if n * len(groups) > 8 else 0, padding=2)
    ax.set_xticks(x, groups)
    if ref is not None:
        ax.axhline(ref, color="black", lw=0.8, ls="--")
    ax.margins(y=0.2)


def _log_if_wide(ax, values: list) -> None:
    v = [x for x in values if x is not None]
    if v and min(v) > 0 and max(v) / min(v) > 100:
        ax.set_yscale("log")


# ---------------------------------------------------------------------------------------------- shared text
def _cfg(d: dict):
    from .config import from_dict

    return from_dict(dict(d), source="results")


def config_lines(cfg_dict: dict) -> list[str]:
    """Key parameters of a config, as list items."""
    c = _cfg(cfg_dict)
    return [
        f"crossbars: {c.n_xbars} ({c.n_pe} PEs × {c.apus_per_pe} APUs × {c.xbars_per_apu}) of "
        f"{c.xbar_rows}×{c.xbar_cols} cells, {c.cell_bits}-bit cells ({c.levels} levels), "
        f"{c.slices} cells per int8 weight",
        f"ADC: {c.adc_bits} bits (exact width {c.adc_exact_bits}), one per {c.cols_per_adc} columns; "
        f"MVM read {c.t_read_mvm_ns:g} ns per input bit",
        f"writes: pulse {c.t_pulse_ns:g} ns (`t_pulse_ns`), verify read {c.t_verify_ns:g} ns, reset pulse "
        f"{c.t_reset_ns:g} ns, driver set-up {c.t_write_setup_ns:g} ns; SET {c.e_set_pj:g} pJ, RESET "
        f"{c.e_reset_pj:g} pJ per pulse; write drivers per PE: {c.write_drivers_per_pe}",
        f"Gbuffer {c.gbuf_banks} × {c.gbuf_bank_bytes // 1024} KiB; DRAM {c.dram_bytes_per_cycle} B/cycle, "
        f"{c.dram_latency_cycles} cycles latency, {c.dram_pj_per_bit:g} pJ/bit; clock {c.clock_ghz:g} GHz; "
        f"batch {c.batch}",
    ]


# ---------------------------------------------------------------------------------------------- what ran
_NOTES_SPLIT = re.compile(r"; samples: |,\s*(?=(?:synthetic |real )?(?:inputs|token ids)\b|N\(0, ?1\) inputs)")


def split_notes(notes: str | None) -> tuple[str, str | None]:
    """A trace's ``notes`` as (where the weights come from, where its stored samples come from or None):
    the samples part follows ``"; samples: "`` (the committed LeNet-5 trace, ``aras import-onnx``) or is
    the trailing ``, ... inputs`` / ``, ... token ids`` of the built-in models' notes."""
    parts = _NOTES_SPLIT.split(notes or "", maxsplit=1)
    return parts[0], (parts[1] if len(parts) > 1 else None)


_SYNTHETIC_INPUTS = re.compile(r"synthetic (inputs|token|samples)|N\(0, ?1\) inputs|all-zero input", re.I)


def samples_kind(tr) -> str:
    """Whether the trace's stored samples are ``real`` or ``synthetic`` data, as far as the trace says:
    synthetic when its notes say so, real when they carry labels (accuracy is measured on them)."""
    _, s = split_notes(tr.notes)
    if _SYNTHETIC_INPUTS.search(tr.notes or "") or (s is not None and "synthetic" in s.lower()):
        return "synthetic"
    if tr.labels is not None:
        return "real (labelled)"
    return "real or synthetic: not stated in the trace"


def weights_line(weights: str, notes: str | None) -> str:
    w, _ = split_notes(notes)
    return f"weights: {weights} — {w or 'the trace has no notes on their source'}"


def provenance_line(data: dict) -> str:
    """Command line, git commit and date of a result (``unknown`` for results without them)."""
    p = data.get("provenance") or {}
    cmd = p.get("command")
    cmd = f"`{cmd}`" if cmd else "unknown (not run from the command line)" if p else "unknown"
    return (f"Command: {cmd}; git commit: `{p.get('git_commit') or 'unknown'}`; date: {p.get('date') or 'unknown'}; "
            f"aras {data.get('aras_version') or 'unknown'}.")


def _docs_pointer() -> str:
    return ("Definitions of every field, mode and counter: `docs/architecture.md` in the aras repository "
            "(configuration §12, timing §10, events and energy §11, steady state and wear §8.5–8.6); the "
            "TPU-like baseline and its sizing: `docs/tpu-baseline.md`.")


def _speed(s: float | None) -> str:
    """ARAS's speed against a reference whose latency is ``s`` x ARAS's."""
    if s is None:
        return "has no defined time ratio"
    return f"is {fmt_x(s)} as fast" if s >= 1 else f"takes {fmt_x(1 / s)} the time"


def _energy(saving: float | None) -> str:
    """ARAS's energy against a reference, ``saving`` = 1 - E_ARAS / E_ref."""
    if saving is None:
        return "has no defined energy ratio"
    if saving >= 0:
        return f"uses {fmt_pct(saving)} less energy"
    if saving >= -1:
        return f"uses {fmt_pct(-saving)} more energy"
    return f"uses {fmt_x(1 - saving)} the energy"


def energy_groups(e: dict, tpu: bool) -> dict[str, float | None]:
    """Component energies (J) summed into :data:`ENERGY_GROUPS` (None: not part of this machine);
    components outside the groups go to ``other``."""
    out: dict[str, float | None] = {}
    used = set()
    for label, ak, tk in ENERGY_GROUPS:
        keys = tk if tpu else ak
        out[label] = sum(e.get(k, 0.0) for k in keys) if keys else None
        used.update(keys)
    out["other"] = sum(v for k, v in e.items() if k not in used and k != "total")
    return out


def glance(data: dict) -> list[str]:
    """One sentence per network of :func:`aras.experiments.run_compare`'s ``data``: speedup and energy
    against both baselines (for the report and the command line)."""
    runs, summ = data["runs"], data["summary"]
    W = {m["name"]: m["weights"] for m in data["models"]}
    lines = []
    for n in W:
        s, a, t = summ[n], runs[n]["aras"], runs[n]["tpu"]
        line = (f"{n} ({W[n]} weights): against baseline PUM, ARAS {_speed(s['speedup_vs_baseline'])} and "
                f"{_energy(s['energy_saving_vs_baseline'])}; against the TPU-like baseline, ARAS "
                f"{_speed(s['speedup_vs_tpu'])} and {_energy(s['energy_saving_vs_tpu'])}. ARAS needs "
                f"{fmt_x(s['cycles_over_ideal'])} the cycles of the ideal PUM (every layer resident, replicated "
                f"as ARAS may).")
        if s.get("fits"):
            line += (f" The network fits the crossbars: against the resident baseline PUM (no rewriting), ARAS "
                     f"{_speed(s['speedup_vs_baseline_resident'])} and "
                     f"{_energy(s['energy_saving_vs_baseline_resident'])}.")
        if t.get("weights_resident") and a["energy_j"].get("dram"):
            line += (f" The TPU-like baseline keeps this network's weights in its Gbuffer (no DRAM traffic in "
                     f"steady state) while ARAS fetches every tile from DRAM once per run "
                     f"({fmt_uj(a['energy_j']['dram'])} µJ of its {fmt_uj(a['energy_j']['total'])} µJ).")
        lines.append(line)
    return lines


# ---------------------------------------------------------------------------------------------- compare
def write_compare_report(data: dict, out: Path) -> list[Path]:
    """``report.md``, ``report.html`` and the plots of :func:`aras.experiments.run_compare`'s ``data``
    into ``out``; returns the files written."""
    out = Path(out)
    names = [m["name"] for m in data["models"]]
    W = {m["name"]: m["weights"] for m in data["models"]}
    runs, summ = data["runs"], data["summary"]
    c = _cfg(data["config"])
    pngs = _compare_plots(data, out)

    d = Doc()
    d.h(1, f"ARAS comparison on config `{c.name}`")
    d.p(f"Networks: {', '.join(f'{n} ({W[n]} weights)' for n in names)}. Generated by aras "
        f"{data.get('aras_version', '')} (`aras compare`); every number below is computed from `results.json` "
        f"in this directory (raw results of `sim_models.perf.simulate`). Cycles and energy are per run of "
        f"batch {c.batch}, steady state (the crossbars hold what the previous run left) unless marked cold.")
    d.p(provenance_line(data))
    d.p(f"Config `{c.name}`:")
    items = config_lines(data["config"])
    t0 = runs[names[0]]["tpu"].get("tpu")
    if t0 and t0.get("area_matched", True):
        items.append(f"TPU-like baseline: {t0['rows']}×{t0['cols']} int8 MACs, sized so that MACs + weight buffer "
                     f"({t0['array_area_mm2']['total']:.3g} mm²) do not exceed ARAS's analog compute area "
                     f"({t0['aras_compute_area_mm2']['total']:.3g} mm²); same Gbuffer, vector unit and DRAM")
    elif t0:  # --tpu-array chose the array
        items.append(f"TPU-like baseline: {t0['rows']}×{t0['cols']} int8 MACs set by `--tpu-array`, "
                     f"**not area-matched**: MACs + weight buffer {t0['array_area_mm2']['total']:.3g} mm² against "
                     f"ARAS's analog compute area {t0['aras_compute_area_mm2']['total']:.3g} mm²; same Gbuffer, "
                     "vector unit and DRAM")
    d.ul(items)
    d.p(_docs_pointer())
    d.p(WEIGHTS_LEGEND)

    d.h(2, "Results at a glance")
    d.ul(glance(data))

    d.h(2, "Networks")
    rows = []
    for m in data["models"]:
        r = runs[m["name"]]["aras"]
        hw = r.get("host_work", {})
        rows.append([m["name"], m["weights"], fmt_int(m["crossbar_layers"]), fmt_int(m["weight_count"]),
                     fmt_int(m["tiles"]), "yes" if m["tiles"] <= c.n_xbars else "no",
                     fmt_int(r["program"]["writes"]), fmt_int(hw.get("flops_per_sample", 0)), m["notes"] or DASH])
    d.table(["network", "weights", "crossbar layers", "int8 weights", "tiles", f"all tiles fit on the {c.n_xbars} "
             "crossbars", "ARAS tile writes per run (with replicas)", "host FLOPs per sample (untimed)", "notes"],
            rows)

    # 1. speedup and energy
    d.h(2, "1. Speedup and energy: ARAS vs baseline PUM and TPU-like")
    heads = ["network", "weights", "ARAS cycles", "baseline cycles", "TPU-like cycles", "speedup vs baseline",
             "speedup vs TPU-like", "ARAS energy (µJ)", "baseline energy (µJ)", "TPU-like energy (µJ)",
             "energy saving vs baseline", "energy saving vs TPU-like"]
    res_heads = ["resident baseline cycles", "speedup vs resident baseline", "resident baseline energy (µJ)",
                 "energy saving vs resident baseline"]
    for fit in (True, False):  # networks that fit the crossbars and those that do not, never in one table
        rows = []
        for n in names:
            a, b, t, s = runs[n]["aras"], runs[n]["baseline"], runs[n]["tpu"], summ[n]
            if bool(s.get("fits")) != fit:
                continue
            row = [n, W[n], fmt_int(a["cycles"]), fmt_int(b["cycles"]), fmt_int(t["cycles"]),
                   fmt_x(s["speedup_vs_baseline"]), fmt_x(s["speedup_vs_tpu"]),
                   fmt_uj(a["energy_j"]["total"]), fmt_uj(b["energy_j"]["total"]), fmt_uj(t["energy_j"]["total"]),
                   fmt_pct(s["energy_saving_vs_baseline"]), fmt_pct(s["energy_saving_vs_tpu"])]
            if fit:
                br = runs[n]["baseline-resident"]
                row += [fmt_int(br["cycles"]), fmt_x(s["speedup_vs_baseline_resident"]),
                        fmt_uj(br["energy_j"]["total"]), fmt_pct(s["energy_saving_vs_baseline_resident"])]
            rows.append(row)
        if rows:
            d.p(f"**Networks that {'fit' if fit else 'do not fit'} the {c.n_xbars} crossbars**"
                + (" (the resident baseline PUM keeps every tile: no rewriting in the steady state):" if fit else
                   " (every mode rewrites tiles on every inference; no resident baseline):"))
            d.table(heads + (res_heads if fit else []), rows)
    d.p("speedup = latency of the reference / latency of ARAS (above 1: ARAS is faster); energy saving = "
        "1 − E_ARAS / E_reference (negative: ARAS uses more energy). Host work (softmax, attention, LayerNorm, "
        "GELU) is not timed in any mode.")
    rows = []
    for n in names:
        r = runs[n]
        lat = [fmt_sig(r[m]["latency_s"] * 1e3) if r[m].get("latency_s") is not None else DASH
               for m in ("aras", "baseline", "tpu")]
        area = [fmt_sig(r[m]["area_mm2"]["total"], 4) if r[m].get("area_mm2") else DASH for m in ("aras", "tpu")]
        rows.append([n, W[n]] + lat + area)
    d.table(["network", "weights", "ARAS latency (ms)", "baseline PUM latency (ms)", "TPU-like latency (ms)",
             "ARAS chip area (mm²)", "TPU-like area (mm²)"], rows)
    d.p(f"Latency: the cycles above at the config's {c.clock_ghz:g} GHz clock (`latency_s` in results.json). Area: "
        "the chip's total (`area_mm2.total`; ARAS and the baseline PUM are the same chip; the TPU-like baseline "
        "is its MAC array and weight buffer plus the same Gbuffer and vector unit), components in results.json.")
    d.img(pngs["speedup"], "Speedup and energy saving of ARAS per network (dashed lines: parity).")

    # 2. energy breakdown
    d.h(2, "2. Energy breakdown per mode")
    labels = [g[0] for g in ENERGY_GROUPS]
    rows = []
    for n in names:
        for mode in ("aras", "baseline", "ideal", "tpu"):
            e = runs[n][mode]["energy_j"]
            g = energy_groups(e, mode == "tpu")
            rows.append([n, W[n], MODE_LABEL[mode]] + [fmt_uj(g[k]) for k in labels] + [fmt_uj(g["other"]),
                                                                                       fmt_uj(e["total"])])
    d.table(["network", "weights", "mode"] + [f"{k} (µJ)" for k in labels] + ["other (µJ)", "total (µJ)"], rows)
    d.p("ReRAM write includes the read-before-write of differential writes. SRAM dynamic: Gbuffer and write "
        "buffer accesses (TPU-like: Gbuffer and weight buffer); SRAM static: Gbuffer leakage (ARAS powers only "
        "banks holding live data; baseline and TPU-like keep every bank on). The ideal PUM counts compute only "
        f"(no writes, no Gbuffer, no DRAM). {DASH}: the component does not exist on that machine.")
    d.img(pngs["breakdown"], "Energy per run by component and mode (stacked).")

    # 3. writes and wear
    d.h(2, "3. Write activity and wear")
    rows = []
    for n in names:
        for mode in ("aras", "baseline"):
            r = runs[n][mode]
            w = r["writes"]
            frac = w["cells_changed"] / w["cells_total"] if w["cells_total"] else None
            rows.append([n, W[n], MODE_LABEL[mode], fmt_int(r["program"]["writes"]), fmt_int(w["rows_written"]),
                         fmt_int(w["rows_skipped"]), fmt_int(w["cells_total"]), fmt_int(w["cells_changed"]),
                         fmt_pct(frac), fmt_int(w["max_cell_writes"]), fmt_sig(w["mean_cell_writes"], 3),
                         fmt_uj(r["energy_j"]["write"])])
    d.table(["network", "weights", "mode", "tiles written", "rows written", "rows skipped (unchanged)",
             "cells covered by writes", "cells changed", "changed fraction", "max programs per cell",
             "mean programs per cell", "write energy (µJ)"], rows)
    d.p("Per steady-state run. cells changed: cells whose level differs before and after the write; a cell "
        "is programmed when it changes (differential write) or for every used cell of a written row (blind "
        "write, baseline); the programs-per-cell columns count that (mean over every cell of the chip).")
    d.img(pngs["writes"], "Share of the written cells that change, and the most-programmed cell, per run.")
    heads = ["network", "weights", "mode", "max programs per cell per run"] + \
        [f"endurance 1e{round(math.log10(x['endurance']))}" for x in summ[names[0]]["lifetime"]["aras"]]
    rows = []
    for n in names:
        for mode in ("aras", "baseline"):
            lt = summ[n]["lifetime"][mode]
            rows.append([n, W[n], MODE_LABEL[mode], fmt_int(runs[n][mode]["writes"]["max_cell_writes"])]
                        + ["unbounded (no cell programmed)" if x["runs"] is None else
                           f"{fmt_count(x['runs'])} runs ({fmt_time(x['seconds'])})" for x in lt])
    d.table(heads, rows)
    d.p("Lifetime: runs until the most-programmed cell reaches the endurance (write cycles per cell), and the "
        "time those runs take back to back at the steady-state latency. Assumes the same program repeated, "
        "no wear levelling and no other wear-out mechanism.")
    d.img(pngs["lifetime"], "Time until the most-programmed cell wears out vs cell endurance (back-to-back runs).")

    # 4. ablation
    d.h(2, "4. Ablation: one ARAS optimization off at a time")
    rows = []
    for n in names:
        a = runs[n]["aras"]
        for key, lab in [("aras", "full ARAS")] + [(f"no_{k}", _abl_label(k)) for k in data["ablations"]] + \
                [("baseline", "baseline PUM (all off)")]:
            r = runs[n][key]
            rows.append([n, W[n], lab, fmt_int(r["cycles"]), fmt_x(r["cycles"] / a["cycles"]),
                         fmt_uj(r["energy_j"]["total"]), fmt_x(r["energy_j"]["total"] / a["energy_j"]["total"]),
                         fmt_uj(r["energy_j"]["write"]),
                         fmt_x(_div(r["energy_j"]["write"], a["energy_j"]["write"]))])
    d.table(["network", "weights", "run", "cycles", "cycles / ARAS", "energy (µJ)", "energy / ARAS",
             "write energy (µJ)", "write energy / ARAS"], rows)
    d.p("Each row switches off one optimization of full ARAS ("
        + "; ".join(f"`{a}`: {ABLATION_TEXT.get(a, 'scheduler option')}" for a in data["ablations"])
        + "). Above 1: the optimization helps on that network; 1: no effect measured.")
    d.img(pngs["ablation"], "Cycles, energy and write energy with one optimization off, relative to full ARAS.")

    # 5. cold start
    d.h(2, "5. Steady state vs cold start")
    rows = []
    for n in names:
        for mode in ("aras", "baseline"):
            r, cs = runs[n][mode], summ[n]["cold_start"][mode]
            cold = r["cold_start"]
            rows.append([n, W[n], MODE_LABEL[mode], fmt_int(r["cycles"]), fmt_int(cold["cycles"]),
                         fmt_x(cs["cycles_ratio"]), fmt_uj(r["energy_j"]["total"]), fmt_uj(cold["energy_j"]["total"]),
                         fmt_x(cs["energy_ratio"]), fmt_int(r["writes"]["cells_changed"]),
                         fmt_int(cold["writes"]["cells_changed"])])
    d.table(["network", "weights", "mode", "steady cycles", "cold cycles", "cold / steady", "steady energy (µJ)",
             "cold energy (µJ)", "cold / steady", "steady cells changed", "cold cells changed"], rows)
    d.p("Cold start: every cell at level 0 before the run. Steady state: the cells hold what the previous run "
        "of the same program left (headline numbers everywhere else in this report).")

    # 6. lower bounds
    d.h(2, "6. Distance to the lower bounds")
    rows = []
    for n in names:
        for mode in ("aras", "baseline"):
            r, lbs = runs[n][mode], summ[n]["lower_bound"][mode]
            lb = r["lower_bound"]
            rows.append([n, W[n], MODE_LABEL[mode], fmt_int(r["cycles"]), fmt_int(lb["cycles"]),
                         fmt_int(lb["compute_cycles"]), fmt_int(lb["write_cycles"]), fmt_x(lbs["cycles_ratio"]),
                         fmt_uj(r["energy_j"]["write"]), fmt_uj(lb["write_energy_j"]),
                         fmt_x(lbs["write_energy_ratio"])])
    d.table(["network", "weights", "mode", "cycles", "lower bound (cycles)", "compute bound", "write bound",
             "cycles / bound", "write energy (µJ)", "write energy bound (µJ)", "write energy / bound"], rows)
    lb_text = runs[names[0]]["aras"]["lower_bound"].get("assumptions", [])
    d.p("Each mode against its own bounds: cycle bound = max(compute bound, write bound). The bounds "
        "(`lower_bound` of each result):")
    d.ul(lb_text)
    d.img(pngs["lower_bound"], "Cycles and write energy over their lower bounds (1 = on the bound).")

    # method
    d.h(2, "Modes, assumptions and run times")
    d.ul([f"ARAS: all optimizations on ({', '.join(data['ablations'])}), look-ahead unbounded.",
          "baseline PUM: same chip; no overlap, first-free placement, blind writes of every row, plain "
          "encoding, every Gbuffer bank on.",
          "resident baseline PUM (networks that fit only): the baseline PUM keeping its tiles from the previous "
          "inference, so nothing is rewritten in the steady state.",
          "ideal PUM: every layer resident on unlimited crossbars, each layer that fits half the chip replicated "
          "as far as ARAS's scheduler may, writes and Gbuffer not counted: a lower bound of every mode "
          "(docs/architecture.md §9.8).",
          "TPU-like: weight-stationary int8 systolic array (analytical SCALE-Sim-style model), same Gbuffer, "
          "vector unit and DRAM channel."])
    opts = {m: runs[names[0]][m].get("options") or {} for m in ("aras", "baseline")}
    d.p("Scheduler options as run: " + "; ".join(
        f"{MODE_LABEL[m]}: " + ", ".join(f"{k}={v}" for k, v in o.items()) for m, o in opts.items() if o) + ".")
    tpu_notes: list[str] = []
    for n in names:
        for a in runs[n]["tpu"].get("assumptions", []):
            if a not in tpu_notes:
                tpu_notes.append(a)
    d.p("TPU-like assumptions (union over the networks):")
    d.ul(tpu_notes)
    rows = [[n, W[n], fmt_sig(data["simulate_s"][n], 3), fmt_sig(runs[n]["aras"]["wall_s"], 3),
             "resident in Gbuffer" if runs[n]["tpu"].get("weights_resident") else "fetched from DRAM"]
            for n in names]
    d.table(["network", "weights", f"simulation time, all {len(runs[names[0]])} runs (s)", "ARAS run (s)",
             "TPU-like weights"], rows)
    d.p(f"Total wall time {fmt_sig(data['wall_s'], 3)} s with {data['jobs']} worker process(es).")

    md, ht = out / "report.md", out / "report.html"
    _write(md, d.markdown())
    _write(ht, d.html(out, f"ARAS comparison on config {c.name}"))
    return [md, ht] + [out / p for p in pngs.values()]


def _div(a, b):
    return None if a is None or not b else a / b


def _pct(v):
    return None if v is None else 100 * v


def pct_change(v) -> str:
    """A ratio to full ARAS as its change in percent: ``0 %`` exactly when it has no effect."""
    if v is None:
        return "n/a"
    d = 100 * (v - 1)
    if d == 0:
        return "0 %"
    if abs(d) < 0.05:
        return f"{'+' if d > 0 else '−'}<0.1 %"
    return f"{d:+.1f} %".replace("-", "−")


def _label(name: str, weights: str) -> str:
    return f"{name}\n(synthetic)" if weights == "synthetic" else f"{name}\n(real)"


def _compare_plots(data: dict, out: Path) -> dict[str, str]:
    names = [m["name"] for m in data["models"]]
    W = {m["name"]: m["weights"] for m in data["models"]}
    runs, summ = data["runs"], data["summary"]
    groups = [_label(n, W[n]) for n in names]
    width = max(6.0, 1.6 * len(names) + 3)
    files = {}

    files["speedup"] = "speedup_energy.png"
    _save(speedup_figure(data), out / files["speedup"])

    modes = ("aras", "baseline", "ideal", "tpu")
    ncols = min(3, len(names))
    nrows = -(-len(names) // ncols)
    fig, axs = _figure(4.2 * ncols + 2.5, 3.8 * nrows, nrows, ncols)
    labels = [g[0] for g in ENERGY_GROUPS] + ["other"]
    for i, n in enumerate(names):
        ax = axs[i // ncols, i % ncols]
        bottom = np.zeros(len(modes))
        for k, lab in enumerate(labels):
            vals = np.array([(energy_groups(runs[n][m]["energy_j"], m == "tpu")[lab] or 0.0) * 1e6 for m in modes])
            if not vals.any():
                continue
            ax.bar([MODE_LABEL[m] for m in modes], vals, 0.6, bottom=bottom, color=_color(k),
                   label=lab if i == 0 else None)
            bottom += vals
        ax.set_title(f"{n} ({W[n]} weights)", fontsize=10)
        ax.set_ylabel("energy per run (µJ)")
        ax.tick_params(axis="x", labelsize=8)
    for j in range(len(names), nrows * ncols):
        axs[j // ncols, j % ncols].set_visible(False)
    fig.legend(loc="outside right center", fontsize=8)
    files["breakdown"] = "energy_breakdown.png"
    _save(fig, out / files["breakdown"])

    fig, ax = _figure(width * 1.6, 4.2, 1, 2)
    def changed(w):
        return 100 * w["cells_changed"] / w["cells_total"] if w["cells_total"] else None

    for k, (get, title, fmt) in enumerate((
            (changed, "cells changed per run (% of the cells the writes cover)", lambda v: f"{v:.1f} %"),
            (lambda w: w["max_cell_writes"], "programs of the most-written cell per run", lambda v: f"{v:,.0f}"))):
        series = [(MODE_LABEL[m], [get(runs[n][m]["writes"]) for n in names]) for m in ("aras", "baseline")]
        _grouped_bars(ax[0, k], groups, series, fmt=fmt)
        ax[0, k].set_title(title, fontsize=10)
        ax[0, k].legend(fontsize=8)
    files["writes"] = "writes.png"
    _save(fig, out / files["writes"])

    fig, ax = _figure(7.5, 4.8)
    ax = ax[0, 0]
    k = 0
    unbounded = []
    for n in names:
        for m, ls in (("aras", "-o"), ("baseline", "--s")):
            lt = summ[n]["lifetime"][m]
            if lt[0]["runs"] is None:
                unbounded.append(f"{n} {MODE_LABEL[m]}")
                continue
            ax.plot([x["endurance"] for x in lt], [max(x["seconds"], 1e-9) for x in lt], ls,
                    mfc="white" if m == "baseline" else None, color=_color(names.index(n)),
                    label=f"{n} ({W[n]}), {MODE_LABEL[m]}")
            k += 1
    ax.set_xscale("log")
    ax.set_yscale("log")
    for sec, lab in ((86400, "1 day"), (365.25 * 86400, "1 year"), (10 * 365.25 * 86400, "10 years")):
        ax.axhline(sec, color="grey", lw=0.6, ls=":")
        ax.text(1e6, sec, lab, fontsize=7, va="bottom", color="grey")
    ax.set_xlabel("cell endurance (write cycles)")
    ax.set_ylabel("time to wear-out, back-to-back runs (s)")
    title = "Lifetime of the most-programmed cell"
    if unbounded:
        title += "\nno cell programmed in steady state (unbounded): " + ", ".join(unbounded)
    ax.set_title(title, fontsize=9)
    if k:
        ax.legend(fontsize=7)
    files["lifetime"] = "lifetime.png"
    _save(fig, out / files["lifetime"])

    files["ablation"] = "ablation.png"
    _save(ablation_figure(data), out / files["ablation"])

    fig, ax = _figure(width * 1.6, 4.2, 1, 2)
    for k, (key, title) in enumerate((("cycles_ratio", "cycles / the mode's cycle lower bound"),
                                      ("write_energy_ratio", "write energy / the mode's write-energy lower bound"))):
        series = [(MODE_LABEL[m], [summ[n]["lower_bound"][m][key] for n in names]) for m in ("aras", "baseline")]
        _grouped_bars(ax[0, k], groups, series, fmt=lambda v: f"{v:.2f}", ref=1.0)
        ax[0, k].set_title(title)
        ax[0, k].legend(fontsize=8)
    files["lower_bound"] = "lower_bound.png"
    _save(fig, out / files["lower_bound"])
    return files


def speedup_figure(data: dict):
    """Speedup (×) and energy saving (%, 1 − E_ARAS / E_reference as in the tables) of ARAS per network."""
    names = [m["name"] for m in data["models"]]
    W = {m["name"]: m["weights"] for m in data["models"]}
    summ = data["summary"]
    groups = [_label(n, W[n]) for n in names]
    width = max(6.0, 1.6 * len(names) + 3)
    fig, ax = _figure(width * 1.6, 4.2, 1, 2)
    _grouped_bars(ax[0, 0], groups, [("vs baseline PUM", [summ[n]["speedup_vs_baseline"] for n in names]),
                                     ("vs TPU-like", [summ[n]["speedup_vs_tpu"] for n in names])],
                  fmt=lambda v: f"{v:.2f}×", ref=1.0)
    ax[0, 0].set_ylabel("speedup of ARAS (reference latency / ARAS latency)")
    ax[0, 0].set_title("Speedup (> 1: ARAS faster)")
    _grouped_bars(ax[0, 1], groups, [("vs baseline PUM", [_pct(summ[n]["energy_saving_vs_baseline"]) for n in names]),
                                     ("vs TPU-like", [_pct(summ[n]["energy_saving_vs_tpu"]) for n in names])],
                  fmt=lambda v: f"{v:.1f} %", ref=0.0)
    ax[0, 1].set_ylabel("energy saving of ARAS, 1 − E_ARAS / E_reference (%)")
    ax[0, 1].set_title("Energy saving (> 0: ARAS uses less; < 0: more)")
    for a in ax[0]:
        a.legend(fontsize=8)
    return fig


def ablation_figure(data: dict):
    """Cycles, energy and write energy of every ablation relative to full ARAS: bars from 1, labelled
    with the change in percent; a bar of no effect (height 0) is drawn as a thick line at 1, "0 %"."""
    names = [m["name"] for m in data["models"]]
    W = {m["name"]: m["weights"] for m in data["models"]}
    summ = data["summary"]
    groups = [_label(n, W[n]) for n in names]
    fig, ax = _figure(max(9.0, 2.4 * len(names) + 4), 9.5, 3, 1)
    series: list = []
    for row, (key, title) in enumerate((("cycles_rel", "cycles / full ARAS"), ("energy_rel", "energy / full ARAS"),
                                        ("write_energy_rel", "write energy / full ARAS"))):
        a = ax[row, 0]
        series = [(_abl_label(x), [summ[n]["ablation"][x][key] for n in names]) for x in data["ablations"]]
        _grouped_bars(a, groups, series, fmt=pct_change, ref=1.0, base=1.0)
        for k, bars in enumerate(a.containers):
            for b, v in zip(bars, series[k][1], strict=True):
                if v is not None and v == 1:  # no effect: a visible mark instead of an empty bar
                    a.plot([b.get_x(), b.get_x() + b.get_width()], [1.0, 1.0], color=b.get_facecolor(), lw=3,
                           solid_capstyle="butt")
        vals = [v for _, vs in series for v in vs if v is not None]
        if vals and max(abs(v - 1) for v in vals) == 0:
            a.set_ylim(0.9, 1.1)  # every bar without effect: room for the labels around 1
        else:  # bars stick to their base: keep the marks of no effect at 1 clear of the axis edges
            lo, hi = a.get_ylim()
            pad = 0.06 * (hi - lo)
            a.set_ylim(min(lo, 1 - pad), max(hi, 1 + pad))
        a.set_ylabel(title)
    fig.legend(*ax[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=min(6, max(1, len(series))),
               fontsize=8)
    ax[0, 0].set_title("Ablation: one optimization off, relative to full ARAS\n(bars from 1, labelled with the "
                       "change; above 1: the optimization helps; 0 %: no effect)", fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------- sweep
SWEEP_AXIS = {"xbars": "crossbars (fraction of the network's tiles)", "write_latency": "write pulse time",
              "write_energy": "energy per SET/RESET pulse", "lookahead": "write look-ahead (rounds)",
              "cell_bits": "bits per cell", "batch": "batch size", "dram_energy": "DRAM energy per bit (pJ)"}


def write_sweep_report(data: dict, out: Path) -> list[Path]:
    """``sweep_<param>.md`` and ``sweep_<param>.png`` of :func:`aras.experiments.run_sweep`'s ``data``."""
    out = Path(out)
    param, model, pts = data["param"], data["model"], data["points"]
    c = _cfg(data["config"])
    has_tpu = any("tpu" in p["runs"] for p in pts)
    png = f"sweep_{param}.png"
    _sweep_plot(data, out / png, has_tpu)

    d = Doc()
    d.h(1, f"Sweep of `{param}` on {model['name']} ({model['weights']} weights), config `{c.name}`")
    d.p(f"Swept: {data['param_description']}. Every other field as in config `{c.name}`:")
    d.ul(config_lines(data["config"]))
    d.p(f"{model['name']}: {model['tiles']:,} tiles on this config; {model['notes'] or ''}".rstrip("; "))
    shared = data.get("shared_modes", [])
    d.p("Runs per value: " + ", ".join(MODE_LABEL[m] for m in data["swept_modes"])
        + (f"; {', '.join(MODE_LABEL[m] for m in shared)} once on the base config (unchanged by `{param}`)"
           if shared else "")
        + ("" if has_tpu else f"; the TPU-like baseline does not depend on `{param}` and is not run")
        + ". Generated by `aras sweep`; raw results in " + f"`sweep_{param}.json`.")
    d.p(provenance_line(data))
    d.p(_docs_pointer())
    d.p(WEIGHTS_LEGEND)
    heads = ["value", "setting", "weights", "ARAS cycles", "baseline cycles"] + \
        (["TPU-like cycles"] if has_tpu else []) + ["speedup vs baseline"] + \
        (["speedup vs TPU-like"] if has_tpu else []) + ["ARAS energy (µJ)", "baseline energy (µJ)"] + \
        (["TPU-like energy (µJ)"] if has_tpu else []) + ["energy saving vs baseline"] + \
        (["energy saving vs TPU-like"] if has_tpu else []) + ["write energy ARAS / baseline",
                                                             "ARAS cycles / lower bound"]
    rows = []
    for p in pts:
        ch = ", ".join([f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in p["changes"].items()]
                       + [f"Options.{k}={v}" for k, v in p.get("options", {}).items()])
        if "error" in p:
            rows.append([p["label"], ch, model["weights"], f"not run: {p['error']}"] + [DASH] * (len(heads) - 4))
            continue
        r, s = p["runs"], p["summary"]

        def cyc(m, r=r):
            return DASH if m not in r else r[m].get("error") or fmt_int(r[m]["cycles"])

        def en(m, r=r):
            return DASH if m not in r or "error" in r[m] else fmt_uj(r[m]["energy_j"]["total"])

        row = [p["label"], ch, model["weights"], cyc("aras"), cyc("baseline")] + ([cyc("tpu")] if has_tpu else []) \
            + [fmt_x(s["speedup_vs_baseline"])] + ([fmt_x(s["speedup_vs_tpu"])] if has_tpu else []) \
            + [en("aras"), en("baseline")] + ([en("tpu")] if has_tpu else []) \
            + [fmt_pct(s["energy_saving_vs_baseline"])] + ([fmt_pct(s["energy_saving_vs_tpu"])] if has_tpu else []) \
            + [fmt_x(s["write_energy_rel_baseline"]), fmt_x(s["cycles_over_lb"])]
        rows.append(row)
    d.table(heads, rows)
    d.p("speedup = reference latency / ARAS latency; energy saving = 1 − E_ARAS / E_reference (negative: ARAS "
        f"uses more). Cycles and energy per run of the batch, steady state. {DASH}: not run or not defined.")
    d.img(png, f"ARAS vs the baselines over `{param}`: relative (top) and absolute (bottom).")
    md = out / f"sweep_{param}.md"
    _write(md, d.markdown())
    return [md, out / png]


def sweep_axis(points: list[dict]) -> tuple[list[dict], np.ndarray, str]:
    """The points in plotting order, their x positions and the x scale: numeric values at their value
    (sorted), on a log axis when they span more than 10× ("symlog" when one of them is 0); otherwise
    (e.g. an unbounded look-ahead) evenly spaced in the given order."""
    vals = [p["value"] for p in points]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals):
        return list(points), np.arange(len(points), dtype=float), "linear"
    order = sorted(range(len(points)), key=lambda i: vals[i])
    x = np.array([vals[i] for i in order], dtype=float)
    pos = x[x > 0]
    scale = "linear"
    if len(pos) and (x >= 0).all() and pos.max() / pos.min() > 10:
        scale = "log" if len(pos) == len(x) else "symlog"
    return [points[i] for i in order], x, scale


def _sweep_plot(data: dict, path: Path, has_tpu: bool) -> None:
    """2 x 2 panels over the swept values: speedup, energy ratio (annotated with the saving vs the
    baseline), absolute cycles, absolute energy."""
    pts, x, xscale = sweep_axis(data["points"])
    labels = [p["label"] + (f"\n{p['n_xbars']} xb" if data["param"] == "xbars" else "") for p in pts]

    def col(get):
        out = []
        for p in pts:
            try:
                v = get(p)
            except (KeyError, TypeError):
                v = None
            out.append(np.nan if v is None else float(v))
        return np.array(out)

    def ratio(key):  # reference energy / ARAS energy from the saving 1 - E_ARAS / E_ref
        return 1 / (1 - col(lambda p: p["summary"][key]))

    refs = [("baseline PUM", "baseline", "o-"), ("TPU-like", "tpu", "s--")][: 2 if has_tpu else 1]
    fig, ax = _figure(11.0, 7.8, 2, 2)
    sp, er, cy, en = ax[0, 0], ax[0, 1], ax[1, 0], ax[1, 1]
    for k, (lab, key, st) in enumerate(refs):
        v = col(lambda p, key=key: p["summary"][f"speedup_vs_{key}"])
        sp.plot(x, v, st, color=_color(k), label=f"vs {lab}")
        r = ratio(f"energy_saving_vs_{key}")
        er.plot(x, r, st, color=_color(k), label=f"vs {lab}")
        if key == "baseline":
            for xi, ri, si in zip(x, r, col(lambda p: p["summary"]["energy_saving_vs_baseline"]), strict=True):
                if np.isfinite(ri):
                    er.annotate(f"{100 * si:.1f} %", (xi, ri), textcoords="offset points", xytext=(0, 6),
                                ha="center", fontsize=7, color=_color(0))
    for a, title in ((sp, "speedup of ARAS (reference latency / ARAS latency)"),
                     (er, "energy ratio (reference / ARAS); labels: saving vs baseline")):
        a.axhline(1.0, color="black", lw=0.8, ls=":")
        vals = [v for line in a.get_lines() for v in line.get_ydata() if np.isfinite(v)]
        _log_if_wide(a, vals)
        a.margins(y=0.15)
        a.set_title(title, fontsize=9)
        a.legend(fontsize=8)
    modes = ["aras", "baseline"] + (["tpu"] if has_tpu else [])
    for a, get, title in ((cy, lambda p, m: p["runs"][m]["cycles"], "cycles per run"),
                          (en, lambda p, m: p["runs"][m]["energy_j"]["total"] * 1e6, "energy per run (µJ)")):
        vals = []
        for k, m in enumerate(modes):
            v = col(lambda p, m=m, get=get: get(p, m))
            a.plot(x, v, "o-", color=_color(k), label=MODE_LABEL[m])
            vals += [t for t in v if np.isfinite(t)]
        _log_if_wide(a, vals)
        a.set_title(title, fontsize=9)
        a.legend(fontsize=8)
    for a in (sp, er, cy, en):
        if xscale == "symlog":
            a.set_xscale("symlog", linthresh=min(v for v in x if v > 0))
        elif xscale != "linear":
            a.set_xscale(xscale)
        a.minorticks_off()
        a.set_xticks(x, labels)
        a.set_xlabel(SWEEP_AXIS[data["param"]] + ("" if xscale == "linear" else " (log scale)"))
    fig.suptitle(f"{data['model']['name']} ({data['model']['weights']} weights), sweep of {data['param']} "
                 f"on config {data['config']['name']}", fontsize=10)
    _save(fig, path)


# ---------------------------------------------------------------------------------------------- dse
DSE_OBJECTIVE = {"latency_s": ("latency (ms)", 1e3), "energy_j": ("energy (µJ)", 1e6), "area_mm2": ("area (mm²)", 1.0),
                 "accuracy": ("accuracy (%)", 100.0)}


def _dse_value(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _dse_metric(k: str, v) -> str:
    if v is None:
        return DASH
    if k == "accuracy":
        return fmt_pct(v)
    return fmt_sig(v * DSE_OBJECTIVE[k][1], 4)


def _dse_reason(reasons: dict, names: list[str]) -> str:
    """Why a combination is invalid: one message when every network says the same, else per network."""
    msgs = list(dict.fromkeys(reasons.values()))
    if len(msgs) == 1 and (len(reasons) == len(names) or len(names) == 1):
        return msgs[0]
    return "; ".join(f"{n}: {r}" for n, r in reasons.items())


def write_dse_report(data: dict, out: Path) -> list[Path]:
    """``report.md``, ``report.html`` and ``pareto.png`` of :func:`aras.dse.run_dse`'s ``data``."""
    out = Path(out)
    c = _cfg(data["config"])
    models = data["models"]
    names = [m["name"] for m in models]
    W = {m["name"]: m["weights"] for m in models}
    params = list(data["grid"])
    pts = {p["id"]: p for p in data["points"]}
    samp = data["sampling"]
    png = "pareto.png"
    _pareto_plot(data, out / png)

    d = Doc()
    d.h(1, f"Design-space exploration on config `{c.name}`")
    d.p(f"Networks: {', '.join(f'{n} ({W[n]} weights)' for n in names)}. Generated by aras "
        f"{data.get('aras_version', '')} (`aras dse`); every number below comes from `dse.json` in this directory "
        "(one row per point and network in `dse.csv`). Each point is one ARAS run per network of "
        "`sim_models.perf.simulate` (steady state, batch as configured), objectives minimised: latency, energy "
        "per run and chip area" + ("; accuracy maximised" if "accuracy" in data["objectives"] else "") + ".")
    d.p(provenance_line(data))
    d.p(WEIGHTS_LEGEND)
    d.ul([f"{m['name']}: {m['weights']} weights — {m['notes'] or 'the trace has no notes on their source'}"
          for m in models])
    d.p(f"Base config `{c.name}` (every field not in the grid):")
    d.ul(config_lines(data["config"]))
    d.p(_docs_pointer())

    d.h(2, "Grid")
    from .dse import NAMED_SETS

    rows = []
    for k, vals in data["grid"].items():
        sets = ("scheduler option `lookahead` (ARAS)" if k == "lookahead" else
                ", ".join(f"`{f}`" for f in NAMED_SETS[k]) + (" and `adc_bits` at the exact width"
                                                               if k == "cell_bits" and "adc_bits" not in data["grid"]
                                                               else "") if k in NAMED_SETS else f"config field `{k}`")
        rows.append([k, ", ".join(_dse_value(v) for v in vals), sets])
    d.table(["parameter", "values", "sets"], rows)
    if samp["mode"] == "random":
        text = (f"Random sample: {len(data['points'])} valid points of the {samp['combinations']:,} combinations "
                f"(asked for {samp['samples']}, seed {samp['seed']}; {samp['drawn']:,} drawn, only valid ones kept).")
    else:
        text = f"Full factorial: {samp['combinations']:,} combinations, {len(data['points'])} valid."
    inv = data["invalid"]
    text += (f" {len(inv)} invalid combination{'s' * (len(inv) != 1)} skipped (the configuration rejects them or a "
             "network does not fit them); listed below." if inv else " No combination is invalid.")
    d.p(text)
    if data.get("accuracy"):
        acc = [m for m in models if m["accuracy_samples"]]
        d.p("Accuracy (`--accuracy`): " + ("; ".join(
            f"{m['name']} on its first {m['accuracy_samples']:,} labelled samples through the bit-exact functional "
            "model, with the encodings the executed program wrote" for m in acc) if acc else "no network qualifies")
            + ". " + "; ".join(f"{m['name']}: not measured ("
                              + ("synthetic weights" if m["weights"] != "real" else "no labelled samples in the trace")
                              + ")" for m in models if not m["accuracy_samples"])
            + ("." if any(not m["accuracy_samples"] for m in models) else ""))

    fronts = data["fronts"]
    groups = [(n, f"{n} ({W[n]} weights)") for n in names]
    if "geomean" in fronts:
        groups.append(("geomean", f"geometric mean over {', '.join(names)}"))
    for key, title in groups:
        d.h(2, f"Pareto front: {title}")
        objs = [o for o in data["objectives"] if o != "accuracy" or
                (key == "geomean" or next(m for m in models if m["name"] == key)["accuracy_samples"])]
        rows = []
        for i in fronts[key]:
            p = pts[i]
            r = p["geomean"] if key == "geomean" else p["results"][key]
            rows.append([str(i)] + [_dse_value(p["params"][k]) for k in params]
                        + ([] if key == "geomean" else [fmt_int(r["n_xbars"])])
                        + [_dse_metric(o, r.get(o)) for o in objs])
        heads = ["point"] + params + ([] if key == "geomean" else ["crossbars"]) + \
            [("mean " if key == "geomean" and o == "accuracy" else "") + DSE_OBJECTIVE[o][0] for o in objs]
        d.table(heads, rows)
        n_ok = sum(1 for p in data["points"]
                   if "error" not in (p["geomean"] if key == "geomean" else p["results"][key]))
        d.p(f"{len(rows)} of {n_ok} points on the front (no other point is at least as good in every objective and "
            "better in one)." + (" Geometric mean of latency, energy and area over the networks" +
                                 (", arithmetic mean of the measured accuracies" if "accuracy" in objs else "") + "."
                                 if key == "geomean" else ""))
    d.img(png, "Every point (grey) and the Pareto front (red) in pairs of objectives, per network"
               + (" and for the geometric mean" if "geomean" in fronts else "") + "; the front is over all "
               "objectives at once, so a front point can look dominated in one pair.")

    if inv:
        d.h(2, "Invalid combinations (skipped)")
        shown = inv[:200]
        d.table(params + ["why"], [[_dse_value(x["params"][k]) for k in params] + [_dse_reason(x["reasons"], names)]
                                   for x in shown])
        if len(inv) > len(shown):
            d.p(f"... and {len(inv) - len(shown)} more (all in `dse.json`).")
    if data.get("failures"):
        d.h(2, "Failed runs")
        d.ul([", ".join(f"{k}={_dse_value(v)}" for k, v in f["params"].items()) + f": {f['error']}"
              for f in data["failures"]])
        d.p("A failed run is left out of its network's front and of the geometric mean; the other runs are cached, "
            "so running the same command again computes only the failed ones.")
    e = data.get("execution") or {}
    d.h(2, "Runs")
    d.p(f"{e.get('tasks', 0)} runs: {e.get('computed', 0)} computed, {e.get('cached', 0)} from the result cache, "
        f"{e.get('failed', 0)} failed; {e.get('backend', 'unknown')} ({e.get('workers', 0)} workers); "
        f"{fmt_sig(e.get('cpu_s'), 3)} CPU seconds in the runs; total wall time {fmt_sig(data.get('wall_s'), 3)} s.")

    md, ht = out / "report.md", out / "report.html"
    _write(md, d.markdown())
    _write(ht, d.html(out, f"ARAS design-space exploration on config {c.name}"))
    return [md, ht, out / png]


def _pareto_plot(data: dict, path: Path) -> None:
    """Per network (and the geometric mean) one row of panels, one per pair of objectives: every point
    grey, the front red."""
    models = data["models"]
    names = [m["name"] for m in models]
    fronts = data["fronts"]
    keys = names + (["geomean"] if "geomean" in fronts else [])
    objs = data["objectives"]
    pairs = [("latency_s", "energy_j"), ("latency_s", "area_mm2"), ("energy_j", "area_mm2")] + \
        ([("latency_s", "accuracy")] if "accuracy" in objs else [])
    fig, ax = _figure(3.6 * len(pairs) + 0.5, 3.2 * len(keys) + 0.4, len(keys), len(pairs))
    for r, key in enumerate(keys):
        front = set(fronts[key])
        recs = [(p["id"], p["geomean"] if key == "geomean" else p["results"][key]) for p in data["points"]]
        recs = [(i, x) for i, x in recs if "error" not in x]
        for cidx, (a, b) in enumerate(pairs):
            axis = ax[r, cidx]
            pts = [(i, x.get(a), x.get(b)) for i, x in recs if x.get(a) is not None and x.get(b) is not None]
            if not pts:
                axis.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axis.transAxes)
                axis.set_axis_off()
                continue
            xs = np.array([p[1] * DSE_OBJECTIVE[a][1] for p in pts])
            ys = np.array([p[2] * DSE_OBJECTIVE[b][1] for p in pts])
            on = np.array([p[0] in front for p in pts])
            axis.scatter(xs[~on], ys[~on], s=12, color="0.65", label="point")
            axis.scatter(xs[on], ys[on], s=22, color="tab:red", label="Pareto front", zorder=3)
            for vals, setter in ((xs, axis.set_xscale), (ys, axis.set_yscale)):
                if vals.min() > 0 and vals.max() / vals.min() > 30:
                    setter("log")
            axis.set_xlabel(DSE_OBJECTIVE[a][0], fontsize=8)
            axis.set_ylabel(DSE_OBJECTIVE[b][0], fontsize=8)
            axis.tick_params(labelsize=7)
            title = "geometric mean" if key == "geomean" else \
                f"{key} ({next(m['weights'] for m in models if m['name'] == key)})"
            axis.set_title(title, fontsize=9)
            if r == 0 and cidx == 0:
                axis.legend(fontsize=7)
    fig.suptitle(f"Design-space exploration on config {data['config']['name']}: {len(data['points'])} points",
                 fontsize=10)
    _save(fig, path)
