"""TFLite fixed-point primitives as combinational Amaranth logic (docs/architecture.md §6.2).

Shared by ``datapath`` (requantization) and ``vector_unit`` (add, leaky/prelu). Every function adds
combinational logic to the given module ``m`` and returns a signal; nothing is registered (latency
0 cycles), the caller places pipeline registers. Intermediate results are named signals, not nested
expressions: a primitive uses its operands several times, and nested expressions would be inlined
(and grow exponentially) in the simulator. Semantics equal ``sim_models.quant``:

- :func:`sat32`  — saturate to [−2^31, 2^31 − 1];
- :func:`srdhm`  — SaturatingRoundingDoublingHighMul (exact 64-bit product, TFLite nudge, truncating
  division by 2^31; the only overflow, INT32_MIN·INT32_MIN, saturates to INT32_MAX);
- :func:`rdbpot` — RoundingDivideByPOT, halves away from zero, exponent 0 … 31;
- :func:`mbqm`   — MultiplyByQuantizedMultiplier with ``sat32(x·2^max(shift, 0))`` before SRDHM (§6.2,
  decision #13); MBQM_STOE is ``mbqm`` with shift ≤ 0;
- :func:`trunc_div` — C division (toward zero), used by the TFLite average-pool rounding.

Legal shifts are −31 … 30 (QuantizeMultiplier never returns others); shifts outside that range are
clamped to a left or right shift of 31 (defined hardware, not a TFLite result).
"""

from amaranth import Const, Module, Mux, Signal, Value, signed, unsigned

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

__all__ = ["INT32_MAX", "INT32_MIN", "mbqm", "rdbpot", "sat32", "srdhm", "trunc_div"]


def _sig(m: Module, value, shape, name: str) -> Signal:
    s = Signal(shape, name=name)
    m.d.comb += s.eq(value)
    return s


def sat32(m: Module, v, *, name: str = "sat") -> Signal:
    """Saturate a value of any width to signed(32)."""
    v = _sig(m, v, Value.cast(v).shape(), f"{name}_in")
    lo = v < INT32_MIN if v.shape().signed else Const(0, 1)
    out = Mux(v > INT32_MAX, Const(INT32_MAX, signed(32)), Mux(lo, Const(INT32_MIN, signed(32)), v[:32].as_signed()))
    return _sig(m, out, signed(32), name)


def srdhm(m: Module, a, b, *, name: str = "srdhm") -> Signal:
    """SaturatingRoundingDoublingHighMul of two signed(32) values -> signed(32)."""
    a = _sig(m, a, signed(32), f"{name}_a")
    b = _sig(m, b, signed(32), f"{name}_b")
    ab = _sig(m, a * b, signed(64), f"{name}_ab")  # exact
    nudged = _sig(m, ab + Mux(ab >= 0, Const(1 << 30, signed(32)), Const(1 - (1 << 30), signed(32))),
                  signed(65), f"{name}_nudged")
    # C division truncates toward zero: bias negative numerators by 2^31 − 1 before the arithmetic shift.
    q = (nudged + Mux(nudged < 0, Const((1 << 31) - 1, unsigned(31)), 0)) >> 31
    both_min = (a == INT32_MIN) & (b == INT32_MIN)
    return _sig(m, Mux(both_min, Const(INT32_MAX, signed(32)), q[:32].as_signed()), signed(32), name)


def rdbpot(m: Module, x, exponent, *, name: str = "rdbpot") -> Signal:
    """RoundingDivideByPOT of a signed value by 2^exponent (unsigned, 0 … 31); same width as ``x``."""
    x = Value.cast(x)
    width = len(x)
    x = _sig(m, x, signed(width), f"{name}_x")
    e = _sig(m, exponent, unsigned(5), f"{name}_e")
    mask = _sig(m, (Const(1, 32) << e)[:32] - 1, unsigned(32), f"{name}_mask")
    rem = x.as_unsigned() & mask
    thr = (mask >> 1) + (x < 0)
    return _sig(m, ((x >> e) + (rem > thr))[:width].as_signed(), signed(width), name)


def mbqm(m: Module, x, mult, shift, *, name: str = "mbqm") -> Signal:
    """MultiplyByQuantizedMultiplier: ``rdbpot(srdhm(sat32(x << max(shift, 0)), mult), max(-shift, 0))``.

    ``x`` signed (any width, usually 32), ``mult`` signed(32), ``shift`` signed (usually 8 bits).
    Returns signed(32).
    """
    x = _sig(m, x, Value.cast(x).shape(), f"{name}_x")
    shift = _sig(m, shift, Value.cast(shift).shape(), f"{name}_shift")
    left = Mux(shift > 31, 31, Mux(shift > 0, shift, 0))[:5]
    right = Mux(shift < -31, 31, Mux(shift < 0, -shift, 0))[:5]
    scaled = sat32(m, x << left, name=f"{name}_sat")
    return rdbpot(m, srdhm(m, scaled, mult, name=f"{name}_hm"), right, name=name)


def trunc_div(m: Module, num, den, *, name: str = "div") -> Signal:
    """C integer division (toward zero) of a signed ``num`` by an unsigned, nonzero ``den``
    (division by zero gives 0, Amaranth's rule). Result as wide as ``num`` plus one bit."""
    num = Value.cast(num)
    width = len(num) + 1
    num = _sig(m, num, signed(width - 1) if num.shape().signed else unsigned(width - 1), f"{name}_num")
    mag = _sig(m, Mux(num < 0, -num, num).as_unsigned(), unsigned(width), f"{name}_mag")
    q = _sig(m, mag // den, unsigned(width), f"{name}_q")
    return _sig(m, Mux(num < 0, -q, q), signed(width), name)
