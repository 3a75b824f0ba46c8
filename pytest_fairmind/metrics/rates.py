"""The metrics table evaluated on confusion cells: per-group rates, their spread, the aggregates.

``cells[..., g, c]`` holds group g's cell c (TN, FP, FN, TP); the leading axes, if any, are bootstrap
resamples, so one call evaluates a point estimate or a whole batch of resamples alike.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, reduce
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.table import Aggregate, GroupColumn, Table

Array = NDArray[np.float64]


@dataclass
class Spread:
    """A group column over the groups that take part: how many, the largest and smallest value."""

    n_valid: NDArray[np.intp]
    hi: Array
    lo: Array
    #: Enough groups to compare: at least 2, or the data's only group (fairlearn's 0 and 1 there).
    enough: NDArray[np.bool_]

    @property
    def at_parity(self) -> NDArray[np.bool_]:
        """0 in every group: a ratio of 0/0 that a worst case skips."""
        parity: NDArray[np.bool_] = self.enough & (self.hi == 0)
        return parity


@dataclass
class Evaluation:
    rates: dict[str, Array]  # per group column, (..., groups)
    spreads: dict[str, Spread]  # per column compared between groups
    values: dict[str, NDArray[Any]]  # per aggregate, (...)


class _Sums:
    """Sums of confusion cells (over the last axis of ``cells``), each computed once, left to right."""

    def __init__(self, cells: Array) -> None:
        self._cells = [cells[..., c] for c in range(cells.shape[-1])]
        self._done: dict[tuple[int, ...], Array] = {}

    def __call__(self, which: tuple[int, ...]) -> Array:
        if which not in self._done:
            self._done[which] = reduce(np.add, (self._cells[c] for c in which))
        return self._done[which]

    def rate(self, column: GroupColumn) -> Array:
        """A ``cells`` column's rate in every group (NaN where 0/0: call under ``np.errstate``)."""
        return self(column.numerator) / self(column.denominator)


def _rates(table: Table, sums: _Sums, columns: Sequence[GroupColumn]) -> dict[str, Array]:
    """Every ``cells`` and ``mean`` column of ``columns`` (a mean's parts computed as needed)."""
    rates: dict[str, Array] = {}

    def rate(column: GroupColumn) -> Array:
        if column.name not in rates:
            if column.form == "mean":
                parts = [rate(table.column(name)) for name in column.of]
                rates[column.name] = reduce(np.add, parts) / len(parts)
            else:
                rates[column.name] = sums.rate(column)
        return rates[column.name]

    for column in columns:
        if column.form != "over_max":
            rate(column)
    return {c.name: rates[c.name] for c in columns if c.form != "over_max"}


def _spread(rate: Array, eligible: NDArray[np.bool_], single: NDArray[np.bool_]) -> Spread:
    valid = eligible & ~np.isnan(rate)
    n_valid = valid.sum(axis=-1)
    hi = np.where(valid, rate, -np.inf).max(axis=-1, initial=-np.inf)
    lo = np.where(valid, rate, np.inf).min(axis=-1, initial=np.inf)
    # Groups left out (undefined rate, min_group_size) leaving one: NaN, nothing was compared.
    return Spread(n_valid, hi, lo, (n_valid >= 2) | ((n_valid == 1) & single))


def _between(kind: str, s: Spread) -> Array:
    if kind == "difference":
        return np.where(s.enough, s.hi - s.lo, np.nan)
    if kind == "ratio":
        return np.where(s.enough & (s.hi > 0), s.lo / s.hi, np.nan)
    return np.where(s.enough, s.lo if kind == "group_min" else s.hi, np.nan)


def _worst_case(
    aggregate: Aggregate, between: Callable[[str, str], Array], spreads: dict[str, Spread]
) -> Array:
    values = [between(aggregate.kind, c) for c in aggregate.columns]
    if len(values) == 1:
        return values[0]
    if aggregate.kind in ("difference", "group_max"):
        return reduce(np.maximum, values)  # NaN propagates: the worst case is unknown
    if aggregate.kind == "group_min":
        return reduce(np.minimum, values)
    # Ratios: a column at exact parity is skipped, not propagated as NaN; all skipped is NaN.
    worst = np.full_like(values[0], np.inf)
    skipped = np.ones_like(values[0], dtype=bool)
    for value, column in zip(values, aggregate.columns, strict=True):
        parity = spreads[column].at_parity
        worst = np.where(parity, worst, np.minimum(worst, value))
        skipped &= parity
    return np.where(skipped, np.nan, worst)


def evaluate(
    table: Table,
    cells: Array,
    rows: NDArray[Any],
    min_group_size: int | None,
    columns: Sequence[GroupColumn] | None = None,
    required: Mapping[str, NDArray[np.bool_]] | None = None,
) -> Evaluation:
    """Rates of ``columns`` (default: all), spreads of the compared ones, and every aggregate.

    ``required[column]`` marks the groups whose rate must be defined (those of the point estimate):
    a resample that leaves one undefined leaves the column's aggregates undefined, rather than
    silently comparing fewer groups."""
    with np.errstate(divide="ignore", invalid="ignore"):
        chosen = table.columns if columns is None else columns
        return _evaluate(table, cells, rows, min_group_size, chosen, required)


def _evaluate(
    table: Table,
    cells: Array,
    rows: NDArray[Any],
    min_group_size: int | None,
    columns: Sequence[GroupColumn],
    required: Mapping[str, NDArray[np.bool_]] | None,
) -> Evaluation:
    rates = _rates(table, _Sums(cells), columns)
    eligible = rows > 0
    single = eligible.sum(axis=-1) == 1
    if min_group_size is not None:
        eligible &= rows >= min_group_size
    spreads = {c.name: _spread(rates[c.name], eligible, single) for c in table.between_columns}
    if required is not None:
        for name, spread in spreads.items():
            if name in required and bool(required[name].any()):
                spread.enough = spread.enough & ~np.isnan(rates[name][..., required[name]]).any(axis=-1)
    for column in columns:
        if column.form == "over_max":  # the highest among the groups that enter aggregates
            hi = spreads[column.of[0]].hi[..., None]
            rates[column.name] = np.where(hi > 0, rates[column.of[0]] / hi, np.nan)
    rates = {c.name: rates[c.name] for c in columns}
    between = cache(lambda kind, column: _between(kind, spreads[column]))
    overall = _Sums(cells.sum(axis=-2))
    values: dict[str, NDArray[Any]] = {}
    overall_columns = [table.column(a.columns[0]) for a in table.aggregates if a.kind == "overall"]
    overall_rates = _rates(table, overall, overall_columns)
    for aggregate in table.aggregates:
        if aggregate.kind == "count":
            values[aggregate.name] = rows.sum(axis=-1)
        elif aggregate.kind == "overall":
            values[aggregate.name] = overall_rates[aggregate.columns[0]]
        else:
            values[aggregate.name] = _worst_case(aggregate, between, spreads)
    return Evaluation(rates, spreads, values)


def statistics(
    table: Table,
    min_group_size: int | None,
    cells: Array,
    rows: NDArray[Any],
    required: Mapping[str, NDArray[np.bool_]] | None = None,
) -> dict[str, NDArray[Any]]:
    """Every aggregate of a stack of resampled tables (rates only for the columns compared)."""
    return evaluate(table, cells, rows, min_group_size, table.between_columns, required).values


def between_groups(
    aggregates: Sequence[Aggregate],
    rates: dict[str, Array],
    rows: NDArray[Any],
    min_group_size: int | None,
    required: dict[str, NDArray[np.bool_]] | None = None,
) -> tuple[dict[str, Array], dict[str, Spread]]:
    """The between-groups aggregates of per-group columns that are not cell ratios (scores,
    regression), with the same rules; ``required[column]``: groups whose value must be defined (a
    resample in which one is not leaves the aggregate undefined, so the group set stays fixed)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        eligible = rows > 0
        single = eligible.sum(axis=-1) == 1
        if min_group_size is not None:
            eligible = eligible & (rows >= min_group_size)
        names = sorted({c for a in aggregates if a.kind not in ("overall", "count") for c in a.columns})
        spreads = {}
        for name in names:
            spread = _spread(rates[name], eligible, single)
            if required is not None and name in required:
                missing = np.isnan(rates[name][..., required[name]]).any(axis=-1)
                spread.enough = spread.enough & ~missing
            spreads[name] = spread
        between = cache(lambda kind, column: _between(kind, spreads[column]))
        values = {
            a.name: _worst_case(a, between, spreads) for a in aggregates if a.kind not in ("overall", "count")
        }
        return values, spreads
