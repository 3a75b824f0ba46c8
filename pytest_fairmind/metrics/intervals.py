"""The interval method: percentile bootstrap made aware of max- and min-type aggregates.

A between-groups aggregate is an extremum of smooth components: a ``_difference`` is the largest
``rate[g] - rate[h]`` over ordered pairs of groups (and columns: ``equalized_odds_difference``),
a ``_ratio`` the smallest ``rate[g] / rate[h]``, ``_group_min`` / ``_group_max`` the smallest or
largest ``rate[g]``, a multiclass worst case the extremum over classes too. The plain percentile
interval of an extremum under-covers when components are close (the estimate is the max of noisy
values, biased away from the truth), so each side of the interval is taken from the components:

- the side the extremum is biased towards (the upper end of a max) is the extremum of the
  components' percentile ends at the full level: it misses only when the component attaining the
  true extremum misses, so at most ``alpha``;
- the other side (the lower end of a max) is the extremum of the contenders' ends at a level
  ``gamma`` below ``alpha``: the contenders are the components attaining the extremum in at least
  :data:`MIN_WEIGHT` of the replicates, and ``gamma`` is such that in only ``alpha`` of the
  replicates some contender lies in its own ``gamma``-tail (the Westfall-Young min-p adjustment:
  about ``alpha / m`` for ``m`` independent contenders, ``alpha`` for one). So it misses at most
  ``alpha`` too; with one contender it is the plain percentile end.

p-values follow the same rule (the intersection-union test on one side, min-p on the other), so
an interval's end and the p-value at that end agree. The adjustment counts every contender; the
ends use the :data:`MAX_COMPONENTS` most frequent ones (one left out can only widen the interval).
docs/metrics.md, "Intervals", has the measured coverage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.table import Aggregate

#: The interval method's name (``FairnessResult.ci_method``, evidence payloads).
METHOD = "extremum-percentile"
#: Most components kept per aggregate (the most frequent contenders), and the least share of
#: replicates a contender attains the extremum in.
MAX_COMPONENTS = 3
MIN_WEIGHT = 0.002
#: Most contenders the adjustment counts (all of them, in practice).
MAX_CONTENDERS = 256

Array = NDArray[np.float64]
_MAX_KINDS = ("difference", "group_max")
_PAIRED = ("difference", "ratio")


@dataclass(frozen=True)
class Part:
    """Per-group values of a stack of replicates: ``rates[column]`` (B, groups); ``eligible`` (B,
    groups) or (groups,): the groups that may enter aggregates."""

    rates: Mapping[str, Array]
    eligible: NDArray[np.bool_]


@dataclass(frozen=True)
class Sample:
    """The replicates of one aggregate: ``values[j]`` of component j (NaN where undefined).

    ``extreme`` is ``"max"``, ``"min"`` or ``"plain"`` (a smooth statistic: one component, weight 1);
    ``low``/``high`` the aggregate's natural range (a difference is >= 0, a ratio in [0, 1])."""

    extreme: str
    shares: Array  # of the replicates in which each component attains the extremum
    values: Array  # (components, B)
    value: Array  # (B,) the aggregate itself
    low: float = -math.inf
    high: float = math.inf
    #: Per replicate, the smallest tail share over every contender (None: one contender).
    lowest: Array | None = None


def plain(values: NDArray[np.float64]) -> Sample:
    value = np.asarray(values, dtype=np.float64)
    return Sample("plain", np.ones(1), value[None, :], value)


def _range(kind: str) -> tuple[float, float]:
    if kind == "difference":
        return 0.0, math.inf
    if kind == "ratio":
        return 0.0, 1.0
    return -math.inf, math.inf


def _candidates(
    kind: str, rate: Array, eligible: NDArray[np.bool_]
) -> tuple[Array, NDArray[np.intp], NDArray[np.intp]]:
    """Per replicate: this column's extremum and the group(s) attaining it (hi, lo; -1 if unused)."""
    valid = np.broadcast_to(eligible, rate.shape) & ~np.isnan(rate)
    hi = np.where(valid, rate, -np.inf).argmax(axis=-1)
    lo = np.where(valid, rate, np.inf).argmin(axis=-1)
    rows = np.arange(rate.shape[0])
    r_hi, r_lo = rate[rows, hi], rate[rows, lo]
    enough = valid.sum(axis=-1) >= (2 if kind in _PAIRED else 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "difference":
            value, a, b = r_hi - r_lo, hi, lo
        elif kind == "ratio":
            value, a, b = np.where(r_hi > 0, r_lo / r_hi, np.nan), lo, hi
        elif kind == "group_max":
            value, a, b = r_hi, hi, np.full_like(hi, -1)
        else:
            value, a, b = r_lo, lo, np.full_like(lo, -1)
    return np.where(enough, value, np.nan), a, b


def _component(kind: str, rate: Array, eligible: NDArray[np.bool_], a: int, b: int) -> Array:
    ok = np.broadcast_to(eligible, rate.shape)
    r = np.where(ok, rate, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "difference":
            return r[:, a] - r[:, b]
        if kind == "ratio":
            return np.where(r[:, b] > 0, r[:, a] / r[:, b], np.nan)
        return r[:, a]


def extremum(aggregate: Aggregate, parts: Sequence[Part], value: Array) -> Sample:
    """The components of a between-groups ``aggregate`` over ``parts`` (classes; one for binary
    tasks), from replicates whose aggregate values are ``value`` (B,); NaN there stays NaN."""
    kind = aggregate.kind
    if kind not in ("difference", "ratio", "group_min", "group_max"):
        return plain(value)
    is_max = kind in _MAX_KINDS
    defined = ~np.isnan(value)
    groups = next(iter(parts[0].rates.values())).shape[-1]
    best = np.full(value.shape, -np.inf if is_max else np.inf)
    best_id = np.full(value.shape, -1, dtype=np.int64)
    n_columns = len(aggregate.columns)
    for p, part in enumerate(parts):
        for c, column in enumerate(aggregate.columns):
            cand, a, b = _candidates(kind, part.rates[column], part.eligible)
            better = cand > best if is_max else cand < best
            ids = (((p * n_columns + c) * groups + a) * (groups + 1)) + (b + 1)
            best_id = np.where(better, ids, best_id)
            best = np.where(better, cand, best)
    chosen = best_id[defined & (best_id >= 0)]
    if chosen.size == 0:
        return Sample("plain", np.ones(1), value[None, :], value, *_range(kind))
    ids, counts = np.unique(chosen, return_counts=True)
    shares = counts / max(int(defined.sum()), 1)
    contenders = max(1, int((shares >= MIN_WEIGHT).sum()))
    top = np.argsort(-counts, kind="stable")[: min(contenders, MAX_CONTENDERS)]
    rows = []
    for code in ids[top].tolist():
        rest, b = divmod(int(code), groups + 1)
        rest, a = divmod(rest, groups)
        p, c = divmod(rest, n_columns)
        part = parts[p]
        comp = _component(kind, part.rates[aggregate.columns[c]], part.eligible, a, b - 1)
        rows.append(np.where(defined, comp, np.nan))
    low, high = _range(kind)
    extreme = "max" if is_max else "min"
    every = np.vstack(rows)
    # The adjustment counts every contender; the ends use the leading ones (a contender left out
    # can only move the union side's end outwards: conservative).
    lowest = lowest_shares(every, "le" if is_max else "ge") if len(rows) > 1 else None
    kept = slice(0, MAX_COMPONENTS)
    return Sample(extreme, shares[top][kept].astype(np.float64), every[kept], value, low, high, lowest)


def lowest_shares(values: Array, side: str) -> Array:
    """Per replicate, the smallest share over components of replicates at or beyond it (on
    ``side``, with the ``(k + 1) / (B + 1)`` correction): how far into its own tail the most
    extreme component lies (NaN: undefined everywhere)."""
    out = np.full(values.shape[1], np.inf)
    for v in values:
        order = np.argsort(v)  # NaN last
        k = int((~np.isnan(v)).sum())
        ranked = v[order[:k]]
        if side == "le":
            fair = np.searchsorted(ranked, ranked, side="right")
        else:
            fair = k - np.searchsorted(ranked, ranked, side="left")
        share = np.full(v.shape, np.inf)
        share[order[:k]] = (fair + 1.0) / (k + 1.0)
        np.minimum(out, share, out=out)
    return np.where(np.isinf(out), np.nan, out)


def samples(
    aggregates: Sequence[Aggregate], parts: Sequence[Part], values: Mapping[str, Array]
) -> dict[str, Sample]:
    """Every aggregate of ``values`` (B replicates each) as a :class:`Sample`."""
    by_name = {a.name: a for a in aggregates}
    out: dict[str, Sample] = {}
    for name, value in values.items():
        aggregate = by_name.get(name)
        out[name] = plain(value) if aggregate is None else extremum(aggregate, parts, value)
    return out


class Exact:
    """One component's replicates (sorted, NaN removed): shares with the ``(k + 1) / (B + 1)``
    correction, ends as order statistics."""

    def __init__(self, values: Array) -> None:
        self.values = np.sort(values[~np.isnan(values)])
        self.size = int(self.values.size)

    def share(self, bound: float, side: str) -> float:
        return float(self.shares(np.asarray([bound]), side)[0])

    def shares(self, bounds: Array, side: str) -> Array:
        """``share`` of many bounds at once."""
        if side == "le":
            fair = np.searchsorted(self.values, bounds, side="right")
        else:
            fair = self.size - np.searchsorted(self.values, bounds, side="left")
        return np.asarray((fair + 1.0) / (self.size + 1.0), dtype=np.float64)

    def end(self, alpha: float, side: str) -> float:
        rank = min(self.size, max(1, math.ceil((1.0 - alpha) * (self.size + 1) - 1e-9)))
        return float(self.values[rank - 1] if side == "le" else self.values[self.size - rank])


class Grid:
    """One component as quantiles at fixed probabilities: shares and ends interpolated; a share
    beyond the grid is reported as the grid's smallest probability (it cannot resolve below)."""

    def __init__(self, probs: Sequence[float], quantiles: Sequence[float]) -> None:
        self.probs = np.asarray(probs, dtype=np.float64)
        self.quantiles = np.maximum.accumulate(np.asarray(quantiles, dtype=np.float64))
        self.size = 0 if bool(np.isnan(self.quantiles).all()) else len(self.probs)

    def share(self, bound: float, side: str) -> float:
        q, p = self.quantiles, self.probs
        if side == "le":
            below = float(np.interp(bound, q, p)) if bound >= q[0] else 0.0
            return 1.0 if bound >= q[-1] else max(below, float(p[0]))
        above = 1.0 - float(np.interp(bound, q, p)) if bound <= q[-1] else 0.0
        return 1.0 if bound <= q[0] else max(above, float(p[0]))

    def end(self, alpha: float, side: str) -> float:
        level = 1.0 - alpha if side == "le" else alpha
        return float(np.interp(level, self.probs, self.quantiles))


Component = Exact | Grid


@dataclass(frozen=True)
class Adjust:
    """The multiplicity adjustment of the union side: ``cdf(g)`` is the share of replicates in which
    some component lies in its own ``g``-tail (Westfall-Young min-p: Bonferroni's ``m * g`` at
    most, less for correlated components), given at ``probs``; ``inverse`` is its inverse."""

    probs: tuple[float, ...]
    values: tuple[float, ...]

    def cdf(self, gamma: float) -> float:
        p, h = self.probs, self.values
        if gamma < p[0]:
            return gamma * h[0] / p[0]
        return float(np.interp(gamma, p, h))

    def inverse(self, alpha: float) -> float:
        p, h = self.probs, self.values
        if alpha < h[0]:
            return alpha * p[0] / h[0]
        return float(np.interp(alpha, h, p))

    @classmethod
    def identity(cls) -> Adjust:
        return cls((0.0, 1.0), (0.0, 1.0))


def _min_p(lowest: Array, probs: Sequence[float]) -> Adjust:
    """The Westfall-Young adjustment: the share of replicates whose smallest tail share is <= p."""
    ok = np.sort(lowest[~np.isnan(lowest)])
    grid = np.asarray(probs, dtype=np.float64)
    h: Array = np.searchsorted(ok, grid, side="right") / max(ok.size, 1)
    h = np.maximum.accumulate(np.maximum(h, grid))  # never below the unadjusted share
    return Adjust(tuple(grid.tolist()), tuple(h.tolist()))


#: Where an exact distribution evaluates its adjustment (fine near 0, where levels live).
ADJUST_PROBS: tuple[float, ...] = tuple(
    sorted({*np.geomspace(1e-5, 0.2, 60).round(8).tolist(), 0.3, 0.4, 0.5, 0.75, 1.0})
)


@dataclass(frozen=True)
class Distribution:
    """The bootstrap distribution of one aggregate under :data:`METHOD` (see the module docstring).

    ``p_value(bound, "le")`` is the evidence that the metric is <= ``bound`` (small: it is not):
    the share of replicates at or below ``bound``, combined over components as the method says;
    ``one_sided(alpha, "le")`` the upper end of the one-sided ``1 - alpha`` interval, ``"ge"`` the
    lower end. ``interval(level)`` is the two-sided interval recorded as ``ci_low``/``ci_high``."""

    n_boot: int
    resolution: float
    extreme: str
    components: tuple[Component, ...]
    adjust: Adjust
    low: float = -math.inf
    high: float = math.inf
    method: str = METHOD

    @classmethod
    def of(cls, sample: Sample) -> Distribution:
        comps = tuple(Exact(v) for v in sample.values)
        n = int((~np.isnan(sample.value)).sum())
        adjust = Adjust.identity()
        if sample.extreme != "plain" and sample.lowest is not None:
            adjust = _min_p(sample.lowest, ADJUST_PROBS)
        return cls(n, 1.0 / (n + 1), sample.extreme, comps, adjust, sample.low, sample.high)

    def _defined(self) -> list[Component]:
        return [c for c in self.components if c.size]

    def p_value(self, bound: float, side: str) -> float:
        """Share of replicates on the fair side of ``bound`` ("le": <= bound), method-corrected."""
        if side not in ("le", "ge"):
            raise ValueError(f"side must be 'le' or 'ge', got {side!r}")
        comps = self._defined()
        if not comps or math.isnan(bound):
            return math.nan
        if self.extreme == "plain":
            return comps[0].share(bound, side)
        if (side == "le") == (self.extreme == "max"):  # fair only if every component is
            lowest = min(c.share(bound, side) for c in comps)
            return min(1.0, max(self.adjust.cdf(lowest), lowest, self.resolution))
        return max(c.share(bound, side) for c in comps)

    def one_sided(self, alpha: float, side: str) -> float:
        """ "le": the upper end of the one-sided ``1 - alpha`` interval; "ge": the lower end."""
        if side not in ("le", "ge"):
            raise ValueError(f"side must be 'le' or 'ge', got {side!r}")
        comps = self._defined()
        if not comps:
            return math.nan
        if self.extreme == "plain":
            end = comps[0].end(alpha, side)
        else:
            union = (side == "ge") == (self.extreme == "max")  # the end the adjustment sets
            level = min(alpha, self.adjust.inverse(alpha)) if union else alpha
            ends = [c.end(level, side) for c in comps]
            end = max(ends) if self.extreme == "max" else min(ends)
        return min(max(end, self.low), self.high)

    def interval(self, level: float) -> tuple[float, float]:
        alpha = (1.0 - level) / 2.0
        return self.one_sided(alpha, "ge"), self.one_sided(alpha, "le")
