"""Subgroup scan: every conjunction of ``feature == value`` conditions tested against its complement.

The scan is count-based. Each feature is factorised once into small integer codes; the rows that
enter the rate (all rows, actual positives or actual negatives, by metric) are folded with a
success bit into one key per combination of ``max_order`` features, and ONE ``np.bincount`` per
such combination counts every subgroup of it at once. Lower orders are sums over those tables, the
complement of a subgroup is the total minus the subgroup, and the tests and Benjamini-Hochberg run
vectorised over all subgroups. Nothing loops over rows or over a subgroup's rows.

Tests (see docs/scan.md): the two-proportion z-test with pooled variance where every expected cell
of the 2x2 table is at least 1000, Fisher's exact test where one is smaller. Weighted rates use
Kish's effective sample sizes. Inputs go through the readers of :mod:`pytest_fairmind.metrics`
(``inputs``, ``features``, ``labels``), so a scan takes what ``assess`` takes, with the same errors.
Only numpy is needed; pandas is imported by ``to_pandas()`` alone.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.features import Feature, read_features
from pytest_fairmind.metrics.inputs import (
    GroupLabel,
    array_1d,
    arrow_columns,
    is_columnar,
    is_pandas,
    plain,
    sample_weights,
)
from pytest_fairmind.metrics.labels import (
    MULTICLASS_HINT,
    SCORES_HINT,
    Labels,
    check_labels,
    label_digit,
    read_pos_label,
)
from pytest_fairmind.result import SCAN_ROW_FIELDS

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCAN_METRICS", "ScanResult", "scan"]

#: Rates a scan can test, as the ``metric`` argument names them.
SCAN_METRICS: tuple[str, ...] = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "accuracy",
)

# metric -> (rows that enter the rate, what counts as a success, does a high rate harm?)
_RULES: dict[str, tuple[str, str, bool]] = {
    "selection_rate": ("all", "predicted_positive", False),
    "true_positive_rate": ("actual_positive", "predicted_positive", False),
    "false_positive_rate": ("actual_negative", "predicted_positive", True),
    "false_negative_rate": ("actual_positive", "predicted_negative", True),
    "accuracy": ("all", "correct", False),
}
_ROWS_TEXT = {
    "all": "rows",
    "actual_positive": "rows with an actual positive",
    "actual_negative": "rows with an actual negative",
}

# The z-test where every expected cell of the 2x2 table is at least this, Fisher's exact test below.
# Not Cochran's 5: BH compares p-values with alpha * k / m, deep in the tail, where the normal
# approximation of a skewed count is optimistic (at p = 1e-5 the z-test's true size is ~17x nominal
# with 5 expected, ~1.6x with 100, ~1.02x with 1000).
_MIN_EXPECTED = 1000.0
# Fisher's two-sided p sums the tables at most this much (relatively) likelier than the observed
# one: R's tolerance, wide enough that mathematically tied tables stay tied in floating point.
_FISHER_TIE = 1e-7
# Most support points of hypergeometric tables evaluated at once (bounds memory).
_FISHER_CHUNK = 1 << 20
# A weighted complement whose weight is below this share of the total counts as empty.
_WEIGHT_EPS = 1e-12

Label = GroupLabel


# --------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True, repr=False)
class ScanResult:
    """The subgroups of one :func:`scan`, most significant first.

    ``subgroups`` holds the top rows (plain dicts: ``conditions``, ``count``, ``value``,
    ``complement_value``, ``ratio``, ``difference``, ``p_value``, ``q_value``, ``significant``);
    the summary numbers cover every tested subgroup, not only the rows kept, and
    ``worst_subgroup`` is the row behind ``worst_ratio`` even when it is not among them.
    """

    scope: str
    metric: str
    alpha: float
    max_order: int
    min_support: int
    feature_names: tuple[str, ...]
    subgroups_tested: int
    significant: int
    worst_ratio: float
    worst_difference: float
    subgroups: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    test_counts: dict[str, int] = field(default_factory=dict)
    worst_subgroup: dict[str, Any] | None = None  # the row behind worst_ratio (None: nothing significant)

    def metrics(self) -> dict[str, float]:
        """The recorded keys, ``<scope>/<metric>.subgroups_tested`` and friends, as floats."""
        prefix = f"{self.scope}/{self.metric}"
        return {
            f"{prefix}.subgroups_tested": float(self.subgroups_tested),
            f"{prefix}.significant": float(self.significant),
            f"{prefix}.worst_ratio": float(self.worst_ratio),
            f"{prefix}.worst_difference": float(self.worst_difference),
        }

    def report_entry(self) -> dict[str, Any]:
        """The scan as the session report holds it under ``models.<model>.scans.<scope>``."""
        return {"metric": self.metric, "subgroups_tested": self.subgroups_tested, "rows": self.subgroups}

    def to_pandas(self) -> pd.DataFrame:
        """``subgroups`` as a DataFrame: a column per feature (None: unconstrained), then the numbers."""
        import pandas as pd

        numbers = SCAN_ROW_FIELDS[1:]  # after the conditions, one column per feature
        data: dict[str, list[Any]] = {name: [] for name in self.feature_names}
        data.update({name: [] for name in numbers})
        for row in self.subgroups:
            for name in self.feature_names:
                data[name].append(row["conditions"].get(name))
            for name in numbers:
                data[name].append(row[name])
        columns = {name: pd.Series(data[name], dtype=object) for name in self.feature_names}
        columns.update({name: pd.Series(data[name]) for name in numbers})
        frame = pd.DataFrame(columns, columns=[*self.feature_names, *numbers])
        return frame.astype({"count": "int64", "significant": "bool"})

    def __repr__(self) -> str:
        lines = [
            f"ScanResult(scope={self.scope!r}, metric={self.metric!r}, subgroups_tested="
            f"{self.subgroups_tested}, significant={self.significant}, worst_ratio={self.worst_ratio:.4f}, "
            f"worst_difference={self.worst_difference:+.4f})"
        ]
        for row in self.subgroups[:10]:
            mark = "*" if row["significant"] else " "
            lines.append(
                f" {mark} {_conditions_text(row['conditions'])}: n={row['count']} value={row['value']:.4f} "
                f"vs {row['complement_value']:.4f}  q={row['q_value']:.3g}"
            )
        if len(self.subgroups) > 10:
            lines.append(f"   ... {len(self.subgroups) - 10} more rows")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def _conditions_text(conditions: Mapping[str, Label]) -> str:
    return " & ".join(f"{k}={v!r}" for k, v in conditions.items())


# --------------------------------------------------------------------------------------------------
# Inputs: read by the metrics package's readers (the same rules and errors as ``assess``)


def _rephrased(exc: ValueError) -> ValueError:
    """A reader's error in the scan's words: ``features`` for ``sensitive_features``, and hints that
    fit a scan (it has no ``task=`` and no ``y_score=``)."""
    text = _SENSITIVE_FEATURE.sub(r"features[\1]", str(exc)).replace("sensitive_features", "features")
    text = text.replace(MULTICLASS_HINT, _BINARY_HINT).replace(SCORES_HINT, _THRESHOLD_HINT)
    return ValueError(text)


_SENSITIVE_FEATURE = re.compile(r"sensitive feature ('[^']*'|\"[^\"]*\")")
_BINARY_HINT = "a scan needs binary labels (map the classes to two, or pass pos_label=)"
_THRESHOLD_HINT = "threshold the scores first (y_pred = y_score >= t)"


def _row_positive(labels: Labels) -> NDArray[np.bool_]:
    """Per row: does it hold ``pos_label``? (one comparison for two-valued columns, else a lookup)"""
    values, lo, positive = labels.digit.values, labels.digit.lo, labels.positive
    if values.dtype == np.bool_:
        values = values.view(np.uint8)
    hits = np.flatnonzero(positive)
    if len(hits) == 0:
        return np.zeros(len(values), dtype=bool)
    if len(hits) == 1:
        return np.asarray(values == values.dtype.type(lo + int(hits[0])), dtype=bool)
    return np.asarray(positive[np.subtract(values, lo, dtype=np.intp)], dtype=bool)


def _seen(labels: Labels) -> list[object]:
    if labels.seen is not None or labels.digit.radix == 2:  # min and max present: both codes are
        return labels.seen_in(np.ones(2, dtype=np.int64))
    codes = np.subtract(labels.digit.values, labels.digit.lo, dtype=np.intp)
    return labels.seen_in(np.bincount(codes, minlength=labels.digit.radix))


def _binary_labels(
    y_true: Any, y_pred: Any, pos_label: object
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Actual and predicted positives per row, with the label checks of :func:`pytest_fairmind.assess`."""
    yt, yp = array_1d(y_true, "y_true"), array_1d(y_pred, "y_pred")
    if len(yt) == 0:
        raise ValueError("y_true is empty")
    if len(yp) != len(yt):
        raise ValueError(f"y_pred has {len(yp)} rows but y_true has {len(yt)}")
    pos, default_rule = read_pos_label(pos_label)
    try:
        truth, predicted = (
            label_digit(a, arg, pos, default_rule) for a, arg in ((yt, "y_true"), (yp, "y_pred"))
        )
        check_labels(_seen(truth), _seen(predicted), pos, default_rule)
    except ValueError as exc:
        raise _rephrased(exc) from None
    return _row_positive(truth), _row_positive(predicted)


@dataclass
class _Factor:
    name: str
    codes: NDArray[Any]  # smallest unsigned dtype that holds 0..k-1
    levels: list[Label]


def _small_uint(size: int) -> type[np.integer[Any]]:
    """The smallest integer dtype for codes 0..size-1 (unsigned below 2**32; bincount takes those)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if size <= np.iinfo(dtype).max + 1:
            return dtype
    return np.intp


def _too_many_levels(name: str, k: int, max_levels: int) -> ValueError:
    return ValueError(
        f"features[{name!r}] has {k} distinct values, more than max_levels={max_levels}: bin it "
        "(e.g. pandas.cut), drop it, or raise max_levels="
    )


def _label_items(labels: NDArray[Any]) -> list[Any]:
    # tolist() turns datetime64[ns] into integers: keep numpy scalars for plain() to show as dates.
    return list(labels) if labels.dtype.kind in "mM" else labels.tolist()


def _factor(feature: Feature, max_levels: int) -> _Factor:
    """A feature's codes as 0..k-1 over its levels in sorted order, in the smallest unsigned dtype.

    With at most ``max_levels`` codes, every code is kept (a value no row holds only leaves empty
    cells, which are never tested) and codes out of order are renumbered in the same pass; with
    more, the codes are compacted to the values present, which must be at most ``max_levels``.
    """
    digit, labels = feature.digit, _label_items(feature.labels)
    values = digit.values.view(np.uint8) if digit.values.dtype == np.bool_ else digit.values
    k, rank = digit.radix, feature.rank
    if rank is None and k <= max_levels:
        codes = np.subtract(values, values.dtype.type(digit.lo), dtype=_small_uint(k), casting="unsafe")
        return _Factor(feature.name, codes, [plain(v) for v in labels])
    plain_codes = values.dtype == np.intp and digit.lo == 0
    raw = values if plain_codes else np.subtract(values, digit.lo, dtype=np.intp, casting="unsafe")
    if rank is not None and k <= max_levels:
        order = np.argsort(rank, kind="stable")
        codes = rank.astype(_small_uint(k))[raw]
        return _Factor(feature.name, codes, [plain(labels[i]) for i in order.tolist()])
    present = np.flatnonzero(np.bincount(raw, minlength=k))
    if len(present) > max_levels:
        raise _too_many_levels(feature.name, len(present), max_levels)
    if rank is not None:
        present = present[np.argsort(rank[present], kind="stable")]
    dtype = _small_uint(max(len(present), 1))
    remap = np.zeros(k, dtype=dtype)
    remap[present] = np.arange(len(present), dtype=dtype)
    return _Factor(feature.name, remap[raw], [plain(labels[i]) for i in present.tolist()])


def _feature_columns(features: Any) -> dict[str, Any]:
    """name -> column per feature, in the order given (a DataFrame's columns or a mapping's items)."""
    if is_pandas(features) and hasattr(features, "columns") and hasattr(features, "iloc"):
        columns = [(str(c), features.iloc[:, i]) for i, c in enumerate(features.columns)]
    elif is_columnar(features) and (hasattr(features, "get_columns") or hasattr(features, "column_names")):
        columns = [(str(name), col) for name, col in arrow_columns(features)]
    elif isinstance(features, Mapping):
        # polars/pyarrow columns go through Arrow (the readers take a mapping's values as pyarrow).
        columns = [(str(k), arrow_columns(v)[0][1] if is_columnar(v) else v) for k, v in features.items()]
    else:
        raise ValueError(
            "features must be a DataFrame (pandas, polars or a pyarrow Table) or a mapping of feature "
            f"name -> column, got {type(features).__name__}"
        )
    if not columns:
        raise ValueError("features has no columns")
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"features has duplicate column names {names}")
    return dict(columns)


def _factors(features: Any, n: int, max_levels: int) -> list[_Factor]:
    columns = _feature_columns(features)
    try:
        read = read_features(columns, n)
    except ValueError as exc:
        raise _rephrased(exc) from None
    return [_factor(feature, max_levels) for feature in read]


# --------------------------------------------------------------------------------------------------
# Counting: one bincount per combination of `order` features; lower orders are marginal sums


@dataclass
class _Table:
    rows: NDArray[np.int64]  # (k_1, ..., k_r, 2): rows per subgroup x (failure, success)
    wsum: NDArray[np.float64] | None  # same shape: sums of weights
    wsq: NDArray[np.float64] | None  # (k_1, ..., k_r): sums of squared weights (Kish's effective n)


def _count_combination(
    factors: Sequence[_Factor],
    folded_last: NDArray[Any],
    weights: NDArray[np.float64] | None,
    squares: NDArray[np.float64] | None,
    buffers: dict[type[Any], NDArray[Any]],
) -> _Table:
    """One bincount over 2 * (((c_1 * k_2 + c_2) * k_3 + ...) + c_r) + success, in the smallest dtype."""
    shape = [len(f.levels) for f in factors]
    space = math.prod(shape) * 2
    dtype = _small_uint(space)
    if len(factors) == 1:
        key = folded_last
    else:
        n = len(folded_last)
        if dtype not in buffers:
            buffers[dtype] = np.empty(n, dtype=dtype)
        key = buffers[dtype]
        # Horner; the last multiplier also makes room for the success bit. Typed scalars keep numpy
        # on its plain small-integer loops (a dtype= argument takes a slower casting path).
        multipliers = [dtype(m) for m in [*shape[1:-1], 2 * shape[-1]]]
        np.multiply(factors[0].codes, multipliers[0], out=key, casting="unsafe")
        for f, k in zip(factors[1:-1], multipliers[1:], strict=True):
            np.add(key, f.codes, out=key, casting="unsafe")
            np.multiply(key, k, out=key, casting="unsafe")
        np.add(key, folded_last, out=key, casting="unsafe")
    rows = np.bincount(key, minlength=space).reshape([*shape, 2]).astype(np.int64, copy=False)
    if weights is None or squares is None:
        return _Table(rows, None, None)
    wsum = np.asarray(np.bincount(key, weights=weights, minlength=space), dtype=np.float64)
    wsq = np.asarray(np.bincount(key, weights=squares, minlength=space), dtype=np.float64)
    return _Table(rows, wsum.reshape([*shape, 2]), wsq.reshape([*shape, 2]).sum(axis=-1))


def _marginal(table: _Table, axes: tuple[int, ...]) -> _Table:
    wsum = table.wsum.sum(axis=axes) if table.wsum is not None else None
    wsq = table.wsq.sum(axis=axes) if table.wsq is not None else None
    return _Table(table.rows.sum(axis=axes), wsum, wsq)


def _count_tables(
    factors: list[_Factor], success: NDArray[np.bool_], weights: NDArray[np.float64] | None, order: int
) -> dict[tuple[int, ...], _Table]:
    """Tables of every combination of 1..order features, keyed by feature indices (ascending)."""
    success_bit = np.ascontiguousarray(success).view(np.uint8)
    folded: dict[int, NDArray[Any]] = {}  # 2 * code + success, per feature used last in a combination
    squares = weights * weights if weights is not None else None
    buffers: dict[type[Any], NDArray[Any]] = {}
    tables: dict[tuple[int, ...], _Table] = {}
    for top in itertools.combinations(range(len(factors)), order):
        last = top[-1]
        if last not in folded:
            dtype = _small_uint(2 * len(factors[last].levels))
            folded[last] = np.multiply(factors[last].codes, dtype(2), dtype=dtype, casting="unsafe")
            np.add(folded[last], success_bit, out=folded[last], casting="unsafe")
        chosen = [factors[i] for i in top]
        tables[top] = _count_combination(chosen, folded[last], weights, squares, buffers)
    for size in range(order - 1, 0, -1):
        for combo in itertools.combinations(range(len(factors)), size):
            # Any top-order combination holding `combo` has it as a marginal; take the first.
            extra = [i for i in range(len(factors)) if i not in combo][: order - size]
            top = tuple(sorted([*combo, *extra]))
            axes = tuple(j for j, i in enumerate(top) if i not in combo)
            tables[combo] = _marginal(tables[top], axes)
    return tables


def _redundant(tables: Mapping[tuple[int, ...], _Table], combo: tuple[int, ...]) -> NDArray[np.bool_]:
    """Subgroups holding exactly the rows of a subgroup with one condition fewer (same test, longer name)."""
    rows = tables[combo].rows.sum(axis=-1)
    same = np.zeros(rows.shape, dtype=bool)
    if len(combo) < 2:
        return same
    for d in range(len(combo)):
        parent = tables[combo[:d] + combo[d + 1 :]].rows.sum(axis=-1)
        same |= rows == np.expand_dims(parent, d)
    return same


# --------------------------------------------------------------------------------------------------
# Tests


def _z_test(
    a1: NDArray[np.float64], n1: NDArray[np.float64], a2: NDArray[np.float64], n2: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Two-sided two-proportion z-test with pooled variance (statsmodels' ``proportions_ztest``)."""
    pooled = (a1 + a2) / (n1 + n2)
    variance = pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(a1 / n1 - a2 / n2) / np.sqrt(variance)
    # A pooled rate of 0 or 1 leaves no variance: both sides have the same rate, nothing to find.
    z = np.where(variance > 0, z, 0.0)
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return np.asarray(erfc(z / math.sqrt(2.0)), dtype=np.float64)


def _fisher_exact(
    x: NDArray[np.int64], n1: NDArray[np.int64], k: NDArray[np.int64], n: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Two-sided Fisher exact p-values: ``x`` successes among ``n1`` of ``n`` rows holding ``k`` successes.

    Sums every table at most as likely as the observed one (scipy's and R's definition). The
    hypergeometric probabilities come from the ratio of neighbouring terms, cumulated over each
    table's support, so no log-gamma is needed, and all tables are evaluated at once over their
    concatenated supports. Each support is cut to a window around the mode that holds the observed
    table, the other tail's tables as unlikely as it, and 10 standard deviations more; since the
    distribution is log-concave the mass left out is bounded, and tables where that bound is not
    negligible next to their p-value are computed again over their whole support.
    """
    x, n1, k, n = (np.asarray(v, dtype=np.int64) for v in (x, n1, k, n))
    lo = np.maximum(0, k - (n - n1))
    hi = np.minimum(n1, k)
    share = k / np.maximum(n, 1)
    sd = np.sqrt(n1 * share * (1 - share) * (n - n1) / np.maximum(n - 1, 1))
    mode = np.clip((n1 + 1) * (k + 1) // (n + 2), lo, hi)
    reach = 3 * np.abs(x - mode) + np.ceil(10 * sd).astype(np.int64) + 40
    start = np.maximum(lo, mode - reach)
    stop = np.minimum(hi, mode + reach)
    p, loose = _fisher_windows(x, n1, k, n, start, stop - start + 1, lo, hi)
    if loose.any():
        redo = np.flatnonzero(loose)
        full = hi[redo] - lo[redo] + 1
        p[redo], _ = _fisher_windows(x[redo], n1[redo], k[redo], n[redo], lo[redo], full, lo[redo], hi[redo])
    return p


def _fisher_windows(
    x: NDArray[np.int64],
    n1: NDArray[np.int64],
    k: NDArray[np.int64],
    n: NDArray[np.int64],
    start: NDArray[np.int64],
    lengths: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """p-values over the windows ``start .. start + lengths - 1``, in chunks that bound memory."""
    p = np.empty(len(x), dtype=np.float64)
    loose = np.zeros(len(x), dtype=bool)
    ends = np.cumsum(lengths)
    first = 0
    while first < len(x):
        base = int(ends[first - 1]) if first else 0
        last = max(first + 1, int(np.searchsorted(ends, base + _FISHER_CHUNK, side="right")))
        part = slice(first, last)
        p[part], loose[part] = _fisher_chunk(
            x[part], n1[part], k[part], n[part], start[part], lengths[part], lo[part], hi[part]
        )
        first = last
    return p, loose


def _log_step(
    j: NDArray[np.float64], k: NDArray[np.float64], n1: NDArray[np.float64], n: NDArray[np.float64]
) -> NDArray[np.float64]:
    """log P(j + 1) / P(j) of the hypergeometric distribution (-inf past the support's end)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.log((k - j) * (n1 - j)) - np.log((j + 1.0) * (n - k - n1 + j + 1.0)))


def _fisher_chunk(
    x: NDArray[np.int64],
    n1: NDArray[np.int64],
    k: NDArray[np.int64],
    n: NDArray[np.int64],
    start: NDArray[np.int64],
    lengths: NDArray[np.int64],
    lo: NDArray[np.int64],
    hi: NDArray[np.int64],
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.intp)
    seg = np.repeat(np.arange(len(x)), lengths)
    j = (start[seg] + (np.arange(int(lengths.sum())) - firsts[seg])).astype(np.float64)
    kf, n1f, nf = (v.astype(np.float64) for v in (k, n1, n))
    step = _log_step(j, kf[seg], n1f[seg], nf[seg])
    lasts = firsts + lengths - 1
    step[lasts] = 0.0
    # Restart the running sum at every table (keeps the cumulated values small and accurate).
    step[lasts] = -np.add.reduceat(step, firsts)
    running = np.concatenate([[0.0], np.cumsum(step)[:-1]])
    log_p = running - running[firsts][seg]
    peak = np.maximum.reduceat(log_p, firsts)
    prob = np.exp(log_p - peak[seg])
    total = np.add.reduceat(prob, firsts)
    observed = log_p[firsts + (x - start)]
    as_extreme = log_p <= observed[seg] + _FISHER_TIE
    p = np.bincount(seg, weights=np.where(as_extreme, prob, 0.0), minlength=len(x)) / total
    # Mass beyond each cut end: at most P(end) r / (1 - r), r the ratio of the next step outward.
    left = np.exp(-_log_step((start - 1).astype(np.float64), kf, n1f, nf))  # P(start - 1) / P(start)
    right = np.exp(_log_step((start + lengths - 1).astype(np.float64), kf, n1f, nf))  # P(end + 1) / P(end)
    with np.errstate(divide="ignore", invalid="ignore"):
        beyond_left = np.where(start > lo, prob[firsts] / total * left / (1.0 - left), 0.0)
        beyond_right = np.where(start + lengths - 1 < hi, prob[lasts] / total * right / (1.0 - right), 0.0)
    beyond = beyond_left + beyond_right
    loose = ~(beyond <= 1e-13 * p)
    return np.asarray(np.minimum(p, 1.0), dtype=np.float64), np.asarray(loose, dtype=bool)


def _benjamini_hochberg(
    p: NDArray[np.float64], alpha: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """q-values and rejections as statsmodels' ``multipletests(method="fdr_bh")`` computes them."""
    m = len(p)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    ecdf = np.arange(1, m + 1) / float(m)
    below = ranked <= ecdf * alpha
    reject_sorted = np.zeros(m, dtype=bool)
    if below.any():
        reject_sorted[: int(np.flatnonzero(below)[-1]) + 1] = True
    q_sorted = np.minimum.accumulate((ranked / ecdf)[::-1])[::-1]
    q = np.empty(m, dtype=np.float64)
    q[order] = np.minimum(q_sorted, 1.0)
    reject = np.empty(m, dtype=bool)
    reject[order] = reject_sorted
    return q, reject


# --------------------------------------------------------------------------------------------------
# The tested subgroups, as flat arrays over all combinations


@dataclass
class _Tested:
    combo: NDArray[np.intp]  # index into the list of combinations
    cell: NDArray[np.intp]  # flat index of the subgroup within its combination's table
    order: NDArray[np.intp]  # number of conditions
    count: NDArray[np.int64]  # rows that enter the rate
    value: NDArray[np.float64]
    complement: NDArray[np.float64]
    p: NDArray[np.float64]
    exact: NDArray[np.bool_]  # Fisher's exact test was used


def _collect(
    tables: Mapping[tuple[int, ...], _Table], combos: Sequence[tuple[int, ...]], min_support: int
) -> tuple[dict[str, NDArray[Any]], int]:
    """Flat arrays over every subgroup with enough rows, not redundant, with a non-empty complement."""
    whole = tables[combos[0]]
    total_rows = int(whole.rows.sum())
    w_total = float(whole.wsum.sum()) if whole.wsum is not None else 0.0
    parts: dict[str, list[NDArray[Any]]] = {}
    zero_weight = 0
    for index, combo in enumerate(combos):
        table = tables[combo]
        rows = table.rows.reshape(-1, 2)
        count = rows.sum(axis=1)
        keep = (count >= min_support) & (count < total_rows) & ~_redundant(tables, combo).reshape(-1)
        columns: dict[str, NDArray[Any]] = {"rows": count, "x": rows[:, 1]}
        if table.wsum is not None and table.wsq is not None:
            wsum = table.wsum.reshape(-1, 2)
            w = wsum.sum(axis=1)
            weighed = (w > 0) & (w_total - w > _WEIGHT_EPS * w_total)
            zero_weight += int(np.count_nonzero(keep & ~weighed))
            keep &= weighed
            columns.update(w=w, wx=wsum[:, 1], sq=table.wsq.reshape(-1))
        cells = np.flatnonzero(keep)
        size = len(count)
        columns.update(cell=np.arange(size), combo=np.full(size, index), order=np.full(size, len(combo)))
        for name, values in columns.items():
            parts.setdefault(name, []).append(values[cells])
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}, zero_weight


def _tested(
    tables: Mapping[tuple[int, ...], _Table],
    combos: Sequence[tuple[int, ...]],
    flat: Mapping[str, NDArray[Any]],
) -> _Tested:
    whole = tables[combos[0]]
    if whole.wsum is not None and whole.wsq is not None:
        totals = (float(whole.wsum.sum()), float(whole.wsum[..., 1].sum()), float(whole.wsq.sum()))
        value, complement, p, exact = _weighted_tests(flat, totals)
    else:
        value, complement, p, exact = _unweighted_tests(
            flat, int(whole.rows.sum()), int(whole.rows[..., 1].sum())
        )
    return _Tested(
        flat["combo"].astype(np.intp),
        flat["cell"].astype(np.intp),
        flat["order"].astype(np.intp),
        flat["rows"].astype(np.int64),
        value,
        complement,
        p,
        exact,
    )


_Tests = tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]


def _small(
    a1: NDArray[np.float64], n1: NDArray[np.float64], a2: NDArray[np.float64], n2: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Some expected cell of the 2x2 table is below ``_MIN_EXPECTED``: the exact test decides."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (a1 + a2) / (n1 + n2)
    smallest = np.minimum(n1, n2) * np.minimum(pooled, 1.0 - pooled)
    return np.asarray(smallest < _MIN_EXPECTED, dtype=bool)


def _unweighted_tests(flat: Mapping[str, NDArray[Any]], total_rows: int, total_success: int) -> _Tests:
    n1 = flat["rows"].astype(np.float64)
    a1 = flat["x"].astype(np.float64)
    n2 = total_rows - n1
    a2 = total_success - a1
    value, complement = a1 / n1, a2 / n2
    exact = _small(a1, n1, a2, n2)
    p = np.empty(len(n1), dtype=np.float64)
    p[~exact] = _z_test(a1[~exact], n1[~exact], a2[~exact], n2[~exact])
    x, rows = (arr[exact].astype(np.int64) for arr in (flat["x"], flat["rows"]))
    p[exact] = _fisher_exact(x, rows, np.full(len(x), total_success), np.full(len(x), total_rows))
    return value, complement, p, exact


def _weighted_tests(flat: Mapping[str, NDArray[Any]], totals: tuple[float, float, float]) -> _Tests:
    """Weighted rates; the tests see Kish's effective counts (Fisher's on them rounded)."""
    w_total, wx_total, sq_total = totals
    w1, wx1, sq1 = (flat[name].astype(np.float64) for name in ("w", "wx", "sq"))
    w2, wx2, sq2 = w_total - w1, wx_total - wx1, np.maximum(sq_total - sq1, 0.0)
    value = wx1 / w1
    complement = np.clip(wx2 / w2, 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        n1 = w1 * w1 / sq1
        n2 = np.where(sq2 > 0, w2 * w2 / sq2, 0.0)
    a1, a2 = value * n1, complement * n2
    exact = _small(a1, n1, a2, n2) | (n2 <= 0)
    p = np.ones(len(w1), dtype=np.float64)
    p[~exact] = _z_test(a1[~exact], n1[~exact], a2[~exact], n2[~exact])
    r_n1, r_n2 = np.rint(n1[exact]).astype(np.int64), np.rint(n2[exact]).astype(np.int64)
    r_a1 = np.minimum(np.rint(a1[exact]).astype(np.int64), r_n1)
    r_a2 = np.minimum(np.rint(a2[exact]).astype(np.int64), r_n2)
    usable = (r_n1 > 0) & (r_n2 > 0)
    fisher = np.ones(len(r_n1), dtype=np.float64)
    fisher[usable] = _fisher_exact(r_a1[usable], r_n1[usable], (r_a1 + r_a2)[usable], (r_n1 + r_n2)[usable])
    p[exact] = fisher
    return value, complement, p, exact


# --------------------------------------------------------------------------------------------------
# Entry point


def _check_arguments(
    metric: object,
    max_order: object,
    min_support: object,
    alpha: object,
    top: object,
    scope: object,
    max_subgroups: object,
    max_levels: object,
) -> None:
    if not isinstance(metric, str) or metric not in _RULES:
        raise ValueError(f"metric must be one of {', '.join(SCAN_METRICS)}; got {metric!r}")
    for arg, value, allow_none in (
        ("max_order", max_order, False),
        ("min_support", min_support, False),
        ("top", top, True),
        ("max_subgroups", max_subgroups, False),
        ("max_levels", max_levels, False),
    ):
        if value is None and allow_none:
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
            extra = " or None" if allow_none else ""
            raise ValueError(f"{arg} must be an int >= 1{extra}, got {value!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a level between 0 and 1 (exclusive), got {alpha!r}")
    if not isinstance(scope, str) or not scope:
        raise ValueError(f"scope must be a non-empty str, got {scope!r}")


def _check_size(factors: Sequence[_Factor], order: int, max_subgroups: int) -> None:
    """Fail before counting when the conjunctions would be too many (elementary symmetric sums)."""
    sums = [1] + [0] * order
    for f in factors:
        for r in range(order, 0, -1):
            sums[r] += sums[r - 1] * len(f.levels)
    candidates = sum(sums[1:])
    if candidates > max_subgroups:
        raise ValueError(
            f"a scan of {len(factors)} features up to max_order={order} has {candidates:,} candidate "
            f"subgroups, more than max_subgroups={max_subgroups:,}: raise max_subgroups=, lower "
            "max_order=, or pass fewer features (or features with fewer values)"
        )


def _rate_rows(
    metric: str, actual: NDArray[np.bool_], predicted: NDArray[np.bool_]
) -> tuple[NDArray[np.bool_] | None, NDArray[np.bool_]]:
    """Rows that enter the rate (None: all) and each such row's success."""
    rows, success, _ = _RULES[metric]
    mask = None if rows == "all" else (actual if rows == "actual_positive" else ~actual)
    if success == "correct":
        hit = actual == predicted
    elif success == "predicted_positive":
        hit = predicted
    else:
        hit = ~predicted
    return mask, (hit if mask is None else hit[mask])


def scan(
    y_true: Any,
    y_pred: Any,
    *,
    features: Any,
    metric: str = "selection_rate",
    max_order: int = 2,
    min_support: int = 30,
    alpha: float = 0.05,
    top: int | None = 20,
    scope: str = "scan",
    sample_weight: Any = None,
    pos_label: Any = 1,
    max_subgroups: int = 100_000,
    max_levels: int = 100,
) -> ScanResult:
    """Test every subgroup of up to ``max_order`` conditions ``feature == value`` against its complement.

    ``features`` is a DataFrame (pandas, polars, pyarrow Table) or a mapping of name -> column.
    A subgroup is tested when at least ``min_support`` of its rows enter the rate (all rows for
    ``selection_rate`` and ``accuracy``, actual positives for ``true_positive_rate`` and
    ``false_negative_rate``, actual negatives for ``false_positive_rate``). Benjamini-Hochberg at
    ``alpha`` runs over all tested subgroups; ``top`` rows are kept (None: all). See docs/scan.md.
    """
    _check_arguments(metric, max_order, min_support, alpha, top, scope, max_subgroups, max_levels)
    actual, predicted = _binary_labels(y_true, y_pred, pos_label)
    n = len(actual)
    weights = sample_weights(sample_weight, n)
    factors = _factors(features, n, int(max_levels))
    order = min(int(max_order), len(factors))
    _check_size(factors, order, int(max_subgroups))
    mask, success = _rate_rows(metric, actual, predicted)
    if mask is not None:
        factors = [_Factor(f.name, f.codes[mask], f.levels) for f in factors]
        weights = weights[mask] if weights is not None else None
    settings = _Settings(scope, metric, float(alpha), int(max_order), int(min_support), top)
    names = tuple(f.name for f in factors)
    if len(success) == 0:
        why = f"no row enters {metric} (it needs {_ROWS_TEXT[_RULES[metric][0]]}): nothing was tested"
        return _empty_result(settings, names, [why])
    tables = _count_tables(factors, success, weights, order)
    combos = sorted(tables, key=lambda c: (len(c), c))
    flat, zero_weight = _collect(tables, combos, int(min_support))
    warnings = _scan_warnings(settings, factors, tables, len(flat["rows"]), zero_weight)
    if len(flat["rows"]) == 0:
        return _empty_result(settings, names, warnings)
    return _result(settings, factors, combos, tables, _tested(tables, combos, flat), warnings)


@dataclass(frozen=True)
class _Settings:
    scope: str
    metric: str
    alpha: float
    max_order: int
    min_support: int
    top: int | None


def _scan_warnings(
    settings: _Settings,
    factors: Sequence[_Factor],
    tables: Mapping[tuple[int, ...], _Table],
    tested: int,
    zero_weight: int,
) -> list[str]:
    # Levels with rows, from each feature's own table (a Categorical's unused categories have none).
    warnings = [
        f"features[{f.name!r}] has a single value: its condition selects every row and is not tested"
        for i, f in enumerate(factors)
        if int(np.count_nonzero(tables[(i,)].rows.sum(axis=-1))) == 1
    ]
    if zero_weight:
        warnings.append(
            f"{zero_weight} subgroups with enough rows were not tested: their rows or their complement's "
            "have zero total sample_weight"
        )
    if tested == 0:
        rows = _ROWS_TEXT[_RULES[settings.metric][0]]
        warnings.append(
            f"no subgroup has at least min_support={settings.min_support} {rows} (and a non-empty "
            "complement): nothing was tested, subgroups_tested = 0"
        )
    return warnings


def _empty_result(settings: _Settings, names: tuple[str, ...], warnings: list[str]) -> ScanResult:
    return ScanResult(
        scope=settings.scope,
        metric=settings.metric,
        alpha=settings.alpha,
        max_order=settings.max_order,
        min_support=settings.min_support,
        feature_names=names,
        subgroups_tested=0,
        significant=0,
        worst_ratio=1.0,
        worst_difference=0.0,
        subgroups=[],
        warnings=warnings,
        test_counts={"z": 0, "fisher": 0},
    )


def _ratio(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    """numerator / denominator, with 0/0 = 1 (equal rates) and x/0 = inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = numerator / denominator
    return np.where((numerator == 0) & (denominator == 0), 1.0, out)


def _result(
    settings: _Settings,
    factors: Sequence[_Factor],
    combos: Sequence[tuple[int, ...]],
    tables: Mapping[tuple[int, ...], _Table],
    tested: _Tested,
    warnings: list[str],
) -> ScanResult:
    q, significant = _benjamini_hochberg(tested.p, settings.alpha)
    difference = tested.value - tested.complement
    harm = difference if not _RULES[settings.metric][2] else -difference  # lower: the subgroup is harmed
    ratio = _ratio(tested.value, tested.complement)
    # q first, then the most harmed subgroup, the simpler description, the larger subgroup.
    ranking = np.lexsort((tested.cell, tested.combo, -tested.count, tested.order, harm, q))
    kept = ranking if settings.top is None else ranking[: settings.top]
    columns = {"ratio": ratio, "difference": difference, "q_value": q, "significant": significant}

    def row(i: int) -> dict[str, Any]:
        return _row(factors, combos, tables, tested, columns, i)

    worst_ratio, worst_difference, worst_row = 1.0, 0.0, None
    if significant.any():
        lower = np.minimum(tested.value, tested.complement)
        higher = np.maximum(tested.value, tested.complement)
        disparity = np.where(significant, _ratio(lower, higher), np.inf)
        worst = int(np.lexsort((harm, q, disparity))[0])
        worst_ratio, worst_difference, worst_row = (
            float(disparity[worst]),
            float(difference[worst]),
            row(worst),
        )
    rows = [row(i) for i in kept.tolist()]
    exact = int(np.count_nonzero(tested.exact))
    return ScanResult(
        scope=settings.scope,
        metric=settings.metric,
        alpha=settings.alpha,
        max_order=settings.max_order,
        min_support=settings.min_support,
        feature_names=tuple(f.name for f in factors),
        subgroups_tested=len(q),
        significant=int(np.count_nonzero(significant)),
        worst_ratio=worst_ratio,
        worst_difference=worst_difference,
        subgroups=rows,
        warnings=warnings,
        test_counts={"z": len(q) - exact, "fisher": exact},
        worst_subgroup=worst_row,
    )


def _row(
    factors: Sequence[_Factor],
    combos: Sequence[tuple[int, ...]],
    tables: Mapping[tuple[int, ...], _Table],
    tested: _Tested,
    columns: Mapping[str, NDArray[Any]],
    i: int,
) -> dict[str, Any]:
    return {
        "conditions": _conditions(factors, combos[int(tested.combo[i])], tables, int(tested.cell[i])),
        "count": int(tested.count[i]),
        "value": float(tested.value[i]),
        "complement_value": float(tested.complement[i]),
        "ratio": float(columns["ratio"][i]),
        "difference": float(columns["difference"][i]),
        "p_value": float(tested.p[i]),
        "q_value": float(columns["q_value"][i]),
        "significant": bool(columns["significant"][i]),
    }


def _conditions(
    factors: Sequence[_Factor], combo: tuple[int, ...], tables: Mapping[tuple[int, ...], _Table], cell: int
) -> dict[str, Label]:
    codes = np.unravel_index(cell, tables[combo].rows.shape[:-1])
    return {factors[i].name: factors[i].levels[int(c)] for i, c in zip(combo, codes, strict=True)}
