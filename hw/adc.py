"""``adc``: digitises one sampled column sum with deterministic clipping (docs/architecture.md §3.2;
golden model ``sim_models/crossbar.py``, ``adc_sums``).

``code = min(value, 2**adc_bits − 1)``. Combinational: one conversion per cycle, the result is
captured by the APU's shift-and-add register at the end of the conversion slot (so the conversion
latency lies inside the slot of §10.3). Conversions are counted by the APU (``adc_conversions``),
which knows whether a mux slot serves a used column.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, unsigned
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .unit import Unit

__all__ = ["Adc"]


class Adc(Unit):
    """Clipping ADC.

    Parameters
    ----------
    cfg : aras.config.Config
        ``adc_bits`` (code width) and the crossbar size (input width ``cfg.adc_exact_bits``).

    Attributes (ports)
    ------------------
    value : In(unsigned(cfg.adc_exact_bits))
        Sampled column sum (from the S&H).
    code : Out(unsigned(cfg.adc_bits))
        ``min(value, cfg.adc_max)``, combinational.
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        super().__init__({"value": In(unsigned(cfg.adc_exact_bits)), "code": Out(unsigned(cfg.adc_bits))})

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        if cfg.adc_bits >= cfg.adc_exact_bits:
            m.d.comb += self.code.eq(self.value)  # lossless: no sum can reach the clip level
        else:
            m.d.comb += self.code.eq(Mux(self.value > cfg.adc_max, cfg.adc_max, self.value))
        return m
