"""The metrics, as data: per-group columns from the confusion cells, and the aggregates built on them.

Every metric of a binary task is a function of one group's confusion cells (TN, FP, FN, TP: sums of
``sample_weight`` when given). A group column is a ratio of two sums of cells, the mean of other
columns (balanced accuracy) or another column over its highest group (the impact ratio); an
aggregate names its kind and the group column(s) it is built from.
:mod:`pytest_fairmind.metrics.rates` evaluates the table, for a point estimate and for a stack of
bootstrap resamples alike; warnings and the result's fields follow it. Adding a metric of an existing
kind is adding a row. Scores and regression list their columns and aggregates here too (their
values come from :mod:`~pytest_fairmind.metrics.scores` and :mod:`~pytest_fairmind.metrics.regression`).
The contract (definitions, the NaN policy) is documented in docs/metrics.md.

This module is pure data: it imports no numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

#: How a group column is computed: ``cells`` sum(numerator cells) / sum(denominator cells); ``mean``
#: the mean of the columns in ``of`` (NaN if any is); ``over_max`` the column ``of[0]`` over its
#: highest value among the groups that enter aggregates.
Form = Literal["cells", "mean", "over_max"]

#: Index of each confusion cell: 2 * actual positive + predicted positive.
TN, FP, FN, TP = 0, 1, 2, 3
ALL_CELLS = (TN, FP, FN, TP)

#: How an aggregate is built from its group column(s), over the groups that take part:
#: ``difference`` max - min, ``ratio`` min / max, ``group_min``, ``group_max``; ``overall`` is the
#: column's formula on the cells of all rows together; ``count`` the number of rows.
Kind = Literal["difference", "ratio", "group_min", "group_max", "overall", "count"]


@dataclass(frozen=True)
class GroupColumn:
    """A per-group rate: ``sum(cells[numerator]) / sum(cells[denominator])`` (a cell may repeat)."""

    name: str
    numerator: tuple[int, ...]
    denominator: tuple[int, ...]
    #: What a group lacks when the rate is 0/0 ("actual positives"), for the warnings.
    denominator_text: str
    #: fairlearn's name for it: the function in fairlearn.metrics (or, for ``*_score``, in
    #: sklearn.metrics) that gives a group's value, and the base of fairlearn's derived names.
    fairlearn: str
    form: Form = "cells"
    of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Aggregate:
    """An aggregate metric. With several columns it is the worst case over them (fairlearn's
    ``agg="worst_case"``): the largest difference, the smallest ratio (a column at exact parity,
    0 in every group, is skipped there)."""

    name: str
    kind: Kind
    columns: tuple[str, ...]
    #: Which values are better; None for descriptive aggregates.
    better: Literal["lower", "higher"] | None
    #: fairlearn's name for it when it differs from ``name``: the function in fairlearn.metrics
    #: (sklearn.metrics for ``*_score``) that gives its value.
    fairlearn: str | None = None

    @property
    def fairlearn_name(self) -> str:
        return self.fairlearn if self.fairlearn is not None else self.name


@dataclass(frozen=True)
class Table:
    """The group columns (``count``, the rows per group, comes first and is not a rate) and aggregates."""

    columns: tuple[GroupColumn, ...]
    aggregates: tuple[Aggregate, ...]

    def column(self, name: str) -> GroupColumn:
        return next(c for c in self.columns if c.name == name)

    @cached_property
    def _between(self) -> dict[str, list[str]]:
        # Each column's between-groups aggregates, sorted by name.
        between = [a for a in self.aggregates if a.kind not in ("overall", "count")]
        return {c.name: sorted(a.name for a in between if c.name in a.columns) for c in self.columns}

    @cached_property
    def between_columns(self) -> list[GroupColumn]:
        """The columns compared between groups by some aggregate, in column order."""
        return [c for c in self.columns if self._between[c.name]]

    def using(self, column: str) -> list[str]:
        """Names of the between-groups aggregates built from ``column``, sorted."""
        return self._between[column]


SR, TPR, FPR, ACC = "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"
FNR, TNR, ZOL = "false_negative_rate", "true_negative_rate", "zero_one_loss"
PRE, REC, F1, BAL, IMPACT = "precision", "recall", "f1", "balanced_accuracy", "impact_ratio"
ROWS, TRUE_POS, TRUE_NEG, PRED_POS = "rows", "actual positives", "actual negatives", "predicted positives"


def _generated(base: str, column: str, *kinds: Kind) -> tuple[Aggregate, ...]:
    """fairlearn 0.15's generated metrics ``<base>_<kind>`` of one column (lower is better for a
    difference and for the group maximum of a loss, higher otherwise)."""
    better: dict[Kind, Literal["lower", "higher"]] = {
        "difference": "lower",
        "ratio": "higher",
        "group_min": "higher",
        "group_max": "lower",
    }
    return tuple(Aggregate(f"{base}_{kind}", kind, (column,), better[kind]) for kind in kinds)


# fmt: off
BINARY = Table(
    columns=(
        #           name  numerator  denominator   a 0/0 group lacks  fairlearn's name
        GroupColumn(SR,   (FP, TP),  ALL_CELLS,    ROWS,              "selection_rate"),
        GroupColumn(TPR,  (TP,),     (TP, FN),     TRUE_POS,          "true_positive_rate"),
        GroupColumn(FPR,  (FP,),     (FP, TN),     TRUE_NEG,          "false_positive_rate"),
        GroupColumn(ACC,  (TP, TN),  ALL_CELLS,    ROWS,              "accuracy_score"),
        GroupColumn(FNR,  (FN,),     (FN, TP),     TRUE_POS,          "false_negative_rate"),
        GroupColumn(TNR,  (TN,),     (TN, FP),     TRUE_NEG,          "true_negative_rate"),
        GroupColumn(ZOL,  (FP, FN),  ALL_CELLS,    ROWS,              "zero_one_loss"),
        GroupColumn(PRE,  (TP,),     (TP, FP),     PRED_POS,          "precision_score"),
        GroupColumn(REC,  (TP,),     (TP, FN),     TRUE_POS,          "recall_score"),
        GroupColumn(F1,   (TP, TP),  (TP, TP, FP, FN), "actual or predicted positives", "f1_score"),
        GroupColumn(BAL,  (),        (),           "actual positives or negatives", "balanced_accuracy_score",
                    "mean", (TPR, TNR)),
        GroupColumn(IMPACT, (),      (),           "selections in the highest group", "impact_ratio",
                    "over_max", (SR,)),
    ),
    aggregates=(
        #         name                             kind          columns     better    fairlearn's, if other
        Aggregate("demographic_parity_difference", "difference", (SR,),      "lower"),
        Aggregate("demographic_parity_ratio",      "ratio",      (SR,),      "higher"),
        Aggregate("equalized_odds_difference",     "difference", (TPR, FPR), "lower"),
        Aggregate("equalized_odds_ratio",          "ratio",      (TPR, FPR), "higher"),
        Aggregate("equal_opportunity_difference",  "difference", (TPR,),     "lower"),
        Aggregate("equal_opportunity_ratio",       "ratio",      (TPR,),     "higher"),
        Aggregate("accuracy",                      "overall",    (ACC,),     "higher", "accuracy_score"),
        Aggregate("selection_rate",                "overall",    (SR,),      None),
        Aggregate("count",                         "count",      (),         None),
        *_generated("selection_rate", SR, "difference", "ratio"),
        *_generated("true_positive_rate", TPR, "difference", "ratio"),
        *_generated("false_positive_rate", FPR, "difference", "ratio"),
        *_generated("false_negative_rate", FNR, "difference", "ratio"),
        *_generated("true_negative_rate", TNR, "difference", "ratio"),
        *_generated("accuracy_score", ACC, "difference", "ratio", "group_min"),
        *_generated("zero_one_loss", ZOL, "difference", "ratio", "group_max"),
        *_generated("balanced_accuracy_score", BAL, "group_min"),
        *_generated("precision_score", PRE, "group_min"),
        *_generated("recall_score", REC, "group_min"),
        *_generated("f1_score", F1, "group_min"),
    ),
)
# fmt: on

#: Aggregate metrics of a binary :class:`FairnessResult`, in the order :meth:`FairnessResult.metrics`
#: lists them.
AGGREGATE_METRICS: tuple[str, ...] = tuple(a.name for a in BINARY.aggregates)

#: Per-group columns of a binary :attr:`FairnessResult.by_group` (besides ``group``).
GROUP_METRICS: tuple[str, ...] = ("count", *(c.name for c in BINARY.columns))


@dataclass
class Point:
    """One family's point estimate: aggregates by name, per-group columns, warnings."""

    values: dict[str, float | int]
    columns: dict[str, list[float]]
    warnings: list[str]


ROC, AP, BRIER, LOG_LOSS, BPSN, BNSP = (
    "roc_auc",
    "average_precision",
    "brier_score",
    "log_loss",
    "bpsn_auc",
    "bnsp_auc",
)

#: Per-group columns of a score task (``brier_score`` and ``log_loss`` only for scores in [0, 1]), with
#: the scikit-learn function that gives a group's value (BPSN/BNSP AUC: Borkan et al. 2019).
SCORE_COLUMNS: dict[str, str] = {
    ROC: "roc_auc_score",
    AP: "average_precision_score",
    BRIER: "brier_score_loss",
    LOG_LOSS: "log_loss",
    BPSN: "bpsn_auc",
    BNSP: "bnsp_auc",
}

# fmt: off
SCORE_AGGREGATES: tuple[Aggregate, ...] = (
    *_generated("roc_auc_score", ROC, "group_min", "difference", "ratio"),
    *_generated("average_precision_score", AP, "group_min"),
    *_generated("log_loss", LOG_LOSS, "group_max"),
    *_generated("brier_score", BRIER, "group_max"),
    *_generated("bpsn_auc", BPSN, "group_min"),
    *_generated("bnsp_auc", BNSP, "group_min"),
)
# fmt: on

MEAN_PRED, MAE, MSE, R2 = "mean_prediction", "mean_absolute_error", "mean_squared_error", "r2_score"

#: Per-group columns of a regression task, with scikit-learn's function (mean_prediction: the mean).
REGRESSION_COLUMNS: dict[str, str] = {
    MEAN_PRED: "mean_prediction",
    MAE: "mean_absolute_error",
    MSE: "mean_squared_error",
    R2: "r2_score",
}

# fmt: off
REGRESSION_AGGREGATES: tuple[Aggregate, ...] = (
    Aggregate("count", "count", (), None),
    Aggregate(MAE, "overall", (MAE,), "lower"),
    Aggregate(MSE, "overall", (MSE,), "lower"),
    *_generated("mean_absolute_error", MAE, "group_max", "difference", "ratio"),
    *_generated("mean_squared_error", MSE, "group_max"),
    *_generated("r2_score", R2, "group_min"),
    Aggregate("mean_prediction_difference", "difference", (MEAN_PRED,), None),
    Aggregate("mean_prediction_ratio", "ratio", (MEAN_PRED,), None),
)
# fmt: on

#: Every built-in name of each task: aggregates and group columns (callables may not reuse them).
BUILTIN_NAMES: dict[str, frozenset[str]] = {
    "binary": frozenset(
        [*AGGREGATE_METRICS, *GROUP_METRICS, *SCORE_COLUMNS, *(a.name for a in SCORE_AGGREGATES)]
    ),
    "regression": frozenset([*REGRESSION_COLUMNS, *(a.name for a in REGRESSION_AGGREGATES), "count"]),
}
BUILTIN_NAMES["multiclass"] = BUILTIN_NAMES["binary"]

#: Keys a callable's name may not take: the fields of a group row.
RESERVED_NAMES = frozenset(["group", "count", "ci", "class"])

#: Which values are better, for every built-in aggregate of every task that has a direction (the
#: descriptive ones, such as ``count`` or ``mean_prediction_ratio``, are absent).
DIRECTIONS: dict[str, Literal["lower", "higher"]] = {
    a.name: a.better
    for a in (*BINARY.aggregates, *SCORE_AGGREGATES, *REGRESSION_AGGREGATES)
    if a.better is not None
}
