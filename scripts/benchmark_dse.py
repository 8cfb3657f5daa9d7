#!/usr/bin/env python3
"""Benchmark (not a test): a 16-point sweep of MiniLM-L6 on ``paper`` (``write_energy``, ARAS and the
baseline at every point: 32 runs) serially (``--jobs 1``, no Dask) and on a local Dask cluster of two
workers (``--jobs 2``), then the same sweep again from the result cache.

Printed: wall time of each, the ratio serial / two workers, CPU seconds per point (measured inside the
tasks, so the workers' CPU counts; the client's own CPU beside it), the cached re-run's wall time, and
whether the two result files are identical (timestamps aside). Each run gets an empty result cache of its
own (a temporary directory), so nothing earlier is reused; the MiniLM trace itself comes from the trace
cache (``$ARAS_CACHE/traces``) and is built first if missing, untimed.

Usage: ``.venv/bin/python scripts/benchmark_dse.py [--model minilm-l6] [--config paper] [--points 16]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _sweep(model, cfg, values, out: Path, cache, jobs: int) -> tuple[dict, float, float]:
    """(result, wall s, this process's CPU s) of one sweep."""
    from aras.experiments import run_sweep

    c0, t0 = _cpu_self(), time.perf_counter()
    data = run_sweep(model, cfg, "write_energy", values, out, jobs=jobs, cache=cache, progress=True,
                     command=f"scripts/benchmark_dse.py (--jobs {jobs})")
    return data, time.perf_counter() - t0, _cpu_self() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="minilm-l6", help="model (default minilm-l6)")
    ap.add_argument("--config", default="paper", help="config preset or file (default paper)")
    ap.add_argument("--points", type=int, default=16, help="sweep points (default 16)")
    args = ap.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    import numpy as np

    from aras.cache import ResultCache
    from aras.config import load
    from aras.execution import strip_volatile
    from aras.models import load_trace_or_model

    load_trace_or_model(args.model, progress=True)  # build or load the trace once, untimed
    load0 = os.getloadavg()[0]
    cfg = load(args.config)
    values = [float(f"{v:.3g}") for v in np.geomspace(0.3, 300.0, args.points)]
    with tempfile.TemporaryDirectory(prefix="aras-bench-dse-") as tmp:
        tmp = Path(tmp)
        runs = {}
        for jobs in (1, 2):
            cache = ResultCache(tmp / f"cache{jobs}")
            runs[jobs] = _sweep(args.model, cfg, values, tmp / f"out{jobs}", cache, jobs)
        cached = _sweep(args.model, cfg, values, tmp / "cached", ResultCache(tmp / "cache2"), 2)
        name = "sweep_write_energy.json"
        same = all(json.dumps(strip_volatile(json.loads((tmp / d / name).read_text()))) ==
                   json.dumps(strip_volatile(json.loads((tmp / "out1" / name).read_text())))
                   for d in ("out2", "cached"))

    n = len(values)
    tasks = runs[1][0]["execution"]["tasks"]
    print(f"\n{args.model} on {args.config}: sweep of write_energy over {n} points ({tasks} runs: ARAS and baseline "
          "at every point)")
    print(f"{'':<30} {'wall (s)':>9} {'task CPU/point (s)':>19} {'task wall/point (s)':>20} "
          f"{'client CPU/point (s)':>21} {'workers':>8}")
    for jobs, (data, wall, cpu) in runs.items():
        e = data["execution"]
        label = f"--jobs {jobs} ({e['backend']})"
        print(f"{label:<30} {wall:>9.1f} {e['cpu_s'] / n:>19.2f} {e['task_wall_s'] / n:>20.2f} {cpu / n:>21.2f} "
              f"{e['workers']:>8}")
    data, wall, cpu = cached
    e = data["execution"]
    print(f"{'cached re-run (--jobs 2)':<30} {wall:>9.1f} {'-':>19} {'-':>20} {cpu / n:>21.2f} {e['workers']:>8}"
          f"   ({e['computed']} computed, {e['cached']} from the cache)")
    print(f"wall-clock ratio --jobs 1 / --jobs 2: {runs[1][1] / runs[2][1]:.2f}x")
    print(f"results identical (timestamps aside): {'yes' if same else 'NO'}")
    print(f"load average (1 min) at the start {load0:.1f}, at the end {os.getloadavg()[0]:.1f}, on {os.cpu_count()} "
          "cores (other processes share them: a parallel speed-up needs the cores free)")
    return 0 if same else 1


if __name__ == "__main__":  # the Dask workers are spawned processes: they import this file without running it
    sys.exit(main())
