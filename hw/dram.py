"""``dram``: the one DRAM channel of the weight path (docs/architecture.md §3.11, §8.1, §10.2; golden
model: the DRAM stage A of ``sim_models/timing.py``).

Serves tile transfers one at a time in request order. A request ``req{addr, bytes, pe, slot}``
accepted (handshake) in cycle ``A_start`` spends ``dram_latency_cycles`` cycles waiting, then sends
``ceil_div(bytes, dram_bytes_per_cycle)`` beats, one per cycle, into ``fill[pe]`` (the write buffer of
that PE): beat k carries image bytes ``addr + k·bpc …`` (the last one ``n`` < bpc if partial) as bytes
``k·bpc …`` of ``slot``. The last beat and ``done{pe, slot}`` transfer in cycle ``A_fin − 1`` with

    A_fin = A_start + dram_latency_cycles + ceil_div(bytes, dram_bytes_per_cycle)

so the tile is readable in the write buffer from cycle ``A_fin`` on, the controller sees ``done`` at
the edge into ``A_fin``, and ``req.ready`` is high again in cycle ``A_fin`` (back-to-back transfers,
§10.2). With ``dram_latency_cycles`` = 0 the first beat goes out in the request's own cycle.

Interfaces (``sync`` domain)
----------------------------
``req`` (In, stream of :func:`req_layout`): ``ready`` = idle; ``bytes`` ≥ 1.
``fill[p]`` (Out, stream of ``write_buffer.fill_layout``, one per PE): write buffers are always
    ready; a low ``ready`` holds the beat (and the transfer) — timing then no longer matches §10.2.
``done`` (Out, stream of :func:`done_layout`): ``valid`` = last beat transferring this cycle, or held
    until taken; the channel stays busy until ``done`` transfers.
``dram_bytes`` (Out, 64): += ``n`` per beat (= ``bytes`` per transfer, §11); cleared by reset.
``busy`` (Out, 1): a transfer is in progress.
``stall`` (In, 1): the DRAM side holds the beat of this cycle (refresh, contention: the random DRAM-side
    idle of the system testbench); the latency count still runs. Timing then no longer matches §10.2
    (transfers only end later); 0 for the deterministic model.
``timeout`` (Out, 1): the watchdog (§8.7): high in the ``watchdog_cycles``-th consecutive cycle in
    which a beat is due (latency over, bytes left) but ``stall`` holds it (once per transfer; the
    transfer itself stays held: a DRAM that never answers is given up by the controller).

Storage: the image (``size`` bytes, loaded before reset is released: ``init`` or
:meth:`Dram.backdoor_write`) in ``NL`` byte lanes (the smallest power of two ≥ max(2, bpc)), byte a in
lane ``a % NL`` at word ``a // NL``, so a beat at any byte address is one read per lane
(combinational), rotated into place. Addresses at or beyond ``size`` read unspecified bytes.
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .unit import Unit
from .write_buffer import COUNTER_BITS, fill_layout

__all__ = ["Dram", "req_layout", "done_layout"]

ADDR_BITS = 32  # WRITE.dram_addr (§9.3)


def req_layout(cfg: Config) -> data.StructLayout:
    """One tile transfer: ``bytes`` (= R_used·wcols) image bytes from byte ``addr`` to ``slot`` of PE ``pe``."""
    return data.StructLayout({
        "addr": unsigned(ADDR_BITS),
        "bytes": range(cfg.tile_bytes_max + 1),
        "pe": range(cfg.n_pe),
        "slot": range(cfg.write_buffer_slots),
    })


def done_layout(cfg: Config) -> data.StructLayout:
    return data.StructLayout({"pe": range(cfg.n_pe), "slot": range(cfg.write_buffer_slots)})


class Dram(Unit):
    """DRAM channel (see the module docstring for ports and timing).

    Parameters
    ----------
    cfg : aras.config.Config
        ``dram_latency_cycles``, ``dram_bytes_per_cycle``, ``n_pe``, write-buffer geometry.
    size : int
        Image capacity in bytes (≥ 1).
    init : bytes
        Initial image from address 0 (the rest is 0); not re-applied by reset.
    """

    def __init__(self, *, cfg: Config, size: int, init: bytes = b""):
        self._take_cfg(cfg)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"Dram: size must be an integer >= 1 (bytes), not {size!r}")
        if size > 1 << ADDR_BITS:
            raise ValueError(f"Dram: size {size} exceeds the {ADDR_BITS}-bit dram_addr space")
        init = bytes(init)
        if len(init) > size:
            raise ValueError(f"Dram: init has {len(init)} bytes, the image only {size} (size)")
        self._size = size
        self._nl = 1 << max(1, (cfg.dram_bytes_per_cycle - 1).bit_length())
        depth = -(-size // self._nl) + 1  # + 1: a beat's rotated read may touch one word more
        self._mems = [memory.Memory(shape=unsigned(8), depth=depth,
                                    init=list(init[lane::self._nl])) for lane in range(self._nl)]
        super().__init__({
            "req": In(stream.Signature(req_layout(cfg))),
            "fill": Out(stream.Signature(fill_layout(cfg))).array(cfg.n_pe),
            "done": Out(stream.Signature(done_layout(cfg))),
            "dram_bytes": Out(COUNTER_BITS),
            "busy": Out(1),
            "stall": In(1),
            "timeout": Out(1),
        })

    @property
    def size(self) -> int:
        return self._size

    def transfer_cycles(self, nbytes: int) -> int:
        """A_fin − A_start of a transfer of ``nbytes`` bytes (§10.2)."""
        return self._cfg.dram_latency_cycles + -(-nbytes // self._cfg.dram_bytes_per_cycle)

    def elaborate(self, platform):
        m = Module()
        cfg, nl = self._cfg, self._nl
        bpc, lat = cfg.dram_bytes_per_cycle, cfg.dram_latency_cycles
        lg = nl.bit_length() - 1
        for i, mem in enumerate(self._mems):
            m.submodules[f"lane{i}"] = mem

        busy = Signal()  # a transfer is in progress (including a held done)
        pend = Signal()  # all beats sent, done not yet taken
        wait = Signal(range(lat + 1))
        addr = Signal(ADDR_BITS)
        off = Signal(range(cfg.tile_bytes_max + 1))
        left = Signal(range(cfg.tile_bytes_max + 1))
        pe = Signal(range(cfg.n_pe))
        slot = Signal(range(cfg.write_buffer_slots))

        # Effective transfer state: the request's payload in its own cycle (so latency 0 can beat at once).
        req = self.req.payload
        start = Signal()
        m.d.comb += [self.req.ready.eq(~busy), start.eq(self.req.valid & ~busy), self.busy.eq(busy)]
        e_wait, e_addr, e_off, e_left, e_pe, e_slot = (
            Signal.like(s, name=f"{s.name}_e") for s in (wait, addr, off, left, pe, slot))
        m.d.comb += [
            e_wait.eq(Mux(start, lat, wait)), e_addr.eq(Mux(start, req.addr, addr)), e_off.eq(Mux(start, 0, off)),
            e_left.eq(Mux(start, req.bytes, left)), e_pe.eq(Mux(start, req.pe, pe)),
            e_slot.eq(Mux(start, req.slot, slot)),
        ]
        active = Signal()
        m.d.comb += active.eq(start | (busy & ~pend))
        beat = Signal()
        last = Signal()
        n = Signal(range(bpc + 1))
        m.d.comb += [beat.eq(active & (e_wait == 0) & ~self.stall), last.eq(e_left <= bpc),
                     n.eq(Mux(last, e_left, bpc))]

        lo, base = e_addr[:lg], e_addr >> lg
        got = []
        for lane, mem in enumerate(self._mems):
            rp = mem.read_port(domain="comb")
            m.d.comb += rp.addr.eq(base + (lo > lane))
            got.append(rp.data)
        got = Array(got)

        for p, f in enumerate(self.fill):
            m.d.comb += [
                f.valid.eq(beat & (e_pe == p)),
                f.payload.slot.eq(e_slot),
                f.payload.offset.eq(e_off),
                f.payload.n.eq(n),
            ]
            for i in range(bpc):
                m.d.comb += f.payload.data[i].eq(got[(lo + i)[:lg]])
        xfer = Signal()
        m.d.comb += [
            xfer.eq(beat & Array(f.ready for f in self.fill)[e_pe]),
            self.done.valid.eq((xfer & last) | pend),
            self.done.payload.pe.eq(e_pe),
            self.done.payload.slot.eq(e_slot),
        ]

        with m.If(start):
            m.d.sync += busy.eq(1)
        with m.If(active):
            m.d.sync += [wait.eq(e_wait), addr.eq(e_addr), off.eq(e_off), left.eq(e_left), pe.eq(e_pe),
                         slot.eq(e_slot)]
            with m.If(e_wait != 0):
                m.d.sync += wait.eq(e_wait - 1)
            with m.If(xfer):
                m.d.sync += [addr.eq(e_addr + bpc), off.eq(e_off + bpc), left.eq(e_left - n)]
                with m.If(last):
                    with m.If(self.done.ready):
                        m.d.sync += busy.eq(0)
                    with m.Else():
                        m.d.sync += pend.eq(1)
        with m.If(pend & self.done.ready):
            m.d.sync += [pend.eq(0), busy.eq(0)]
        m.d.sync += self.dram_bytes.eq(self.dram_bytes + Mux(xfer, n, 0))

        # watchdog (§8.7): consecutive cycles with a beat due but held by the DRAM side
        W = cfg.watchdog_cycles
        held = Signal()
        held_n = Signal(range(W + 1))
        m.d.comb += [held.eq(active & (e_wait == 0) & self.stall), self.timeout.eq(held & (held_n == W - 1))]
        m.d.sync += held_n.eq(Mux(held, Mux(held_n == W, W, held_n + 1), 0))
        return m

    # ---------------------------------------------------------------- testbench backdoor
    def _check(self, addr: int, n: int):
        if addr < 0 or addr + n > self._size:
            raise ValueError(f"Dram: bytes [{addr}, {addr + n}) outside the image of {self._size} bytes")

    def backdoor_write(self, ctx, addr: int, image: bytes) -> None:
        """Store ``image`` at byte ``addr`` of the DRAM image (testbench context)."""
        image = bytes(image)
        self._check(addr, len(image))
        for k, b in enumerate(image):
            a = addr + k
            ctx.set(self._mems[a % self._nl].data[a // self._nl], b)

    def backdoor_read(self, ctx, addr: int, n: int) -> bytes:
        self._check(addr, n)
        return bytes(ctx.get(self._mems[a % self._nl].data[a // self._nl]) for a in range(addr, addr + n))
