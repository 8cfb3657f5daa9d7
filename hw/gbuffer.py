"""``gbuffer``: the global activation buffer (docs/architecture.md §3.10, §7).

``gbuf_banks`` banks × ``gbuf_bank_bytes``, accessed in words of ``gbuf_word_bytes`` (W) bytes with
byte enables. Byte address A lies in word ``A // W`` (byte lane ``A % W``, little endian inside the
word) and bank ``A // gbuf_bank_bytes``. The banks are one Amaranth memory here: banking only matters
for power gating (counted) — bank conflicts and port limits are not modelled (§13.2), so the number of
ports is a constructor parameter. While ``hw.shared.emitting`` is active (Verilog generation) the
storage array is the behavioural module of ``hw/sram.py`` (same semantics; Amaranth's memory does not
scale to the ``paper`` port count), otherwise an ``amaranth.lib.memory.Memory``.

Interfaces (all in the ``sync`` domain)
---------------------------------------
``rd[k]`` (:data:`ReadPortSignature`, flipped): ``addr`` word address, ``en``, ``count``; ``data`` is
    the word one cycle after a cycle with ``en`` high (and holds while ``en`` is low). Reads return the
    memory contents before a same-cycle write (not transparent).
``crd8[k]`` / ``crd32[k]`` (:func:`comb_read_signature` of 1 / 4 bytes, flipped): ``addr`` byte address
    (4-aligned for ``crd32``); ``data`` = the byte / the int32 there, in the same cycle (combinational;
    the compute engine's input-vector and psum-restore reads, §13.2). Not counted (the user reports
    its §7.4 count on ``extra_reads``).
``wr[k]`` (:data:`WritePortSignature`, flipped): ``addr``, ``data``, ``be`` (one bit per byte),
    ``en``, ``count``; the enabled bytes are written at the clock edge. Two write ports writing the same
    word in one cycle is undefined (no unit does it).
``bank_on`` (``gbuf_banks`` bits): the power-enable mask from the controller (§7.3); it only drives the
    counter (contents survive in this model; a gated bank holds no live tensor by construction).
``extra_reads``: words added to ``gbuf_reads`` this cycle, for streams whose counted accesses (§7.4)
    are not one-to-one with port reads (the vector unit's line-buffer fill, see ``hw/vector_unit.py``).

Counters (64 bit, cleared by reset, i.e. 0 at cycle 0 of a run; §11):
``gbuf_reads += Σ_k (rd[k].en & rd[k].count) + extra_reads``; ``gbuf_writes += Σ_k (wr[k].en &
wr[k].count)``; ``gbuf_active_bank_cycles += popcount(bank_on)`` every cycle — so the controller
drives ``bank_on`` = 0 outside the run (and all ones when ``gbuf_adaptive`` is false). The ``count``
bits let each stream apply §7.4's last-word rule (a byte-enable write to the word it touched last is
not a new access).

The memory is not cleared by reset. Backdoor: ``init`` (bytes) at construction, and
:meth:`Gbuffer.backdoor_write` / :meth:`Gbuffer.backdoor_read` from an Amaranth testbench.
"""

from amaranth import Cat, ClockSignal, Instance, Module, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config

from . import shared, sram
from .tree import tree_sum
from .unit import Unit

STORAGE_MODULE = "aras_gbuf_storage"


def comb_read_signature(cfg: Config, nbytes: int) -> wiring.Signature:
    """Combinational Gbuffer read of ``nbytes`` (1 or 4) bytes, seen from the user: ``addr`` (byte
    address, aligned to ``nbytes``) out, ``data`` back (§13.2: the compute engine's ports)."""
    return wiring.Signature({"addr": Out(max(1, (cfg.gbuf_bytes - 1).bit_length())), "data": In(8 * nbytes)})

__all__ = ["Gbuffer", "ReadPortSignature", "WritePortSignature", "comb_read_signature"]


def ReadPortSignature(cfg: Config) -> wiring.Signature:  # noqa: N802 (a signature factory, named like a class)
    """Initiator's view of one read port (the user drives ``addr``/``en``/``count``)."""
    return wiring.Signature({
        "addr": Out(_addr_bits(cfg)),
        "en": Out(1),
        "count": Out(1),
        "data": In(8 * cfg.gbuf_word_bytes),
    })


def WritePortSignature(cfg: Config) -> wiring.Signature:  # noqa: N802
    """Initiator's view of one write port."""
    return wiring.Signature({
        "addr": Out(_addr_bits(cfg)),
        "data": Out(8 * cfg.gbuf_word_bytes),
        "be": Out(cfg.gbuf_word_bytes),
        "en": Out(1),
        "count": Out(1),
    })


def _words(cfg: Config) -> int:
    return cfg.gbuf_bytes // cfg.gbuf_word_bytes


def _addr_bits(cfg: Config) -> int:
    return max(1, (_words(cfg) - 1).bit_length())


class Gbuffer(Unit):
    """The Gbuffer (see the module docstring for ports, timing and counters).

    Parameters
    ----------
    cfg : aras.config.Config
        Reads ``gbuf_banks``, ``gbuf_bank_bytes``, ``gbuf_word_bytes``.
    read_ports, write_ports : int
        Number of ports (≥ 1).
    comb8_ports, comb32_ports : int
        Number of combinational byte / int32 read ports ``crd8`` / ``crd32`` (≥ 0).
    init : bytes
        Initial contents from byte address 0 (the rest is 0); not re-applied by reset.
    """

    def __init__(self, *, cfg: Config, read_ports: int = 1, write_ports: int = 1, comb8_ports: int = 0,
                 comb32_ports: int = 0, init: bytes = b""):
        self._take_cfg(cfg)
        for name, v, lo in (("read_ports", read_ports, 1), ("write_ports", write_ports, 1),
                            ("comb8_ports", comb8_ports, 0), ("comb32_ports", comb32_ports, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"Gbuffer: {name} must be an integer >= {lo}, not {v!r}")
        init = bytes(init)
        if len(init) > cfg.gbuf_bytes:
            raise ValueError(f"Gbuffer: init has {len(init)} bytes, the buffer only {cfg.gbuf_bytes} "
                             f"(gbuf_banks × gbuf_bank_bytes)")
        self._n_rd = read_ports
        self._n_wr = write_ports
        if comb32_ports and cfg.gbuf_word_bytes % 4:
            raise ValueError(f"Gbuffer: int32 ports need gbuf_word_bytes ({cfg.gbuf_word_bytes}) divisible by 4")
        self._n_c8 = comb8_ports
        self._n_c32 = comb32_ports
        wb = cfg.gbuf_word_bytes
        padded = init + bytes(-len(init) % wb)
        self._init = [int.from_bytes(padded[k:k + wb], "little") for k in range(0, len(padded), wb)]
        self._mem = memory.Memory(shape=unsigned(8 * wb), depth=_words(cfg), init=self._init)
        super().__init__({
            "rd": In(ReadPortSignature(cfg)).array(read_ports),
            "crd8": In(comb_read_signature(cfg, 1)).array(comb8_ports),
            "crd32": In(comb_read_signature(cfg, 4)).array(comb32_ports),
            "wr": In(WritePortSignature(cfg)).array(write_ports),
            "bank_on": In(cfg.gbuf_banks),
            "extra_reads": In(32),
            "gbuf_reads": Out(64),
            "gbuf_writes": Out(64),
            "gbuf_active_bank_cycles": Out(64),
        })

    @property
    def read_ports(self) -> int:
        return self._n_rd

    @property
    def write_ports(self) -> int:
        return self._n_wr

    @property
    def words(self) -> int:
        return _words(self._cfg)

    def elaborate(self, platform):
        m = Module()
        wb = self._cfg.gbuf_word_bytes
        wr_be = [p.be & p.en.replicate(wb) for p in self.wr]  # the bytes each write port writes
        if shared.library() is not None:
            self._storage_instance(m, wr_be)
        else:
            m.submodules.mem = mem = self._mem
            for k in range(self._n_rd):
                p = mem.read_port(domain="sync")
                m.d.comb += [p.addr.eq(self.rd[k].addr), p.en.eq(self.rd[k].en), self.rd[k].data.eq(p.data)]
            for ports, nbytes in ((self.crd8, 1), (self.crd32, 4)):
                for port in ports:
                    p = mem.read_port(domain="comb")
                    lane = ((port.addr % wb) // nbytes)[:max(1, (wb // nbytes - 1).bit_length())]
                    m.d.comb += [p.addr.eq(port.addr // wb), port.data.eq(p.data.word_select(lane, 8 * nbytes))]
            for k in range(self._n_wr):
                p = mem.write_port(domain="sync", granularity=8)
                m.d.comb += [p.addr.eq(self.wr[k].addr), p.data.eq(self.wr[k].data), p.en.eq(wr_be[k])]
        reads = tree_sum([self.rd[k].en & self.rd[k].count for k in range(self._n_rd)] + [self.extra_reads])
        writes = tree_sum([self.wr[k].en & self.wr[k].count for k in range(self._n_wr)])
        active = tree_sum(list(self.bank_on))
        m.d.sync += [
            self.gbuf_reads.eq(self.gbuf_reads + reads),
            self.gbuf_writes.eq(self.gbuf_writes + writes),
            self.gbuf_active_bank_cycles.eq(self.gbuf_active_bank_cycles + active),
        ]
        return m

    def _storage_instance(self, m, wr_be) -> None:
        """The storage array as replicas of ``hw.sram``'s module (added to the emitting library)."""
        self._mem._MustUse__silence = True  # replaced by the instances
        cfg, wb = self._cfg, self._cfg.gbuf_word_bytes
        lib = shared.library()
        wr = {"i_wr_addr": Cat(p.addr for p in self.wr), "i_wr_data": Cat(p.data for p in self.wr),
              "i_wr_be": Cat(wr_be)}
        for i, (rd, c8, c32) in enumerate(sram.split(self._n_rd, self._n_c8, self._n_c32, 8 * wb)):
            name = f"{STORAGE_MODULE}_r{len(rd)}_b{len(c8)}_w{len(c32)}"
            text = sram.storage_sv(name, depth=_words(cfg), width=8 * wb, n_rd=len(rd), n_c8=len(c8),
                                   n_c32=len(c32), n_wr=self._n_wr, init=self._init)
            if lib.setdefault(name, text) != text:
                raise ValueError(f"Gbuffer: two Gbuffers of different contents in one design ({name})")
            kw = {"i_clk": ClockSignal(), **wr}
            if rd:
                kw.update(i_rd_addr=Cat(self.rd[k].addr for k in rd), i_rd_en=Cat(self.rd[k].en for k in rd),
                          o_rd_data=Cat(self.rd[k].data for k in rd))
            for kind, ports, idx in (("c8", self.crd8, c8), ("c32", self.crd32, c32)):
                if idx:
                    kw[f"i_{kind}_addr"] = Cat(ports[k].addr for k in idx)
                    kw[f"o_{kind}_data"] = Cat(ports[k].data for k in idx)
            m.submodules[f"storage{i}"] = Instance(name, **kw)

    # ---------------------------------------------------------------- testbench backdoor
    def backdoor_write(self, ctx, addr: int, data: bytes) -> None:
        """Write ``data`` at byte address ``addr`` directly into the memory (testbench context)."""
        wb = self._cfg.gbuf_word_bytes
        data = bytes(data)
        if addr < 0 or addr + len(data) > self._cfg.gbuf_bytes:
            raise ValueError(f"Gbuffer.backdoor_write: bytes [{addr}, {addr + len(data)}) outside the buffer")
        pos = 0
        while pos < len(data):
            a = addr + pos
            word, lane = divmod(a, wb)
            n = min(wb - lane, len(data) - pos)
            old = ctx.get(self._mem.data[word]).to_bytes(wb, "little")
            new = old[:lane] + data[pos:pos + n] + old[lane + n:]
            ctx.set(self._mem.data[word], int.from_bytes(new, "little"))
            pos += n

    def backdoor_read(self, ctx, addr: int, n: int) -> bytes:
        """Read ``n`` bytes from byte address ``addr`` directly from the memory (testbench context)."""
        wb = self._cfg.gbuf_word_bytes
        if addr < 0 or addr + n > self._cfg.gbuf_bytes:
            raise ValueError(f"Gbuffer.backdoor_read: bytes [{addr}, {addr + n}) outside the buffer")
        first, last = addr // wb, (addr + n - 1) // wb if n else addr // wb - 1
        raw = b"".join(ctx.get(self._mem.data[w]).to_bytes(wb, "little") for w in range(first, last + 1))
        off = addr - first * wb
        return raw[off:off + n]
