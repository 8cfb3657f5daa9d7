"""The stage-2 Gbuffer layout (docs/uarch-v3.md §6.2, decisions D1a, D4a, D14, D17): where each byte of a
tensor lies, in words, banks and rows, and the byte image of a tensor.

Not yet the layout in force: the golden model and the RTL still use architecture.md's CHW layout; this module
is the contract the banked Gbuffer will follow (migration step M2 of §6.9).

Tensor kinds, by the shape without batch: CNN (C, H, W) with channels innermost at a per-pixel pitch;
sequence (T, D) likewise per step; flat (K,) as one pixel of K channels; psum rows of int32 values.
Every item starts at a word; pad bytes (channels C … pitch − 1, and the tail of an item's last word) are 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ArasError


def _pow2(name: str, v: int) -> int:
    if not isinstance(v, int) or v < 1 or v & (v - 1):
        raise ArasError(f"layout: {name} must be a power of two, got {v!r}")
    return v


def pitch(c: int, w: int) -> int:
    """Bytes of one pixel of ``c`` channels in words of ``w`` bytes (D1a): the next power of two when c < w (a
    pixel never straddles a word and channel/pixel are bit slices of a byte address), else whole words."""
    _pow2("word bytes", w)
    if c < 1:
        raise ArasError(f"layout: channels must be >= 1, got {c}")
    return 1 << (c - 1).bit_length() if c < w else -(-c // w) * w


@dataclass(frozen=True)
class Geometry:
    """One activation tensor's layout: ``pixels`` pixels of ``channels`` bytes at ``pitch`` bytes each."""

    shape: tuple[int, ...]  # without batch: (C, H, W), (T, D) or (K,)
    word: int  # W = gbuf_word_bytes

    def __post_init__(self):
        if len(self.shape) not in (1, 2, 3) or any(not isinstance(d, int) or d < 1 for d in self.shape):
            raise ArasError(f"layout: tensor shape must be 1 to 3 positive dimensions, got {self.shape!r}")
        _pow2("word bytes", self.word)

    @property
    def channels(self) -> int:
        return self.shape[0] if len(self.shape) == 3 else self.shape[-1]

    @property
    def pixels(self) -> int:
        s = self.shape
        return s[1] * s[2] if len(s) == 3 else (s[0] if len(s) == 2 else 1)

    @property
    def pitch(self) -> int:
        return pitch(self.channels, self.word)

    @property
    def item_words(self) -> int:
        """Words of one item: flat tensors are dense (K bytes), the others ``pixels · pitch`` bytes."""
        b = self.shape[0] if len(self.shape) == 1 else self.pixels * self.pitch
        return -(-b // self.word)

    def byte(self, b, *idx):
        """Tensor-relative byte of element ``idx`` (c, h, w) / (t, d) / (k,) of item ``b`` (numpy broadcasts)."""
        base = np.asarray(b) * (self.item_words * self.word)
        if len(self.shape) == 3:
            c, h, w = idx
            return base + (np.asarray(h) * self.shape[2] + w) * self.pitch + c
        if len(self.shape) == 2:
            t, d = idx
            return base + np.asarray(t) * self.pitch + d
        return base + np.asarray(idx[0])

    def pack(self, x: np.ndarray) -> np.ndarray:
        """int8 (B, *shape) -> the uint8 byte image of B items (pad bytes 0, D17)."""
        x = np.asarray(x)
        if x.dtype != np.int8 or tuple(x.shape[1:]) != self.shape:
            raise ArasError(f"layout: pack needs int8 (B, {', '.join(map(str, self.shape))}), got {x.dtype} "
                            f"{tuple(x.shape)}")
        n = x.shape[0]
        out = np.zeros((n, self.item_words * self.word), np.uint8)
        out[:, : self._dense_bytes()] = self._pixels_view(x).reshape(n, -1)
        return out.reshape(-1)

    def unpack(self, image: np.ndarray, items: int) -> np.ndarray:
        """The inverse of :meth:`pack` (pad bytes are ignored)."""
        image = np.asarray(image, np.uint8).reshape(items, self.item_words * self.word)
        dense = image[:, : self._dense_bytes()].view(np.int8)
        if len(self.shape) == 1:
            return dense.copy()
        px = dense.reshape(items, self.pixels, self.pitch)[:, :, : self.channels]
        if len(self.shape) == 2:
            return px.copy()
        c, h, w = self.shape
        return np.ascontiguousarray(px.reshape(items, h, w, c).transpose(0, 3, 1, 2))

    def _dense_bytes(self) -> int:
        return self.shape[0] if len(self.shape) == 1 else self.pixels * self.pitch

    def _pixels_view(self, x: np.ndarray) -> np.ndarray:
        """(B, pixels, pitch) uint8 with the channels in the first C lanes, or (B, K) for flat tensors."""
        u = x.view(np.uint8)
        if len(self.shape) == 1:
            return u
        px = u.reshape(u.shape[0], self.channels, self.pixels).transpose(0, 2, 1) if len(self.shape) == 3 else u
        out = np.zeros((u.shape[0], self.pixels, self.pitch), np.uint8)
        out[:, :, : self.channels] = px
        return out


@dataclass(frozen=True)
class PsumGeometry:
    """A psum block's rows (D14): row (b, p) of ``ncols`` int32 values at word (b·P + p)·rw, value j at byte 4j."""

    positions: int  # P
    ncols: int
    word: int

    def __post_init__(self):
        _pow2("word bytes", self.word)
        if self.positions < 1 or self.ncols < 1:
            raise ArasError(f"layout: psum needs positions and ncols >= 1, got {self.positions}, {self.ncols}")

    @property
    def row_words(self) -> int:
        return -(-4 * self.ncols // self.word)

    def byte(self, b, p, j):
        return (np.asarray(b) * self.positions + p) * (self.row_words * self.word) + 4 * np.asarray(j)

    def pack(self, v: np.ndarray) -> np.ndarray:
        """int32 (B, P, ncols) -> the uint8 image (little-endian values, pad bytes 0)."""
        v = np.asarray(v)
        if v.dtype != np.int32 or v.ndim != 3 or v.shape[1:] != (self.positions, self.ncols):
            raise ArasError(f"layout: psum pack needs int32 (B, {self.positions}, {self.ncols}), got {v.dtype} "
                            f"{tuple(v.shape)}")
        rows = np.zeros((v.shape[0] * self.positions, self.row_words * self.word), np.uint8)
        rows[:, : 4 * self.ncols] = v.astype("<i4").reshape(-1, self.ncols).view(np.uint8)
        return rows.reshape(-1)

    def unpack(self, image: np.ndarray, items: int) -> np.ndarray:
        rows = np.asarray(image, np.uint8).reshape(items * self.positions, self.row_words * self.word)
        vals = np.ascontiguousarray(rows[:, : 4 * self.ncols]).view("<i4").astype(np.int32)
        return vals.reshape(items, self.positions, self.ncols)


@dataclass(frozen=True)
class Banks:
    """D4a: tensor words interleaved over groups of I banks; bank and row are bit slices of the word index."""

    bank_words: int  # BW = gbuf_bank_bytes / W
    interleave: int  # I = gbuf_interleave

    def __post_init__(self):
        _pow2("words per bank", self.bank_words)
        _pow2("interleave", self.interleave)

    def nbanks(self, words: int) -> int:
        """Banks a tensor of ``words`` words owns: I · ⌈words / (I·BW)⌉ (at least one group)."""
        group = self.interleave * self.bank_words
        return self.interleave * max(1, -(-words // group))

    def place(self, b0: int, w):
        """(bank, row) of tensor word ``w`` for a tensor whose banks start at ``b0`` (b0 ≡ 0 mod I)."""
        if b0 % self.interleave:
            raise ArasError(f"layout: a tensor's first bank must be a multiple of {self.interleave}, got {b0}")
        w = np.asarray(w)
        i = self.interleave
        return b0 + i * (w // (i * self.bank_words)) + w % i, (w // i) % self.bank_words
