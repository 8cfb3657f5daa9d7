"""``apu``: analog processing unit (docs/architecture.md §3.3, §5.3, §10.3, §11; golden model
``sim_models/crossbar.py``, ``mvm(..., force_bit_serial=True)``).

``xbars_per_apu`` crossbars, each with a 1-bit DAC per row, a sample-and-hold (S&H) per column,
``xbar_cols / cols_per_adc`` clipping ADCs time-multiplexed over their columns, and one
shift-and-add unit per ADC updating one accumulator register per physical column:
``T_j := (first_plane ? 0 : T_j) + c_b·2^b·D_{b,j}`` with ``c_7 = −1`` and ``c_b = +1`` otherwise.

Pipeline (T = ``cfg.cycles(cfg.t_read_mvm_ns)``, c = ``cols_per_adc``, m = max(T, c)):

- **read**: an item is accepted (``item`` handshake) in cycle t, which is the first of its T analog
  read cycles [t, t+T); the DACs drive the payload bits in cycle t and a DAC register afterwards.
  The S&H samples the column sums at the edge ending cycle t+T−1.
- **convert**: cycles [t+T, t+T+c); in slot k ADC q converts column q·c + k of every running
  crossbar and its shift-and-add unit updates ``T_{q·c+k}``.
- The S&H lets the conversion of item i overlap the read of item i+1: ``item.ready`` is high when
  the read stage is free and the S&H will be free by the end of the new read, so items offered
  back to back are accepted every m cycles and item i reads in [s + i·m, s + i·m + T).
- **tsum**: after the conversion window of an item with ``last_plane``, the accumulators are copied
  into the ``tsum`` output register. **Latency**: ``tsum.valid`` rises in cycle ``t + T + c`` for an
  item accepted in cycle t (no back-pressure). If ``tsum`` still holds an untaken result when the
  next one completes, the whole pipeline freezes (reads, conversions and counters hold) until it is
  taken; back-pressure therefore changes timing only.

Unused rows (``i ≥ r_used``) and crossbars outside ``xmask`` are not driven; columns
``j ≥ c_phys`` and non-running crossbars are idle mux slots: not converted (D = 0), not counted, and
their ``T_j`` is 0 after a first plane. ``T_j`` is signed ``adc_bits + 9`` bits and wraps (8 planes
of one position never overflow).

Counters (64 bit, cleared by reset): ``xbar_reads`` += running crossbars per item and
``dac_activations`` += Σ ``r_used`` of running crossbars per item (at the handshake);
``adc_conversions`` += conversions of used columns, counted in the slot where they happen.

Crossbar cells are non-volatile (not cleared by reset); ``rd[x]``/``wr[x]`` pass row access of
crossbar x through to the write engine (§3.1 port semantics): one pair per crossbar, so several write
drivers may program different crossbars of one APU at once (§13.2: shared peripherals are no hazard).
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .adc import Adc
from .crossbar import Crossbar, read_signature, write_signature
from .shared import place
from .tree import tree_sum
from .unit import Unit

__all__ = ["Apu", "item_layout", "tsum_layout", "tsum_width"]

ACT_BITS = 8
COUNTER_BITS = 64


def tsum_width(cfg: Config) -> int:
    """Width of one shift-and-added column value T_j (signed), §3.3."""
    return cfg.adc_bits + 9


def item_layout(cfg: Config) -> data.StructLayout:
    """Payload of the ``item`` stream: one bit-plane of one position for all crossbars of the APU.

    ``bits[x]`` bit i drives row i of crossbar x; ``r_used[x]`` / ``c_phys[x]`` are the rows /
    physical columns of crossbar x's tile (DAC gating, conversion gating and counters).
    """
    x = cfg.xbars_per_apu
    return data.StructLayout({
        "xmask": unsigned(x),
        "plane": unsigned(3),
        "first_plane": unsigned(1),
        "last_plane": unsigned(1),
        "r_used": data.ArrayLayout(unsigned(cfg.xbar_rows.bit_length()), x),
        "c_phys": data.ArrayLayout(unsigned(cfg.xbar_cols.bit_length()), x),
        "bits": data.ArrayLayout(unsigned(cfg.xbar_rows), x),
    })


def tsum_layout(cfg: Config) -> data.StructLayout:
    """Payload of the ``tsum`` stream: ``t[x][j]`` = T_j of crossbar x after the position's last plane."""
    return data.StructLayout({
        "xmask": unsigned(cfg.xbars_per_apu),
        "t": data.ArrayLayout(data.ArrayLayout(signed(tsum_width(cfg)), cfg.xbar_cols), cfg.xbars_per_apu),
    })


def _meta_layout(cfg: Config) -> data.StructLayout:
    """What a pipeline stage keeps of its item besides the bits."""
    return data.StructLayout({
        "xmask": unsigned(cfg.xbars_per_apu),
        "plane": unsigned(3),
        "first_plane": unsigned(1),
        "last_plane": unsigned(1),
        "c_phys": data.ArrayLayout(unsigned(cfg.xbar_cols.bit_length()), cfg.xbars_per_apu),
    })


class Apu(Unit):
    """Analog processing unit: crossbars, DACs, S&H, ADCs and shift-and-add (see module docstring).

    Parameters
    ----------
    cfg : aras.config.Config
        Sizes and timing: ``xbars_per_apu``, ``xbar_rows``, ``xbar_cols``, ``cell_bits``,
        ``adc_bits``, ``cols_per_adc``, ``t_read_mvm_ns`` (→ ``T_mvm`` cycles).
    blackbox : bool
        Instantiate the crossbars as ``aras_xbar_macro`` black boxes (synthesis flows).

    Attributes (ports)
    ------------------
    item : In(stream.Signature(item_layout(cfg)))
        One bit-plane of one position (LSB plane first; ``first_plane`` clears the accumulators).
    tsum : Out(stream.Signature(tsum_layout(cfg)))
        Per crossbar and physical column T_j, after an item with ``last_plane``.
    rd : In(crossbar.read_signature(cfg)) [xbars_per_apu]
        Pass-through row read of crossbar x (combinational).
    wr : In(crossbar.write_signature(cfg)) [xbars_per_apu]
        Pass-through masked row write of crossbar x.
    busy : Out(1)
        An item is being read or converted, or ``tsum`` holds an untaken result.
    xbar_reads, dac_activations, adc_conversions : Out(64)
        Event counters of §11 (cleared by reset).

    Timing: ``tsum.valid`` in cycle t + T_mvm + cols_per_adc for a last-plane item accepted in cycle
    t; back-to-back items are accepted every max(T_mvm, cols_per_adc) cycles (§10.3).
    """

    def __init__(self, *, cfg: Config, blackbox: bool = False, stuck=None):
        self._take_cfg(cfg)
        self._stuck = stuck or {}  # crossbar of this APU -> {(row, column): level} (§8.7; simulation only)
        # (t_read_mvm_ns > 0 is validated by Config, so T_mvm >= 1.)
        self._blackbox = bool(blackbox)
        super().__init__({
            "item": In(stream.Signature(item_layout(cfg))),
            "tsum": Out(stream.Signature(tsum_layout(cfg))),
            "rd": In(read_signature(cfg)).array(cfg.xbars_per_apu),
            "wr": In(write_signature(cfg)).array(cfg.xbars_per_apu),
            "busy": Out(1),
            "xbar_reads": Out(COUNTER_BITS),
            "dac_activations": Out(COUNTER_BITS),
            "adc_conversions": Out(COUNTER_BITS),
        })

    @property
    def blackbox(self) -> bool:
        return self._blackbox

    @property
    def t_mvm(self) -> int:
        """Analog read cycles per item."""
        return self._cfg.cycles(self._cfg.t_read_mvm_ns)

    @property
    def period(self) -> int:
        """Item period m = max(T_mvm, cols_per_adc) for back-to-back items."""
        return max(self.t_mvm, self._cfg.cols_per_adc)

    @property
    def latency(self) -> int:
        """Cycles from a last-plane item's handshake cycle to the cycle ``tsum.valid`` is high."""
        return self.t_mvm + self._cfg.cols_per_adc

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        nx, rows, cols, c = cfg.xbars_per_apu, cfg.xbar_rows, cfg.xbar_cols, cfg.cols_per_adc
        n_adc = cols // c
        t_mvm = self.t_mvm
        tw = tsum_width(cfg)
        pay = self.item.payload

        xbars = []
        for x in range(nx):
            xb = Crossbar(cfg=cfg, blackbox=self._blackbox, stuck=self._stuck.get(x))
            place(m, f"xbar{x}", xb, "aras_xbar_bb" if self._blackbox else "aras_xbar")
            xbars.append(xb)

        # ---- row access pass-through (write engine) ------------------------------------------
        for x, xb in enumerate(xbars):
            wiring.connect(m, wiring.flipped(self.rd[x]), xb.rd)
            wiring.connect(m, wiring.flipped(self.wr[x]), xb.wr)

        # ---- pipeline state ------------------------------------------------------------------
        cv_busy = Signal()  # a conversion window is in progress
        cv_k = Signal(range(c))  # its slot
        cv_meta = Signal(_meta_layout(cfg))
        sh = [[Signal(cfg.adc_exact_bits, name=f"sh_x{x}_c{j}") for j in range(cols)] for x in range(nx)]
        acc = [[Signal(signed(tw), name=f"acc_x{x}_c{j}") for j in range(cols)] for x in range(nx)]
        out_valid = Signal()
        out_xmask = Signal(nx)
        out_t = [[Signal(signed(tw), name=f"out_x{x}_c{j}") for j in range(cols)] for x in range(nx)]

        cv_last_slot = cv_busy & (cv_k == c - 1)
        # Freeze everything while a finished position cannot leave (tsum back-pressure).
        stall = Signal()
        m.d.comb += stall.eq(cv_last_slot & cv_meta.last_plane & out_valid & ~self.tsum.ready)
        run = ~stall

        # An item accepted now samples at the end of cycle now+T-1; the running window must end by then.
        sh_free = 1 if c <= t_mvm else ~cv_busy | (cv_k >= c - t_mvm)

        # DAC inputs of the accepted item: unused rows and non-running crossbars stay off.
        new_bits = []
        for x in range(nx):
            row_on = Cat(pay.r_used[x] > i for i in range(rows)) & pay.xmask[x].replicate(rows)
            new_bits.append(pay.bits[x] & row_on)

        def meta_of_payload(dst):
            return [dst.xmask.eq(pay.xmask), dst.plane.eq(pay.plane), dst.first_plane.eq(pay.first_plane),
                    dst.last_plane.eq(pay.last_plane), dst.c_phys.eq(pay.c_phys)]

        cv_next_meta = Signal(_meta_layout(cfg))  # meta of the item whose read ends this cycle
        accept = self.item.valid & self.item.ready
        if t_mvm == 1:
            m.d.comb += self.item.ready.eq(sh_free & run)
            sample = accept
            for x, xb in enumerate(xbars):
                m.d.comb += xb.mvm.bits.eq(Mux(accept, new_bits[x], 0))
            m.d.comb += meta_of_payload(cv_next_meta)
            rd_busy = 0
        else:
            rd_busy = Signal()
            rd_rem = Signal(range(t_mvm))  # read cycles left after the current one
            rd_meta = Signal(_meta_layout(cfg))
            dac = [Signal(rows, name=f"dac_x{x}") for x in range(nx)]
            m.d.comb += self.item.ready.eq(~rd_busy & sh_free & run)
            sample = rd_busy & (rd_rem == 1) & run
            for x, xb in enumerate(xbars):
                m.d.comb += xb.mvm.bits.eq(Mux(rd_busy, dac[x], Mux(accept, new_bits[x], 0)))
            m.d.comb += cv_next_meta.eq(rd_meta)
            with m.If(accept):
                m.d.sync += [rd_busy.eq(1), rd_rem.eq(t_mvm - 1)]
                m.d.sync += [dac[x].eq(new_bits[x]) for x in range(nx)]
                m.d.sync += meta_of_payload(rd_meta)
            with m.Elif(rd_busy & run):
                m.d.sync += rd_rem.eq(rd_rem - 1)
                with m.If(rd_rem == 1):
                    m.d.sync += rd_busy.eq(0)

        # ---- conversion + shift-and-add (one unit per ADC, muxed over its columns) -----------------
        plane = cv_meta.plane
        first = cv_meta.first_plane
        upd = [[None] * n_adc for _ in range(nx)]
        conv_en = []
        for x in range(nx):
            for q in range(n_adc):
                adc = Adc(cfg=cfg)
                place(m, f"adc_x{x}_q{q}", adc, "aras_adc")
                m.d.comb += adc.value.eq(Array(sh[x][q * c:(q + 1) * c])[cv_k])
                en = Signal(name=f"conv_en_x{x}_q{q}")
                m.d.comb += en.eq(cv_busy & cv_meta.xmask[x] & (cv_k + q * c < cv_meta.c_phys[x]))
                conv_en.append(en)
                d = Mux(en, adc.code, 0)
                shifted = d << plane
                term = Mux(plane == ACT_BITS - 1, -shifted, shifted)  # c_7 = -1: MSB plane is negative
                base = Mux(first, 0, Array(acc[x][q * c:(q + 1) * c])[cv_k])
                u = Signal(signed(tw), name=f"sna_x{x}_q{q}")
                m.d.comb += u.eq(base + term)
                upd[x][q] = u

        # Emptying the output register comes first: a result completing in the same edge wins.
        with m.If(self.tsum.valid & self.tsum.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(cv_busy & run):
            for x in range(nx):
                for q in range(n_adc):
                    with m.Switch(cv_k):
                        for k in range(c):
                            with m.Case(k):
                                m.d.sync += acc[x][q * c + k].eq(upd[x][q])
            with m.If(cv_k == c - 1):
                m.d.sync += cv_busy.eq(0)
                with m.If(cv_meta.last_plane):
                    # Columns of the last slot are being written now: take the adder outputs.
                    m.d.sync += out_valid.eq(1)
                    m.d.sync += out_xmask.eq(cv_meta.xmask)
                    for x in range(nx):
                        for j in range(cols):
                            v = upd[x][j // c] if j % c == c - 1 else acc[x][j]
                            m.d.sync += out_t[x][j].eq(v)
            with m.Else():
                m.d.sync += cv_k.eq(cv_k + 1)

        # S&H sample (overrides the end of the previous window in the same edge).
        with m.If(sample):
            m.d.sync += [cv_busy.eq(1), cv_k.eq(0), cv_meta.eq(cv_next_meta)]
            for x, xb in enumerate(xbars):
                with m.If(cv_next_meta.xmask[x]):
                    m.d.sync += [sh[x][j].eq(xb.mvm.col_sum[j]) for j in range(cols)]

        # ---- tsum output register ------------------------------------------------------------------
        m.d.comb += [self.tsum.valid.eq(out_valid), self.tsum.payload.xmask.eq(out_xmask)]
        for x in range(nx):
            for j in range(cols):
                m.d.comb += self.tsum.payload.t[x][j].eq(out_t[x][j])
        m.d.comb += self.busy.eq(rd_busy | cv_busy | out_valid)

        # ---- counters ------------------------------------------------------------------------------
        with m.If(accept):
            m.d.sync += [
                self.xbar_reads.eq(self.xbar_reads + tree_sum(pay.xmask[x] for x in range(nx))),
                self.dac_activations.eq(self.dac_activations +
                                        tree_sum(Mux(pay.xmask[x], pay.r_used[x], 0) for x in range(nx))),
            ]
        with m.If(cv_busy & run):
            m.d.sync += self.adc_conversions.eq(self.adc_conversions + tree_sum(conv_en))
        return m
