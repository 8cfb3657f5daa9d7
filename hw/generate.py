"""SystemVerilog generation (``aras verilog``): Amaranth -> RTLIL -> yosys ``write_verilog -sv``.

SystemVerilog (``always_comb``) rather than plain Verilog: under ``iverilog -g2012`` (what cocotb's
runner passes) yosys' ``always @*`` blocks never fire at t=0 and leave combinational outputs X.
``emit_src=False`` keeps the output free of this machine's paths, so it can be diffed and cached.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring

from aras.config import Config

from . import shared


def to_sv(component: wiring.Component, name: str) -> str:
    """SystemVerilog of ``component`` as module ``name``, followed by the modules of its shared units
    (``hw.shared``: each replicated unit once)."""
    with shared.emitting() as lib:
        top = to_sv_flat(component, name)
    return top + "".join(lib[k] for k in sorted(lib))


# RTLIL text per yosys run: the builtin yosys is WebAssembly (4 GB address space), which the paper
# top's RTLIL as a whole exceeds; yosys' passes here (proc, memory_collect, write_verilog) work module
# by module, so modules are converted in batches.
BATCH_CHARS = 64 << 20


def rtlil_modules(il: str) -> list[str]:
    """The module definitions of an RTLIL text, each with the attribute lines before it."""
    out, cur = [], []
    for line in il.splitlines(keepends=True):
        cur.append(line)
        if line.rstrip("\r\n") == "end":  # a module's end (cells and processes end indented)
            out.append("".join(cur))
            cur = []
    if "".join(cur).strip():
        raise ValueError("rtlil_modules: text after the last module")
    return out


def to_sv_flat(component: wiring.Component, name: str) -> str:
    """SystemVerilog of ``component`` alone (its shared units, if emitting, as instances)."""
    il = rtlil.convert(component, name=name, emit_src=False)
    batches, cur = [], []
    for mod in rtlil_modules(il):
        if cur and sum(map(len, cur)) + len(mod) > BATCH_CHARS:
            batches.append("".join(cur))
            cur = []
        cur.append(mod)
    batches.append("".join(cur))
    del il
    out = []
    for text in batches:
        try:  # amaranth 0.5: the text-level converter takes yosys write_verilog options
            out.append(verilog._convert_rtlil_text(text, write_verilog_opts=("-sv",)))
        except TypeError:  # pragma: no cover - a future amaranth without the option: same effect by rewrite
            out.append(re.sub(r"always @\*", "always_comb", verilog._convert_rtlil_text(text)))
    return "".join(out)


def ports(component: wiring.Component) -> list[dict]:
    """The flattened top-level ports (name as in Verilog, direction, width)."""
    out = []
    for path, member, _ in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        out.append({"name": name, "dir": "in" if member.flow == wiring.In else "out",
                    "width": Shape.cast(member.shape).width})
    return out


def macro_stub(cfg: Config) -> str:
    """Verilog declaration (``(* blackbox *)``, no body) of the crossbar macro ``aras_xbar_macro`` with the
    behavioural macro's ports, for flows where a real macro replaces it (synthesis, lint)."""
    from .crossbar import Crossbar

    xbar = Crossbar(cfg=cfg, blackbox=True)
    xbar._MustUse__silence = True  # built only for its port list, never elaborated
    decl = ["input clk", "input rst"]
    for p in ports(xbar):
        rng = f"[{p['width'] - 1}:0] " if p["width"] > 1 else ""
        decl.append(f"{'input' if p['dir'] == 'in' else 'output'} {rng}{p['name']}")
    return "(* blackbox *)\nmodule aras_xbar_macro(" + ", ".join(decl) + ");\nendmodule\n"


def write(component: wiring.Component, name: str, cfg: Config, out_dir: str | Path, extra: dict | None = None) -> dict:
    """Write ``<name>.sv`` and ``manifest.json`` (config, ports, generation facts) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    sv = to_sv(component, name)
    dt = time.perf_counter() - t
    (out / f"{name}.sv").write_text(sv)
    manifest = {"top": name, "file": f"{name}.sv", "config": cfg.to_dict(), "ports": ports(component),
                "generation_s": round(dt, 3), "lines": sv.count("\n"), **(extra or {})}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
