"""Scores by group: ROC AUC, average precision, Brier score, log loss, BPSN and BNSP AUC from one sort.

The rows are sorted once by (group, score) with two stable sorts (by score, then by group), so each
group is a contiguous run of ascending scores. Equal scores form tie blocks, within a group and
across all rows; every metric is then a handful of sums over blocks, as scikit-learn's tie handling
gives (a tied positive-negative pair counts one half; average precision steps once per distinct
score). BPSN AUC (background positives, subgroup negatives) and BNSP AUC (subgroup positives,
background negatives) follow Borkan et al. 2019, "Nuanced metrics for measuring unintended bias
with real data for text classification": the background's counts are the whole data's minus the
group's, block by block.

The sort does not depend on the weights, so a row bootstrap (each row weighted by how often it was
drawn) reuses it: every resample is a few weighted ``np.bincount`` passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.bootstrap import RATE, row_samples
from pytest_fairmind.metrics.inputs import GroupLabel
from pytest_fairmind.metrics.intervals import Sample
from pytest_fairmind.metrics.messages import group_text, small_groups, too_few_groups
from pytest_fairmind.metrics.rates import between_groups
from pytest_fairmind.metrics.table import (
    AP,
    BNSP,
    BPSN,
    BRIER,
    LOG_LOSS,
    ROC,
    SCORE_AGGREGATES,
    Aggregate,
    Point,
)

Array = NDArray[np.float64]

_UNDEFINED_WHY = {
    ROC: "needs actual positives and negatives",
    AP: "needs actual positives",
    BPSN: "needs actual negatives in the group and actual positives outside it",
    BNSP: "needs actual positives in the group and actual negatives outside it",
}


def _group_sort(group: NDArray[np.intp], score: Array, groups: int) -> tuple[NDArray[np.intp], ...]:
    """Rows by (group, score): one sort of the scores (order within ties is irrelevant: ties are
    blocks), then a stable radix sort by the small group codes. Also returns the score order."""
    by_score: NDArray[np.intp] = np.argsort(score)
    g = group[by_score].astype(np.uint8 if groups <= 1 << 8 else np.uint16 if groups <= 1 << 16 else np.intp)
    by_group: NDArray[np.intp] = np.argsort(g, kind="stable")
    return by_score, by_group


def _starts(values: Array, also: NDArray[Any] | None = None) -> NDArray[np.bool_]:
    """Where a new tie block starts in sorted ``values`` (or where ``also`` changes)."""
    new = np.empty(len(values), dtype=bool)
    new[0] = True
    np.not_equal(values[1:], values[:-1], out=new[1:])
    if also is not None:
        new[1:] |= also[1:] != also[:-1]
    return new


def _block_ids(new: NDArray[np.bool_]) -> NDArray[np.intp]:
    ids: NDArray[np.intp] = np.cumsum(new, dtype=np.intp)
    ids -= 1
    return ids


class ScoreFamily:
    """The score metrics of every group, for the data's weights or any reweighting of its rows."""

    def __init__(
        self,
        group: NDArray[np.intp],
        actual: NDArray[np.intp],
        score: Array,
        weights: Array | None,
        rows: NDArray[np.int64],
        min_group_size: int | None,
    ) -> None:
        self.groups = len(rows)
        self.rows = rows
        self.min_group_size = min_group_size
        self.probabilities = bool(score.min() >= 0.0 and score.max() <= 1.0)
        by_score, by_group = _group_sort(group, score, self.groups)
        order = by_score[by_group]
        self.n = len(order)
        s = score[order]
        self.group = group[order]
        self.positive = actual[order].astype(np.float64)
        self.weights = None if weights is None else weights[order]
        # Tie blocks within groups (in sorted order), and over all rows (in score order).
        new = _starts(s, self.group)
        self.block = _block_ids(new)
        self.blocks = int(self.block[-1]) + 1
        first = np.flatnonzero(new)
        self.block_group = self.group[first]
        self.last_block = np.searchsorted(self.block_group, np.arange(self.groups), side="right") - 1
        self.first_block = np.searchsorted(self.block_group, np.arange(self.groups), side="left")
        self.first_row = np.searchsorted(self.group, np.arange(self.groups), side="left")
        self.untied = self.blocks == self.n  # every block one row: block sums are the rows
        new_all = _starts(score[by_score])
        self.block_global = _block_ids(new_all)[by_group][first]
        self.global_blocks = int(self.block_global.max()) + 1 if len(first) else 0
        if self.probabilities:
            eps = np.finfo(np.float64).eps
            p = np.where(self.positive > 0, s, 1.0 - s)  # probability given to the actual class
            self.log_loss_term = -np.log(np.clip(p, eps, 1 - eps))
            self.brier_term = (self.positive - s) ** 2
        self.aggregates: tuple[Aggregate, ...] = tuple(
            a for a in SCORE_AGGREGATES if self.probabilities or a.columns[0] not in (BRIER, LOG_LOSS)
        )

    @property
    def columns(self) -> list[str]:
        return [ROC, AP, *([BRIER, LOG_LOSS] if self.probabilities else []), BPSN, BNSP]

    def rates(self, w: Array | None) -> dict[str, Array]:
        """Every score column per group, rows weighted by ``w`` (in sorted order; None: 1 each)."""
        g = self.block_group
        ones = np.ones(self.n) if w is None else w
        if self.untied:
            bp, bw = ones * self.positive, ones
        else:
            bp = np.asarray(np.bincount(self.block, ones * self.positive, self.blocks), dtype=np.float64)
            bw = np.asarray(np.bincount(self.block, ones, self.blocks), dtype=np.float64)
        bn = bw - bp
        cp, cn = np.cumsum(bp), np.cumsum(bn)  # inclusive, over all blocks in (group, score) order
        pos, neg = self._block_sums(bp), self._block_sums(bn)
        end = self.last_block
        before_n = cn[end] - neg  # negatives of the groups sorted before each group
        total_p, total_n = float(pos.sum()), float(neg.sum())
        # Global tie blocks: positives above (half the ties) / negatives below each block's score.
        gp = np.bincount(self.block_global, bp, self.global_blocks)
        gn = np.bincount(self.block_global, bn, self.global_blocks)
        above = total_p - np.cumsum(gp) + 0.5 * gp
        below = np.cumsum(gn) - 0.5 * gn
        with np.errstate(divide="ignore", invalid="ignore"):
            # Pairs (positive, negative) of a group ordered right, ties counting one half.
            pairs = self._block_sums(bp * (cn - 0.5 * bn)) - pos * before_n
            auc = pairs / (pos * neg)
            # Precision at each block's score: the group's weight at or above it.
            cw = cp + cn
            precision = (cp[end][g] - cp + bp) / (cw[end][g] - cw + bw)
            # Blocks no resample drew (weight 0) add nothing (their precision is 0/0).
            ap = self._block_sums(np.where(bp > 0, bp * precision, 0.0)) / pos
            # Background positives above a subgroup negative: all positives above it minus the group's.
            bpsn = (self._block_sums(bn * above[self.block_global]) - pairs) / ((total_p - pos) * neg)
            bnsp = (self._block_sums(bp * below[self.block_global]) - pairs) / ((total_n - neg) * pos)
            out = {ROC: auc, AP: ap, BPSN: bpsn, BNSP: bnsp}
            if self.probabilities:
                total = pos + neg
                brier = self.brier_term if w is None else w * self.brier_term
                log_loss = self.log_loss_term if w is None else w * self.log_loss_term
                out[BRIER] = np.add.reduceat(brier, self.first_row) / total
                out[LOG_LOSS] = np.add.reduceat(log_loss, self.first_row) / total
        undefined = {ROC: (pos == 0) | (neg == 0), AP: pos == 0}
        undefined[BPSN] = (neg == 0) | (total_p - pos <= 0)
        undefined[BNSP] = (pos == 0) | (total_n - neg <= 0)
        for name, mask in undefined.items():
            out[name] = np.where(mask, np.nan, out[name])
        return {name: out[name] for name in self.columns}

    def _block_sums(self, values: Array) -> Array:
        """Per group, the sum of a value per block (every group holds a block: reduceat is exact)."""
        sums: Array = np.add.reduceat(values, self.first_block)
        return sums

    def _weights(self) -> Array | None:
        return self.weights

    def point(self, groups: Sequence[Mapping[str, GroupLabel]]) -> Point:
        rates = self.rates(self._weights())
        values, _ = between_groups(self.aggregates, rates, self.rows, self.min_group_size)
        warns: list[str] = []
        eligible = self.rows >= (self.min_group_size or 1)
        if self.min_group_size is not None:
            warns += small_groups(groups, self.rows, self.min_group_size)
        for name, why in _UNDEFINED_WHY.items():
            for i in np.flatnonzero(np.isnan(rates[name]) & eligible).tolist():
                warns.append(
                    f"group {group_text(groups[i])}: {name} is undefined ({why}); left out of its aggregates"
                )
        if not self.probabilities:
            warns.append("y_score is not in [0, 1]: brier_score and log_loss are not computed")
        warns += too_few_groups(self.aggregates, rates, values)
        self._required = {name: ~np.isnan(rates[name]) & eligible for name in rates}
        return Point(
            {name: float(v) for name, v in values.items()},
            {name: column.tolist() for name, column in rates.items()},
            warns,
        )

    def statistics(self, w: Array) -> dict[str, Array]:
        rates = self.rates(w)
        values, _ = between_groups(self.aggregates, rates, self.rows, self.min_group_size, self._required)
        return {**values, **{RATE + name: rate for name, rate in rates.items()}}

    def samples(self, n_boot: int, rng: np.random.Generator) -> dict[str, Sample]:
        """Row-bootstrap replicates: each resample reweights the rows by their draw counts."""
        if not hasattr(self, "_required"):
            raise RuntimeError("point() first")
        weights = self.weights if self.weights is not None else np.ones(self.n)
        eligible = self.rows >= (self.min_group_size or 1)
        return row_samples(weights, self.statistics, self.aggregates, eligible, n_boot, rng)
