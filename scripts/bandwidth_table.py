#!/usr/bin/env python3
"""Old vs new COMPUTE rule (docs/architecture.md §10.3) for every network ``aras models`` lists.

For each network, ``sim_models.perf.simulate`` in mode ``aras`` on ``paper-unbounded`` (the unbounded
rule) and on ``paper`` (fetch_ports, psum_lanes, post_lanes bounded): steady-state cycles and energy
side by side, the stall breakdown (fill / fetch / drain / post, % of the new total) and the layer the
terms slow down most (its COMPUTE cycles' growth). Prints a Markdown table (docs/results.md) and, with
``--json``, the figures.

    .venv/bin/python scripts/bandwidth_table.py [--models lenet5 resnet50] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aras.config import load  # noqa: E402
from aras.models import REGISTRY, load_model  # noqa: E402
from sim_models.bandwidth import STALLS  # noqa: E402
from sim_models.perf import simulate  # noqa: E402


def _worst_layer(res: dict) -> tuple[str, float]:
    best = ("—", 0.0)
    for ly in res["layers"]:
        st = sum(ly["counters"].get(k, 0) for k in STALLS)
        base = ly["compute_cycles"] - st
        if st and base > 0 and 100 * st / base > best[1]:
            best = (ly["name"], 100 * st / base)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(REGISTRY), help="default: every built-in model")
    ap.add_argument("--old", default="paper-unbounded", help="config of the old rule (default paper-unbounded)")
    ap.add_argument("--new", default="paper", help="config of the new rule (default paper)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    old_cfg, new_cfg = load(args.old), load(args.new)
    rows = []
    for name in args.models:
        tr = load_model(name)
        t0 = time.process_time()
        old = simulate(tr, old_cfg, "aras")
        t1 = time.process_time()
        new = simulate(tr, new_cfg, "aras")
        t2 = time.process_time()
        c = new["counters"]
        rows.append({"model": name, "weights": tr.weights, "old_cycles": old["cycles"], "new_cycles": new["cycles"],
                     "old_energy_uj": old["energy_j"]["total"] * 1e6, "new_energy_uj": new["energy_j"]["total"] * 1e6,
                     **{k: c[k] for k in STALLS}, "gbuf_fetch_words": c["gbuf_fetch_words"],
                     "worst_layer": _worst_layer(new), "cpu_s": [t1 - t0, t2 - t1]})
        r = rows[-1]
        print(f"# {name}: {r['old_cycles']:,} -> {r['new_cycles']:,} cycles (CPU {t1 - t0:.1f} s / {t2 - t1:.1f} s)",
              file=sys.stderr, flush=True)
    print(f"config old `{old_cfg.name}`, new `{new_cfg.name}` (fetch_ports {new_cfg.fetch_ports}, psum_lanes "
          f"{new_cfg.psum_lanes}, post_lanes {new_cfg.post_lanes}); mode aras, steady state, batch {new_cfg.batch}\n")
    print("| network | weights | cycles old | cycles new | Δ | energy old µJ | energy new µJ | stall fill / fetch / "
          "drain / post % of new | stall % | most slowed layer (COMPUTE +%) |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---|")
    for r in rows:
        n = r["new_cycles"]
        parts = " / ".join(f"{100 * r[k] / n:.1f}" for k in STALLS)
        tot = 100 * sum(r[k] for k in STALLS) / n
        wl, wp = r["worst_layer"]
        grow = 100 * (n / r["old_cycles"] - 1)
        print(f"| {r['model']} | {r['weights']} | {r['old_cycles']:,} | {n:,} | +{grow:.1f} % | "
              f"{r['old_energy_uj']:,.2f} | {r['new_energy_uj']:,.2f} | {parts} | **{tot:.1f}** | {wl} (+{wp:.0f} %) |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
