"""Regression by group: every metric from six weighted sums per group (``np.bincount`` passes).

Per group: weight, and sums of y, y^2, prediction, |error| and error^2. R^2 uses the centred sum of
squares ``sum(w (y - c)^2) - sum(w (y - c))^2 / W`` with ``c`` the overall mean of y, so that it
matches scikit-learn's ``r2_score`` closely; a group whose target is constant (to that precision) has
an undefined R^2 (NaN, warned, left out of aggregates), where scikit-learn answers by convention.
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
from pytest_fairmind.metrics.table import MAE, MEAN_PRED, MSE, R2, REGRESSION_AGGREGATES, Point

Array = NDArray[np.float64]

# A centred sum of squares this small relative to the uncentred one is a constant target.
_CONSTANT = 64 * float(np.finfo(np.float64).eps)


def regression_values(arr: NDArray[Any], arg: str) -> Array:
    """A regression target or prediction as finite float64 values."""
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"{arg} must be numeric for task='regression', got dtype {arr.dtype}")
    values = np.ascontiguousarray(arr, dtype=np.float64)
    if not bool(np.isfinite(values).all()):
        raise ValueError(f"{arg} contains NaN or infinite values")
    return values


class RegressionFamily:
    """The regression metrics of every group, for the data's weights or any reweighting of its rows."""

    def __init__(
        self,
        group: NDArray[np.intp],
        y_true: Array,
        y_pred: Array,
        weights: Array | None,
        rows: NDArray[np.int64],
        min_group_size: int | None,
    ) -> None:
        self.group = group
        self.groups = len(rows)
        self.rows = rows
        self.min_group_size = min_group_size
        self.weights = weights
        self.centre = float(np.average(y_true, weights=weights))
        self.y = y_true - self.centre
        self.pred = y_pred
        error = y_pred - y_true
        self.abs_error = np.abs(error)
        self.sq_error = error * error
        self.aggregates = tuple(a for a in REGRESSION_AGGREGATES if a.kind not in ("overall", "count"))

    def sums(self, w: Array | None) -> dict[str, NDArray[Any]]:
        g, k = self.group, self.groups
        return {
            "w": np.bincount(g, w, k).astype(np.float64),
            "y": np.bincount(g, self.y if w is None else w * self.y, k),
            "yy": np.bincount(g, self.y * self.y if w is None else w * self.y * self.y, k),
            "pred": np.bincount(g, self.pred if w is None else w * self.pred, k),
            "ae": np.bincount(g, self.abs_error if w is None else w * self.abs_error, k),
            "se": np.bincount(g, self.sq_error if w is None else w * self.sq_error, k),
        }

    @staticmethod
    def rates(s: Mapping[str, NDArray[Any]]) -> dict[str, Array]:
        with np.errstate(divide="ignore", invalid="ignore"):
            w = s["w"]
            total = s["yy"] - s["y"] * s["y"] / w
            constant = total <= _CONSTANT * s["yy"]
            return {
                MEAN_PRED: s["pred"] / w,
                MAE: s["ae"] / w,
                MSE: s["se"] / w,
                R2: np.where(constant | (w <= 0), np.nan, 1.0 - s["se"] / total),
            }

    def _values(self, w: Array | None, required: dict[str, NDArray[np.bool_]] | None) -> dict[str, Any]:
        s = self.sums(w)
        rates = self.rates(s)
        values, _ = between_groups(self.aggregates, rates, self.rows, self.min_group_size, required)
        total = float(s["w"].sum())
        return {
            "rates": rates,
            "values": {
                "count": int(self.rows.sum()),
                MAE: float(s["ae"].sum()) / total,
                MSE: float(s["se"].sum()) / total,
                **{a.name: float(values[a.name]) for a in self.aggregates},
            },
        }

    def point(self, groups: Sequence[Mapping[str, GroupLabel]]) -> Point:
        out = self._values(self.weights, None)
        rates: dict[str, Array] = out["rates"]
        eligible = self.rows >= (self.min_group_size or 1)
        warns: list[str] = []
        if self.min_group_size is not None:
            warns += small_groups(groups, self.rows, self.min_group_size)
        for i in np.flatnonzero(np.isnan(rates[R2]) & eligible).tolist():
            warns.append(
                f"group {group_text(groups[i])}: r2_score is undefined (constant y_true); "
                "left out of r2_score_*"
            )
        warns += too_few_groups(self.aggregates, rates, out["values"])
        self._required = {name: ~np.isnan(rate) & eligible for name, rate in rates.items()}
        return Point(out["values"], {name: rate.tolist() for name, rate in rates.items()}, warns)

    def _statistics(self, w: Array) -> dict[str, Array]:
        out = self._values(w, self._required)
        values: dict[str, Any] = out["values"]
        stats = {name: np.asarray(v, dtype=np.float64) for name, v in values.items() if name != "count"}
        return {**stats, **{RATE + name: rate for name, rate in out["rates"].items()}}

    def samples(self, n_boot: int, rng: np.random.Generator) -> dict[str, Sample]:
        """Row-bootstrap replicates: each resample reweights the rows by their draw counts."""
        weights = self.weights if self.weights is not None else np.ones(len(self.group))
        eligible = self.rows >= (self.min_group_size or 1)
        return row_samples(weights, self._statistics, self.aggregates, eligible, n_boot, rng)
