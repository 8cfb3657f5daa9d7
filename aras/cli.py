"""The ``aras`` command line: models, config, import-onnx, simulate.

Every error from bad input is one line ``aras: <what, where>`` on stderr and a non-zero exit;
commands write their outputs only after everything succeeded (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
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


def _load_npy(path: str, what: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise ArasError(f"{what} file {path} does not exist")
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ArasError(f"{what} file {path}: not a readable .npy array ({e})") from None


# ---------------------------------------------------------------------------------------------- commands
def cmd_models(args) -> int:
    from .models import REGISTRY

    print(f"{'name':<12} {'weights':<10} description")
    for s in REGISTRY.values():
        print(f"{s.name:<12} {s.weights:<10} {s.description}")
    return 0


def cmd_config(args) -> int:
    from .config import Config, load

    cfg = load(args.config)
    src = Config.sources()
    paper = Config().to_dict()
    print(f"# config {cfg.name}: {cfg.n_xbars} crossbars of {cfg.xbar_rows}x{cfg.xbar_cols} {cfg.cell_bits}-bit cells, "
          f"ADC exact width {cfg.adc_exact_bits} bits")
    for k, v in cfg.to_dict().items():
        val = json.dumps(v)
        why = src[k] if v == paper[k] or k == "name" else f"{cfg.name}: set for this config (paper: {src[k]})"
        print(f"{k} = {val:<28} # {why}" if len(val) <= 28 else f"{k} = {val}\n    # {why}")
    return 0


def cmd_import_onnx(args) -> int:
    from .importers.onnx_import import has_quant_params, load_onnx
    from .models import ModelSource
    from .quantize import quantize

    g = load_onnx(args.model)
    if args.calib is None:
        if not has_quant_params(g):
            raise ArasError(f"{args.model}: float graph without quantization parameters: give calibration "
                            f"inputs with --calib INPUTS.npy (float, N x {' x '.join(map(str, g.input_shape))})")
        calib = np.zeros((1,) + g.input_shape)
    else:
        calib = _load_npy(args.calib, "calibration")
    samples = _load_npy(args.samples, "samples") if args.samples else calib[: min(len(calib), 16)]
    labels = _load_npy(args.labels, "labels") if args.labels else None
    if labels is not None and (labels.ndim != 1 or len(labels) != len(samples)):
        raise ArasError(f"labels file {args.labels}: need one integer label per sample ({len(samples)})")
    if args.weights:
        g.weights = args.weights
    tr = quantize(ModelSource(g, calib, samples, labels, notes=f"imported from {Path(args.model).name}"),
                  args.name or Path(args.model).stem, progress=True)
    tr.save(args.out)
    print(f"wrote {args.out}: {len(tr.layers)} layers ({len(tr.weight_layers())} on crossbars), "
          f"{len(tr.samples)} samples, weights {tr.weights}")
    return 0


def _opts_from_args(args):
    from sim_models.scheduler import Options

    kw = {k: False for k, flag in (("overlap", "no_overlap"), ("reencode", "no_reencode"),
                                   ("diff_write", "no_diff_write"), ("placement", "no_placement"),
                                   ("bank_select", "no_bank_select")) if getattr(args, flag)}
    if args.lookahead is not None:
        kw["lookahead"] = args.lookahead
    if args.mode != "aras" and kw:
        raise ArasError(f"the --no-* switches and --lookahead ablate ARAS optimizations; not for --mode {args.mode}")
    return Options.for_mode(args.mode, **kw) if args.mode in ("aras", "baseline") else None


def _functional(tr, cfg, args, report, arrays, prog=None) -> None:
    """Outputs through the bit-exact functional model, with the encoding the executed program put on
    the crossbars (it matters when the ADCs clip)."""
    from sim_models import functional

    from .quant import dequantize

    labels = None
    if args.inputs:
        xq = tr.quantize_input(_load_npy(args.inputs, "inputs"), source=args.inputs)
    else:
        if tr.samples is None:
            raise ArasError(f"{tr.name}: the trace holds no input samples; give --inputs X.npy")
        xq, labels = tr.samples, tr.labels
    if args.limit:
        xq = xq[: args.limit]
        labels = None if labels is None else labels[: args.limit]
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
    print(f"{tr.name}: {len(xq)} samples through the bit-exact functional model on config {cfg.name} "
          f"(weights: {tr.weights}{'; ' + tr.notes if tr.notes else ''})")
    if labels is not None:
        pred = out[tr.outputs[0]].reshape(len(xq), -1).argmax(axis=1)
        acc = float((pred == labels).mean())
        report["accuracy"] = acc
        print(f"accuracy: {100 * acc:.2f} % ({int((pred == labels).sum())}/{len(labels)})")


def _print_perf(r: dict) -> None:
    e = r["energy_j"]
    line = f"{r['mode']}: {r['cycles']:,} cycles ({r['latency_s'] * 1e3:.3f} ms), energy {e['total'] * 1e6:.2f} uJ"
    if r.get("writes"):
        w = r["writes"]
        line += (f", write {e['write'] * 1e6:.2f} uJ; rows written {w['rows_written']:,}, skipped "
                 f"{w['rows_skipped']:,}; cells changed {w['cells_changed']:,}")
    print(line)
    if "lower_bound" in r:
        lb = r["lower_bound"]
        print(f"lower bound: {lb['cycles']:,} cycles, write energy {lb['write_energy_j'] * 1e6:.2f} uJ")
    if r.get("host_work", {}).get("layers"):
        h = r["host_work"]
        print(f"host work: {h['layers']} layers ({', '.join(h['ops'])}), {h['flops_per_sample']:,} FLOPs per sample "
              "(not timed)")


def cmd_simulate(args) -> int:
    from . import config as C
    from .models import load_trace_or_model
    from .trace import check_fits, json_default

    cfg = C.load(args.config)
    if args.batch:
        cfg = cfg.replace(batch=args.batch)
    opts = _opts_from_args(args)
    tr = load_trace_or_model(args.model, progress=True)
    check_fits(tr, cfg)
    report: dict = {}
    arrays: dict = {}
    keep: dict = {}
    perf = None
    if not args.functional_only:
        from sim_models.perf import simulate

        perf = simulate(tr, cfg, args.mode, opts, keep=keep)
    if args.inputs or args.outputs or (tr.labels is not None and not args.perf_only):
        _functional(tr, cfg, args, report, arrays, keep.get("program"))
    if perf is not None:
        _print_perf(perf)
        report = {**perf, **report}
    else:
        report.update(mode="functional", model=tr.name, config=cfg.name, weights=tr.weights, notes=tr.notes)
    if args.outputs:
        def write_npz(p: Path):
            with open(p, "wb") as f:  # a file object: np.savez would append ".npz" to a path
                np.savez(f, **arrays)

        _atomic_write(Path(args.outputs), write_npz)
        print(f"wrote {args.outputs}")
    if args.json:
        text = json.dumps(report, indent=1, default=json_default) + "\n"
        _atomic_write(Path(args.json), lambda p: p.write_text(text))
        print(f"wrote {args.json}")
    return 0


def cmd_compare(args) -> int:
    from . import config as C
    from . import experiments, report

    cfg = C.load(args.config)
    if args.batch:
        cfg = cfg.replace(batch=args.batch)
    data = experiments.run_compare(args.models, cfg, args.out, jobs=args.jobs)
    for line in report.glance(data):
        print(line)
    print(f"wrote {Path(args.out) / 'report.md'} and report.html")
    return 0


def cmd_sweep(args) -> int:
    from . import config as C
    from . import experiments

    cfg = C.load(args.config)
    values = experiments.parse_sweep_values(args.param, args.values) if args.values else None
    experiments.run_sweep(args.model, cfg, args.param, values, args.out, jobs=args.jobs)
    print(f"wrote {Path(args.out) / f'sweep_{args.param}.md'} (+ .json, .png)")
    return 0


def _write_verilog(cfg, blackbox: bool, out: str) -> dict:
    from hw.generate import write
    from hw.top import Top

    return write(Top(cfg=cfg, blackbox_macros=blackbox), "aras_top", cfg, out,
                 extra={"blackbox_macros": blackbox, "macro": "aras_xbar_macro.v" if blackbox else None})


def cmd_verilog(args) -> int:
    from . import config as C

    cfg = C.load(args.config)
    from hw.generate import macro_stub
    from hw.lint import lint

    out = Path(args.out)
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
    from . import config as C
    from .verify import run_verify

    cfg = C.load(args.config)
    ok = run_verify(args.model, cfg, Path(args.out), mode=args.mode, runs=args.runs, seed=args.seed)
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="aras", description="ARAS ReRAM accelerator: golden model and tools")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("models", help="list the built-in models").set_defaults(fn=cmd_models)
    c = sub.add_parser("config", help="print a config with the source of every default")
    c.add_argument("config", help="preset name (paper, tiny, tiny-adc) or a .toml/.json file")
    c.set_defaults(fn=cmd_config)
    im = sub.add_parser("import-onnx", help="import and quantize a float ONNX model into a layer trace")
    im.add_argument("model", help="MODEL.onnx")
    im.add_argument("-o", "--out", required=True, help="trace directory to write")
    im.add_argument("--calib", help="float calibration inputs (.npy, N x input shape)")
    im.add_argument("--samples", help="float inputs stored in the trace (.npy; default: first calib inputs)")
    im.add_argument("--labels", help="integer labels of the samples (.npy)")
    im.add_argument("--name", help="trace name (default: file stem)")
    im.add_argument("--weights", choices=("real", "synthetic"), help="label the weights (default real)")
    im.set_defaults(fn=cmd_import_onnx)
    s = sub.add_parser("simulate", help="run a model or trace through the golden model")
    s.add_argument("model", help="model name (aras models) or trace directory")
    s.add_argument("--config", default="paper", help="preset name or .toml/.json file (default paper)")
    s.add_argument("--inputs", help="float inputs (.npy, batch first, model layout e.g. NCHW)")
    s.add_argument("--outputs", help="write outputs to this .npz")
    s.add_argument("--json", help="write a JSON report")
    s.add_argument("--limit", type=int, help="use only the first N inputs")
    s.add_argument("--batch", type=int, help="override the config's batch size")
    s.add_argument("--mode", default="aras", choices=("aras", "baseline", "ideal", "tpu"),
                   help="architecture model (default aras)")
    for flag, what in (("overlap", "computation-write overlap"), ("reencode", "weight re-encoding"),
                       ("diff-write", "differential writes"), ("placement", "similarity-aware placement"),
                       ("bank-select", "Gbuffer adaptive bank selection")):
        s.add_argument(f"--no-{flag}", action="store_true", help=f"ablation: switch off {what}")
    s.add_argument("--lookahead", type=int, help="max rounds writes may run ahead of execution")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--perf-only", action="store_true", help="skip the functional (output values) run")
    g.add_argument("--functional-only", action="store_true", help="skip the cycle/energy model")
    s.set_defaults(fn=cmd_simulate)
    from .experiments import SWEEP_PARAMS

    c = sub.add_parser("compare", help="all modes and ablations over networks: report.md/.html with plots")
    c.add_argument("models", nargs="+", help="model names (aras models) or trace directories")
    c.add_argument("--config", default="paper")
    c.add_argument("-o", "--out", required=True, help="report directory")
    c.add_argument("--jobs", type=int, help="worker processes (default: all cores, memory permitting)")
    c.add_argument("--batch", type=int, help="override the config's batch size")
    c.set_defaults(fn=cmd_compare)
    w = sub.add_parser("sweep", help="sensitivity study of one parameter, with a plot")
    w.add_argument("model")
    w.add_argument("--param", required=True, choices=sorted(SWEEP_PARAMS),
                   help="; ".join(f"{k}: {v}" for k, v in SWEEP_PARAMS.items()))
    w.add_argument("--values", help="comma-separated values (default: the parameter's standard range)")
    w.add_argument("--config", default="paper")
    w.add_argument("-o", "--out", required=True)
    w.add_argument("--jobs", type=int)
    w.set_defaults(fn=cmd_sweep)
    v = sub.add_parser("verilog", help="generate SystemVerilog of the top level, with a manifest")
    v.add_argument("--config", default="tiny")
    v.add_argument("-o", "--out", required=True)
    v.add_argument("--blackbox-macros", action="store_true",
                   help="crossbars as instances of the external aras_xbar_macro (a stub declares its ports)")
    v.add_argument("--lint", choices=("auto", "whole", "modules"), default="auto",
                   help="verilator --lint-only -Wall on the whole design, or module by module with stubs of "
                        "each module's submodules (auto: whole up to 64 MB of text; see hw/lint.py)")
    v.set_defaults(fn=cmd_verilog)
    from sim_models.scheduler import MODES

    f = sub.add_parser("verify", help="run a model through the generated RTL and the golden model side by side")
    f.add_argument("model", help="model name (aras models) or trace directory")
    f.add_argument("--config", default="tiny", help="preset name or .toml/.json file (default tiny)")
    f.add_argument("-o", "--out", required=True, help="report directory (report.md, report.html, report.json)")
    f.add_argument("--mode", default="aras", choices=list(MODES), help="scheduling mode or ablation (default aras)")
    f.add_argument("--runs", type=int, default=1, help="back-to-back runs (run k > 0: steady state), one input "
                   "batch each (default 1)")
    f.add_argument("--seed", type=int, default=0, help="selects the input samples (default 0)")
    f.set_defaults(fn=cmd_verify)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
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
