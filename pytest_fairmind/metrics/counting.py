"""One counting pass: features and labels folded into one integer per row, counted by a blocked bincount.

Every value is a digit (an integer column whose values minus ``lo`` lie in ``[0, radix)``); a row's
key is its digits read in mixed radix (``(group * |y_true| + y_true) * |y_pred| + y_pred``), so one
``np.bincount`` counts every confusion cell of every group. The counts are then folded into the
groups x {TN, FP, FN, TP} table that every metric is a function of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Rows per block of the counting pass: the block's key buffer stays in cache.
CHUNK = 1 << 17
# Most cells (groups x label codes) one bincount may address; beyond it groups are compacted first.
MAX_CELLS = 1 << 22


@dataclass
class Digit:
    """An integer column whose values minus ``lo`` lie in ``[0, radix)``."""

    values: NDArray[Any]
    radix: int
    lo: int


@dataclass
class Counted:
    """Rows (and weight sums) per (group code, y_true code, y_pred code)."""

    digits: list[Digit]  # the group digit(s), then y_true's and y_pred's
    groups: int  # size of the group code space
    parts: NDArray[np.intp] | None  # per group code, each feature's code; None when codes are direct
    counts: NDArray[np.int64]  # (groups, |y_true codes|, |y_pred codes|)
    wsum: NDArray[np.float64] | None  # the same, summing sample_weight
    key: NDArray[np.intp] | None  # each row's key, when the pass materialised it


@dataclass
class Confusion:
    """The groups x {TN, FP, FN, TP} table of the groups that hold rows (cell = 2 * actual + predicted)."""

    present: NDArray[np.intp]  # group code of each row of the table
    row_cells: NDArray[np.int64]  # rows per cell
    cells: NDArray[np.float64]  # weight per cell (rows when unweighted)
    rows: NDArray[np.int64]  # rows per group
    to_cell: NDArray[np.intp]  # (y_true code, y_pred code) -> cell

    def take(self, order: NDArray[np.intp]) -> Confusion:
        """The same table with its groups in ``order``."""
        return Confusion(
            self.present[order], self.row_cells[order], self.cells[order], self.rows[order], self.to_cell
        )


def _const(digits: Sequence[Digit]) -> int:
    """The constant that shifts every digit by its ``lo``, wrapped to int64."""
    const = 0
    size = 1
    for d in reversed(digits):
        const -= d.lo * size
        size *= d.radix
    const %= 1 << 64
    return const - (1 << 64) if const >= 1 << 63 else const


def _keys(digits: Sequence[Digit], start: int, stop: int, out: NDArray[np.intp], const: int) -> None:
    # Horner over the digits in int64 (dtype forced: int8 inputs must not overflow in an int8 loop);
    # wrap-around is harmless because the true key fits.
    np.multiply(digits[0].values[start:stop], digits[1].radix, out=out, dtype=np.intp, casting="unsafe")
    for i in range(1, len(digits)):
        np.add(out, digits[i].values[start:stop], out=out, dtype=np.intp, casting="unsafe")
        if i + 1 < len(digits):
            out *= digits[i + 1].radix
    if const:
        out += const


def _row_keys(digits: Sequence[Digit], n: int) -> NDArray[np.intp]:
    """Every row's mixed-radix key, as one array."""
    key = np.empty(n, dtype=np.intp)
    _keys(digits, 0, n, key, _const(digits))
    return key


def _count(
    digits: Sequence[Digit], weights: NDArray[np.float64] | None, n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64] | None, NDArray[np.intp] | None]:
    """Row counts (and weight sums) per mixed-radix cell; also the key array if it was materialised."""
    size = math.prod(d.radix for d in digits)
    const = _const(digits)
    if size <= CHUNK // 8 and n > CHUNK:
        counts = np.zeros(size, dtype=np.int64)
        wsum = np.zeros(size, dtype=np.float64) if weights is not None else None
        buf = np.empty(CHUNK, dtype=np.intp)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            key = buf[: stop - start]
            _keys(digits, start, stop, key, const)
            counts += np.bincount(key, minlength=size)
            if wsum is not None and weights is not None:
                wsum += np.bincount(key, weights=weights[start:stop], minlength=size)
        return counts, wsum, None
    key = _row_keys(digits, n)
    counts = np.bincount(key, minlength=size).astype(np.int64, copy=False)
    wsum = None
    if weights is not None:
        wsum = np.bincount(key, weights=weights, minlength=size).astype(np.float64, copy=False)
    return counts, wsum, key


def _combine(digits: Sequence[Digit], label_cells: int) -> tuple[Digit, NDArray[np.intp]]:
    """Cross feature digits into one compact group digit when their product space is too large to count.

    Returns the digit and, per group code, the code of each feature (groups x features). Compaction
    is sort-based (np.unique), which keeps codes in lexicographic order; this path is rare.
    """
    code: NDArray[np.intp] | None = None
    parts = np.zeros((1, 0), dtype=np.intp)
    radix = 1
    for digit in digits:
        fc = np.asarray(digit.values, dtype=np.intp)
        if digit.lo:
            fc = fc - digit.lo
        f_radix = digit.radix
        f_parts = np.arange(f_radix, dtype=np.intp)
        if f_radix * label_cells > MAX_CELLS:
            f_parts, inv = np.unique(fc, return_inverse=True)
            fc, f_radix = inv.reshape(-1).astype(np.intp, copy=False), len(f_parts)
        if code is None:
            code, parts, radix = fc, f_parts[:, None], f_radix
            continue
        combined = code * f_radix + fc
        if radix * f_radix * label_cells <= MAX_CELLS:
            parts = np.column_stack([np.repeat(parts, f_radix, axis=0), np.tile(f_parts, radix)])
            code, radix = combined, radix * f_radix
        else:
            uniq, inv = np.unique(combined, return_inverse=True)
            parts = np.column_stack([parts[uniq // f_radix], f_parts[uniq % f_radix]])
            code, radix = inv.reshape(-1).astype(np.intp, copy=False), len(uniq)
    assert code is not None
    return Digit(code, radix, 0), parts


def count_cells(
    features: Sequence[Digit], truth: Digit, pred: Digit, weights: NDArray[np.float64] | None, n: int
) -> Counted:
    """Count every (group, y_true, y_pred) combination in one pass over the rows."""
    label_cells = truth.radix * pred.radix
    space = math.prod(d.radix for d in features)
    parts: NDArray[np.intp] | None = None
    group_digits = list(features)
    if space * label_cells > MAX_CELLS:
        combined, parts = _combine(features, label_cells)
        group_digits, space = [combined], combined.radix
    digits = [*group_digits, truth, pred]
    counts, wsum, key = _count(digits, weights, n)
    shape = (space, truth.radix, pred.radix)
    return Counted(
        digits, space, parts, counts.reshape(shape), None if wsum is None else wsum.reshape(shape), key
    )


def confusion(
    counted: Counted, truth_positive: NDArray[np.bool_], pred_positive: NDArray[np.bool_]
) -> Confusion:
    """Fold label codes into TN/FP/FN/TP (``truth_positive[code]``: is that y_true code pos_label?)."""
    to_cell = (2 * truth_positive.astype(np.intp))[:, None] + pred_positive.astype(np.intp)[None, :]
    rows_per_group = counted.counts.sum(axis=(1, 2))
    present = np.flatnonzero(rows_per_group)

    def fold(table: NDArray[Any]) -> NDArray[Any]:
        t = table.reshape(counted.groups, -1)[present]
        out = np.zeros((len(present), 4), dtype=t.dtype)
        for code, cell in enumerate(to_cell.reshape(-1).tolist()):
            out[:, cell] += t[:, code]
        return out

    row_cells = fold(counted.counts)
    wsum = counted.wsum
    cells = fold(wsum).astype(np.float64) if wsum is not None else row_cells.astype(np.float64)
    return Confusion(present, row_cells, cells, rows_per_group[present], to_cell)


def feature_codes(counted: Counted, present: NDArray[np.intp], radices: Sequence[int]) -> list[NDArray[Any]]:
    """Each feature's code for every group code in ``present``."""
    if counted.parts is None:
        return list(np.unravel_index(present, radices))
    parts = counted.parts
    return [parts[present, j] for j in range(len(radices))]


def cell_of_row(counted: Counted, table: Confusion, n: int) -> NDArray[np.intp]:
    """Each row's cell in ``table``: its group's position there times 4 plus TN/FP/FN/TP."""
    key = counted.key if counted.key is not None else _row_keys(counted.digits, n)
    label_cells = counted.counts.shape[1] * counted.counts.shape[2]
    lookup = np.full(counted.groups * label_cells, -1, dtype=np.intp)
    base = table.present[:, None] * label_cells + np.arange(label_cells)[None, :]
    lookup[base] = np.arange(len(table.present))[:, None] * 4 + table.to_cell.reshape(-1)[None, :]
    return lookup[key]
