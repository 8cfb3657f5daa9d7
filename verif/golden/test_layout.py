"""The stage-2 Gbuffer layout helpers (aras/layout.py, docs/uarch-v3.md §6.2): hand-worked cases of §6.8, every
element's byte against the formula of the §6.2 table written out independently here, and round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aras.errors import ArasError
from aras.layout import Banks, Geometry, PsumGeometry, pitch


def test_pitch_by_hand():
    # C < W: the next power of two; C >= W: whole words (D1a).
    assert [pitch(c, 4) for c in (1, 2, 3, 4, 5, 6, 8, 9)] == [1, 2, 4, 4, 8, 8, 8, 12]
    assert [pitch(c, 32) for c in (3, 17, 32, 33, 64, 144)] == [4, 32, 32, 64, 64, 160]


def test_worked_example_6_8():
    # tiny, W = 4, BW = 256, I = 2 (docs/uarch-v3.md §6.8).
    t0, t1, t3 = Geometry((2, 4, 4), 4), Geometry((4, 2, 2), 4), Geometry((6,), 4)
    assert (t0.pitch, t0.item_words) == (2, 8)
    assert (t1.pitch, t1.item_words) == (4, 4)
    assert (t3.pitch, t3.item_words) == (8, 2)
    # conv0's position (oh, ow) = (0, 0) reads input rows h = 0..2 of t0: bytes (4h + w)·2 + c.
    assert int(t0.byte(0, 1, 2, 3)) == (4 * 2 + 3) * 2 + 1 == 23
    banks = Banks(256, 2)
    assert [banks.nbanks(g.item_words) for g in (t0, t1, t3)] == [2, 2, 2]
    bank, row = banks.place(0, np.arange(8))
    assert list(bank) == [0, 1] * 4 and list(row) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_interleave_groups_by_hand():
    # BW = 4 words, I = 2: a tensor of 20 words owns 2·⌈20/8⌉ = 6 banks; word w -> bank b0 + 2·(w // 8) + w % 2.
    banks = Banks(4, 2)
    assert banks.nbanks(20) == 6 and banks.nbanks(1) == 2
    bank, row = banks.place(4, np.arange(20))
    assert list(bank[:10]) == [4, 5, 4, 5, 4, 5, 4, 5, 6, 7]
    assert list(row[:10]) == [0, 0, 1, 1, 2, 2, 3, 3, 0, 0]
    assert int(bank[19]) == 4 + 2 * 2 + 1 and int(row[19]) == 1
    # every (bank, row) holds one word; any I consecutive words lie in I distinct banks
    assert len(set(zip(bank.tolist(), row.tolist(), strict=True))) == 20
    assert all(bank[w] != bank[w + 1] for w in range(19))


def test_psum_rows_by_hand():
    # D14: ncols = 5 int32 = 20 bytes -> rw = ⌈20/8⌉ = 3 words of 8 bytes; row (b, p) at word (b·P + p)·3.
    g = PsumGeometry(positions=4, ncols=5, word=8)
    assert g.row_words == 3
    assert int(g.byte(1, 2, 3)) == ((1 * 4 + 2) * 3) * 8 + 12
    v = np.arange(2 * 4 * 5, dtype=np.int32).reshape(2, 4, 5) - 7
    img = g.pack(v)
    assert img.size == 2 * 4 * 3 * 8
    assert img[8 * 3 * 1: 8 * 3 * 1 + 4].view("<i4")[0] == v[0, 1, 0]
    assert not img.reshape(8, 24)[:, 20:].any()  # pad bytes 0
    assert np.array_equal(g.unpack(img, 2), v)


def _expected_byte(shape, word, b, idx):
    """§6.2's table written out: item base, then pixel · pitch + channel (flat: dense)."""
    c = shape[0] if len(shape) == 3 else shape[-1]
    p = 1 << (c - 1).bit_length() if c < word else -(-c // word) * word
    pixels = shape[1] * shape[2] if len(shape) == 3 else (shape[0] if len(shape) == 2 else 1)
    dense = shape[0] if len(shape) == 1 else pixels * p
    item = -(-dense // word) * word
    if len(shape) == 3:
        return b * item + (idx[1] * shape[2] + idx[2]) * p + idx[0]
    if len(shape) == 2:
        return b * item + idx[0] * p + idx[1]
    return b * item + idx[0]


shapes = st.one_of(st.tuples(st.integers(1, 40), st.integers(1, 5), st.integers(1, 5)),
                   st.tuples(st.integers(1, 6), st.integers(1, 40)), st.tuples(st.integers(1, 70)))


@settings(max_examples=150, deadline=None)
@given(shapes, st.sampled_from([1, 2, 4, 8, 32]), st.integers(1, 3), st.integers(0, 2**32 - 1))
def test_pack_puts_every_element_at_its_byte(shape, word, items, seed):
    g = Geometry(shape, word)
    x = np.random.default_rng(seed).integers(-128, 128, (items,) + shape).astype(np.int8)
    img = g.pack(x)
    assert img.dtype == np.uint8 and img.size == items * g.item_words * word
    seen = np.zeros(img.size, bool)
    for b in range(items):
        for idx in np.ndindex(*shape):
            at = _expected_byte(shape, word, b, idx)
            assert int(g.byte(b, *idx)) == at
            assert img[at].view(np.int8) == x[(b,) + idx]
            seen[at] = True
    assert not img[~seen].any()  # pad bytes are 0 (D17)
    assert np.array_equal(g.unpack(img, items), x)


def test_bad_geometry_is_one_line():
    with pytest.raises(ArasError, match="word bytes must be a power of two, got 3"):
        Geometry((2, 2, 2), 3)
    with pytest.raises(ArasError, match="interleave must be a power of two"):
        Banks(256, 3)
    with pytest.raises(ArasError, match="first bank must be a multiple of 2, got 1"):
        Banks(256, 2).place(1, 0)
    with pytest.raises(ArasError, match=r"pack needs int8 \(B, 2, 2, 2\)"):
        Geometry((2, 2, 2), 4).pack(np.zeros((1, 2, 2, 2), np.int16))
