"""RTL benchmark (not a test): Verilog generation time and simulated cycles per second of the ``tiny``
top level in Amaranth's simulator, on a whole program checked against the golden models; with
``--scale``, how generation grows from ``tiny`` towards ``paper`` (crossbars, rows), and which modules
grow; ``--scale --paper`` ends with the ``paper`` top itself (tens of minutes, ~20 GB of memory); with
``--lint``, Verilator's time and peak memory linting scaled-up tops whole and module by module.

    python scripts/benchmark_rtl.py [--model lenet5|conv] [--no-verilog] [--scale [--paper]] [--lint]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test harness lives in verif/

from aras.config import preset  # noqa: E402
from aras.trace import Trace  # noqa: E402
from hw.generate import write  # noqa: E402
from hw.top import Top  # noqa: E402
from sim_models.scheduler import schedule  # noqa: E402
from verif.golden.tracegen import random_multipliers, weight_layer_trace  # noqa: E402
from verif.hw.system import Job, run_jobs  # noqa: E402


def conv_trace() -> Trace:
    rng = np.random.default_rng(1)
    mult, shift = random_multipliers(rng, 8)
    return weight_layer_trace(rng.integers(-127, 128, (8, 4, 3, 3)), rng.integers(-500, 500, 8), (4, 8, 8),
                              zx=-5, zo=3, mult=mult, shift=shift, pads=(1, 1, 1, 1))


SCALE_STEPS = (  # overrides of tiny: (n_pe, apus_per_pe, xbars_per_apu, xbar_rows = xbar_cols)
    (2, 2, 2, 16), (2, 2, 4, 16), (2, 4, 4, 16), (4, 4, 4, 16), (2, 2, 2, 32), (2, 2, 2, 64))


def scaled(pe: int, ap: int, xa: int, r: int):
    """``tiny`` with (n_pe, apus_per_pe, xbars_per_apu, xbar_rows = xbar_cols) overridden."""
    from aras.config import from_dict

    d = preset("tiny").to_dict()
    d.update(name=f"tiny-x{pe * ap * xa}-r{r}", n_pe=pe, apus_per_pe=ap, xbars_per_apu=xa, xbar_rows=r,
             xbar_cols=r, adc_bits=max(d["adc_bits"], (r * ((1 << d["cell_bits"]) - 1)).bit_length()),
             write_buffer_bytes=max(d["write_buffer_bytes"], r * r))
    return from_dict(d)


def lint_forms() -> None:
    """Both lint forms of ``hw/lint.py`` on the same black-boxed tops: wall time and the peak memory of
    the largest Verilator process (each form in a fresh Python process, so the peaks do not mix)."""
    import json
    import subprocess

    from hw.generate import macro_stub

    probe = ("import json, resource, sys, time; sys.path.insert(0, {root!r}); from hw.lint import lint; "
             "t = time.perf_counter(); lint({d!r}, 'aras_top', {mode!r}); "
             "print(json.dumps([time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")
    root = str(Path(__file__).resolve().parent.parent)
    print("config          n_xbars   SV MB   whole: s   peak GB   modules: s   peak GB (largest run)")
    for step in ((2, 2, 2, 16), (4, 4, 4, 16), (2, 2, 2, 64)):
        cfg = scaled(*step)
        with tempfile.TemporaryDirectory() as d:
            write(Top(cfg=cfg, blackbox_macros=True), "aras_top", cfg, d)
            (Path(d) / "aras_xbar_macro.v").write_text(macro_stub(cfg))
            row = []
            for mode in ("whole", "modules"):
                r = subprocess.run([sys.executable, "-c", probe.format(root=root, d=d, mode=mode)],
                                   capture_output=True, text=True, check=True)
                sec, kb = json.loads(r.stdout.splitlines()[-1])
                row += [sec, kb / 2**20]
            mb = (Path(d) / "aras_top.sv").stat().st_size / 1e6
        print(f"{cfg.name:15s} {cfg.n_xbars:7d} {mb:7.1f} {row[0]:10.1f} {row[1]:9.2f} {row[2]:12.1f} {row[3]:9.2f}",
              flush=True)


def scale(paper: bool) -> None:
    """SystemVerilog generation (shared units emitted once) time and size of the black-boxed top along
    :data:`SCALE_STEPS` (then ``paper``), the largest modules and the process's peak memory."""
    import collections
    import re
    import resource

    from hw.generate import to_sv

    print("config          n_xbars  rows   generation s   SV MB   peak GB   largest modules (MB)")
    for cfg in [scaled(*s) for s in SCALE_STEPS] + ([preset("paper-unbounded")] if paper else []):
        r = cfg.xbar_rows
        t = time.perf_counter()
        sv = to_sv(Top(cfg=cfg, blackbox_macros=True), "aras_top")
        dt = time.perf_counter() - t
        size: collections.Counter = collections.Counter()
        unit = ""
        for ln in sv.splitlines():
            if ln.startswith("module "):
                unit = re.sub(r"\d+", "#", ln.split()[1].split("(")[0].lstrip("\\"))
            size[unit] += len(ln) + 1
        top = ", ".join(f"{u} {b / 1e6:.1f}" for u, b in size.most_common(4))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{cfg.name:15s} {cfg.n_xbars:7d} {r:5d} {dt:14.1f} {len(sv) / 1e6:7.1f} {peak:9.1f}   {top}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("lenet5", "conv"), default="conv")
    ap.add_argument("--no-verilog", action="store_true")
    ap.add_argument("--scale", action="store_true", help="elaboration growth from tiny towards paper, then stop")
    ap.add_argument("--paper", action="store_true", help="with --scale: end with the paper top itself")
    ap.add_argument("--lint", action="store_true", help="whole-design vs module-by-module lint, then stop")
    args = ap.parse_args()
    if args.paper and not args.scale:
        ap.error("--paper goes with --scale")
    if args.scale:
        scale(args.paper)
        return
    if args.lint:
        lint_forms()
        return
    cfg = preset("tiny")
    if not args.no_verilog:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            man = write(Top(cfg=cfg), "aras_top", cfg, d)
            print(f"Verilog generation, tiny top: {time.perf_counter() - t:.1f} s wall "
                  f"({man['generation_s']:.1f} s in yosys' write_verilog), {man['lines']:,} lines")
    tr = Trace.load("aras/fixtures/lenet5") if args.model == "lenet5" else conv_trace()
    prog = schedule(tr, cfg, "aras")
    x = np.random.default_rng(0).integers(-128, 128, (1,) + tr.input_q.shape).astype(np.int8)
    t = time.perf_counter()
    res = run_jobs(cfg, [Job(tr, prog, x, args.model)])[0]
    wall = time.perf_counter() - t
    c = res["gold"].cycles
    print(f"Amaranth simulator, tiny top, {args.model}: {len(prog.writes)} WRITEs, {len(prog.execs)} execute "
          f"instructions, {c:,} cycles, all windows/counters/outputs equal to the golden model; "
          f"{res['seconds']:.1f} s simulated run ({c / res['seconds']:,.0f} cycles/s), {wall:.1f} s with build")


if __name__ == "__main__":
    main()
