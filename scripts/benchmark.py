#!/usr/bin/env python3
"""Benchmark (not a test): wall time and peak memory of ``aras simulate MODEL --config paper --mode aras
--perf-only`` for ResNet-50 and MiniLM-L6 on one core, against the project's targets.

Each run is a fresh subprocess with every BLAS/OpenMP pool at one thread and, where the OS allows,
pinned to one CPU. The model traces are built (or loaded from the cache) first and are not timed;
the timed run includes loading the cached trace. Peak memory is the child's maximum resident set.

Usage: ``.venv/bin/python scripts/benchmark.py [--config paper] [--repeat N]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# model -> wall-time target (s); one memory target for all
TARGETS_S = {"resnet50": 10.0, "minilm-l6": 30.0}
TARGET_MEM_GIB = 4.0
ONE_THREAD = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")


def _pin():
    """Child pre-exec: one CPU (the first the parent may use)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def run_once(model: str, config: str) -> tuple[float, float, int]:
    """(wall seconds, peak RSS GiB, exit code) of one simulate run in a one-core subprocess."""
    env = dict(os.environ, **dict.fromkeys(ONE_THREAD, "1"))
    cmd = [sys.executable, "-m", "aras.cli", "simulate", model, "--config", config, "--mode", "aras", "--perf-only"]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         preexec_fn=_pin if hasattr(os, "sched_setaffinity") else None)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)  # this child's own rusage (ru_maxrss: KiB on Linux, bytes on macOS)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rss = ru.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    if p.returncode:
        sys.stderr.write(err.decode(errors="replace"))
    return wall, rss / 2**30, p.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paper", help="config preset or file (default paper)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per model; the best wall time counts")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    from aras.models import load_model

    for m in TARGETS_S:  # build / cache the traces outside the timed runs
        t0 = time.perf_counter()
        load_model(m, progress=True)
        print(f"trace {m}: ready ({time.perf_counter() - t0:.1f} s, not timed)")

    print(f"\naras simulate MODEL --config {args.config} --mode aras --perf-only, one core, best of {args.repeat}")
    print(f"{'model':<10} {'wall s':>8} {'target':>8} {'':4}  {'peak GiB':>8} {'target':>8} {'':4}")
    ok = True
    for m, target in TARGETS_S.items():
        runs = [run_once(m, args.config) for _ in range(max(1, args.repeat))]
        if any(rc for _, _, rc in runs):
            print(f"{m:<10} failed (exit {[rc for *_, rc in runs]})")
            ok = False
            continue
        wall, mem = min(w for w, _, _ in runs), max(r for _, r, _ in runs)
        tw, tm = wall <= target, mem <= TARGET_MEM_GIB
        ok &= tw and tm
        print(f"{m:<10} {wall:8.2f} {'<= ' + format(target, 'g'):>8} {'PASS' if tw else 'FAIL':4}  "
              f"{mem:8.2f} {'<= ' + format(TARGET_MEM_GIB, 'g'):>8} {'PASS' if tm else 'FAIL':4}")
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
