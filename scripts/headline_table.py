#!/usr/bin/env python3
"""The per-device headline tables of docs/results.md §9: for each write-model preset (docs/devices.md) and each
network, on ``paper``, steady state, batch 1: ARAS against the rewriting baseline PUM, the resident baseline
(networks that fit the crossbars), the ideal PUM and the TPU-like design (area-matched array), with TOPS/W,
TOPS/mm² and EDP (aras/metrics.py) and the two designs' areas. Fits and does-not-fit are separate tables.
Runs go through the execution layer's result cache, so a repeated command recomputes nothing.

    .venv/bin/python scripts/headline_table.py [--config paper] [--devices ...] [--models ...] [--jobs N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aras.cache import ResultCache  # noqa: E402
from aras.config import load  # noqa: E402
from aras.devices import DEVICES, with_device  # noqa: E402
from aras.execution import Task, simulate_run  # noqa: E402
from aras.execution import run as execute  # noqa: E402
from aras.metrics import efficiency, macs_per_sample  # noqa: E402
from aras.models import load_model  # noqa: E402
from sim_models.perf import fits  # noqa: E402

# The networks with real weights, and one synthetic CNN that does not fit (labelled in every row).
MODELS = ("lenet5", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet", "minilm-l6", "resnet18")
MODES = ("aras", "baseline", "baseline-resident", "ideal", "tpu")


def _x(a, b) -> str:
    return f"{a / b:.3g}×"


def _pct(a, b) -> str:
    return f"{(1 - a / b) * 100:.1f} %"


def tables(cfg, devices, models, jobs) -> str:
    traces = {m: load_model(m) for m in models}
    tasks = []
    for dev in devices:
        c = with_device(cfg, dev)
        for m, tr in traces.items():
            for mode in MODES:
                if mode == "baseline-resident" and not fits(tr, c):
                    continue
                tasks.append(Task((dev, m, mode), simulate_run, (c, mode), m,
                                  {"device": dev, "model": m, "mode": mode}))
    out = execute(tasks, traces, jobs=jobs, cache=ResultCache(), desc="headline")
    res = out.by_key(tasks)
    lines = []
    for dev in devices:
        c = with_device(cfg, dev)
        lines += [f"### Device `{dev}` — {DEVICES[dev].summary}", ""]
        for fit in (True, False):
            rows = [m for m in models if fits(traces[m], c) == fit]
            if not rows:
                continue
            lines += [f"**{'Fits the crossbars' if fit else 'Does not fit the crossbars'}** "
                      f"({c.n_xbars} crossbars):", ""]
            head = ["network", "weights", "ARAS cycles", "ARAS energy (µJ)", "vs baseline: speed / energy saving"]
            if fit:
                head.append("vs resident baseline")
            head += ["vs TPU-like", "ARAS / ideal cycles", "TOPS/W ARAS · baseline · TPU",
                     "TOPS/mm² ARAS · TPU", "EDP (pJ·s) ARAS · baseline · TPU", "area mm² ARAS · TPU"]
            lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
            for m in rows:
                r = {k[2]: v for k, v in res.items() if k[:2] == (dev, m)}
                a, b, t, i = r["aras"], r["baseline"], r["tpu"], r["ideal"]
                ops = 2 * macs_per_sample(traces[m]) * a["batch"]
                ea, eb, et = (x["energy_j"]["total"] for x in (a, b, t))
                area_a, area_t = a["area_mm2"]["total"], t["area_mm2"]["total"]
                fa, fb, ft = efficiency(a, ops, area_a), efficiency(b, ops, area_a), efficiency(t, ops, area_t)
                cells = [m, traces[m].weights, f"{a['cycles']:,}", f"{ea * 1e6:,.2f}",
                         f"{_x(b['latency_s'], a['latency_s'])} / {_pct(ea, eb)}"]
                if fit:
                    br = r["baseline-resident"]
                    cells.append(f"{_x(br['latency_s'], a['latency_s'])} / {_pct(ea, br['energy_j']['total'])}")
                cells += [f"{_x(t['latency_s'], a['latency_s'])} / {_pct(ea, et)}", f"{a['cycles'] / i['cycles']:.2f}",
                          f"{fa['tops_per_w']:.3g} · {fb['tops_per_w']:.3g} · {ft['tops_per_w']:.3g}",
                          f"{fa['tops_per_mm2']:.3g} · {ft['tops_per_mm2']:.3g}",
                          f"{fa['edp_js'] * 1e12:.3g} · {fb['edp_js'] * 1e12:.3g} · {ft['edp_js'] * 1e12:.3g}",
                          f"{area_a:.2f} · {area_t:.2f}"]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="paper")
    ap.add_argument("--devices", nargs="+", default=list(DEVICES))
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    t0 = time.process_time()
    print(tables(load(a.config), a.devices, a.models, a.jobs))
    print(f"(command: scripts/headline_table.py --config {a.config}; {time.process_time() - t0:.0f} CPU-s here)")


if __name__ == "__main__":
    main()
