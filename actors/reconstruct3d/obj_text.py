"""Text rows of numbers for OBJ files, formatted by numpy: the same bytes as printf's "%.Nf" and "%d".

Python's `%` formatting costs ~0.2 µs per number: ~100 ms for a 20k-vertex head's OBJ, more than the
rest of its export. Here every line is a row of fixed character slots: digits come from integer
arithmetic (integers through a table of the values' range, formatted once), unused slots are
masked out, and the kept bytes are the text.

Rounding matches printf's (round half to even on the exact binary value): `x * 10**N` is rounded
with numpy; the rare products within a few ulps of a .5 (where rounding the product itself may
have moved them across it) are formatted by Python instead.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_INTEGER_DIGITS = 18  # int64 arithmetic, with a digit to spare


@dataclass(frozen=True)
class Column:
    """One column: its values (N,) and how to print them (decimals=None: an integer)."""

    values: np.ndarray
    decimals: int | None = None


def format_rows(prefix: str, columns: list[Column], separators: list[str]) -> bytes:
    """b"<prefix><c0><s0><c1><s1>...<cK>\\n" for each row; separators[i] follows column i
    (len(separators) == len(columns) - 1). The same bytes as ("\\n".join([pattern] * N) % values) + "\\n"."""
    if len(separators) != len(columns) - 1:
        raise ValueError("need one separator between each pair of columns.")
    rows = len(columns[0].values)
    if rows == 0:
        return b""
    integers = [np.asarray(c.values, dtype=np.int64) for c in columns if c.decimals is None]
    table = _IntegerTable.covering(integers) if integers else None
    pieces = [_literal(prefix)]
    for index, column in enumerate(columns):
        if column.decimals is None:
            pieces.append(table.lookup(np.asarray(column.values, dtype=np.int64)))
        else:
            pieces.append(_fixed_point(np.asarray(column.values, dtype=np.float64), column.decimals))
        pieces.append(_literal(separators[index] if index < len(separators) else "\n"))
    width = sum(chars.shape[-1] for chars, _ in pieces)
    text = np.empty((rows, width), dtype=np.uint8)
    keep = np.empty((rows, width), dtype=bool)
    start = 0
    for chars, used in pieces:
        text[:, start:start + chars.shape[-1]] = chars
        keep[:, start:start + chars.shape[-1]] = used
        start += chars.shape[-1]
    return text[keep].tobytes()


def _literal(text: str) -> tuple[np.ndarray, np.ndarray]:
    chars = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return chars, np.ones(len(chars), dtype=bool)


@dataclass(frozen=True)
class _IntegerTable:
    """Every integer of [low, high] formatted once, as (slots, kept) rows to gather by value."""

    low: int
    chars: np.ndarray  # (high - low + 1,) void rows of `width` bytes
    kept: np.ndarray  # (high - low + 1,) void rows of `width` bools
    width: int

    @classmethod
    def covering(cls, columns: list[np.ndarray]) -> "_IntegerTable":
        low = min(int(c.min()) for c in columns)
        high = max(int(c.max()) for c in columns)
        chars, kept = _integer_digits(np.arange(low, high + 1, dtype=np.int64))
        width = chars.shape[1]
        return cls(low, np.ascontiguousarray(chars).view(f"V{width}")[:, 0],
                   np.ascontiguousarray(kept).view(f"V{width}")[:, 0], width)

    def lookup(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = values - self.low  # gathering whole rows as single void items is several times faster
        return (self.chars[index].view(np.uint8).reshape(len(values), self.width),
                self.kept[index].view(np.bool_).reshape(len(values), self.width))


def _integer_digits(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(chars, keep) slots [sign][digits] of integers, by digit arithmetic."""
    return _slots(values < 0, np.abs(values), None)


def _fixed_point(values: np.ndarray, decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """(chars, keep) slots [sign][digits][.][decimals] of floats, as printf's "%.{decimals}f"."""
    product = values * 10.0**decimals
    # The product is off by at most half an ulp; where that could move it across a .5, let Python
    # (exact decimal conversion) format the number. (Exact ties cannot occur for decimals ≥ 1.)
    near_tie = np.abs(np.abs(product - np.trunc(product)) - 0.5) <= 4 * np.spacing(np.abs(product))
    negative = np.signbit(values)  # printf writes "-0.000000" for small negatives and for -0.0
    chars, keep = _slots(negative, np.abs(np.rint(product)).astype(np.int64), decimals)
    for row in np.flatnonzero(near_tie):
        text = (b"%.*f" % (decimals, values[row])).rjust(chars.shape[1])
        chars[row] = np.frombuffer(text, dtype=np.uint8)
        keep[row] = chars[row] != ord(" ")
    return chars, keep


def _slots(negative: np.ndarray, magnitude: np.ndarray, decimals: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Character slots [sign][integer digits, right-aligned][.][fraction digits] and which are used."""
    whole, fraction = np.divmod(magnitude, 10**decimals) if decimals else (magnitude, None)
    width = len(str(int(whole.max()) + 1))  # + 1: a number Python formats may round up a digit
    if width > MAX_INTEGER_DIGITS:
        raise ValueError("number too large for the OBJ formatter.")
    shown = np.ones(len(whole), dtype=np.int64)  # digits of the integer part (at least one)
    for power in range(1, width):
        shown += whole >= 10**power
    chars = [np.where(negative, ord("-"), ord(" "))]
    keep = [negative]
    for slot, power in enumerate(range(width - 1, -1, -1)):
        chars.append((whole // 10**power) % 10 + ord("0"))
        keep.append(shown >= width - slot)
    if decimals:
        everywhere = np.ones(len(whole), dtype=bool)
        chars.append(np.full(len(whole), ord(".")))
        keep.append(everywhere)
        for power in range(decimals - 1, -1, -1):
            chars.append((fraction // 10**power) % 10 + ord("0"))
            keep.append(everywhere)
    return np.stack(chars, axis=1).astype(np.uint8), np.stack(keep, axis=1)
