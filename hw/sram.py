"""Behavioural SystemVerilog of the Gbuffer's storage array, for generation (``hw.generate``).

Amaranth's ``Memory`` converts every read port with a transparency mask and a collision mask as wide
as the number of write ports, and its initial contents bit by bit. The ``paper`` Gbuffer has
262,144 words of 256 bits (an 8 Mbit ``$meminit``) and, by §13.2's no-port-limit rule, 40,960
combinational read ports against 8,195 write ports: 671 Mbit of masks alone. While
``hw.shared.emitting`` is active the Gbuffer therefore instantiates this module instead: one
``always_ff`` for the synchronous read ports and the byte-enable write ports, one ``assign`` per
combinational read port, O(ports) text. Amaranth's simulator keeps running ``amaranth.lib.memory``;
the cocotb system testbench runs this module (the Verilog ``aras verilog`` emits), so both are checked
against the golden model.

Semantics (those of the Amaranth memory it replaces, ``hw/gbuffer.py``): contents start as ``init``
(zero elsewhere) and are not reset; a synchronous read port's data register loads ``mem[addr]`` at
an edge with ``en`` high (the word before a same-edge write) and holds otherwise; a combinational
read port shows ``mem[addr]``; a write port writes the bytes whose ``be`` bit is set (the caller
gates ``be`` with its enable). Two ports writing the same byte in one edge is undefined (no unit
does it).
"""

from __future__ import annotations

__all__ = ["storage_sv", "port_names"]


def port_names(n_rd: int, n_crd: int, n_wr: int) -> dict[str, list[tuple[str, ...]]]:
    """Verilog port names by group: ``rd`` (addr, en, data), ``crd`` (addr, data), ``wr`` (addr, data, be)."""
    return {"rd": [(f"rd{k}_addr", f"rd{k}_en", f"rd{k}_data") for k in range(n_rd)],
            "crd": [(f"crd{k}_addr", f"crd{k}_data") for k in range(n_crd)],
            "wr": [(f"wr{k}_addr", f"wr{k}_data", f"wr{k}_be") for k in range(n_wr)]}


def storage_sv(name: str, *, depth: int, width: int, n_rd: int, n_crd: int, n_wr: int,
               init: list[int] | tuple[int, ...] = ()) -> str:
    """The module ``name``: ``depth`` words of ``width`` bits (a multiple of 8), ports as
    :func:`port_names`, clock ``clk``; ``init`` gives the first words' power-up contents."""
    if width % 8 or depth < 1 or len(init) > depth:
        raise ValueError(f"storage_sv: bad geometry (depth {depth}, width {width}, {len(init)} init words)")
    a = max(1, (depth - 1).bit_length())
    nb = width // 8
    names = port_names(n_rd, n_crd, n_wr)
    decl = ["input clk"]
    for ad, en, d in names["rd"]:
        decl += [f"input [{a - 1}:0] {ad}", f"input {en}", f"output reg [{width - 1}:0] {d}"]
    for ad, d in names["crd"]:
        decl += [f"input [{a - 1}:0] {ad}", f"output [{width - 1}:0] {d}"]
    for ad, d, be in names["wr"]:
        decl += [f"input [{a - 1}:0] {ad}", f"input [{width - 1}:0] {d}", f"input [{nb - 1}:0] {be}"]
    out = [f"module {name}(\n  " + ",\n  ".join(decl) + "\n);",
           f"  reg [{width - 1}:0] mem [0:{depth - 1}];",
           "  initial begin",
           f"    for (int i = 0; i < {depth}; i++) mem[i] = '0;"]
    out += [f"    mem[{i}] = {width}'h{v:x};" for i, v in enumerate(init) if v]
    out += ["  end"]
    out += [f"  assign {d} = mem[{ad}];" for ad, d in names["crd"]]
    if n_rd or n_wr:
        out += ["  always_ff @(posedge clk) begin"]
        out += [f"    if ({en}) {d} <= mem[{ad}];" for ad, en, d in names["rd"]]
        if n_wr:
            out += [f"    for (int b = 0; b < {nb}; b++) begin"]
            out += [f"      if ({be}[b]) mem[{ad}][8 * b +: 8] <= {d}[8 * b +: 8];" for ad, d, be in names["wr"]]
            out += ["    end"]
        out += ["  end"]
    out += ["endmodule", ""]
    return "\n".join(out)
