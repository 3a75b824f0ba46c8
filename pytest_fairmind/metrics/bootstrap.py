"""Percentile-bootstrap intervals: one engine, two ways to weigh the resampled rows.

Resampling n rows with replacement gives the groups x {TN, FP, FN, TP} table of row counts a
Multinomial(n, row_cells / n) distribution, so the engine draws those counts directly, a batch of
resamples at a time (memory bounded by ``BATCH_CELLS``). A resampler then turns each resample's row
counts into the weight of each cell: unweighted, the counts themselves; weighted, the sum of the
weights of rows drawn uniformly within each cell (an exact row bootstrap: weights travel with their
rows). Every resample goes through the same statistics function as the point estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.messages import resamples_undefined

# Most multinomial cells drawn per batch (bounds memory for many groups).
BATCH_CELLS = 1 << 22

#: The aggregates of a stack of tables: (cells (B, groups, 4), rows (B, groups)) -> name -> (B,).
Statistics = Callable[[NDArray[np.float64], NDArray[np.int64]], Mapping[str, NDArray[Any]]]


class Resampler(Protocol):
    def weigh(self, draws: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.float64]:
        """Weight per cell (B, cells) of resamples that drew ``draws`` rows per cell (B, cells)."""
        ...


class CellCounts:
    """Unweighted rows: a cell weighs its row count."""

    def weigh(self, draws: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.float64]:
        return draws.astype(np.float64)


class RowWeights:
    """Weighted rows: the rows of each cell are drawn uniformly and their weights summed.

    Sorting rows by cell once keeps each cell's weights contiguous; O(rows) per resample.
    """

    def __init__(
        self, cell_of_row: NDArray[np.intp], weights: NDArray[np.float64], sizes: NDArray[Any]
    ) -> None:
        self.n = len(cell_of_row)
        self.size = len(sizes)
        order = np.argsort(
            cell_of_row.astype(np.uint16) if self.size <= 1 << 16 else cell_of_row, kind="stable"
        )
        self.sorted_w = weights[order]
        self.sizes = sizes
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.occupied = np.flatnonzero(sizes).tolist()
        self.segments = {
            k: self.sorted_w[int(self.starts[k]) : int(self.starts[k] + sizes[k])] for k in self.occupied
        }
        self.index_type = np.int32 if self.n < 1 << 31 else np.int64  # half the index bandwidth

    def weigh(self, draws: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.float64]:
        wsum = np.zeros(draws.shape, dtype=np.float64)
        for b in range(len(draws)):
            if len(self.occupied) <= 1024:
                for k in self.occupied:
                    c = int(draws[b, k])
                    if c:
                        segment = self.segments[k]
                        wsum[b, k] = segment[rng.integers(0, len(segment), c, dtype=self.index_type)].sum()
            else:  # many cells: one vectorised pass instead of a Python loop per cell
                seg = np.repeat(np.arange(self.size), draws[b])
                pick = self.starts[seg] + (rng.random(self.n) * self.sizes[seg]).astype(np.intp)
                wsum[b] = np.bincount(seg, weights=self.sorted_w[pick], minlength=self.size)
        return wsum


def replicates(
    row_cells: NDArray[np.int64],
    resampler: Resampler,
    statistics: Statistics,
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, NDArray[Any]]:
    """``n_boot`` bootstrap values of every statistic, from the rows per cell (groups, 4) of the data."""
    groups = row_cells.shape[0]
    n = int(row_cells.sum())
    p = row_cells.reshape(-1).astype(np.float64) / n
    batch = max(1, min(n_boot, BATCH_CELLS // p.size))
    parts: dict[str, list[NDArray[Any]]] = {}
    for first in range(0, n_boot, batch):
        count = min(batch, n_boot - first)
        draws = rng.multinomial(n, p, size=count)
        cells = resampler.weigh(draws, rng).reshape(count, groups, 4)
        rows = draws.reshape(count, groups, 4).sum(axis=-1)
        for name, values in statistics(cells, rows).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def percentile_intervals(
    samples: Mapping[str, NDArray[Any]], point: Mapping[str, float], level: float
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Each statistic's interval at ``level`` over the resamples where it is defined, and a warning for
    each statistic (defined in the data) that some resamples left undefined."""
    alpha = (1.0 - level) / 2.0
    intervals: dict[str, tuple[float, float]] = {}
    warns: list[str] = []
    for name, sample in samples.items():
        ok = sample[~np.isnan(sample)]
        if ok.size == 0:
            intervals[name] = (math.nan, math.nan)
        else:
            low, high = np.quantile(ok, [alpha, 1.0 - alpha])
            intervals[name] = (float(low), float(high))
        undefined = int(sample.size - ok.size)
        if undefined and not math.isnan(point[name]):
            warns.append(resamples_undefined(name, undefined, sample.size))
    return intervals, warns


def row_bootstrap(
    weights: NDArray[np.float64],
    statistics: Callable[[NDArray[np.float64]], Mapping[str, NDArray[Any]]],
    point: Mapping[str, NDArray[Any]],
    n_boot: int,
    level: float,
    rng: np.random.Generator,
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Percentile intervals of statistics that need the rows themselves (scores, regression): each
    resample weighs every row by how often n uniform draws picked it, times its own weight (an exact
    row bootstrap; memory O(rows) whatever ``n_boot``)."""
    n = len(weights)
    parts: dict[str, list[float]] = {}
    for _ in range(n_boot):
        drawn = np.bincount(rng.integers(0, n, n), minlength=n)
        for name, value in statistics(weights * drawn).items():
            parts.setdefault(name, []).append(float(value))
    samples = {name: np.asarray(values) for name, values in parts.items()}
    return percentile_intervals(samples, {k: float(v) for k, v in point.items()}, level)
