#!/usr/bin/env python3
"""Long random regression of the generated RTL against the golden model (cocotb, Icarus by default).

Runs ``--n`` random cases (kind x mode x seed drawn from ``--seed``) on each config, optionally
disturbed ones (random DRAM-side stalls and a late host: outputs and untimed counters exact, cycles
only grow), and the LeNet-5 test digits in chunks (``--lenet-digits``, ``--chunk`` digits per simulator
process: back-to-back runs, the first cold, the others steady state), then prints a pass/fail table.
Exit status 1 if any case failed. CI runs a short fixed-seed subset of the same cases
(``verif/cocotb/test_top_tb.py``).

    .venv/bin/python scripts/regress.py --n 20 --configs tiny tiny-adc --lenet-digits 10 -o out/regress
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aras.config import preset  # noqa: E402
from sim_models.scheduler import MODES  # noqa: E402
from verif.cocotb.system import run_case  # noqa: E402
from verif.cocotb.system_vectors import make_case  # noqa: E402

KINDS = ("conv", "fc", "mlp", "rand", "rand")  # rand: random networks over shapes, drawn twice as often


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10, help="random cases per config (default 10)")
    ap.add_argument("--seed", type=int, default=1, help="draws kinds, modes and case seeds (default 1)")
    ap.add_argument("--configs", nargs="+", default=["tiny"], help="presets (default tiny)")
    ap.add_argument("--disturbed", type=int, default=2, help="of the random cases, how many disturbed (default 2)")
    ap.add_argument("--lenet-digits", type=int, default=0, help="LeNet-5 test digits on the first config")
    ap.add_argument("--chunk", type=int, default=5, help="LeNet-5 digits per simulator process (default 5)")
    ap.add_argument("-o", "--out", help="work directory (default: a temporary one)")
    args = ap.parse_args(argv)
    work = Path(args.out or tempfile.mkdtemp(prefix="aras-regress-"))
    root = None  # builds come from the shared cache ($ARAS_COCOTB_BUILD or $ARAS_CACHE/cocotb, runner.py)
    rng = random.Random(args.seed)
    plan = []
    for cname in args.configs:
        for i in range(args.n):
            kind, mode, seed = rng.choice(KINDS), rng.choice(list(MODES)), rng.randrange(1 << 16)
            kw = {"stall": 0.3, "host_delay": 0.5} if i < args.disturbed else {}
            plan.append((cname, f"{kind}@{mode}", seed, 1, kw))
    for first in range(0, args.lenet_digits, args.chunk):
        n = min(args.chunk, args.lenet_digits - first)
        # trace_case picks samples seed*runs ... ; chunks of equal size tile the test set
        plan.append((args.configs[0], "lenet5@aras", first // args.chunk, n, {}))
    rows, failed = [], 0
    for k, (cname, name, seed, runs, kw) in enumerate(plan):
        cfg = preset(cname)
        case = make_case(name, cfg, seed, runs)
        t0 = time.perf_counter()
        try:
            rec = run_case(case, cfg, root, work / f"case{k:03d}", tb_seed=seed, **kw)
            verdict, why = "pass", ""
            cyc = sum(r["cycles"][1] for r in rec["runs"])
        except AssertionError as e:
            verdict, why, cyc = "FAIL", str(e)[:300], 0
            failed += 1
        dt = time.perf_counter() - t0
        rows.append((cname, name, seed, runs, "disturbed" if kw else "exact", verdict, cyc, dt, why))
        print(f"[{k + 1}/{len(plan)}] {cname} {name} seed {seed} x{runs}: {verdict} ({dt:.0f} s)", flush=True)
    print()
    print(f"{'config':9} {'case':22} {'seed':>6} {'runs':>4} {'check':9} {'verdict':7} {'cycles':>8} {'wall s':>7}")
    for c, n, s, r, chk, v, cyc, dt, why in rows:
        print(f"{c:9} {n:22} {s:>6} {r:>4} {chk:9} {v:7} {cyc:>8} {dt:>7.0f}" + (f"  {why}" if why else ""))
    print(f"\n{len(rows) - failed} passed, {failed} failed; work directory {work}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
