"""Which weight encoding should ARAS re-encode with? Measures steady-state ReRAM write activity of
the supported encodings on the real-weight models (docs/scheduler.md, "Encodings").

Strategies: the offset family (plain offset-binary; + per-column complement) and the sign-magnitude
family in paired columns (plain; + per-column swap of the pair), each with differential writes and
the full ARAS schedule. Prints a markdown table; ``--json`` saves the numbers. A model without
steady-state writes (its tiles fit the chip and stay resident) is reported as such, with no ratios.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from aras.config import load
from aras.experiments import count_tiles
from aras.models import load_model
from aras.tiling import cols_per_weight
from sim_models.perf import simulate
from sim_models.scheduler import Options, schedule
from sim_models.tiling import write_levels, write_targets
from sim_models.write_engine import WriteTables

NO_WRITES = "no writes (fits the chip)"
STRATEGIES = {
    "offset (plain)": Options(family="offset", reencode=False),
    "offset + column complement (ARAS)": Options(family="offset", reencode=True),
    "signmag pairs (plain)": Options(family="signmag", reencode=False),
    "signmag pairs + column swap": Options(family="signmag", reencode=True),
}


def complement_granularity(tr, cfg) -> dict[str, float]:
    """Programming energy of the ARAS program's writes, replayed from its steady-state contents, when the
    complement flag is chosen per weight column (ARAS) or per physical cell column (a finer variant the
    hardware could decode the same way, slice by slice), relative to no complement."""
    tb = WriteTables.of(cfg)
    prog = schedule(tr, cfg, "aras")
    levels = np.array(prog.notes["final_levels"])
    tot = {"none": 0.0, "per weight column": 0.0, "per cell column": 0.0}
    for w in prog.writes:
        l0, l1 = write_targets(w, cfg.cell_bits)
        cpw = cols_per_weight(w.family, cfg.slices)
        old = levels[w.xbar, : w.tile.rows, : l0.shape[1]]
        e0 = tb.diff_energy[old * np.uint8(tb.L) + l0].sum(axis=0)
        e1 = tb.diff_energy[old * np.uint8(tb.L) + l1].sum(axis=0)
        tot["none"] += e0.sum()
        tot["per weight column"] += np.minimum(e0.reshape(-1, cpw).sum(1), e1.reshape(-1, cpw).sum(1)).sum()
        tot["per cell column"] += np.minimum(e0, e1).sum()
        levels[w.xbar, : w.tile.rows, : l0.shape[1]] = write_levels(w, cfg.cell_bits, cfg.slices)
    if tot["none"] == 0:  # nothing to program (the model fits and every row is unchanged)
        return {k: float("nan") for k in tot}
    return {k: v / tot["none"] for k, v in tot.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="*", default=["lenet5", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "minilm-l6"])
    ap.add_argument("--config", default="paper")
    ap.add_argument("--set", nargs="*", default=["n_pe=1", "apus_per_pe=2", "write_drivers_per_pe=2"],
                    help="config overrides KEY=VALUE (default: a 16-crossbar paper chip, so every model rewrites)")
    ap.add_argument("--json")
    args = ap.parse_args()
    cfg = load(args.config)
    if args.set:
        cfg = cfg.replace(**{k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    rows, out, no_writes = [], {}, {}
    for m in args.models:
        tr = load_model(m)
        base = None  # write energy of the first strategy (offset plain)
        fits = count_tiles(tr, cfg) <= cfg.n_xbars
        no_writes[m] = NO_WRITES if fits else "no writes"
        for name, opts in STRATEGIES.items():
            t = time.process_time()
            r = simulate(tr, cfg, "aras", opts)
            w = r["writes"]
            e = r["energy_j"]["write"]
            base = e if base is None else base
            if e > 0 or w["rows_written"]:
                no_writes[m] = None
            rel = f"{e / base:.3f}" if base > 0 else (NO_WRITES if fits else "no writes") if e == 0 else \
                "— (offset plain writes nothing)"
            out[f"{m}/{name}"] = {"write_energy_j": e, "vs_offset_plain": e / base if base > 0 else None,
                                  "cells_changed": w["cells_changed"],
                                  "cells_total": w["cells_total"], "rows_skipped": w["rows_skipped"],
                                  "rows_written": w["rows_written"], "cycles": r["cycles"],
                                  "energy_total_j": r["energy_j"]["total"], "weights": tr.weights,
                                  "fits_chip": fits}
            changed = f"{w['cells_changed'] / w['cells_total']:.3f}" if w["cells_total"] else "—"
            rows.append(f"| {m} ({tr.weights}) | {name} | {e * 1e6:.3f} | {rel} | {changed} | "
                        f"{w['rows_written']:,} | {w['rows_skipped']:,} | {r['cycles']:,} | "
                        f"{time.process_time() - t:.1f} |")
        if no_writes[m]:
            out[f"{m}/no_writes"] = no_writes[m]
    print(f"config {args.config} with {' '.join(args.set)} ({cfg.n_xbars} crossbars); steady state; "
          "differential writes; full ARAS schedule\n")
    print("| model (weights) | encoding | write energy (uJ) | vs offset plain | cells changed / cells compared "
          "| rows written | rows skipped | cycles | cpu s |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nComplement granularity (programming energy relative to no complement, ARAS program replayed):\n")
    print("| model | per weight column (ARAS) | per cell column |")
    print("|---|---|---|")
    for m in args.models:
        g = None if no_writes[m] else complement_granularity(load_model(m), cfg)
        if g is None or any(np.isnan(v) for v in g.values()):  # nothing programmed in steady state: no ratio
            why = no_writes[m] or "no cells programmed"
            out[f"{m}/granularity"] = why
            print(f"| {m} | {why} | {why} |")
            continue
        out[f"{m}/granularity"] = g
        print(f"| {m} | {g['per weight column']:.4f} | {g['per cell column']:.4f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1, allow_nan=False)


if __name__ == "__main__":
    main()
