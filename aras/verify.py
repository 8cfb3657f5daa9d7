"""``aras verify``: a trace or model through the generated RTL (cocotb; Verilator when installed, else
Icarus; ``$SIM`` chooses) and the golden model side by side, with a report (``report.md``,
``report.html``, ``report.json``): per layer, golden vs RTL cycle windows, execute-side event counters
and output checksums, then every status-block register, with a match column; the simulator and its
version, simulation wall and CPU time, simulated cycles per second and per CPU-second; on a mismatch
the waveform (FST) of a traced rerun and the testbench seed. The comparison itself is
``verif/testbench/top_tb.py``'s (docs/verification.md).

On the terminal: what the weights and inputs are, the estimate, a progress line while the SystemVerilog
is generated and built (or found in the build cache, ``$ARAS_CACHE/cocotb/<hash>``, never in the
report folder), then a progress bar over the runs' layers, fed by the testbench's log; cocotb's and the
simulator's own output go to ``DIR/cocotb.log`` (:data:`LOG`), not to the terminal."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

from .config import Config
from .errors import ArasError
from .report import Doc, _write, config_lines, fmt_int, provenance_line, split_notes, weights_line

MISSING = "—"
LOG = "cocotb.log"  # in the report folder: everything the simulator process (cocotb included) prints
# testbench log lines the progress bar follows: a layer's execute window ended (top_tb.LayerProbe), a run ended
_LAYER = re.compile(r"\bLAYER (\d+)/(\d+) done\b")
_SPEED = re.compile(r"\bSPEED \d+ cycles\b")


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
    build = (f"SystemVerilog generation and build {meta['build_s']:.1f} s"
             + (" (compiled model reused from the build cache)" if meta.get("build_cached") else ""))
    d.ul([provenance_line(meta),
          f"weights: **{meta['weights']}**" + (f" — {meta['weights_source']}" if meta.get("weights_source") else "")
          + f"; inputs: {meta['inputs']}",
          f"simulator: {_simulator(meta)}; testbench seed {rec.get('tb_seed', meta.get('seed', 0))}"
          + (f"; its log: `{meta['log']}`" if meta.get("log") else ""),
          f"simulation wall time {rec.get('seconds', 0):.1f} s in total"
          + (f", {cpu:.1f} CPU-s in the simulator process" if cpu is not None else "")
          + f" ({build}; golden model and vectors {meta['vectors_s']:.1f} s)",
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


def inputs_text(tr, note: str) -> str:
    """What the case's inputs are: ``Case.inputs_note`` and, for the trace's own samples, where they come from."""
    _, src = split_notes(tr.notes)
    return note + (f" (the trace's samples: {src})" if src and "samples" in note else "")


class _Lines:
    """A text stream that hands every complete line to ``write`` (tqdm's, so it prints above the bar)."""

    def __init__(self, write):
        self.write_line, self.buf = write, ""

    def write(self, text: str) -> int:
        self.buf += text
        *lines, self.buf = self.buf.split("\n")
        for ln in lines:
            self.write_line(ln)
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _to_log(path: Path):
    """File descriptors 1 and 2 of this process, and so of the simulator process it starts, append to
    ``path`` (cocotb's and the simulator's output: GPI notes, the test's docstring, the results table);
    yields a line-buffered stream on the terminal's stderr for the progress bar. Restored on any exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    term = os.fdopen(os.dup(saved[1]), "w", buffering=1)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        yield term
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in (fd, *saved):
            os.close(f)
        term.close()


class _Follow:
    """A thread that reads the testbench log as it grows and moves a tqdm bar over ``runs`` x layers:
    one step per ``LAYER i/n done`` line (the total becomes runs x n at the first), the rest of a run
    at its ``SPEED`` line."""

    def __init__(self, log: Path, bar, runs: int, layers: int):
        self.log, self.bar, self.runs, self.layers = log, bar, runs, max(layers, 1)
        self.done_runs, self.stop = 0, threading.Event()
        self.pos, self.rest = 0, b""  # bytes of the log read so far; a last line not yet complete
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self._read()  # what the simulator wrote last

    def _loop(self):
        while not self.stop.wait(0.5):
            self._read()

    def _read(self):
        with self.lock:
            self._read_new()

    def _read_new(self):
        try:
            with open(self.log, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return
        self.pos += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            m = _LAYER.search(line)
            if m:
                n = int(m.group(2))
                if n != self.layers:
                    self.layers = n
                    self.bar.total = self.runs * n
                self.bar.update(min(self.done_runs * self.layers + int(m.group(1)), self.bar.total) - self.bar.n)
            elif _SPEED.search(line):
                self.done_runs += 1
                self.bar.update(min(self.done_runs * self.layers, self.bar.total) - self.bar.n)


@contextlib.contextmanager
def _ticking(desc: str):
    """A one-line progress display with the elapsed time while ``desc`` runs (refreshed every second on a
    terminal, every 15 s into a pipe or file)."""
    from tqdm import tqdm

    bar = tqdm(total=None, desc=desc, bar_format="{desc}: {elapsed}", file=sys.stderr)
    real = sys.stdout
    lines = _Lines(lambda ln: bar.write(ln, file=real))
    stop = threading.Event()
    every = 1.0 if sys.stderr.isatty() else 15.0

    def tick():
        while not stop.wait(every):
            bar.refresh()

    t = threading.Thread(target=tick, daemon=True)
    t.start()
    try:
        with contextlib.redirect_stdout(lines):  # the build's own lines print above the display
            yield
    finally:
        stop.set()
        t.join()
        bar.close()


def run_verify(ref: str, cfg: Config, out: Path, *, mode: str = "aras", runs: int = 1, seed: int = 0,
               sim: str | None = None, opts=None, run_name: str | None = None, command: str | None = None) -> bool:
    """Verify ``ref`` (model name or trace directory) on ``cfg``; writes the report into ``out``. ``mode``:
    a scheduling mode of ``sim_models.scheduler.MODES``; ``opts``: the scheduler ``Options`` of the run
    (``aras simulate``'s ``--mode`` / ``--no-*``, named ``run_name``; default the mode's own); ``sim``:
    ``verilator`` or ``icarus`` (default ``$SIM``, else Verilator when installed, else Icarus);
    ``command``: the command line, for the report's provenance."""
    try:
        import cocotb  # noqa: F401
    except ImportError:
        raise ArasError("aras verify needs cocotb: install the test extra (pip install -e '.[test]')") from None
    from tqdm import tqdm

    from sim_models.scheduler import MODES
    from verif.testbench import runner
    from verif.testbench.system import design, run_case
    from verif.testbench.system_vectors import top_params, trace_case

    from . import __version__
    from .experiments import provenance
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
    run_name = run_name or mode
    t0 = time.perf_counter()
    case = trace_case(tr, cfg, mode, runs=runs, seed=seed, name=f"{tr.name}@{run_name}", opts=opts)
    params = top_params(case, cfg)
    t_vec = time.perf_counter() - t0
    weights_src = split_notes(tr.notes)[0]
    print(weights_line(tr.weights, tr.notes))
    inputs = inputs_text(tr, case.inputs_note)
    print(f"inputs: {inputs}")
    root = runner.cache_root()  # builds are keyed by content: an equal design is compiled once
    print(f"the {cfg.name} top level for {sim}: program_words {params['program_words']}, dram_bytes "
          f"{params['dram_bytes']}; build cache {root}")
    t0 = time.perf_counter()
    with _ticking(f"generating the SystemVerilog and building it for {sim} (or finding it in the cache)"):
        built = design(cfg, root, params, sim=sim)
    t_build = time.perf_counter() - t0
    f0 = case.first_sample
    labels = tr.labels[f0:f0 + runs * cfg.batch].tolist() if tr.labels is not None and f0 is not None else None
    log = out / LOG
    meta = {"model": tr.name, "config": cfg.name, "mode": run_name, "weights": tr.weights,
            "weights_source": weights_src, "inputs": inputs,
            "batch": cfg.batch, "n_outputs": len(tr.outputs), "labels": labels,
            "classifier": tr.labels is not None or tr.layers[-1].op in ("linear", "softmax"),
            "simulator": {"name": built.sim, "version": built.version}, "build_s": t_build,
            "build_cached": built.build_s == 0.0, "build_dir": str(built.build_dir), "vectors_s": t_vec,
            "log": LOG, "config_dict": cfg.to_dict(), "top_params": params, "notes": tr.notes,
            "provenance": provenance(command), "aras_version": __version__}
    log.unlink(missing_ok=True)
    desc = f"{case.name}: {runs} run{'s' * (runs != 1)} on {sim}"
    try:
        with _to_log(log) as term:
            bar = tqdm(total=runs * len(tr.layers), desc=desc, unit="layer", file=term, mininterval=0.5)
            try:
                with _Follow(log, bar, runs, len(tr.layers)):
                    rec = run_case(case, cfg, root, out / "sim", params=params, sim=sim)
            finally:
                bar.close()
    except AssertionError as e:
        rep = out / "sim" / "report.json"
        full = json.loads(rep.read_text()) if rep.is_file() else {}
        rec = {**(full.get("cases") or [{"runs": []}])[0], "seconds": full.get("seconds", 0.0)}
        rec.update({k: full[k] for k in ("cpu_s", "tb_seed", "waves") if k in full})
        if not rec.get("runs") or not any(r["mismatches"] for r in rec["runs"]):
            meta["error"] = str(e)
    for k, r in enumerate(rec.get("runs", [])):
        n, cpu = r["cycles"][1], r.get("cpu_s")
        if n is None:
            continue
        print(f"run {k}{' (steady state)' if k else ' (cold)'}: {n:,} cycles in {r['wall_s']:.1f} s wall = "
              f"{n / max(r['wall_s'], 1e-9):,.0f} cycles/s"
              + (f"; {cpu:.1f} CPU-s = {n / max(cpu, 1e-9):,.0f} cycles per CPU-second" if cpu else ""))
    ok = render(rec, meta, out)
    print(f"{'MATCH' if ok else 'MISMATCH'}: wrote {out / 'report.md'} and report.html; simulator log {log}")
    return ok
