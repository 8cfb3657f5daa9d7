#!/usr/bin/env python3
"""Benchmark (not a test): CPU seconds and peak memory of the model against the project's targets
(issue 14 item 6), with the figures before the model-speed work beside them.

Measured, each in a fresh subprocess with every BLAS/OpenMP pool at one thread and, where the OS allows,
pinned to one CPU:

* ``aras simulate resnet50 --config paper --mode aras`` and ``aras simulate minilm-l6 --config paper
  --mode aras --perf-only``: CPU seconds (user + system of the child, not wall time: machines are
  shared) and peak resident memory. The model traces are built (or loaded from the cache) first; the
  timed run includes loading the cached trace.
* building the VGG-16 trace (``aras.models`` builder + post-training quantizer + saving it, never from the
  cache): peak resident memory (and its CPU seconds, for information).

The "before" column holds the figures measured on the commit before the speed work (constants below);
``--before-tree DIR`` measures them again from another checkout of the project (e.g. a ``git worktree``
of that commit) on this machine instead. "ratio" = now / before.

Usage: ``.venv/bin/python scripts/benchmark.py [--config paper] [--repeat N] [--before-tree DIR]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIB = 2**30
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
# row -> arguments of the `aras` command timed (the config is added)
SIMULATE = {
    "resnet50": ["simulate", "resnet50", "--mode", "aras"],
    "minilm-l6": ["simulate", "minilm-l6", "--mode", "aras", "--perf-only"],
}
# (row, figure) -> target; figure "cpu" in CPU seconds, "mem" in GiB of peak resident memory
TARGETS = {("resnet50", "cpu"): 3.0, ("resnet50", "mem"): 4.0, ("minilm-l6", "cpu"): 30.0, ("minilm-l6", "mem"): 4.0,
           ("vgg16 trace", "mem"): 2.0}
# Before the speed work (commit 62e3452 and its working tree of 2026-12-02, config paper, measured with this
# benchmark on a shared 2-core machine):
BEFORE = {("resnet50", "cpu"): 9.61, ("resnet50", "mem"): 0.41, ("minilm-l6", "cpu"): 4.42, ("minilm-l6", "mem"): 0.22,
          ("vgg16 trace", "cpu"): 24.06, ("vgg16 trace", "mem"): 4.61}
BUILD_VGG16 = """
import tempfile
from aras.models import get_spec
from aras.quantize import quantize
tr = quantize(get_spec("vgg16").build(), "vgg16")
with tempfile.TemporaryDirectory() as d:
    tr.save(d)
"""


def _pin():
    """Child pre-exec: one CPU (the first the parent may use)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_child(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """(CPU seconds = user + system, peak RSS GiB, exit code) of one one-core subprocess."""
    env = dict(os.environ, **dict.fromkeys(ONE_THREAD, "1"))
    env["PYTHONPATH"] = str(cwd) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err,
                             preexec_fn=_pin if hasattr(os, "sched_setaffinity") else None)
        _, status, ru = os.wait4(p.pid, 0)  # this child's own rusage (ru_maxrss: KiB on Linux, bytes on macOS)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode:
            err.seek(0)
            sys.stderr.write(err.read().decode(errors="replace"))
    rss = ru.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return ru.ru_utime + ru.ru_stime, rss / GIB, p.returncode


def measure(tree: Path, config: str, repeat: int) -> dict:
    """{(row, figure): value} measured on the checkout ``tree``: best CPU time and largest peak of ``repeat`` runs."""
    out = {}
    jobs = {name: [sys.executable, "-m", "aras.cli"] + args[:2] + ["--config", config] + args[2:]
            for name, args in SIMULATE.items()}
    jobs["vgg16 trace"] = [sys.executable, "-c", BUILD_VGG16]
    for name, cmd in jobs.items():
        runs = [run_child(cmd, tree) for _ in range(max(1, repeat if name != "vgg16 trace" else 1))]
        if any(rc for *_, rc in runs):
            print(f"{name}: failed (exit {[rc for *_, rc in runs]})")
            out[(name, "cpu")] = out[(name, "mem")] = None
            continue
        out[(name, "cpu")] = min(c for c, _, _ in runs)
        out[(name, "mem")] = max(m for _, m, _ in runs)
    return out


def _fmt(v):
    return f"{'-':>8}" if v is None else f"{v:8.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paper", help="config preset or file (default paper)")
    ap.add_argument("--repeat", type=int, default=1, help="simulate runs per model; the least CPU time counts")
    ap.add_argument("--before-tree", type=Path, help="measure the 'before' figures on this checkout instead of "
                                                     "using the recorded ones")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from aras.models import load_model

    for m in SIMULATE:  # build / cache the traces outside the timed runs
        load_model(m, progress=True)
    if args.before_tree:
        for m in SIMULATE:
            subprocess.run([sys.executable, "-c", f"from aras.models import load_model; load_model({m!r})"],
                           cwd=args.before_tree, env=dict(os.environ, PYTHONPATH=str(args.before_tree)), check=True)
    now = measure(ROOT, args.config, args.repeat)
    before = measure(args.before_tree, args.config, args.repeat) if args.before_tree else BEFORE
    src = f"measured on {args.before_tree}" if args.before_tree else "recorded"

    print(f"\nconfig {args.config}, one core, one BLAS thread; CPU = user + system seconds of the child "
          f"(best of {args.repeat}); peak = its maximum resident set; before: {src}")
    print(f"{'what':<44} {'now':>8} {'target':>8} {'':4}  {'before':>8} {'ratio':>6}")
    labels = {"resnet50": "aras simulate resnet50", "minilm-l6": "aras simulate minilm-l6 --perf-only",
              "vgg16 trace": "build the vgg16 trace"}
    ok = True
    for name in list(SIMULATE) + ["vgg16 trace"]:
        for fig, unit in (("cpu", "CPU s"), ("mem", "peak GiB")):
            v, b, t = now.get((name, fig)), before.get((name, fig)), TARGETS.get((name, fig))
            verdict = ""
            if t is not None:
                good = v is not None and v <= t
                ok &= good
                verdict = "PASS" if good else "FAIL"
            ratio = f"{v / b:6.2f}" if v is not None and b else f"{'-':>6}"
            tgt = f"<= {t:g}" if t is not None else "-"
            print(f"{labels[name] + ', ' + unit:<44} {_fmt(v)} {tgt:>8} {verdict:4}  {_fmt(b)} {ratio}")
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
