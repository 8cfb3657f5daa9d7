"""The ``aras`` command line: models, config, import-onnx, simulate.

Every error from bad input is one line ``aras: <what, where>`` on stderr and a non-zero exit;
commands check their arguments and output paths before any work starts and write their outputs
only after everything succeeded (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import shlex
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .errors import ArasError


def _atomic_write(path: Path, write):
    """Write via ``write(tmp_path)`` then rename, so a failure leaves nothing partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; an output file is an ordinary file
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_output(path: str, flag: str, kind: str = "file", files: tuple[str, ...] = ()) -> None:
    """Raise :class:`ArasError` (naming ``flag`` and ``path``) unless ``path`` can be written as a
    ``kind`` ("file" or "dir"), before any work starts; creates and changes nothing that stays.

    A file path must not be a directory (nor end in a separator) nor an existing non-regular file; a
    directory path must not be an existing non-directory, and ``files`` inside it must not be
    directories. The directory that will receive the output (or the nearest existing ancestor of a
    directory still to be created) must be a writable directory: ``access()``, and for root (whom
    access() lets through) creating and removing a temporary directory in it, which catches /proc,
    /sys and the like; the directory's times are restored."""
    where = f"{flag} {path}" if path else flag
    if not path:
        raise ArasError(f"{flag}: empty path")
    p = Path(os.path.abspath(path))
    if kind == "file" and (path.endswith(("/", os.sep)) or p.is_dir()):
        raise ArasError(f"{where}: is a directory; give a file name")
    if os.path.lexists(p):
        if kind == "dir" and not p.is_dir():
            raise ArasError(f"{where}: exists and is not a directory")
        if kind == "file" and not p.is_file():
            raise ArasError(f"{where}: exists and is not a regular file")
        if kind == "file" and not os.access(p, os.W_OK):
            raise ArasError(f"{where}: the existing file is not writable")
    for f in files:
        if (p / f).is_dir():
            raise ArasError(f"{where}: {p / f} is a directory where aras writes a file")
    d = p if kind == "dir" and p.is_dir() else p.parent
    while not os.path.lexists(d):
        d = d.parent
    if not d.is_dir():
        raise ArasError(f"{where}: {d} is not a directory")
    if not os.access(d, os.W_OK | os.X_OK):
        raise ArasError(f"{where}: cannot write in {d} (permission denied)")
    if getattr(os, "geteuid", lambda: -1)() == 0:  # root passes access(); /proc, /sys and the like still refuse
        st = d.stat()
        try:
            os.rmdir(tempfile.mkdtemp(prefix=".aras-check-", dir=d))
        except OSError as e:
            raise ArasError(f"{where}: cannot write in {d} ({e.strerror or e})") from None
        try:
            os.utime(d, ns=(st.st_atime_ns, st.st_mtime_ns))  # the probe leaves no trace, not even a time
        except OSError:
            pass


def _load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise ArasError(f"{what} file {path} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ArasError(f"{what} file {path}: not a readable .npy array ({e})") from None


def _load_batch(path: str, what: str) -> np.ndarray:
    """A batch-first float array of at least one sample."""
    x = _load_npy(path, what)
    if x.ndim == 0:
        raise ArasError(f"{what} file {path}: a scalar, need a batch-first array (N x input shape)")
    if len(x) == 0:
        raise ArasError(f"{what} file {path}: 0 samples (shape {tuple(x.shape)}); need at least one")
    return x


# ---------------------------------------------------------------------------------------------- provenance
# what the weights and inputs are: in aras/report.py, shared with aras verify's terminal output and report
from .report import samples_kind, split_notes, weights_line  # noqa: E402


def _model_origin(ref: str) -> str:
    return f"trace directory {ref}" if Path(ref).is_dir() else "built-in model (`aras models`)"


# ---------------------------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    from .models import REGISTRY

    print(f"{'name':<12} {'weights':<10} description")
    for s in REGISTRY.values():
        print(f"{s.name:<12} {s.weights:<10} {s.description}")
    return 0


def cmd_config(args) -> int:
    from .config import Config, load
    from .devices import DEVICES, listing

    if args.devices:
        if args.config is not None or args.device is not None:
            raise ArasError("--devices lists the device presets; give it alone (aras config --devices)")
        print("\n".join(listing()))
        return 0
    if args.config is None:
        raise ArasError("config: give a preset name or a .toml/.json file (or --devices to list the device presets)")
    cfg = load(args.config, device=args.device)
    dev = DEVICES[cfg.device]
    src = {**Config.sources(), **{k: s for k, s in dev.sources().items() if getattr(cfg, k) == dev.values()[k]}}
    paper = {**Config().to_dict(), **{k: getattr(cfg, k) for k in dev.fields if getattr(cfg, k) == dev.values()[k]}}
    print(f"# config {cfg.name}: {cfg.n_xbars} crossbars of {cfg.xbar_rows}x{cfg.xbar_cols} {cfg.cell_bits}-bit cells, "
          f"ADC exact width {cfg.adc_exact_bits} bits")
    for k, v in cfg.to_dict().items():
        val = json.dumps(v)
        why = src[k] if v == paper[k] or k == "name" else f"{cfg.name}: set for this config (paper: {src[k]})"
        if k == "device":
            why = f"device preset: {dev.summary} (aras config --devices)"
        if k in _derived_tables(cfg, dev):
            why = f"derived from pulses_per_level and e_set_pj/e_reset_pj ({src[k]})"
        print(f"{k} = {val:<28} # {why}" if len(val) <= 28 else f"{k} = {val}\n    # {why}")
    return 0


def _derived_tables(cfg, dev) -> tuple[str, ...]:
    """The write tables of ``cfg`` that are the ones its cell fields build (aras/config.py), when a device set them."""
    if cfg.device == "nvsim-sample" or any(getattr(cfg, k) != v for k, v in dev.values().items()):
        return ()
    from .config import from_dict

    d = cfg.to_dict()
    ref = from_dict({k: v for k, v in d.items() if k not in ("write_pulses", "write_energy_pj")})
    return tuple(t for t in ("write_pulses", "write_energy_pj") if getattr(ref, t) == getattr(cfg, t))


def _run_config(args, mode: str | None = None):
    """The config of simulate/compare: --config, then --device, --tpu-array, --tpu-dataflow, --batch."""
    from . import config as C

    tpu = [f for f, v in (("--tpu-array", args.tpu_array), ("--tpu-dataflow", args.tpu_dataflow)) if v is not None]
    if tpu and mode not in (None, "tpu"):
        raise ArasError(f"{', '.join(tpu)}: only for the TPU-like baseline (--mode tpu); this run is {mode}")
    cfg = C.with_tpu(C.load(args.config, device=args.device), args.tpu_array, args.tpu_dataflow)
    if args.batch:
        cfg = cfg.replace(batch=args.batch)
    return cfg


def cmd_import_onnx(args) -> int:
    check_output(args.out, "-o", "dir")
    out = Path(args.out)
    if out.is_dir() and any(out.iterdir()) and not (out / "trace.json").is_file():
        raise ArasError(f"-o {args.out}: exists and is not a trace directory (import-onnx replaces the "
                        "directory it writes); give a new or empty directory")
    from .importers.onnx_import import has_quant_params, load_onnx
    from .importers.onnx_normalise import parse_input_shapes
    from .models import ModelSource
    from .quantize import quantize

    g = load_onnx(args.model, parse_input_shapes(args.input_shape))
    if args.calib is None:
        if not has_quant_params(g):
            raise ArasError(f"{args.model}: float graph without quantization parameters: give calibration "
                            f"inputs with --calib INPUTS.npy (float, N x {' x '.join(map(str, g.input_shape))})")
        calib = np.zeros((1,) + g.input_shape)
        where = "synthetic: 1 all-zero input (no --calib or --samples given)"
    else:
        calib = _load_batch(args.calib, "calibration")
        where = f"the first {min(len(calib), 16)} of the calibration inputs {args.calib}"
    if args.samples:
        samples = _load_batch(args.samples, "samples")
        where = f"{len(samples)} inputs from {args.samples}"
    else:
        samples = calib[: min(len(calib), 16)]
    labels = _load_npy(args.labels, "labels") if args.labels else None
    if labels is not None and (labels.ndim != 1 or len(labels) != len(samples)):
        raise ArasError(f"labels file {args.labels}: need one integer label per sample ({len(samples)})")
    if args.weights:
        g.weights = args.weights
    notes = f"imported from {Path(args.model).name}; samples: {where}"
    tr = quantize(ModelSource(g, calib, samples, labels, notes=notes), args.name or Path(args.model).stem,
                  progress=True)
    tr.save(args.out)
    print(f"wrote {args.out}: {len(tr.layers)} layers ({len(tr.weight_layers())} on crossbars), "
          f"{len(tr.samples)} samples, weights {tr.weights}")
    _import_report(args, g, tr, calib)
    return 0


def _import_report(args, g, tr, calib) -> None:
    """Host-path layers by name, and per output the int8 golden model against a float run of the ONNX graph."""
    from . import config as C
    from .importers.onnx_accuracy import accuracy, host_layers_line
    from .importers.onnx_import import load_model

    line = host_layers_line(tr)
    if line:
        print(line)
    if args.calib is None:
        print("accuracy: not measured (no --calib inputs to run)")
        return
    x = np.asarray(calib[: min(len(calib), 16)], dtype=np.float64)
    rows, runtime = accuracy(load_model(args.model), tr, g, x, C.load("paper"))
    for r in rows:
        print(f"accuracy of {r['output']}: cosine {r['cosine']:.4f}, max |error| {r['max_abs_error']:.4g} "
              f"({r['max_abs_error'] / r['scale']:.1f} output steps; max |float| {r['max_ref']:.4g}) — int8 golden "
              f"model vs {runtime} on the first {len(x)} calibration inputs")


# ---------------------------------------------------------------------------------------------- simulate
def _ablations() -> tuple[str, ...]:
    from .experiments import ablations

    return ablations()


def _ablation_flag(a: str) -> str:
    return f"--no-{a.replace('_', '-')}"


def _mode_names() -> list[str]:
    """What ``simulate --mode`` takes: compare's runs (the modes, then ``no-<optimization>``), then the
    remaining scheduling modes of ``aras verify`` (e.g. ``signmag``)."""
    from sim_models.scheduler import MODES as SCHED

    from .experiments import compare_runs

    names = [r.replace("_", "-") for r in compare_runs()]
    return names + [m for m in SCHED if m not in names]


def run_spec(args) -> tuple[str, str, object]:
    """(run name, perf mode, scheduler Options or None) of ``simulate``'s --mode, --no-* and --lookahead;
    an ArasError says why a combination cannot run."""
    from sim_models.scheduler import MODES as SCHED
    from sim_models.scheduler import Options

    from .experiments import MODES

    name = (args.mode or "aras").replace("_", "-")
    off = [a for a in _ablations() if getattr(args, f"no_{a}", False)]
    knobs = [_ablation_flag(a) for a in off] + (["--lookahead"] if args.lookahead is not None else [])
    if args.functional_only and (args.mode is not None or knobs):
        raise ArasError(f"{', '.join(([f'--mode {args.mode}'] if args.mode else []) + knobs)}: not with "
                        "--functional-only, which skips the cycle/energy model these configure")
    if name == "functional":
        raise ArasError("--mode functional: the functional model is not a scheduling mode; use --functional-only")
    kw: dict = {}
    if name in MODES:
        mode = name
    elif name.startswith("no-") and name[3:].replace("-", "_") in _ablations():
        mode, kw = "aras", {name[3:].replace("-", "_"): False}
    elif name in SCHED:
        mode, kw = SCHED[name][0], dict(SCHED[name][1])
    else:
        raise ArasError(f"unknown --mode {args.mode!r}; modes: {', '.join(_mode_names())}")
    if knobs and mode != "aras":
        why = {"baseline": "the baseline PUM has every ARAS optimization off already (no overlap, so no "
                           "look-ahead)",
               "baseline-resident": "the resident baseline PUM is the baseline PUM keeping its tiles",
               "ideal": "the ideal PUM has no write schedule (every layer resident, writes not counted)",
               "tpu": "the TPU-like baseline has no ReRAM write schedule"}[mode]
        raise ArasError(f"{', '.join(knobs)}: {'ablations' if len(knobs) > 1 else 'an ablation'} of ARAS's "
                        f"schedule, not for --mode {args.mode}: {why}")
    kw.update({a: False for a in off})
    if args.lookahead is not None:
        kw["lookahead"] = args.lookahead
    parts = ([name] if name != "aras" or not off else []) + [_ablation_flag(a)[2:] for a in off]
    run = "+".join(dict.fromkeys(parts)) + ("" if args.lookahead is None else f" (lookahead {args.lookahead})")
    return run, mode, (Options.for_mode(mode, **kw) if mode in ("aras", "baseline") else None)


def _inputs(tr, args):
    """(int8 inputs, labels or None, what they are) of the functional run, checked before any run."""
    if args.inputs:
        x = _load_batch(args.inputs, "inputs")
        with np.errstate(over="ignore"):  # inputs beyond the int8 range saturate in quantization
            xq = tr.quantize_input(x, source=args.inputs)
        n, labels = len(xq), None
        what = f"{n} input{'s' * (n != 1)} from {args.inputs} (your file, quantized with the trace's input scale)"
    else:
        if tr.samples is None or len(tr.samples) == 0:
            raise ArasError(f"{tr.name}: the trace holds no input samples; give --inputs X.npy")
        xq, labels = tr.samples, tr.labels
        n = len(xq)
        _, src = split_notes(tr.notes)
        what = f"{samples_kind(tr)} — "
        if args.limit and args.limit < n:
            what += f"the first {args.limit:,} of the trace's {n:,} samples"
            if src and not re.match(r"(the |all )?[\d,]+ ", src):  # a count ("the 1,000 test digits") did not run
                what += f" ({src})"
        else:
            what += f"the trace's {n:,} samples" + (f": {src}" if src else "")
    if args.limit:
        xq = xq[: args.limit]
        labels = None if labels is None else labels[: args.limit]
    return xq, labels, what


def _functional(tr, cfg, args, report, arrays, xq, labels, prog=None) -> None:
    """Outputs through the bit-exact functional model, with the encoding the executed program put on
    the crossbars (it matters when the ADCs clip)."""
    from sim_models import functional

    from .quant import dequantize

    plan = functional.plan_from_program(prog, tr, cfg) if prog is not None else None
    out = functional.run(tr, cfg, xq, plan=plan, progress=True)
    report["samples"] = int(len(xq))
    report["outputs"] = {}
    for i, name in enumerate(tr.outputs):
        sfx = "" if i == 0 else f"_{i}"
        t = tr.tensors[name]
        q = out[name]
        arrays.update({f"output{sfx}": dequantize(q, t.scale, t.zero_point).astype(np.float32), f"output_q{sfx}": q,
                       f"output_scale{sfx}": np.float32(t.scale), f"output_zero_point{sfx}": np.int32(t.zero_point)})
        report["outputs"][name] = {"shape": list(q.shape), "scale": t.scale, "zero_point": t.zero_point,
                                   "sum_q": int(q.astype(np.int64).sum())}
    print(f"{tr.name}: {len(xq)} sample{'s' * (len(xq) != 1)} through the bit-exact functional model on config "
          f"{cfg.name}")
    if labels is not None:
        pred = out[tr.outputs[0]].reshape(len(xq), -1).argmax(axis=1)
        acc = float((pred == labels).mean())
        report["accuracy"] = acc
        print(f"accuracy: {100 * acc:.2f} % ({int((pred == labels).sum())}/{len(labels)})")


def _perf_line(r: dict) -> str:
    e = r["energy_j"]
    line = f"{r['cycles']:,} cycles ({r['latency_s'] * 1e3:.3f} ms), energy {e['total'] * 1e6:.2f} uJ"
    if r.get("writes"):
        w = r["writes"]
        line += (f", write {e['write'] * 1e6:.2f} uJ; rows written {w['rows_written']:,}, skipped "
                 f"{w['rows_skipped']:,}; cells changed {w['cells_changed']:,}")
    return line


def _print_perf(r: dict, run: str) -> None:
    if "cold_start" in r:
        note = ""
        if r.get("writes") and not r["writes"]["rows_written"]:
            note = " (no writes: every tile stays on its crossbar from run to run)"
        print(f"{run}, steady state (the crossbars hold what the previous run left): {_perf_line(r)}{note}")
        print(f"{run}, cold start (first run, every cell at level 0): {_perf_line(r['cold_start'])}")
    else:
        print(f"{run}: {_perf_line(r)}")
    c = r.get("counters") or {}
    stalls = {k: c.get(f"stall_{k}", 0) for k in ("fill", "fetch", "drain", "post")}
    if any(stalls.values()):  # §10.3 bandwidth-bounded positions
        tot = sum(stalls.values())
        print(f"bandwidth stalls{' (steady state)' if 'cold_start' in r else ''}: {tot:,} cycles "
              f"({100 * tot / max(1, r['cycles']):.1f} % of the total): "
              + ", ".join(f"{k} {v:,}" for k, v in stalls.items()))
    if "lower_bound" in r:
        lb = r["lower_bound"]
        print(f"lower bound{' (steady state)' if 'cold_start' in r else ''}: {lb['cycles']:,} cycles"
              + (f", write energy {lb['write_energy_j'] * 1e6:.2f} uJ" if "write_energy_j" in lb else
                 f" ({lb.get('rule', '')})"))
    if r.get("mode") == "tpu" and r.get("tpu"):
        from sim_models.tpu import area_line

        print(f"{area_line(r['tpu'])}; dataflow {r['tpu']['dataflow']}")
    if r.get("host_work", {}).get("layers"):
        h = r["host_work"]
        print(f"host work: {h['layers']} layers ({', '.join(h['ops'])}), {h['flops_per_sample']:,} FLOPs per sample "
              "(not timed)")


def cmd_simulate(args) -> int:
    from .models import load_trace_or_model
    from .trace import check_fits, json_default

    if args.perf_only:
        used = [f for f, v in (("--outputs", args.outputs), ("--inputs", args.inputs), ("--limit", args.limit)) if v]
        if used:
            raise ArasError(f"--perf-only skips the functional run, which {' and '.join(used)} "
                            f"{'is' if len(used) == 1 else 'are'} for")
    run, mode, opts = run_spec(args)
    for flag, path in (("--outputs", args.outputs), ("--json", args.json)):
        if path is not None:
            check_output(path, flag)
    if args.outputs and args.json and os.path.abspath(args.outputs) == os.path.abspath(args.json):
        raise ArasError(f"--outputs and --json are the same file {args.outputs}")
    cfg = _run_config(args, "functional" if args.functional_only else mode)
    tr = load_trace_or_model(args.model, progress=True)
    check_fits(tr, cfg)
    functional_run = not args.perf_only and (args.functional_only or args.inputs or args.outputs or args.limit
                                             or tr.labels is not None)
    if functional_run:
        xq, labels, what = _inputs(tr, args)
    print(f"{tr.name}: {_model_origin(args.model)}, config {cfg.name}"
          + ("" if args.functional_only else f", mode {run}"))
    print(weights_line(tr.weights, tr.notes))
    hosts = [ly for ly in tr.layers if ly.on_host]
    if hosts:
        print(f"host path: {len(hosts)} layer{'s' * (len(hosts) != 1)}: "
              + ", ".join(f"{ly.name} ({ly.op})" for ly in hosts))
    if functional_run:
        print(f"inputs: {what}")
    else:
        print("inputs: none run (cycles and energy do not depend on input values; --inputs, --limit or "
              "--outputs run the functional model)")
    report: dict = {}
    arrays: dict = {}
    keep: dict = {}
    perf = None
    if not args.functional_only:
        from sim_models.perf import simulate

        perf = simulate(tr, cfg, mode, opts, keep=keep)
    if functional_run:
        _functional(tr, cfg, args, report, arrays, xq, labels, keep.get("program"))
    if perf is not None:
        _print_perf(perf, run)
        report = {**perf, "run": run, **report}
    else:
        report.update(mode="functional", model=tr.name, config=cfg.name, weights=tr.weights, notes=tr.notes)
    if args.outputs:
        def write_npz(p: Path):
            with open(p, "wb") as f:  # a file object: np.savez would append ".npz" to a path
                np.savez(f, **arrays)

        _atomic_write(Path(args.outputs), write_npz)
        print(f"wrote {args.outputs}")
    if args.json:
        report["host_layers"] = [{"name": ly.name, "op": ly.op} for ly in hosts]  # the host path, per node
        text = json.dumps(report, indent=1, default=json_default) + "\n"
        _atomic_write(Path(args.json), lambda p: p.write_text(text))
        print(f"wrote {args.json}")
    return 0


# ---------------------------------------------------------------------------------------------- compare, sweep
def _command(args) -> str:
    return shlex.join(["aras"] + list(args.argv))


def _print_models(models: list[dict]) -> None:
    for m in models:
        print(f"{m['name']} {weights_line(m['weights'], m['notes'])}")
    print("inputs: none run (cycles and energy do not depend on input values)")


def _exec_kw(args) -> dict:
    """The execution-layer options of compare, sweep and dse (aras/execution.py)."""
    return {"jobs": args.jobs, "scheduler": args.scheduler, "cache": not args.no_cache}


def _report_failures(data: dict) -> int:
    """Print every failed run (parameters and error) on stderr; 1 if there were any."""
    fails = data.get("failures") or []
    for f in fails:
        what = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in f["params"].items())
        print(f"aras: failed: {what}: {f['error']}", file=sys.stderr)
    if fails:
        e = data.get("execution") or {}
        ok = e.get("tasks", 0) - len(fails)
        print(f"aras: {len(fails)} of {e.get('tasks', '?')} runs failed; the other {ok} are kept (and cached, so "
              "the same command computes only the failed ones)", file=sys.stderr)
    return 1 if fails else 0


def cmd_compare(args) -> int:
    from . import experiments, report

    check_output(args.out, "-o", "dir", ("results.json", "report.md", "report.html"))
    cfg = _run_config(args)
    data = experiments.run_compare(args.models, cfg, args.out, command=_command(args), **_exec_kw(args))
    _print_models(data["models"])
    if data.get("failures"):
        print(f"wrote {Path(args.out) / 'results.json'} (no report: runs failed)")
        return _report_failures(data)
    for line in report.glance(data):
        print(line)
    from sim_models.tpu import area_line

    t0 = data["runs"][data["models"][0]["name"]]["tpu"].get("tpu")
    if t0:
        print(f"{area_line(t0)}; dataflow {t0['dataflow']}")
    print(f"wrote {Path(args.out) / 'report.md'} and report.html")
    return 0


def cmd_sweep(args) -> int:
    from . import config as C
    from . import experiments

    check_output(args.out, "-o", "dir", tuple(f"sweep_{args.param}.{x}" for x in ("json", "md", "png")))
    cfg = C.load(args.config)
    values = experiments.parse_sweep_values(args.param, args.values) if args.values else None
    data = experiments.run_sweep(args.model, cfg, args.param, values, args.out, command=_command(args),
                                 **_exec_kw(args))
    _print_models([data["model"]])
    print(f"wrote {Path(args.out) / f'sweep_{args.param}.md'} (+ .json, .png)")
    return _report_failures(data)


def cmd_claims(args) -> int:
    from . import claims

    check_output(args.out, "-o", "dir", claims.FILES)
    grid = claims.parse_axes(args.x, args.y)
    claims.check_models(args.models)
    cfg = _run_config(args)
    data = claims.run_claims(args.models, cfg, grid, args.out, command=_command(args), **_exec_kw(args))
    _print_models(data["models"])
    for line in claims.summary_lines(data):
        print(line)
    print(f"wrote {Path(args.out) / 'report.md'} (+ report.html, claims.json, claims.png)")
    return _report_failures(data)


def cmd_dse(args) -> int:
    from . import config as C
    from .dse import parse_grid, run_dse

    check_output(args.out, "-o", "dir", ("dse.csv", "dse.json", "pareto.png", "report.md", "report.html"))
    for flag, v in (("--samples", args.samples), ("--accuracy", args.accuracy)):
        if v is not None and v < 1:
            raise ArasError(f"{flag} must be a positive integer (1 or more), got {v}")
    if args.seed is not None and args.samples is None:
        raise ArasError("--seed: only with --samples N (the full grid is not sampled)")
    grid = parse_grid(args.grid)
    cfg = C.load(args.config)
    data = run_dse(args.models, cfg, grid, args.out, samples=args.samples, seed=args.seed or 0,
                   accuracy=args.accuracy, strict=args.strict, command=_command(args), **_exec_kw(args))
    for m in data["models"]:
        print(f"{m['name']} {weights_line(m['weights'], m['notes'])}")
    acc = [m for m in data["models"] if m["accuracy_samples"]]
    print("inputs: " + ("; ".join(f"{m['name']}: the first {m['accuracy_samples']:,} labelled samples of the trace "
                                  "(accuracy)" for m in acc) + "; the others none" if acc else
                        "none run (cycles and energy do not depend on input values; --accuracy N measures accuracy "
                        "of real-weight networks with labelled samples)"))
    samp, inv = data["sampling"], data["invalid"]
    print(f"{len(data['points'])} valid points ({samp['mode']}, {samp['combinations']:,} combinations"
          + (f", {samp['drawn']:,} drawn" if samp["mode"] == "random" else "") + f"); {len(inv)} invalid skipped")
    for x in inv[:20]:
        why = "; ".join(dict.fromkeys(x["reasons"].values()))
        print("  skipped: " + ", ".join(f"{k}={'none' if v is None else v}" for k, v in x["params"].items())
              + f": {why}")
    if len(inv) > 20:
        print(f"  ... and {len(inv) - 20} more (report.md, dse.json)")
    for key, ids in data["fronts"].items():
        print(f"Pareto front ({key}): {len(ids)} point{'s' * (len(ids) != 1)}: {', '.join(map(str, ids))}")
    print(f"wrote {Path(args.out) / 'report.md'} (+ report.html, dse.csv, dse.json, pareto.png)")
    return _report_failures(data)


def _write_verilog(cfg, blackbox: bool, out: str) -> dict:
    from hw.generate import write
    from hw.top import Top

    return write(Top(cfg=cfg, blackbox_macros=blackbox), "aras_top", cfg, out,
                 extra={"blackbox_macros": blackbox, "macro": "aras_xbar_macro.v" if blackbox else None})


def cmd_verilog(args) -> int:
    from . import config as C

    check_output(args.out, "-o", "dir", ("aras_top.sv", "manifest.json", "aras_xbar_macro.v"))
    cfg = C.load(args.config)
    from hw.generate import macro_stub
    from hw.lint import lint
    from hw.top import check_buildable

    check_buildable(cfg)

    from .resources import verilog_job

    out = Path(args.out)
    print(verilog_job(cfg, lint=True).line(f"generating and linting the {cfg.name} top"))
    print(f"elaborating the {cfg.name} top level ({cfg.n_xbars} crossbars"
          f"{', macros black-boxed' if args.blackbox_macros else ''}) ...")
    # in a child process: the elaborated paper design holds ~20 GB until that process ends, and
    # Verilator needs the memory next
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as ex:
        man = ex.submit(_write_verilog, cfg, args.blackbox_macros, str(out)).result()
    if args.blackbox_macros:
        (out / "aras_xbar_macro.v").write_text(macro_stub(cfg))
    print(f"wrote {out / man['file']} ({man['lines']:,} lines, {man['generation_s']:.1f} s) and manifest.json")
    verdict = lint(out, "aras_top", args.lint)
    print(f"lint: {verdict}")
    return 0


def cmd_verify(args) -> int:
    check_output(args.out, "-o", "dir", ("report.md", "report.html", "report.json"))
    from sim_models.perf import MODEL_ONLY

    from . import config as C
    from .resources import machine_memory_gb, verify_job
    from .verify import run_verify

    run, mode, opts = run_spec(args)  # simulate's modes and --no-* flags: compare's rows
    if opts is None:
        raise ArasError(f"--mode {args.mode}: a model-only mode, not run on the RTL: {MODEL_ONLY[mode]}")
    if mode == "aras" and not opts.resident:
        raise ArasError("--no-resident: residency only changes the steady-state program (scheduled from the cells "
                        "a previous run left); aras verify runs the cold program in every run, so it would equal "
                        "--mode aras (resident tiles on the RTL: verif/hw/test_top.py)")
    cfg = C.load(args.config)
    from hw.top import check_buildable

    check_buildable(cfg)
    est = verify_job(cfg)
    print(est.line(f"generating and building the {cfg.name} top for simulation"))
    mem = machine_memory_gb()
    if mem and est.peak_gb > mem and not args.force:
        raise ArasError(f"config {cfg.name}: building its top for simulation needs about {est.peak_gb:.1f} GB, this "
                        f"machine has {mem:.1f} GB (--force tries anyway; a smaller config such as tiny fits)")
    ok = run_verify(args.model, cfg, Path(args.out), mode=mode, runs=args.runs, seed=args.seed, sim=args.sim,
                    opts=opts, run_name=run, command=_command(args))
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------------- parser
COUNT_FLAGS = {"batch": "--batch", "limit": "--limit", "jobs": "--jobs", "runs": "--runs", "lookahead": "--lookahead"}


def check_counts(args) -> None:
    """Counts are positive integers; the seed is non-negative. The error names the flag."""
    for dest, flag in COUNT_FLAGS.items():
        v = getattr(args, dest, None)
        if v is not None and v < 1:
            raise ArasError(f"{flag} must be a positive integer (1 or more), got {v}")
    if getattr(args, "seed", None) is not None and args.seed < 0:
        raise ArasError(f"--seed must be 0 or more, got {args.seed}")


def _add_ablation_flags(s) -> None:
    from .report import ABLATION_TEXT, _abl_label

    for a in _ablations():
        flags = [_ablation_flag(a)] + (["--no-replication"] if a == "replicate" else [])
        s.add_argument(*flags, dest=f"no_{a}", action="store_true",
                       help=f"ablation, compare's \"{_abl_label(a)}\" row: ARAS with this optimization off: "
                            f"{ABLATION_TEXT.get(a, a.replace('_', ' '))}")


def _add_device_tpu_flags(p) -> None:
    p.add_argument("--device", metavar="NAME", help="write-model device preset over the config's cell fields "
                   "(aras config --devices; docs/devices.md)")
    p.add_argument("--tpu-array", metavar="RxC", help="TPU-like baseline array rows x columns, e.g. 64x64 (default: "
                   "the square array of ARAS's analog-compute area; docs/tpu.md)")
    p.add_argument("--tpu-dataflow", metavar="DF", help="TPU-like baseline timing: ws (default, TPU v1 double-"
                   "buffered weights) or ws-scalesim (SCALE-Sim 3.0 weight-stationary; docs/tpu.md)")


def _add_exec_flags(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--jobs", type=int, help="worker processes of a local Dask cluster (default: all cores, memory "
                   "permitting; 1 = one after the other in this process, no Dask)")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on an existing Dask cluster: its scheduler's address, e.g. tcp://host:8786 (default: "
                        "a local cluster, see --jobs; docs/dse.md)")
    p.add_argument("--no-cache", action="store_true",
                   help="compute every run again: neither read nor write the result cache (default: runs found in "
                        "$ARAS_CACHE/results, default ~/.cache/aras/results, are not computed again)")


def build_parser() -> argparse.ArgumentParser:
    from .experiments import DEFAULT_SWEEP_VALUES, SWEEP_PARAMS

    ap = argparse.ArgumentParser(prog="aras", description="ARAS ReRAM accelerator: golden model and tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("models", help="list the built-in models").set_defaults(fn=cmd_models)
    c = sub.add_parser("config", help="print a config with the source of every default")
    c.add_argument("config", nargs="?",
                   help="preset name (paper, paper-unbounded, tiny, tiny-adc) or a .toml/.json file")
    c.add_argument("--device", metavar="NAME", help="apply a write-model device preset (aras config --devices)")
    c.add_argument("--devices", action="store_true", help="list the device presets with the source of every constant")
    c.set_defaults(fn=cmd_config)
    im = sub.add_parser("import-onnx", help="import and quantize a float ONNX model into a layer trace")
    im.add_argument("model", help="MODEL.onnx")
    im.add_argument("-o", "--out", required=True, help="trace directory to write")
    im.add_argument("--calib", help="float calibration inputs (.npy, N x input shape)")
    im.add_argument("--samples", help="float inputs stored in the trace (.npy; default: first calib inputs)")
    im.add_argument("--labels", help="integer labels of the samples (.npy)")
    im.add_argument("--name", help="trace name (default: file stem)")
    im.add_argument("--weights", choices=("real", "synthetic"), help="label the weights (default real)")
    im.add_argument("--input-shape", action="append", metavar="NAME=D0,D1,...",
                    help="fix the dimensions of graph input NAME (symbolic ones included), e.g. x=1,3,48,192; "
                         "repeatable")
    im.set_defaults(fn=cmd_import_onnx)
    s = sub.add_parser("simulate", help="run a model or trace through the golden model")
    s.add_argument("model", help="model name (aras models) or trace directory")
    s.add_argument("--config", default="paper", help="preset name or .toml/.json file (default paper)")
    s.add_argument("--inputs", help="float inputs (.npy, batch first, model layout e.g. NCHW; default: the "
                   "trace's samples)")
    s.add_argument("--outputs", help="write outputs to this .npz")
    s.add_argument("--json", help="write a JSON report")
    s.add_argument("--limit", type=int, help="use only the first N inputs (default: all)")
    s.add_argument("--batch", type=int, help="override the config's batch size")
    _add_device_tpu_flags(s)
    s.add_argument("--mode", metavar="MODE",
                   help="architecture model or run of `aras compare` (default aras): "
                        + ", ".join(_mode_names()) + "; no-X = ARAS with optimization X off, as --no-X")
    _add_ablation_flags(s)
    s.add_argument("--lookahead", type=int, help="max rounds writes may run ahead of execution (default unbounded)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--perf-only", action="store_true", help="skip the functional (output values) run")
    g.add_argument("--functional-only", action="store_true", help="skip the cycle/energy model")
    s.set_defaults(fn=cmd_simulate)

    c = sub.add_parser("compare", help="all modes and ablations over networks: report.md/.html with plots")
    c.add_argument("models", nargs="+", help="model names (aras models) or trace directories")
    c.add_argument("--config", default="paper", help="preset name or .toml/.json file (default paper)")
    c.add_argument("-o", "--out", required=True, help="report directory")
    _add_exec_flags(c)
    c.add_argument("--batch", type=int, help="override the config's batch size (default: the config's)")
    _add_device_tpu_flags(c)
    c.set_defaults(fn=cmd_compare)

    def vals(k):
        return ", ".join("none" if v is None else f"{v:g}" for v in DEFAULT_SWEEP_VALUES[k])

    w = sub.add_parser("sweep", help="sensitivity study of one parameter, with a plot",
                       description="ARAS vs the baseline PUM (and the TPU-like baseline where the parameter "
                                   "changes it) at every value of one parameter.")
    w.add_argument("model", help="model name (aras models) or trace directory")
    w.add_argument("--param", required=True, choices=sorted(SWEEP_PARAMS),
                   help="; ".join(f"{k}: {v} (default values {vals(k)})" for k, v in SWEEP_PARAMS.items()))
    w.add_argument("--values", help="comma-separated values (default: the parameter's standard values, listed "
                   "under --param)")
    w.add_argument("--config", default="paper", help="base config: preset name or .toml/.json file (default paper)")
    w.add_argument("-o", "--out", required=True, help="output directory (required; no default)")
    _add_exec_flags(w)
    w.set_defaults(fn=cmd_sweep)
    from .dse import NAMED_SETS

    x = sub.add_parser("dse", help="design-space exploration: a grid of configs, Pareto front of latency, energy, "
                                   "area (and accuracy)",
                       description="Every combination of the --grid values (or a random sample of them), one ARAS "
                                   "run per network each; writes dse.csv, dse.json, pareto.png and report.md/.html "
                                   "with the Pareto front per network and for the geometric mean over them.")
    x.add_argument("models", nargs="+", help="model names (aras models) or trace directories")
    x.add_argument("--config", default="paper", help="base config: preset name or .toml/.json file (default paper)")
    x.add_argument("--grid", action="append", required=True, metavar="PARAM=V1,V2,...",
                   help="a parameter and its values (repeat for more parameters): any numeric or boolean config "
                        "field (xbars_per_apu, apus_per_pe, n_pe, xbar_rows, adc_bits, gbuf_banks, "
                        "write_drivers_per_pe, batch, ...; `aras config paper` lists them) or a sweep parameter ("
                        + ", ".join(NAMED_SETS) + "; as in `aras sweep --param`, cell_bits with the exact ADC "
                        "width unless adc_bits is gridded too)")
    x.add_argument("--samples", type=int, metavar="N",
                   help="a random sample of N valid combinations instead of all of them (default: all)")
    x.add_argument("--seed", type=int, metavar="S", help="seed of --samples (default 0)")
    x.add_argument("--accuracy", type=int, metavar="N",
                   help="also run N labelled samples of each real-weight network through the functional model "
                        "(a fourth objective)")
    x.add_argument("--strict", action="store_true",
                   help="an invalid combination (the config rejects it, or a network does not fit) is an error "
                        "instead of being skipped")
    x.add_argument("-o", "--out", required=True, help="output directory")
    _add_exec_flags(x)
    x.set_defaults(fn=cmd_dse)
    cl = sub.add_parser("claims", help="claims map: where ARAS reaches the paper's 2.2x/45 % (vs baseline) and "
                                       "1.5x/61 % (vs TPU-like) over a 2-D grid",
                        description="ARAS, baseline PUM, ideal PUM and TPU-like at every point of a 2-D grid; "
                                    "writes claims.png (heatmaps with contour lines at the paper's numbers), "
                                    "claims.json and report.md/.html (docs/claims.md).")
    cl.add_argument("models", nargs="+", help="model names (aras models) or trace directories")
    cl.add_argument("--config", default="paper", help="base config: preset name or .toml/.json file (default paper)")
    for flag in ("--x", "--y"):
        cl.add_argument(flag, required=True, metavar="PARAM=V1,V2,...",
                        help=f"the {flag[2:]} axis: a parameter and its values, as `aras dse --grid` (a sweep "
                             "parameter such as write_energy, batch, xbars, or a config field such as "
                             "pulses_per_level, e_adc8_pj, dram_pj_per_bit)")
    cl.add_argument("-o", "--out", required=True, help="output directory")
    _add_device_tpu_flags(cl)
    _add_exec_flags(cl)
    cl.set_defaults(fn=cmd_claims, batch=None)
    v = sub.add_parser("verilog", help="generate SystemVerilog of the top level, with a manifest")
    v.add_argument("--config", default="tiny", help="preset name or .toml/.json file (default tiny)")
    v.add_argument("-o", "--out", required=True, help="output directory")
    v.add_argument("--blackbox-macros", action="store_true",
                   help="crossbars as instances of the external aras_xbar_macro (a stub declares its ports)")
    v.add_argument("--lint", choices=("auto", "whole", "modules"), default="auto",
                   help="verilator --lint-only -Wall on the whole design, or module by module with stubs of "
                        "each module's submodules (auto: whole up to 64 MB of text; see hw/lint.py)")
    v.set_defaults(fn=cmd_verilog)
    f = sub.add_parser("verify", help="run a model through the generated RTL and the golden model side by side")
    f.add_argument("model", help="model name (aras models) or trace directory")
    f.add_argument("--config", default="tiny", help="preset name or .toml/.json file (default tiny)")
    f.add_argument("-o", "--out", required=True, help="report directory (report.md, report.html, report.json)")
    f.add_argument("--mode", metavar="MODE",
                   help="as simulate's --mode (default aras): " + ", ".join(_mode_names()) + "; ideal, "
                        "baseline-resident, tpu (model-only) and no-resident are refused with the reason")
    _add_ablation_flags(f)
    f.add_argument("--lookahead", type=int, help="max rounds writes may run ahead of execution (default unbounded)")
    f.add_argument("--runs", type=int, default=1, help="back-to-back runs (run k > 0: steady state), one input "
                   "batch each (default 1)")
    f.add_argument("--seed", type=int, default=0, help="selects the input samples (default 0)")
    f.add_argument("--sim", choices=("verilator", "icarus"), default=None,
                   help="simulator (default: $SIM, else Verilator when installed, else Icarus)")
    f.add_argument("--force", action="store_true", help="run even if the memory estimate exceeds this machine's")
    f.set_defaults(fn=cmd_verify, functional_only=False)
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        check_counts(args)
        return args.fn(args)
    except ArasError as e:
        print(f"aras: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        print("aras: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
