#!/usr/bin/env python3
"""The fair-mode table of docs/results.md (docs/architecture.md §9.8): per network of ``aras models``,
whether its tiles fit the crossbars, the cycles of ``ideal``, ``aras``, ``baseline``, the resident
baseline (networks that fit) and ``aras`` with broadcast WRITEs, and the DRAM bytes per inference,
steady state, batch 1. The checks of ``verif/golden/test_fair_modes.py`` are printed beside each row.

    .venv/bin/python scripts/fair_modes_table.py [--config paper] [--models lenet5 resnet50]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aras.config import load  # noqa: E402
from aras.models import REGISTRY, load_model  # noqa: E402
from sim_models.perf import fits, n_tiles, simulate  # noqa: E402


def row(name: str, cfg) -> str:
    tr = load_model(name)
    weights = tr.weights
    r = {m: simulate(tr, cfg, m) for m in ("ideal", "aras", "baseline")}
    fit = fits(tr, cfg)
    res = simulate(tr, cfg, "baseline-resident") if fit else None
    bc = simulate(tr, cfg.replace(broadcast_writes=True), "aras")
    mb = {k: v["counters"]["dram_bytes"] / 1e6
          for k, v in (("aras", r["aras"]), ("bcast", bc), ("base", r["baseline"]))}
    ok_a = r["ideal"]["cycles"] <= r["aras"]["cycles"]
    ok_b = r["aras"]["cycles"] <= r["baseline"]["cycles"]
    ok_d = ("yes" if mb["aras"] <= mb["base"] else "with broadcast" if mb["bcast"] <= mb["base"] else "NO")
    cells = [name, weights, f"{'yes' if fit else 'no'} ({n_tiles(tr, cfg):,})", f"{r['ideal']['cycles']:,}",
             f"{r['aras']['cycles']:,}", f"{r['baseline']['cycles']:,}", f"{res['cycles']:,}" if res else "—",
             f"{bc['cycles']:,}", f"{mb['aras']:.2f} / {mb['bcast']:.2f} / {mb['base']:.2f}",
             "✓" if ok_a else "NO", "✓" if ok_b else "NO", ok_d]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="paper")
    ap.add_argument("--models", nargs="+", default=list(REGISTRY), choices=list(REGISTRY))
    a = ap.parse_args()
    cfg = load(a.config)
    print(f"config `{cfg.name}` ({cfg.n_xbars} crossbars), steady state, batch 1; cycles\n")
    print("| network | weights | fits (tiles) | ideal | aras | baseline | resident baseline | aras, broadcast "
          "WRITEs | DRAM MB aras / broadcast / baseline | ideal ≤ aras | aras ≤ baseline | replicas ≤ baseline "
          "DRAM |")
    print("|---|---|---|---:|---:|---:|---:|---:|---|---|---|---|")
    for name in a.models:
        t0 = time.process_time()
        print(row(name, cfg), flush=True)
        print(f"# {name}: {time.process_time() - t0:.1f} CPU-s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
