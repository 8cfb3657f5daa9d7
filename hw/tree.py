"""Balanced reduction trees for wide combinational sums (crossbar column sums, popcounts, counters).

Python's ``sum()`` over Amaranth values builds a linear chain of adders: depth N instead of
⌈log2 N⌉, and event-driven simulators (Icarus) re-evaluate the chain in cascades. These helpers pair
terms level by level so that every adder sees operands of equal depth.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from amaranth.hdl import Const, Value, ValueCastable, unsigned

__all__ = ["tree_reduce", "tree_sum"]


def tree_reduce(op: Callable[[Value, Value], Value], terms: Iterable, *, empty=None) -> Value:
    """Reduce ``terms`` with the associative binary ``op`` as a balanced binary tree.

    Parameters
    ----------
    op : callable
        Associative binary operator on Amaranth values (e.g. ``operator.add``, ``operator.or_``).
    terms : iterable of value-like
        Operands; order is kept (left operand always precedes the right one).
    empty : value-like, optional
        Result for an empty ``terms``; without it an empty input raises ``ValueError``.

    Returns
    -------
    Value
        The reduction; for ``+`` Amaranth widens by one bit per level, so nothing overflows.
    """
    level = [Value.cast(t) for t in terms]
    if not level:
        if empty is None:
            raise ValueError("tree_reduce: no terms and no 'empty' value given")
        return Value.cast(empty)
    while len(level) > 1:
        nxt = [op(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def tree_sum(terms: Iterable, *, width: int | None = None) -> Value:
    """Balanced adder tree over ``terms`` (0 for no terms).

    Parameters
    ----------
    terms : iterable of value-like
        Addends (signed or unsigned; Amaranth's usual shape rules apply at each adder).
    width : int, optional
        Truncate the result to this many bits (keeps the sign if the sum is signed). Use it when
        the caller knows a tighter bound than the tree's natural width, e.g. a crossbar column sum
        ``≤ rows·(L−1)``.

    Returns
    -------
    Value
    """
    terms = [t if isinstance(t, (Value, ValueCastable)) else Const(t) for t in terms]
    total = tree_reduce(lambda a, b: a + b, terms, empty=Const(0, unsigned(1)))
    if width is None:
        return total
    if width < 0:
        raise ValueError(f"tree_sum: width must be >= 0, got {width}")
    return total[:width].as_signed() if total.shape().signed else total[:width]
