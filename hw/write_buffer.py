"""``write_buffer``: per-PE staging of whole tile images fetched from DRAM (docs/architecture.md §3.5,
§8.1; counter ``write_buffer_bytes`` of §11).

``slots = cfg.write_buffer_slots`` slots of ``tile_bytes_max`` bytes. A slot holds a tile's DRAM
image as it arrives: ``R_used × wcols`` int8 weights, row-major with row stride ``wcols`` (byte
``r·wcols + j`` = row r, weight column j). Slot reservation and freeing are the controller's
bookkeeping (§3.5); the buffer only stores.

Storage: ``NL`` = the smallest power of two ≥ max(``weight_cols``, ``dram_bytes_per_cycle``) byte lanes;
image byte a of slot s lives in lane ``a % NL`` at word ``s·DS + a // NL`` (DS = ⌈tile_bytes_max/NL⌉ + 1).
Any ≤ NL consecutive bytes sit in distinct lanes, so one fill beat is one write per lane and one row
(≤ ``weight_cols`` bytes at any byte offset) is one read per lane, rotated into place.

Interfaces (``sync`` domain)
----------------------------
``fill`` (In, stream of :func:`fill_layout`): ``data[0:n]`` are image bytes ``offset … offset+n−1``
    of ``slot``; always ready; written at the transfer edge (visible to reads in the next cycle).
``rd[p]`` (In, :func:`row_read_signature`, ``read_ports`` of them, one per write driver):
    combinational: ``w[j]`` = weight (``row``, j) of ``slot`` for j < ``wcols`` (j ≥ ``wcols``: don't care).
    ``count`` high for one cycle per row consumed adds ``wcols`` bytes to the counter.
``write_buffer_bytes`` (Out, 64): += ``n`` per fill transfer + ``wcols`` per counted row read, so a
    tile counts its bytes twice (§11). Cleared by reset; the storage is not.

Backdoor (testbench): :meth:`WriteBuffer.backdoor_write`, :meth:`WriteBuffer.backdoor_read`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .encoder import weights_layout
from .tree import tree_sum
from .unit import Unit

__all__ = ["WriteBuffer", "fill_layout", "row_read_signature", "COUNTER_BITS"]

COUNTER_BITS = 64


def fill_layout(cfg: Config) -> data.StructLayout:
    """One DRAM beat into a slot: ``n`` (1 … ``dram_bytes_per_cycle``) valid bytes at byte ``offset``."""
    bpc = cfg.dram_bytes_per_cycle
    return data.StructLayout({
        "slot": range(cfg.write_buffer_slots),
        "offset": range(cfg.tile_bytes_max),
        "n": range(bpc + 1),
        "data": data.ArrayLayout(unsigned(8), bpc),
    })


def row_read_signature(cfg: Config) -> wiring.Signature:
    """Row read port, seen from the user (a write driver): ``slot``, ``row``, ``wcols``, ``count`` out,
    ``w`` back (combinational)."""
    return wiring.Signature({
        "slot": Out(range(cfg.write_buffer_slots)),
        "row": Out(range(cfg.xbar_rows)),
        "wcols": Out(range(cfg.weight_cols + 1)),
        "count": Out(1),
        "w": In(weights_layout(cfg)),
    })


def _lanes(cfg: Config) -> int:
    need = max(cfg.weight_cols, cfg.dram_bytes_per_cycle)
    return 1 << (need - 1).bit_length()


class WriteBuffer(Unit):
    """Per-PE write buffer (see the module docstring for ports, storage and counters).

    Parameters
    ----------
    cfg : aras.config.Config
        ``write_buffer_bytes``, ``xbar_rows``, ``xbar_cols``, ``cell_bits``, ``dram_bytes_per_cycle``.
    read_ports : int, optional
        Row read ports (default ``cfg.write_drivers_per_pe``: one per driver).
    """

    def __init__(self, *, cfg: Config, read_ports: int | None = None):
        self._take_cfg(cfg)
        if read_ports is None:
            read_ports = cfg.write_drivers_per_pe
        if not isinstance(read_ports, int) or isinstance(read_ports, bool) or read_ports < 1:
            raise ValueError(f"WriteBuffer: read_ports must be an integer >= 1, not {read_ports!r}")
        self._n_rd = read_ports
        self._nl = _lanes(cfg)
        self._ds = -(-cfg.tile_bytes_max // self._nl) + 1  # + 1: a row's rotated read may touch one word more
        self._mems = [memory.Memory(shape=unsigned(8), depth=cfg.write_buffer_slots * self._ds, init=[])
                      for _ in range(self._nl)]
        super().__init__({
            "fill": In(stream.Signature(fill_layout(cfg))),
            "rd": In(row_read_signature(cfg)).array(read_ports),
            "write_buffer_bytes": Out(COUNTER_BITS),
        })

    @property
    def slots(self) -> int:
        return self._cfg.write_buffer_slots

    @property
    def read_ports(self) -> int:
        return self._n_rd

    @property
    def lanes(self) -> int:
        """Byte lanes NL of the storage."""
        return self._nl

    def elaborate(self, platform):
        m = Module()
        cfg, nl, ds = self._cfg, self._nl, self._ds
        lg = nl.bit_length() - 1
        for i, mem in enumerate(self._mems):
            m.submodules[f"lane{i}"] = mem

        fill = self.fill.payload
        m.d.comb += self.fill.ready.eq(1)
        lo = fill.offset[:lg]
        beat = Array(fill.data[i] for i in range(cfg.dram_bytes_per_cycle))
        for lane, mem in enumerate(self._mems):
            wp = mem.write_port()
            i = Signal(lg, name=f"fill_byte{lane}")  # which byte of the beat lands in this lane
            m.d.comb += i.eq(lane - lo)
            m.d.comb += [
                wp.en.eq(self.fill.valid & (i < fill.n)),
                wp.addr.eq(fill.slot * ds + ((fill.offset + i) >> lg)),
                wp.data.eq(beat[i]),
            ]

        for n, p in enumerate(self.rd):
            a = Signal(range(cfg.xbar_rows * cfg.weight_cols), name=f"rd{n}_byte")  # the row's first byte
            m.d.comb += a.eq(p.row * p.wcols)
            lo_r, base = a[:lg], a >> lg
            got = []
            for lane, mem in enumerate(self._mems):
                rp = mem.read_port(domain="comb")
                m.d.comb += rp.addr.eq(p.slot * ds + base + (lo_r > lane))
                got.append(rp.data)
            got = Array(got)
            for j in range(cfg.weight_cols):
                m.d.comb += p.w[j].eq(got[(lo_r + j)[:lg]].as_signed())

        add = tree_sum([Mux(self.fill.valid, fill.n, 0)] + [Mux(p.count, p.wcols, 0) for p in self.rd])
        m.d.sync += self.write_buffer_bytes.eq(self.write_buffer_bytes + add)
        return m

    # ---------------------------------------------------------------- testbench backdoor
    def _where(self, slot: int, offset: int, n: int):
        if not 0 <= slot < self.slots:
            raise ValueError(f"WriteBuffer: slot {slot} outside 0 … {self.slots - 1}")
        if offset < 0 or offset + n > self._cfg.tile_bytes_max:
            raise ValueError(f"WriteBuffer: bytes [{offset}, {offset + n}) outside a slot of "
                             f"{self._cfg.tile_bytes_max} bytes (tile_bytes_max)")
        return [(self._mems[a % self._nl], slot * self._ds + a // self._nl) for a in range(offset, offset + n)]

    def backdoor_write(self, ctx, slot: int, offset: int, image: bytes) -> None:
        """Store ``image`` (e.g. a tile's int8 weights as bytes) at byte ``offset`` of ``slot``."""
        image = bytes(image)
        for (mem, addr), b in zip(self._where(slot, offset, len(image)), image, strict=True):
            ctx.set(mem.data[addr], b)

    def backdoor_read(self, ctx, slot: int, offset: int, n: int) -> bytes:
        """``n`` bytes of ``slot`` from byte ``offset``."""
        return bytes(ctx.get(mem.data[addr]) for mem, addr in self._where(slot, offset, n))
