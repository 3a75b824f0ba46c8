"""Bootstrap replicates: one engine, two ways to weigh the resampled rows.

Resampling n rows with replacement gives the groups x {TN, FP, FN, TP} table of row counts a
Multinomial(n, row_cells / n) distribution, so the engine draws those counts directly, a batch of
resamples at a time (memory bounded by ``BATCH_CELLS``). A resampler then turns each resample's row
counts into the weight of each cell: unweighted, the counts themselves; weighted, the sum of the
weights of rows drawn uniformly within each cell (an exact row bootstrap: weights travel with their
rows). Every resample goes through the same statistics function as the point estimate; the
interval method (:mod:`~pytest_fairmind.metrics.intervals`) turns the replicates into intervals.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.intervals import Distribution, Part, Sample, samples
from pytest_fairmind.metrics.messages import resamples_undefined
from pytest_fairmind.metrics.rates import evaluate
from pytest_fairmind.metrics.table import Aggregate, Table

# Most multinomial cells drawn per batch (bounds memory for many groups).
BATCH_CELLS = 1 << 22
#: Keys of the engine's extra outputs: per-group rates (prefix) and rows of each replicate.
RATE, _ROWS = "rate:", "rows:"

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
    drawn: NDArray[np.int64] | None = None,
) -> dict[str, NDArray[Any]]:
    """``n_boot`` bootstrap values of every statistic, from the rows per cell (groups, 4) of the data
    (``drawn``: the rows per cell of each resample, if already drawn)."""
    groups = row_cells.shape[0]
    n = int(row_cells.sum())
    p = row_cells.reshape(-1).astype(np.float64) / n
    batch = max(1, min(n_boot, BATCH_CELLS // p.size))
    parts: dict[str, list[NDArray[Any]]] = {}
    for first in range(0, n_boot, batch):
        count = min(batch, n_boot - first)
        draws = rng.multinomial(n, p, size=count) if drawn is None else drawn[first : first + count]
        cells = resampler.weigh(draws, rng).reshape(count, groups, 4)
        rows = draws.reshape(count, groups, 4).sum(axis=-1)
        for name, values in statistics(cells, rows).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def label_samples(
    table: Table,
    row_cells: NDArray[np.int64],
    resampler: Resampler,
    min_group_size: int | None,
    required: Mapping[str, NDArray[np.bool_]] | None,
    n_boot: int,
    rng: np.random.Generator,
    drawn: NDArray[np.int64] | None = None,
) -> dict[str, Sample]:
    """The replicates of every aggregate of ``table`` (label metrics: functions of the cells), with
    the per-group rates the interval method needs."""

    def stats(cells: NDArray[np.float64], rows: NDArray[np.int64]) -> dict[str, NDArray[Any]]:
        ev = evaluate(table, cells, rows, min_group_size, table.between_columns, required)
        return {**ev.values, **{RATE + k: v for k, v in ev.rates.items()}, _ROWS: rows}

    raw = replicates(row_cells, resampler, stats, n_boot, rng, drawn)
    rows = raw.pop(_ROWS)
    eligible = rows >= (min_group_size or 1)
    rates = {k[len(RATE) :]: raw.pop(k) for k in list(raw) if k.startswith(RATE)}
    return samples(table.aggregates, [Part(rates, eligible)], raw)


def intervals_of(
    found: Mapping[str, Sample], point: Mapping[str, float], level: float
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """Each statistic's interval at ``level`` (the method of :mod:`~pytest_fairmind.metrics.intervals`)
    over the resamples where it is defined, and a warning for each statistic (defined in the data)
    that some resamples left undefined."""
    intervals: dict[str, tuple[float, float]] = {}
    warns: list[str] = []
    for name, sample in found.items():
        dist = Distribution.of(sample)
        intervals[name] = dist.interval(level) if dist.n_boot else (math.nan, math.nan)
        total = sample.value.shape[0]
        undefined = total - dist.n_boot
        if undefined and not math.isnan(point[name]):
            warns.append(resamples_undefined(name, undefined, total))
    return intervals, warns


def row_samples(
    weights: NDArray[np.float64],
    statistics: Callable[[NDArray[np.float64]], Mapping[str, NDArray[Any]]],
    aggregates: Sequence[Aggregate],
    eligible: NDArray[np.bool_],
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, Sample]:
    """Replicates of statistics that need the rows themselves (scores, regression): each resample
    weighs every row by how often n uniform draws picked it, times its own weight (an exact row
    bootstrap; memory O(rows) whatever ``n_boot``). ``statistics`` returns each aggregate's value
    and, under ``"rate:<column>"``, the per-group columns (groups,) it is built from."""
    n = len(weights)
    parts: dict[str, list[NDArray[Any]]] = {}
    for _ in range(n_boot):
        drawn = np.bincount(rng.integers(0, n, n), minlength=n)
        for name, value in statistics(weights * drawn).items():
            parts.setdefault(name, []).append(np.asarray(value, dtype=np.float64))
    raw = {name: np.stack(values) for name, values in parts.items()}
    rates = {k[len(RATE) :]: raw.pop(k) for k in list(raw) if k.startswith(RATE)}
    return samples(aggregates, [Part(rates, eligible)], raw)
