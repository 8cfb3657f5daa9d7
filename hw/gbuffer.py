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
``crd[k]`` (:func:`comb_read_signature`, flipped): ``addr`` word address; ``data`` = the word, in the
    same cycle (combinational; the compute engine's input and restore reads, §13.2). Not counted (the
    user reports its §7.4 count on ``extra_reads``).
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

from amaranth import ClockSignal, Instance, Module, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config

from . import shared, sram
from .tree import tree_sum

STORAGE_MODULE = "aras_gbuf_storage"


def comb_read_signature(cfg: Config) -> wiring.Signature:
    """Combinational Gbuffer word read, seen from the user: ``addr`` (word) out, ``data`` back (§13.2:
    the compute engine's ports; the top adds them to the Gbuffer memory)."""
    words = cfg.gbuf_bytes // cfg.gbuf_word_bytes
    return wiring.Signature({"addr": Out(max(1, (words - 1).bit_length())), "data": In(8 * cfg.gbuf_word_bytes)})

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


class Gbuffer(wiring.Component):
    """The Gbuffer (see the module docstring for ports, timing and counters).

    Parameters
    ----------
    cfg : aras.config.Config
        Reads ``gbuf_banks``, ``gbuf_bank_bytes``, ``gbuf_word_bytes``.
    read_ports, write_ports : int
        Number of ports (≥ 1).
    comb_ports : int
        Number of combinational read ports ``crd`` (≥ 0).
    init : bytes
        Initial contents from byte address 0 (the rest is 0); not re-applied by reset.
    """

    def __init__(self, *, cfg: Config, read_ports: int = 1, write_ports: int = 1, comb_ports: int = 0,
                 init: bytes = b""):
        if not isinstance(cfg, Config):
            raise TypeError(f"Gbuffer: cfg must be an aras.config.Config, not {type(cfg).__name__}")
        for name, v, lo in (("read_ports", read_ports, 1), ("write_ports", write_ports, 1),
                            ("comb_ports", comb_ports, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"Gbuffer: {name} must be an integer >= {lo}, not {v!r}")
        init = bytes(init)
        if len(init) > cfg.gbuf_bytes:
            raise ValueError(f"Gbuffer: init has {len(init)} bytes, the buffer only {cfg.gbuf_bytes} "
                             f"(gbuf_banks × gbuf_bank_bytes)")
        self._cfg = cfg
        self._n_rd = read_ports
        self._n_wr = write_ports
        self._n_crd = comb_ports
        wb = cfg.gbuf_word_bytes
        padded = init + bytes(-len(init) % wb)
        self._init = [int.from_bytes(padded[k:k + wb], "little") for k in range(0, len(padded), wb)]
        self._mem = memory.Memory(shape=unsigned(8 * wb), depth=_words(cfg), init=self._init)
        super().__init__({
            "rd": In(ReadPortSignature(cfg)).array(read_ports),
            "crd": In(comb_read_signature(cfg)).array(comb_ports),
            "wr": In(WritePortSignature(cfg)).array(write_ports),
            "bank_on": In(cfg.gbuf_banks),
            "extra_reads": In(32),
            "gbuf_reads": Out(64),
            "gbuf_writes": Out(64),
            "gbuf_active_bank_cycles": Out(64),
        })

    @property
    def cfg(self) -> Config:
        return self._cfg

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
        if shared.library() is not None:
            self._storage_instance(m)
        else:
            m.submodules.mem = mem = self._mem
            for k in range(self._n_rd):
                p = mem.read_port(domain="sync")
                m.d.comb += [p.addr.eq(self.rd[k].addr), p.en.eq(self.rd[k].en), self.rd[k].data.eq(p.data)]
            for k in range(self._n_crd):
                p = mem.read_port(domain="comb")
                m.d.comb += [p.addr.eq(self.crd[k].addr), self.crd[k].data.eq(p.data)]
            for k in range(self._n_wr):
                p = mem.write_port(domain="sync", granularity=8)
                en = self.wr[k].en
                m.d.comb += [p.addr.eq(self.wr[k].addr), p.data.eq(self.wr[k].data),
                             p.en.eq(self.wr[k].be & en.replicate(wb))]
        reads = tree_sum([self.rd[k].en & self.rd[k].count for k in range(self._n_rd)] + [self.extra_reads])
        writes = tree_sum([self.wr[k].en & self.wr[k].count for k in range(self._n_wr)])
        active = tree_sum(list(self.bank_on))
        m.d.sync += [
            self.gbuf_reads.eq(self.gbuf_reads + reads),
            self.gbuf_writes.eq(self.gbuf_writes + writes),
            self.gbuf_active_bank_cycles.eq(self.gbuf_active_bank_cycles + active),
        ]
        return m

    def _storage_instance(self, m) -> None:
        """The storage array as an instance of ``hw.sram``'s module, added to the emitting library."""
        self._mem._MustUse__silence = True  # replaced by the instance
        cfg, wb = self._cfg, self._cfg.gbuf_word_bytes
        text = sram.storage_sv(STORAGE_MODULE, depth=_words(cfg), width=8 * wb, n_rd=self._n_rd,
                               n_crd=self._n_crd, n_wr=self._n_wr, init=self._init)
        lib = shared.library()
        if lib.setdefault(STORAGE_MODULE, text) != text:
            raise ValueError(f"Gbuffer: two Gbuffers of different shape in one design ({STORAGE_MODULE})")
        names = sram.port_names(self._n_rd, self._n_crd, self._n_wr)
        kw = {"i_clk": ClockSignal()}
        for p, (ad, en, d) in zip(self.rd, names["rd"], strict=True):
            kw.update({f"i_{ad}": p.addr, f"i_{en}": p.en, f"o_{d}": p.data})
        for p, (ad, d) in zip(self.crd, names["crd"], strict=True):
            kw.update({f"i_{ad}": p.addr, f"o_{d}": p.data})
        for p, (ad, d, be) in zip(self.wr, names["wr"], strict=True):
            kw.update({f"i_{ad}": p.addr, f"i_{d}": p.data, f"i_{be}": p.be & p.en.replicate(wb)})
        m.submodules.storage = Instance(STORAGE_MODULE, **kw)

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
