"""``aras verify``: a trace or model through the generated RTL (cocotb; Verilator when installed, else
Icarus; ``$SIM`` chooses) and the golden model side by side, with a report (``report.md``,
``report.html``, ``report.json``): per layer, golden vs RTL cycle windows, execute-side event counters
and output checksums, then every status-block register, with a match column; the simulator and its
version, simulation wall and CPU time, simulated cycles per second and per CPU-second; on a mismatch
the waveform (FST) of a traced rerun and the testbench seed. The comparison itself is
``verif/cocotb/top_tb.py``'s (docs/verification.md)."""

from __future__ import annotations

import json
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


def _simulator(meta: dict) -> str:
    """``name version`` of ``meta['simulator']`` (``{"name", "version"}``, or a bare name)."""
    sim = meta.get("simulator") or {}
    if isinstance(sim, str):
        return sim
    return f"{sim.get('name', '?')} {sim.get('version', '')}".strip()


def render(rec: dict, meta: dict, out: Path) -> bool:
    """Write report.md/.html/.json from the testbench record ``rec``; True if everything matched."""
    runs = rec.get("runs", [])
    mism = [m for r in runs for m in r["mismatches"]]
    ok = bool(runs) and not mism and not meta.get("error")
    d = Doc()
    d.h(1, f"RTL vs golden model: {meta['model']} on config {meta['config']}")
    if mism or meta.get("error"):
        d.alert(f"First mismatch: {mism[0]}" if mism else f"Error: {meta['error']}")
    d.p(f"**Verdict: {'MATCH' if ok else 'MISMATCH'}** — {len(runs)} run(s) of mode `{meta['mode']}` through "
        f"the generated SystemVerilog of `hw.top.Top` on {_simulator(meta)} (cocotb), compared exactly with "
        "`sim_models.timing` (cycles, counters, windows) and `sim_models.functional` (outputs).")
    cpu = rec.get("cpu_s")
    d.ul([f"weights: **{meta['weights']}**; inputs: {meta['inputs']}",
          f"simulator: {_simulator(meta)}; testbench seed {rec.get('tb_seed', meta.get('seed', 0))}",
          f"simulation wall time {rec.get('seconds', 0):.1f} s in total"
          + (f", {cpu:.1f} CPU-s in the simulator process" if cpu is not None else "")
          + f" (build {meta['build_s']:.1f} s{' (cached)' if meta.get('build_cached') else ''}, golden "
          f"model and vectors {meta['vectors_s']:.1f} s)",
          "per-layer execute counters are the status block's differences between the layer's first and last "
          "execute cycles (one execute instruction runs at a time); write-side counters overlap other layers' "
          "execution in time and are compared in the totals",
          "output checksums: CRC-32 of the layer's output tensor in the Gbuffer at the end of its execute window "
          "(batch first, as `sim_models.functional` lays it out)"])
    if meta.get("error"):
        d.p(f"**Error:** {meta['error']}")
    if rec.get("waves"):
        d.p(f"**Waveform:** `{rec['waves']}` (FST of a traced rerun; testbench seed {rec.get('tb_seed', 0)})")
    for m in mism:
        d.p(f"**Mismatch:** {m}")
    for k, run in enumerate(runs):
        g, r = run["cycles"]
        d.h(2, f"Run {k}" + (" (cold)" if k == 0 else " (steady state: starts from the cells of run " f"{k - 1})"))
        speed = f"{fmt_int(r)} cycles simulated in {run['wall_s']:.1f} s = {r / max(run['wall_s'], 1e-9):,.0f} " \
            "simulated cycles/s"
        if run.get("cpu_s") is not None:
            speed += f" ({run['cpu_s']:.1f} CPU-s = {r / max(run['cpu_s'], 1e-9):,.0f} cycles per CPU-second)"
        d.p(f"{speed} (golden {fmt_int(g)}; loading {run['load_s']:.1f} s). HOST layers served: "
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


def run_verify(ref: str, cfg: Config, out: Path, *, mode: str = "aras", runs: int = 1, seed: int = 0,
               sim: str | None = None) -> bool:
    """Verify ``ref`` (model name or trace directory) on ``cfg``; writes the report into ``out``. ``sim``:
    ``verilator`` or ``icarus`` (default ``$SIM``, else Verilator when installed, else Icarus)."""
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
    try:
        sim = sim or runner.simulator()
    except ValueError as e:
        raise ArasError(str(e)) from None
    reason = runner.unusable(sim)
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
    root = runner.cache_root()  # builds are keyed by content: an equal design is compiled once
    print(f"generating and building the {cfg.name} top level for {sim} (program_words {params['program_words']}, "
          f"dram_bytes {params['dram_bytes']}; build cache {root}) ...")
    t0 = time.perf_counter()
    built = design(cfg, root, params, sim=sim)
    t_build = time.perf_counter() - t0
    f0 = case.first_sample
    labels = tr.labels[f0:f0 + runs * cfg.batch].tolist() if tr.labels is not None and f0 is not None else None
    meta = {"model": tr.name, "config": cfg.name, "mode": mode, "weights": tr.weights, "inputs": case.inputs_note,
            "batch": cfg.batch, "n_outputs": len(tr.outputs), "labels": labels,
            "classifier": tr.labels is not None or tr.layers[-1].op in ("linear", "softmax"),
            "simulator": {"name": built.sim, "version": built.version}, "build_s": t_build,
            "build_cached": built.build_s == 0.0, "vectors_s": t_vec, "config_dict": cfg.to_dict(),
            "top_params": params, "notes": tr.notes}
    print(f"running {runs} run(s) of {case.name} through the RTL ...")
    try:
        rec = run_case(case, cfg, root, out / "sim", params=params, sim=sim)
    except AssertionError as e:
        rep = out / "sim" / "report.json"
        full = json.loads(rep.read_text()) if rep.is_file() else {}
        rec = {**(full.get("cases") or [{"runs": []}])[0], "seconds": full.get("seconds", 0.0)}
        rec.update({k: full[k] for k in ("cpu_s", "tb_seed", "waves") if k in full})
        if not rec.get("runs") or not any(r["mismatches"] for r in rec["runs"]):
            meta["error"] = str(e)
    ok = render(rec, meta, out)
    print(f"{'MATCH' if ok else 'MISMATCH'}: wrote {out / 'report.md'} and report.html")
    return ok
