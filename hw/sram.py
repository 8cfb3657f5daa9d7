"""Behavioural SystemVerilog of the Gbuffer's storage array, for generation (``hw.generate``).

Amaranth's ``Memory`` converts every read port with a transparency mask and a collision mask as wide
as the number of write ports, and its initial contents bit by bit. The ``paper`` Gbuffer has
262,144 words of 256 bits (an 8 Mbit ``$meminit``) and, by §13.2's no-port-limit rule, 40,960
combinational read ports against 8,195 write ports: 671 Mbit of masks alone. While
``hw.shared.emitting`` is active the Gbuffer therefore instantiates the module below instead: ports
are buses, ``for`` loops do the rest, so its text does not grow with the port count. Amaranth's
simulator keeps running ``amaranth.lib.memory``; the cocotb system testbench runs this module (the
Verilog ``aras verilog`` emits), so both are checked against the golden model.

Amaranth limits the outputs of one instance to 65,535 bits, so the combinational ports are spread over
**replicas**: every replica receives every write and so holds the same contents; replica 0 also
serves the synchronous read ports (:func:`split`). ``paper`` needs 9.

Semantics (those of the Amaranth memory it replaces, ``hw/gbuffer.py``): contents start as ``init``
(zero elsewhere) and are not reset; a synchronous read port's data register loads the word at
``rd_addr`` at an edge with ``rd_en`` high (the word before a same-edge write) and holds otherwise;
``c8`` ports show the byte at byte address ``c8_addr`` and ``c32`` ports the int32 at the (4-aligned)
byte address ``c32_addr``, combinationally; a write port writes the bytes whose ``wr_be`` bit is set
(the caller gates ``wr_be`` with its enable). Two ports writing one byte in one edge is undefined (no
unit does it).
"""

from __future__ import annotations

from .shared import MAX_PORT_BITS

__all__ = ["split", "storage_sv"]


# Verilator 5.006 stops unrolling a generate loop after 1,024 iterations ("Loop unrolling took too
# long"); longer port loops are nested.
GEN_LOOP_MAX = 1024


def _gen_for(label: str, n: int, body: list[str]) -> list[str]:
    """A generate loop over ports ``k`` = 0 .. ``n`` - 1 around ``body`` (lines that use ``k``), nested
    in blocks of :data:`GEN_LOOP_MAX` when longer."""
    if n <= GEN_LOOP_MAX:
        return [f"  for (genvar k = 0; k < {n}; k++) begin : {label}", *("    " + b for b in body), "  end"]
    lo = GEN_LOOP_MAX
    return [f"  for (genvar kh = 0; kh < {-(-n // lo)}; kh++) begin : {label}",
            f"    for (genvar kl = 0; kl < {lo}; kl++) begin : g",
            f"      if (kh * {lo} + kl < {n}) begin : v",
            f"        localparam int k = kh * {lo} + kl;",
            *("        " + b for b in body),
            "      end", "    end", "  end"]


def split(n_rd: int, n_c8: int, n_c32: int, width: int) -> list[tuple[range, range, range]]:
    """Ports of each replica, as (sync read, c8, c32) index ranges: replica 0 takes the sync read ports,
    then c8 and c32 ports fill replicas in order up to :data:`MAX_PORT_BITS` output bits each."""
    if n_rd * width > MAX_PORT_BITS:
        raise ValueError(f"sram: {n_rd} synchronous read ports of {width} bits exceed one replica")
    reps, free = [[range(n_rd), [], []]], MAX_PORT_BITS - n_rd * width
    for kind, n, bits in ((1, n_c8, 8), (2, n_c32, 32)):
        for k in range(n):
            if free < bits:
                reps.append([range(0), [], []])
                free = MAX_PORT_BITS
            reps[-1][kind].append(k)
            free -= bits
    return [(r, range(c8[0], c8[-1] + 1) if c8 else range(0), range(c32[0], c32[-1] + 1) if c32 else range(0))
            for r, c8, c32 in reps]


def storage_sv(name: str, *, depth: int, width: int, n_rd: int, n_c8: int, n_c32: int, n_wr: int,
               init: list[int] | tuple[int, ...] = ()) -> str:
    """The module ``name``: ``depth`` words of ``width`` bits (a multiple of 8; of 32 with ``c32``
    ports), clock ``clk``, the given number of ports of each kind (a kind with none has no ports);
    ``init`` gives the first words' power-up contents."""
    nb = width // 8
    if width % 8 or depth < 1 or len(init) > depth or n_wr < 1 or (n_c32 and nb % 4):
        raise ValueError(f"storage_sv: bad geometry (depth {depth}, width {width}, {len(init)} init words, "
                         f"{n_wr} write ports, {n_c32} int32 ports)")
    a = max(1, (depth - 1).bit_length())  # word address
    ba = max(1, (depth * nb - 1).bit_length())  # byte address
    decl = ["input clk"]
    if n_rd:
        decl += [f"input [{n_rd * a - 1}:0] rd_addr", f"input [{n_rd - 1}:0] rd_en",
                 f"output [{n_rd * width - 1}:0] rd_data"]
    for kind, n, bits in (("c8", n_c8, 8), ("c32", n_c32, 32)):
        if n:
            decl += [f"input [{n * ba - 1}:0] {kind}_addr", f"output [{n * bits - 1}:0] {kind}_data"]
    decl += [f"input [{n_wr * a - 1}:0] wr_addr", f"input [{n_wr * width - 1}:0] wr_data",
             f"input [{n_wr * nb - 1}:0] wr_be"]
    out = [f"module {name}(\n  " + ",\n  ".join(decl) + "\n);",
           f"  logic [{width - 1}:0] mem [0:{depth - 1}];",
           "  initial begin",
           f"    for (int i = 0; i < {depth}; i++) mem[i] = '0;"]
    out += [f"    mem[{i}] = {width}'h{v:x};" for i, v in enumerate(init) if v]
    out += ["  end"]
    for kind, n, bits in (("c8", n_c8, 8), ("c32", n_c32, 32)):
        if n:
            out += _gen_for(kind, n, [f"wire [{ba - 1}:0] a = {kind}_addr[k * {ba} +: {ba}];",
                                      f"wire [{width - 1}:0] word = mem[a / {nb}];",
                                      f"assign {kind}_data[k * {bits} +: {bits}] = word[(a % {nb}) * 8 +: {bits}];"])
    if n_rd:
        out += _gen_for("rd", n_rd, [f"logic [{width - 1}:0] q;",
                                     f"always_ff @(posedge clk) if (rd_en[k]) q <= mem[rd_addr[k * {a} +: {a}]];",
                                     f"assign rd_data[k * {width} +: {width}] = q;"])
    # One process per write port: Verilator cannot schedule non-blocking writes to an array inside a
    # loop it does not unroll (BLKLOOPINIT; it unrolls up to 64 iterations, paper has 8,195 ports).
    # Plain ``always``: several processes write ``mem``, which ``always_ff`` forbids.
    out += _gen_for("wr", n_wr, ["always @(posedge clk)",
                                 f"  for (int b = 0; b < {nb}; b++)",
                                 f"    if (wr_be[k * {nb} + b]) mem[wr_addr[k * {a} +: {a}]][8 * b +: 8]",
                                 f"      <= wr_data[k * {width} + 8 * b +: 8];"])
    return "\n".join(out + ["endmodule", ""])

