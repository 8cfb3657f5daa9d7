"""``aras verify``: a trace or model through the generated RTL (cocotb, Icarus by default) and the golden
model side by side, with a report (``report.md``, ``report.html``, ``report.json``): per layer, golden vs
RTL cycle windows, execute-side event counters and output checksums, then every status-block register,
with a match column; simulation wall time and simulated cycles per second. The comparison itself is
``verif/cocotb/top_tb.py``'s (docs/verification.md)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .config import Config
from .errors import ArasError
from .report import Doc, _write, config_lines, fmt_int

MISSING = "—"


def _pair(p) -> tuple[str, str, bool]:
    """(golden, RTL, match) cells of a [golden, rtl] pair (an all-ones window register is "never")."""
    def fmt(x):
        if x is None:
            return MISSING
        return "never" if x == (1 << 64) - 1 else fmt_int(x)
    g, r = p
    return fmt(g), fmt(r), r is not None and g == r


def _mark(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def _predictions(run: dict, meta: dict, k: int) -> str | None:
    """Predicted classes (argmax of a single output) golden vs RTL, with the labels when the trace has them."""
    outs, batch = run.get("outputs"), meta.get("batch", 1)
    if not outs or meta.get("n_outputs") != 1 or not meta.get("classifier"):
        return None
    import numpy as np

    g, r = (np.asarray(o).reshape(batch, -1).argmax(axis=1).tolist() for o in outs)
    labels = meta.get("labels") or []
    lab = labels[k * batch:(k + 1) * batch] if labels else None
    return (f"Predicted class (golden / RTL): {', '.join(f'{a} / {b}' for a, b in zip(g, r, strict=True))}"
            + (f"; label {', '.join(map(str, lab))}" if lab else "") + f" — {_mark(g == r)}")


def render(rec: dict, meta: dict, out: Path) -> bool:
    """Write report.md/.html/.json from the testbench record ``rec``; True if everything matched."""
    runs = rec.get("runs", [])
    mism = [m for r in runs for m in r["mismatches"]]
    ok = bool(runs) and not mism and not meta.get("error")
    d = Doc()
    d.h(1, f"RTL vs golden model: {meta['model']} on config {meta['config']}")
    d.p(f"**Verdict: {'MATCH' if ok else 'MISMATCH'}** — {len(runs)} run(s) of mode `{meta['mode']}` through "
        f"the generated SystemVerilog of `hw.top.Top` on {meta['simulator']} (cocotb), compared exactly with "
        "`sim_models.timing` (cycles, counters, windows) and `sim_models.functional` (outputs).")
    d.ul([f"weights: **{meta['weights']}**; inputs: {meta['inputs']}",
          f"simulation wall time {rec.get('seconds', 0):.1f} s in total (build {meta['build_s']:.1f} s, golden "
          f"model and vectors {meta['vectors_s']:.1f} s)",
          "per-layer execute counters are the status block's differences between the layer's first and last "
          "execute cycles (one execute instruction runs at a time); write-side counters overlap other layers' "
          "execution in time and are compared in the totals",
          "output checksums: CRC-32 of the layer's output tensor in the Gbuffer at the end of its execute window "
          "(batch first, as `sim_models.functional` lays it out)"])
    if meta.get("error"):
        d.p(f"**Error:** {meta['error']}")
    for m in mism:
        d.p(f"**Mismatch:** {m}")
    for k, run in enumerate(runs):
        g, r = run["cycles"]
        d.h(2, f"Run {k}" + (" (cold)" if k == 0 else " (steady state: starts from the cells of run " f"{k - 1})"))
        d.p(f"{fmt_int(r)} cycles simulated in {run['wall_s']:.1f} s = {r / max(run['wall_s'], 1e-9):,.0f} "
            f"simulated cycles/s (golden {fmt_int(g)}; loading {run['load_s']:.1f} s). HOST layers served: "
            f"{run['host_layers'] or 'none'}.")
        pred = _predictions(run, meta, k)
        if pred:
            d.p(pred)
        rows = []
        for li, ly in enumerate(run["layers"]):
            cells, good = [str(li), ly["name"]], True
            for k2 in ("start", "end", "wstart", "wend"):
                a, b, m = _pair(ly[k2])
                cells.append(f"{a} / {b}")
                good &= m
            cnt_ok = all(v[1] is not None and v[0] == v[1] for v in ly["counters"].values()) \
                if any(v[1] is not None for v in ly["counters"].values()) else None
            busy = ", ".join(f"{k3} {fmt_int(v[0])}" for k3, v in ly["counters"].items() if v[0])
            cells.append(busy or MISSING)
            cells.append(MISSING if cnt_ok is None else _mark(cnt_ok))
            cg, cr = ly["crc"]
            cells.append(f"{cg:08x} / {MISSING if cr is None else f'{cr:08x}'}")
            crc_ok = cr is None or cg == cr
            cells.append(_mark(good and cnt_ok is not False and crc_ok))
            rows.append(cells)
        d.table(["#", "layer", "start (golden / RTL)", "end", "write start", "write end",
                 "execute counters (golden)", "counters match", "output CRC-32 (golden / RTL)", "match"], rows)
        trows = []
        for name, p in run["totals"].items():
            a, b, m = _pair(p)
            trows.append([name, a, b, _mark(m)])
        a, b, m = (f"{run['outputs_crc'][0]:08x}", f"{run['outputs_crc'][1]:08x}",
                   run["outputs_crc"][0] == run["outputs_crc"][1])
        trows.append(["network outputs CRC-32", a, b, _mark(m)])
        d.table(["status register", "golden", "RTL", "match"], trows)
    d.h(2, "Configuration")
    d.ul(config_lines(meta["config_dict"]))
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "report.md", d.markdown())
    _write(out / "report.html", d.html(out, f"aras verify {meta['model']}"))
    _write(out / "report.json", json.dumps({"meta": meta, **rec, "match": ok}, indent=1) + "\n")
    return ok


def run_verify(ref: str, cfg: Config, out: Path, *, mode: str = "aras", runs: int = 1, seed: int = 0) -> bool:
    """Verify ``ref`` (model name or trace directory) on ``cfg``; writes the report into ``out``."""
    try:
        import cocotb  # noqa: F401
    except ImportError:
        raise ArasError("aras verify needs cocotb: install the test extra (pip install -e '.[test]')") from None
    from sim_models.scheduler import MODES
    from verif.cocotb import runner
    from verif.cocotb.system import design, run_case
    from verif.cocotb.system_vectors import top_params, trace_case

    from .models import load_trace_or_model
    from .trace import check_fits

    if mode not in MODES:
        raise ArasError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    if runs < 1:
        raise ArasError(f"--runs must be >= 1, got {runs}")
    sim = runner.simulator()
    reason = runner.skip_reason(sim)
    if reason:
        raise ArasError(f"cannot run the RTL on {sim}: {reason}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tr = load_trace_or_model(ref, progress=True)
    check_fits(tr, cfg)
    t0 = time.perf_counter()
    case = trace_case(tr, cfg, mode, runs=runs, seed=seed)
    params = top_params(case, cfg)
    t_vec = time.perf_counter() - t0
    root = Path(os.environ.get("ARAS_COCOTB_BUILD") or out / "build")
    print(f"generating and building the {cfg.name} top level for {sim} (program_words {params['program_words']}, "
          f"dram_bytes {params['dram_bytes']}) ...")
    t0 = time.perf_counter()
    design(cfg, root, params)
    t_build = time.perf_counter() - t0
    f0 = case.first_sample
    labels = tr.labels[f0:f0 + runs * cfg.batch].tolist() if tr.labels is not None and f0 is not None else None
    meta = {"model": tr.name, "config": cfg.name, "mode": mode, "weights": tr.weights, "inputs": case.inputs_note,
            "batch": cfg.batch, "n_outputs": len(tr.outputs), "labels": labels,
            "classifier": tr.labels is not None or tr.layers[-1].op in ("linear", "softmax"),
            "simulator": sim, "build_s": t_build, "vectors_s": t_vec, "config_dict": cfg.to_dict(),
            "top_params": params, "notes": tr.notes}
    print(f"running {runs} run(s) of {case.name} through the RTL ...")
    try:
        rec = run_case(case, cfg, root, out / "sim", params=params)
    except AssertionError as e:
        rep = out / "sim" / "report.json"
        full = json.loads(rep.read_text()) if rep.is_file() else {}
        rec = {**(full.get("cases") or [{"runs": []}])[0], "seconds": full.get("seconds", 0.0)}
        if not rec.get("runs") or not any(r["mismatches"] for r in rec["runs"]):
            meta["error"] = str(e)
    ok = render(rec, meta, out)
    print(f"{'MATCH' if ok else 'MISMATCH'}: wrote {out / 'report.md'} and report.html")
    return ok
