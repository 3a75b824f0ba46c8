"""Group-fairness metrics for binary classifiers: fairlearn's definitions, computed in one pass.

Every metric here is a function of the per-group confusion counts (groups x {TN, FP, FN, TP}), so
:func:`assess` factorises each sensitive feature once, folds features and labels into one integer
code per row (mixed radix) and counts all cells with ``np.bincount``. Bootstrap intervals reuse the
same fact: a row bootstrap of unweighted data is a multinomial resample of those cell counts.

pandas is imported only when the caller passed pandas objects (or calls ``to_pandas()``).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AGGREGATE_METRICS",
    "GROUP_METRICS",
    "FairnessResult",
    "GroupLabel",
    "assess",
]

#: Aggregate metrics of a :class:`FairnessResult`, in the order :meth:`FairnessResult.metrics` lists them.
AGGREGATE_METRICS: tuple[str, ...] = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equalized_odds_ratio",
    "equal_opportunity_difference",
    "equal_opportunity_ratio",
    "accuracy",
    "selection_rate",
    "count",
)

#: Per-group columns of :attr:`FairnessResult.by_group` (besides ``group``).
GROUP_METRICS: tuple[str, ...] = (
    "count",
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "accuracy",
)

#: A group label as reported in ``by_group``.
GroupLabel = int | float | str | bool


# Rows per block of the counting pass: the block's key buffer stays in cache.
_CHUNK = 1 << 17
# Most cells (groups x label codes) one bincount may address; beyond it groups are compacted first.
_MAX_CELLS = 1 << 22
# Integer labels spanning at most this many values are counted directly, no comparison pass.
_SMALL_LABEL_RANGE = 8
# Fixed-width string features: distinct values found by equality passes before falling back to a dict.
_EQ_SCAN_LIMIT = 32
# Per-group warnings listed one by one before the rest are summarised in one line.
_GROUP_WARNINGS = 20
# Bootstrap: most multinomial cells drawn per batch (bounds memory for many groups).
_BOOT_BATCH_CELLS = 1 << 22

_METRIC_GROUPS = {
    "selection_rate": ("demographic_parity_difference", "demographic_parity_ratio"),
    "true_positive_rate": (
        "equal_opportunity_difference",
        "equal_opportunity_ratio",
        "equalized_odds_difference",
        "equalized_odds_ratio",
    ),
    "false_positive_rate": ("equalized_odds_difference", "equalized_odds_ratio"),
}


# --------------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True, repr=False)
class FairnessResult:
    """The fairness metrics of one :func:`assess` call.

    Aggregate metrics are attributes (plain ``float``; ``count`` is an ``int``); ``by_group`` holds one
    plain dict per group (``group``, ``count``, ``selection_rate``, ``true_positive_rate``,
    ``false_positive_rate``, ``accuracy``), ``warnings`` says which rates or groups were left out and why, and
    ``ci`` maps every aggregate metric to its ``(low, high)`` bootstrap interval (empty without
    ``n_boot``).
    """

    scope: str
    sensitive_feature_names: tuple[str, ...]
    demographic_parity_difference: float
    demographic_parity_ratio: float
    equalized_odds_difference: float
    equalized_odds_ratio: float
    equal_opportunity_difference: float
    equal_opportunity_ratio: float
    accuracy: float
    selection_rate: float
    count: int
    by_group: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    ci_level: float = 0.95
    n_boot: int | None = None

    def metrics(self) -> dict[str, float]:
        """Aggregate metrics by plain name, each followed by ``<name>.ci_low``/``.ci_high`` if computed."""
        out: dict[str, float] = {}
        for name in AGGREGATE_METRICS:
            out[name] = getattr(self, name)
            if name in self.ci:
                low, high = self.ci[name]
                out[f"{name}.ci_low"] = low
                out[f"{name}.ci_high"] = high
        return out

    def to_pandas(self) -> pd.DataFrame:
        """``by_group`` as a DataFrame indexed by the sensitive feature(s), one column per group metric."""
        import pandas as pd

        names = list(self.sensitive_feature_names)
        labels = [tuple(row["group"][name] for name in names) for row in self.by_group]
        if len(names) == 1:
            index = pd.Index([lab[0] for lab in labels], name=names[0])
        else:
            index = pd.MultiIndex.from_tuples(labels, names=names)
        data = {col: [row[col] for row in self.by_group] for col in GROUP_METRICS}
        frame = pd.DataFrame(data, index=index, columns=list(GROUP_METRICS))
        return frame.astype({"count": "int64"})

    def __repr__(self) -> str:
        lines = [f"FairnessResult(scope={self.scope!r}, groups={len(self.by_group)}, count={self.count})"]
        width = max(len(name) for name in AGGREGATE_METRICS)
        pct = f"{self.ci_level:.0%}"
        for name in AGGREGATE_METRICS:
            value = getattr(self, name)
            text = str(value) if name == "count" else f"{value:.4f}"
            if name in self.ci and name != "count":
                low, high = self.ci[name]
                text += f"   {pct} CI [{low:.4f}, {high:.4f}]"
            lines.append(f"  {name:<{width}}  {text}")
        if self.warnings:
            lines.append(f"  warnings ({len(self.warnings)}):")
            lines.extend(f"    - {w}" for w in self.warnings)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Inputs


def _is_pandas(x: object) -> bool:
    return type(x).__module__.startswith("pandas")


def _loaded_pandas() -> Any:
    # pandas only if something else already imported it: never pay its import for numpy input.
    return sys.modules.get("pandas")


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses bool()
        return True


def _plain(value: object) -> GroupLabel:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _show(values: Iterable[object], limit: int = 5) -> str:
    items = [repr(_plain(v)) if not _is_missing(v) else repr(v) for v in values]
    with contextlib.suppress(TypeError):
        items.sort()
    if len(items) > limit:
        items = [*items[:limit], "..."]
    return "[" + ", ".join(items) + "]"


def _labels_1d(y: Any, arg: str) -> NDArray[Any]:
    """y_true / y_pred / sample_weight as a 1-D numpy array (missing values checked by the caller)."""
    if _is_pandas(y):
        pd = sys.modules["pandas"]
        if isinstance(y, pd.DataFrame):
            if y.shape[1] != 1:
                raise ValueError(f"{arg} must be 1-D, got a DataFrame with {y.shape[1]} columns")
            y = y.iloc[:, 0]
        dtype = y.dtype
        if (not isinstance(dtype, np.dtype) or dtype.kind == "O") and bool(pd.isna(y).any()):
            raise ValueError(f"{arg} contains missing values (NaN/None/NA)")
        arr = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    elif isinstance(y, np.ndarray):
        arr = y
    elif isinstance(y, (str, bytes)) or not isinstance(y, Iterable):
        raise ValueError(f"{arg} must be a 1-D array-like, got {type(y).__name__}")
    else:
        arr = np.asarray(y if isinstance(y, Sequence) else list(y))
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{arg} must be 1-D, got shape {arr.shape}")
    return arr


# --------------------------------------------------------------------------------------------------
# Digits: integer columns whose values minus `lo` lie in [0, radix); the counting pass combines them.


@dataclass
class _Digit:
    values: NDArray[Any]
    radix: int
    lo: int


@dataclass
class _Feature:
    name: str
    digit: _Digit
    labels: NDArray[Any]  # label of each code (value - lo)
    rank: NDArray[np.intp] | None  # sort position of each code; None when codes are already in order


def _object_array(items: Sequence[object]) -> NDArray[Any]:
    # np.array(list_of_tuples) would build a 2-D array.
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _rank_of(labels: Sequence[Any]) -> NDArray[np.intp] | None:
    k = len(labels)
    try:
        order = sorted(range(k), key=lambda i: labels[i])
    except TypeError:  # mixed types: deterministic, if arbitrary, order
        order = sorted(range(k), key=lambda i: (type(labels[i]).__name__, str(labels[i])))
    if order == list(range(k)):
        return None
    rank = np.empty(k, dtype=np.intp)
    rank[np.asarray(order, dtype=np.intp)] = np.arange(k, dtype=np.intp)
    return rank


def _feature_from_codes(name: str, codes: NDArray[Any], uniques: Sequence[object]) -> _Feature:
    missing = [u for u in uniques if _is_missing(u)]
    if missing:
        raise ValueError(f"sensitive feature {name!r} contains missing values (NaN/None/NA)")
    return _Feature(name, _Digit(codes, len(uniques), 0), _object_array(uniques), _rank_of(uniques))


def _factorize_hashable(name: str, values: Sequence[object] | NDArray[Any]) -> _Feature:
    pd = _loaded_pandas()
    if pd is not None and isinstance(values, np.ndarray):
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        return _feature_from_codes(name, codes, list(uniques))
    items = values.tolist() if isinstance(values, np.ndarray) else values
    try:
        uniques = list(dict.fromkeys(items))
    except TypeError as exc:
        raise ValueError(f"sensitive feature {name!r} has unhashable labels: {exc}") from None
    table = {key: i for i, key in enumerate(uniques)}
    codes = np.fromiter(map(table.__getitem__, items), dtype=np.intp, count=len(items))
    return _feature_from_codes(name, codes, uniques)


def _factorize_fixed_width(name: str, values: NDArray[Any]) -> _Feature:
    # Numpy str/bytes arrays: one vectorised equality pass per distinct value beats hashing
    # Python objects (and np.unique's sort) by far when groups are few; many fall back to a dict.
    codes = np.zeros(len(values), dtype=np.intp)
    remaining = np.ones(len(values), dtype=bool)
    uniques: list[object] = []
    while len(uniques) < _EQ_SCAN_LIMIT:
        i = int(remaining.argmax())
        if not remaining[i]:
            break
        eq = values == values[i]
        np.copyto(codes, len(uniques), where=eq)
        remaining &= ~eq
        uniques.append(values[i])
    if remaining.any():
        idx = np.flatnonzero(remaining)
        table: dict[Any, int] = {u: i for i, u in enumerate(uniques)}
        codes[idx] = np.fromiter(
            (table.setdefault(v, len(table)) for v in values[idx].tolist()), dtype=np.intp, count=len(idx)
        )
        uniques = list(table)
    return _feature_from_codes(name, codes, uniques)


def _feature_from_ints(name: str, values: NDArray[Any], n: int) -> _Feature:
    if values.dtype == np.bool_:
        return _Feature(name, _Digit(values, 2, 0), np.array([False, True]), None)
    lo, hi = int(values.min()), int(values.max())
    radix = hi - lo + 1
    if radix <= max(2 * n, 4096) and radix <= _MAX_CELLS // 4 and hi < 1 << 63:
        # Codes are the values themselves: no factorisation pass; unused values leave empty cells.
        return _Feature(name, _Digit(values, radix, lo), np.arange(lo, hi + 1, dtype=np.int64), None)
    return _feature_from_sortable(name, values)


def _feature_from_sortable(name: str, values: NDArray[Any]) -> _Feature:
    uniques, inverse = np.unique(values, return_inverse=True)
    return _Feature(name, _Digit(inverse.reshape(-1), len(uniques), 0), uniques, None)


def _feature_from_floats(name: str, values: NDArray[Any], n: int) -> _Feature:
    lo, hi = float(values.min()), float(values.max())
    if math.isnan(lo) or math.isnan(hi):
        raise ValueError(f"sensitive feature {name!r} contains missing values (NaN)")
    if (
        math.isfinite(lo)
        and math.isfinite(hi)
        and hi - lo < max(2 * n, 4096)
        and lo.is_integer()
        and bool(np.all(values == np.floor(values)))
    ):
        codes = values.astype(np.intp)
        ilo = int(lo)
        radix = int(hi) - ilo + 1
        return _Feature(name, _Digit(codes, radix, ilo), np.arange(ilo, ilo + radix, dtype=float), None)
    return _feature_from_sortable(name, values)


def _feature_from_pandas(name: str, x: Any, n: int) -> _Feature:
    pd = sys.modules["pandas"]
    cat = None
    if isinstance(x, pd.Categorical):
        cat = x
    elif isinstance(getattr(x, "dtype", None), pd.CategoricalDtype):
        cat = x.array if isinstance(x, pd.Series) else pd.Categorical(x)
    if cat is not None:
        codes = np.asarray(cat.codes)
        if codes.size and int(codes.min()) < 0:
            raise ValueError(f"sensitive feature {name!r} contains missing values (NaN/None/NA)")
        # fairlearn groups by value, not by category order; unused categories are empty, so no group.
        return _feature_from_codes(name, codes, list(cat.categories))
    dtype = x.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return _feature_from_ints(name, np.asarray(x), n)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return _feature_from_floats(name, np.asarray(x), n)
    codes, uniques = pd.factorize(x, use_na_sentinel=False)
    return _feature_from_codes(name, np.asarray(codes), list(uniques))


def _feature(name: str, x: Any, n: int) -> _Feature:
    if _is_pandas(x):
        if len(x) != n:
            raise ValueError(f"sensitive feature {name!r} has {len(x)} rows but y_true has {n}")
        return _feature_from_pandas(name, x, n)
    if not isinstance(x, np.ndarray):
        if isinstance(x, (str, bytes)) or not isinstance(x, Iterable):
            raise ValueError(f"sensitive feature {name!r} must be 1-D array-like, got {type(x).__name__}")
        items = x if isinstance(x, Sequence) else list(x)
        if len(items) != n:
            raise ValueError(f"sensitive feature {name!r} has {len(items)} rows but y_true has {n}")
        return _factorize_hashable(name, items)
    arr = x
    if arr.ndim != 1:
        raise ValueError(f"sensitive feature {name!r} must be 1-D, got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(f"sensitive feature {name!r} has {len(arr)} rows but y_true has {n}")
    kind = arr.dtype.kind
    if kind in "iub":
        return _feature_from_ints(name, arr, n)
    if kind == "f":
        return _feature_from_floats(name, arr, n)
    if kind in "US":
        return _factorize_fixed_width(name, arr)
    return _factorize_hashable(name, arr)


def _split_features(sensitive_features: Any, n: int) -> list[tuple[str, Any]]:
    """(name, column) per feature, in the order given."""
    sf = sensitive_features
    if sf is None:
        raise ValueError("sensitive_features is required")
    if _is_pandas(sf):
        pd = sys.modules["pandas"]
        if isinstance(sf, pd.DataFrame):
            if sf.shape[1] == 0:
                raise ValueError("sensitive_features has no columns")
            return [
                (f"sf{i}" if col is None else str(col), sf.iloc[:, i]) for i, col in enumerate(sf.columns)
            ]
        name = getattr(sf, "name", None)
        return [("sf0" if name is None else str(name), sf)]
    if isinstance(sf, Mapping):
        if not sf:
            raise ValueError("sensitive_features is an empty mapping")
        return [(str(key), col) for key, col in sf.items()]
    if isinstance(sf, np.ndarray):
        if sf.ndim == 1:
            return [("sf0", sf)]
        if sf.ndim == 2:
            if sf.shape[1] == 0:
                raise ValueError("sensitive_features has no columns")
            return [(f"sf{i}", sf[:, i]) for i in range(sf.shape[1])]
        raise ValueError(f"sensitive_features must be 1-D or 2-D, got shape {sf.shape}")
    if isinstance(sf, (str, bytes)) or not isinstance(sf, Iterable):
        raise ValueError(f"sensitive_features must be array-like, got {type(sf).__name__}")
    items = sf if isinstance(sf, Sequence) else list(sf)
    if len(items) == 0:
        raise ValueError("sensitive_features is empty")
    first = items[0]
    if _is_pandas(first) or (isinstance(first, np.ndarray) and first.ndim == 1):
        # A list of columns (Series / 1-D arrays), one feature each.
        out: list[tuple[str, Any]] = []
        for i, col in enumerate(items):
            name = getattr(col, "name", None) if _is_pandas(col) else None
            out.append((f"sf{i}" if name is None else str(name), col))
        return out
    if isinstance(first, (list, tuple)):
        rows = np.empty((len(items), len(first)), dtype=object)
        try:
            rows[:] = items
        except ValueError:
            raise ValueError("sensitive_features rows must all have the same length") from None
        return [(f"sf{i}", rows[:, i]) for i in range(rows.shape[1])]
    return [("sf0", items)]


# --------------------------------------------------------------------------------------------------
# Labels


@dataclass
class _Labels:
    digit: _Digit
    positive: NDArray[np.bool_]  # per code: is it pos_label?
    values: NDArray[Any] | None  # label of each code, for direct integer digits (validated after counting)
    seen: list[object] | None  # distinct labels, when known before counting


def _label_digit(arr: NDArray[Any], arg: str, pos_label: object, default_rule: bool) -> _Labels:
    kind = arr.dtype.kind
    if kind == "b":
        values = np.array([False, True])
        return _Labels(_Digit(arr, 2, 0), np.asarray(values == pos_label, dtype=bool), values, None)
    if kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if default_rule and (lo < -1 or hi > 1):
            bad = lo if lo < -1 else hi
            raise _default_rule_error(arg, [bad])
        if hi - lo < _SMALL_LABEL_RANGE:
            values = np.arange(lo, hi + 1)
            positive = np.array([v == pos_label for v in values.tolist()], dtype=bool)
            return _Labels(_Digit(arr, hi - lo + 1, lo), positive, values, None)
    if kind == "f" and bool(np.isnan(arr).any()):
        raise ValueError(f"{arg} contains missing values (NaN)")
    # Anything else: one comparison with pos_label, then check the rest hold a single other label.
    try:
        eq = arr == pos_label
        ind = np.asarray(eq, dtype=bool) if isinstance(eq, np.ndarray) else np.zeros(len(arr), dtype=bool)
    except (TypeError, ValueError):
        raise ValueError(
            f"{arg} contains missing values (NaN/None/NA) or labels that cannot be compared"
        ) from None
    seen: list[object] = [pos_label] if ind.any() else []
    rest = arr[~ind]
    if rest.size:
        first = rest[0]
        if _is_missing(first):
            raise ValueError(f"{arg} contains missing values (NaN/None/NA)")
        try:
            same = np.asarray(rest == first, dtype=bool)
        except (TypeError, ValueError):
            raise ValueError(
                f"{arg} contains missing values (NaN/None/NA) or labels that cannot be compared"
            ) from None
        if same.all():
            seen.append(first)
        else:
            others = dict.fromkeys([first, *rest[~same][:10_000].tolist()])
            seen.extend(others)
    if any(_is_missing(v) for v in seen):
        raise ValueError(f"{arg} contains missing values (NaN/None/NA)")
    return _Labels(_Digit(ind, 2, 0), np.array([False, True]), None, seen)


def _default_rule_error(arg: str, labels: Iterable[object]) -> ValueError:
    return ValueError(
        f"{arg} has labels {_show(labels)}; pos_label=1 (the default) needs labels in {{0, 1}}, "
        "{-1, 1} or bool. Pass the positive label explicitly, e.g. pos_label='yes'"
    )


def _check_labels(seen_t: list[object], seen_p: list[object], pos_label: object, default_rule: bool) -> None:
    if default_rule:
        for arg, seen in (("y_true", seen_t), ("y_pred", seen_p)):
            plain = {_plain(v) for v in seen}
            if any(not _in_default_set(v) for v in seen) or (0 in plain and -1 in plain):
                raise _default_rule_error(arg, seen)
        union = {_plain(v) for v in [*seen_t, *seen_p]}
        if 0 in union and -1 in union:
            raise ValueError(
                f"y_true and y_pred mix labels {_show(union)}: use either {{0, 1}} or {{-1, 1}}, "
                "or pass pos_label"
            )
        return
    negatives: dict[object, str] = {}
    for arg, seen in (("y_true", seen_t), ("y_pred", seen_p)):
        for v in seen:
            if not bool(v == pos_label):
                negatives.setdefault(_plain(v), arg)
    if len(negatives) == 2 and len(negatives) == len({_plain(v) for v in [*seen_t, *seen_p]}):
        raise ValueError(
            f"unknown labels: pos_label={pos_label!r} is not one of the labels {_show(negatives)} "
            "in y_true and y_pred"
        )
    if len(negatives) > 1:
        arg = list(negatives.values())[-1]
        raise ValueError(
            f"unknown labels: y_true and y_pred hold {_show(negatives)} besides pos_label={pos_label!r}, "
            f"but binary labels allow one negative label (first extra one in {arg})"
        )


def _in_default_set(v: object) -> bool:
    try:
        return bool(v == 0 or v == 1 or v == -1) and not isinstance(v, (str, bytes))
    except (TypeError, ValueError):
        return False


def _seen_from_counts(labels: _Labels, per_code: NDArray[Any]) -> list[object]:
    if labels.seen is not None:
        return labels.seen
    assert labels.values is not None
    return [v for v, c in zip(labels.values.tolist(), per_code.tolist(), strict=True) if c > 0]


# --------------------------------------------------------------------------------------------------
# Counting


def _const(digits: Sequence[_Digit]) -> int:
    """The constant that shifts every digit by its ``lo``, wrapped to int64."""
    const = 0
    size = 1
    for d in reversed(digits):
        const -= d.lo * size
        size *= d.radix
    const %= 1 << 64
    return const - (1 << 64) if const >= 1 << 63 else const


def _keys(digits: Sequence[_Digit], start: int, stop: int, out: NDArray[np.intp], const: int) -> None:
    # Horner over the digits in int64 (dtype forced: int8 inputs must not overflow in an int8 loop);
    # wrap-around is harmless because the true key fits.
    np.multiply(digits[0].values[start:stop], digits[1].radix, out=out, dtype=np.intp, casting="unsafe")
    for i in range(1, len(digits)):
        np.add(out, digits[i].values[start:stop], out=out, dtype=np.intp, casting="unsafe")
        if i + 1 < len(digits):
            out *= digits[i + 1].radix
    if const:
        out += const


def _count(
    digits: Sequence[_Digit], weights: NDArray[np.float64] | None, n: int
) -> tuple[NDArray[np.int64], NDArray[np.float64] | None, NDArray[np.intp] | None]:
    """Row counts (and weight sums) per mixed-radix cell; also the key array if it was materialised."""
    size = math.prod(d.radix for d in digits)
    const = _const(digits)
    if size <= _CHUNK // 8 and n > _CHUNK:
        counts = np.zeros(size, dtype=np.int64)
        wsum = np.zeros(size, dtype=np.float64) if weights is not None else None
        buf = np.empty(_CHUNK, dtype=np.intp)
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            key = buf[: stop - start]
            _keys(digits, start, stop, key, const)
            counts += np.bincount(key, minlength=size)
            if wsum is not None and weights is not None:
                wsum += np.bincount(key, weights=weights[start:stop], minlength=size)
        return counts, wsum, None
    key = np.empty(n, dtype=np.intp)
    _keys(digits, 0, n, key, const)
    counts = np.bincount(key, minlength=size).astype(np.int64, copy=False)
    wsum = None
    if weights is not None:
        wsum = np.bincount(key, weights=weights, minlength=size).astype(np.float64, copy=False)
    return counts, wsum, key


def _combine(features: list[_Feature], label_cells: int) -> tuple[_Digit, NDArray[np.intp]]:
    """Cross features into one compact group digit when their product space is too large to count.

    Returns the digit and, per group code, the code of each feature (groups x features). Compaction
    is sort-based (np.unique), which keeps codes in lexicographic order; this path is rare.
    """
    code: NDArray[np.intp] | None = None
    parts = np.zeros((1, 0), dtype=np.intp)
    radix = 1
    for f in features:
        fc = np.asarray(f.digit.values, dtype=np.intp)
        if f.digit.lo:
            fc = fc - f.digit.lo
        f_radix = f.digit.radix
        f_parts = np.arange(f_radix, dtype=np.intp)
        if f_radix * label_cells > _MAX_CELLS:
            f_parts, inv = np.unique(fc, return_inverse=True)
            fc, f_radix = inv.reshape(-1).astype(np.intp, copy=False), len(f_parts)
        if code is None:
            code, parts, radix = fc, f_parts[:, None], f_radix
            continue
        combined = code * f_radix + fc
        if radix * f_radix * label_cells <= _MAX_CELLS:
            parts = np.column_stack([np.repeat(parts, f_radix, axis=0), np.tile(f_parts, radix)])
            code, radix = combined, radix * f_radix
        else:
            uniq, inv = np.unique(combined, return_inverse=True)
            parts = np.column_stack([parts[uniq // f_radix], f_parts[uniq % f_radix]])
            code, radix = inv.reshape(-1).astype(np.intp, copy=False), len(uniq)
    assert code is not None
    return _Digit(code, radix, 0), parts


# --------------------------------------------------------------------------------------------------
# Metrics from confusion cells. cells[..., g, c] with c = 2*actual_positive + predicted_positive:
# 0 = TN, 1 = FP, 2 = FN, 3 = TP. Works on one table or a stack of bootstrap resamples.


def _group_rates(cells: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    tn, fp, fn, tp = cells[..., 0], cells[..., 1], cells[..., 2], cells[..., 3]
    total = tn + fp + fn + tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "selection_rate": (fp + tp) / total,
            "true_positive_rate": tp / (tp + fn),
            "false_positive_rate": fp / (fp + tn),
            "accuracy": (tp + tn) / total,
        }


def _between(
    rate: NDArray[np.float64], eligible: NDArray[np.bool_], single: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.intp], NDArray[np.float64]]:
    valid = eligible & ~np.isnan(rate)
    n_valid = valid.sum(axis=-1)
    hi = np.where(valid, rate, -np.inf).max(axis=-1, initial=-np.inf)
    lo = np.where(valid, rate, np.inf).min(axis=-1, initial=np.inf)
    # Data with a single group: fairlearn's 0 difference / ratio 1 (every rate is defined there).
    # Groups left out (undefined rate, min_group_size) leaving one: NaN, nothing was compared.
    enough = (n_valid >= 2) | ((n_valid == 1) & single)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = np.where(enough, hi - lo, np.nan)
        ratio = np.where(enough & (hi > 0), lo / hi, np.nan)
    return diff, ratio, n_valid, hi


def _worst_ratio(
    tp_r: NDArray[np.float64],
    tp_n: NDArray[np.intp],
    tp_hi: NDArray[np.float64],
    fp_r: NDArray[np.float64],
    fp_n: NDArray[np.intp],
    fp_hi: NDArray[np.float64],
    single: NDArray[np.bool_],
) -> NDArray[np.float64]:
    # A rate that is 0 in every group is at exact parity: its 0/0 ratio is skipped, not propagated
    # (fairlearn's min() over [tpr, fpr] skips a NaN FPR ratio the same way, if only by position).
    tp_skip = ((tp_n >= 2) | ((tp_n == 1) & single)) & (tp_hi == 0)
    fp_skip = ((fp_n >= 2) | ((fp_n == 1) & single)) & (fp_hi == 0)
    both = np.minimum(tp_r, fp_r)
    return np.where(tp_skip & fp_skip, np.nan, np.where(tp_skip, fp_r, np.where(fp_skip, tp_r, both)))


def _aggregate(
    cells: NDArray[np.float64], rows: NDArray[Any], min_group_size: int | None
) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]], dict[str, tuple[Any, ...]]]:
    """Aggregate metrics, per-group rates and the (n_valid, max) diagnostics behind each rate's NaNs."""
    rates = _group_rates(cells)
    eligible = rows > 0
    single = eligible.sum(axis=-1) == 1
    if min_group_size is not None:
        eligible &= rows >= min_group_size
    dp_d, dp_r, dp_n, dp_hi = _between(rates["selection_rate"], eligible, single)
    tp_d, tp_r, tp_n, tp_hi = _between(rates["true_positive_rate"], eligible, single)
    fp_d, fp_r, fp_n, fp_hi = _between(rates["false_positive_rate"], eligible, single)
    totals = cells.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        whole = totals.sum(axis=-1)
        accuracy = (totals[..., 0] + totals[..., 3]) / whole
        selection = (totals[..., 1] + totals[..., 3]) / whole
    agg = {
        "demographic_parity_difference": dp_d,
        "demographic_parity_ratio": dp_r,
        "equalized_odds_difference": np.maximum(tp_d, fp_d),
        "equalized_odds_ratio": _worst_ratio(tp_r, tp_n, tp_hi, fp_r, fp_n, fp_hi, single),
        "equal_opportunity_difference": tp_d,
        "equal_opportunity_ratio": tp_r,
        "accuracy": accuracy,
        "selection_rate": selection,
    }
    diag = {
        "selection_rate": (dp_n, dp_hi),
        "true_positive_rate": (tp_n, tp_hi),
        "false_positive_rate": (fp_n, fp_hi),
    }
    return agg, rates, diag


# --------------------------------------------------------------------------------------------------
# Bootstrap


def _bootstrap_counts(
    cells: NDArray[np.int64],
    n: int,
    min_group_size: int | None,
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, NDArray[np.float64]]:
    # A row bootstrap of unweighted data is exactly a multinomial draw of the cell counts.
    groups = cells.shape[0]
    p = cells.reshape(-1).astype(np.float64) / n
    batch = max(1, min(n_boot, _BOOT_BATCH_CELLS // max(1, p.size)))
    parts: dict[str, list[NDArray[np.float64]]] = {}
    for start in range(0, n_boot, batch):
        size = min(batch, n_boot - start)
        draw = rng.multinomial(n, p, size=size).reshape(size, groups, 4)
        agg, _, _ = _aggregate(draw.astype(np.float64), draw.sum(axis=-1), min_group_size)
        for name, values in agg.items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def _bootstrap_rows(
    cell_of_row: NDArray[np.intp],
    weights: NDArray[np.float64],
    groups: int,
    min_group_size: int | None,
    n_boot: int,
    rng: np.random.Generator,
) -> dict[str, NDArray[np.float64]]:
    """Weighted: an exact row bootstrap (weights travel with their rows), O(n_boot x rows).

    Drawn in two steps with the same joint distribution as drawing n rows with replacement: the
    number of rows each confusion cell gets (multinomial over cells), then which rows of that cell
    (uniform among them). Sorting rows by cell once keeps each cell's weights contiguous.
    """
    n = len(cell_of_row)
    size = groups * 4
    order = np.argsort(cell_of_row.astype(np.uint16) if size <= 1 << 16 else cell_of_row, kind="stable")
    sorted_w = weights[order]
    del order
    sizes = np.bincount(cell_of_row, minlength=size)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    p = sizes / n
    occupied = np.flatnonzero(sizes).tolist()
    segments = {k: sorted_w[int(starts[k]) : int(starts[k] + sizes[k])] for k in occupied}
    index_type = np.int32 if n < 1 << 31 else np.int64  # half the index bandwidth
    batch = max(1, min(n_boot, _BOOT_BATCH_CELLS // size))
    parts: dict[str, list[NDArray[np.float64]]] = {}
    for first in range(0, n_boot, batch):
        count = min(batch, n_boot - first)
        draws = rng.multinomial(n, p, size=count)
        wsum = np.zeros((count, size), dtype=np.float64)
        for b in range(count):
            if len(occupied) <= 1024:
                for k in occupied:
                    c = int(draws[b, k])
                    if c:
                        segment = segments[k]
                        wsum[b, k] = segment[rng.integers(0, len(segment), c, dtype=index_type)].sum()
            else:  # many cells: one vectorised pass instead of a Python loop per cell
                seg = np.repeat(np.arange(size), draws[b])
                pick = starts[seg] + (rng.random(n) * sizes[seg]).astype(np.intp)
                wsum[b] = np.bincount(seg, weights=sorted_w[pick], minlength=size)
        rows = draws.reshape(count, groups, 4).sum(axis=-1)
        agg, _, _ = _aggregate(wsum.reshape(count, groups, 4), rows, min_group_size)
        for name, values in agg.items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


# --------------------------------------------------------------------------------------------------
# Validation helpers


def _check_int(value: object, arg: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{arg} must be an int >= {minimum} or None, got {value!r}")
    if value < minimum:
        raise ValueError(f"{arg} must be an int >= {minimum} or None, got {value!r}")
    return int(value)


def _weights(sample_weight: object, n: int) -> NDArray[np.float64] | None:
    if sample_weight is None:
        return None
    arr = _labels_1d(sample_weight, "sample_weight")
    if len(arr) != n:
        raise ValueError(f"sample_weight has {len(arr)} rows but y_true has {n}")
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"sample_weight must be numeric, got dtype {arr.dtype}")
    w = np.ascontiguousarray(arr, dtype=np.float64)
    if not bool(np.isfinite(w).all()):
        raise ValueError("sample_weight contains NaN or infinite values")
    if float(w.min()) < 0:
        raise ValueError("sample_weight contains negative values")
    if float(w.sum()) <= 0:
        raise ValueError("sample_weight sums to 0")
    return w


def _group_text(group: Mapping[str, GroupLabel]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in group.items())


_UNDEFINED_WHY = {
    "true_positive_rate": ("no actual positives", "its actual positives have zero total sample_weight"),
    "false_positive_rate": ("no actual negatives", "its actual negatives have zero total sample_weight"),
    "selection_rate": ("no rows", "its rows have zero total sample_weight"),
}


# --------------------------------------------------------------------------------------------------
# Entry point


def assess(
    y_true: Any,
    y_pred: Any,
    *,
    sensitive_features: Any,
    scope: str | None = None,
    sample_weight: Any = None,
    pos_label: Any = 1,
    n_boot: int | None = None,
    ci: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    min_group_size: int | None = None,
) -> FairnessResult:
    """Group-fairness metrics of binary predictions ``y_pred`` against ``y_true`` across sensitive groups.

    ``sensitive_features`` is one feature (list, array, Series, Categorical) or several (DataFrame,
    dict of columns, 2-D array, list of Series), crossed into intersectional groups. ``pos_label=1``
    needs labels in {0, 1}, {-1, 1} or bool; pass the positive label for any other labels. With
    ``n_boot`` every aggregate metric gets a percentile-bootstrap interval at level ``ci``. Groups
    with fewer than ``min_group_size`` rows are reported but left out of the aggregates. See
    ``docs/metrics.md`` for definitions and the handling of undefined rates.
    """
    # --- arguments
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise ValueError(f"scope must be a non-empty str or None, got {scope!r}")
    n_boot = _check_int(n_boot, "n_boot", 1)
    min_group_size = _check_int(min_group_size, "min_group_size", 1)
    if isinstance(ci, bool) or not isinstance(ci, (float, int, np.floating)) or not 0 < float(ci) < 1:
        raise ValueError(f"ci must be a confidence level between 0 and 1 (exclusive), got {ci!r}")
    ci = float(ci)
    if pos_label is not None:
        try:
            hash(pos_label)
        except TypeError:
            raise ValueError(f"pos_label must be a single label, got {type(pos_label).__name__}") from None
        if _is_missing(pos_label):
            raise ValueError("pos_label must not be NaN")
    default_rule = pos_label is None or (
        isinstance(pos_label, (int, float, np.number, np.bool_))
        and not isinstance(pos_label, (str, bytes))
        and bool(pos_label == 1)
    )
    if pos_label is None:
        pos_label = 1

    # --- data
    yt = _labels_1d(y_true, "y_true")
    yp = _labels_1d(y_pred, "y_pred")
    n = len(yt)
    if n == 0:
        raise ValueError("y_true is empty")
    if len(yp) != n:
        raise ValueError(f"y_pred has {len(yp)} rows but y_true has {n}")
    weights = _weights(sample_weight, n)
    columns = _split_features(sensitive_features, n)
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"sensitive_features has duplicate feature names {names}")
    features = [_feature(name, col, n) for name, col in columns]
    lt = _label_digit(yt, "y_true", pos_label, default_rule)
    lp = _label_digit(yp, "y_pred", pos_label, default_rule)

    # --- one counting pass
    label_cells = lt.digit.radix * lp.digit.radix
    space = math.prod(f.digit.radix for f in features)
    if space * label_cells <= _MAX_CELLS:
        group_digits = [f.digit for f in features]
        parts: NDArray[np.intp] | None = None
    else:
        combined, parts = _combine(features, label_cells)
        group_digits = [combined]
        space = combined.radix
    counts, wsum, key = _count([*group_digits, lt.digit, lp.digit], weights, n)
    cube = counts.reshape(space, lt.digit.radix, lp.digit.radix)

    seen_t = _seen_from_counts(lt, cube.sum(axis=(0, 2)))
    seen_p = _seen_from_counts(lp, cube.sum(axis=(0, 1)))
    _check_labels(seen_t, seen_p, pos_label, default_rule)

    # Fold label codes into TN/FP/FN/TP: cell = 2 * actual positive + predicted positive.
    to_cell = (2 * lt.positive.astype(np.intp))[:, None] + lp.positive.astype(np.intp)[None, :]
    rows_per_group = cube.sum(axis=(1, 2))
    present = np.flatnonzero(rows_per_group)

    def fold(table: NDArray[Any]) -> NDArray[Any]:
        t = table.reshape(space, -1)[present]
        out = np.zeros((len(present), 4), dtype=t.dtype)
        for code, cell in enumerate(to_cell.reshape(-1).tolist()):
            out[:, cell] += t[:, code]
        return out

    row_cells = fold(counts)
    cells = fold(wsum).astype(np.float64) if wsum is not None else row_cells.astype(np.float64)
    rows = rows_per_group[present]

    # --- group labels, in fairlearn's order (lexicographic over sorted feature labels)
    if parts is None:
        codes_per_feature = list(np.unravel_index(present, [f.digit.radix for f in features]))
    else:
        codes_per_feature = [parts[present, j] for j in range(len(features))]
    sort_keys = [c if f.rank is None else f.rank[c] for f, c in zip(features, codes_per_feature, strict=True)]
    order = np.lexsort(sort_keys[::-1]) if len(present) > 1 else np.arange(len(present))
    present = present[order]
    row_cells, cells, rows = row_cells[order], cells[order], rows[order]
    labels_per_feature = [
        [_plain(v) for v in f.labels[c[order]].tolist()]
        for f, c in zip(features, codes_per_feature, strict=True)
    ]
    groups = [{f.name: labels_per_feature[j][i] for j, f in enumerate(features)} for i in range(len(present))]

    # --- metrics
    agg, rates, diag = _aggregate(cells, rows, min_group_size)
    warns: list[str] = []
    eligible = np.ones(len(present), dtype=bool)
    if min_group_size is not None:
        small = np.flatnonzero(rows < min_group_size).tolist()
        eligible[small] = False
        for i in small[:_GROUP_WARNINGS]:
            warns.append(
                f"group {_group_text(groups[i])} has {int(rows[i])} rows, fewer than "
                f"min_group_size={min_group_size}: reported but left out of the aggregates"
            )
        if len(small) > _GROUP_WARNINGS:
            warns.append(
                f"... and {len(small) - _GROUP_WARNINGS} more groups smaller than min_group_size="
                f"{min_group_size}, also left out of the aggregates"
            )
    raw = {
        "selection_rate": row_cells.sum(axis=1),
        "true_positive_rate": row_cells[:, 2] + row_cells[:, 3],
        "false_positive_rate": row_cells[:, 0] + row_cells[:, 1],
    }
    zero_rates: list[str] = []
    for rate_name, affected in _METRIC_GROUPS.items():
        metric_text = " and ".join(sorted(set(m.rsplit("_", 1)[0] + "_*" for m in affected)))
        undefined = np.flatnonzero(np.isnan(rates[rate_name]) & eligible).tolist()
        for i in undefined[:_GROUP_WARNINGS]:
            why = _UNDEFINED_WHY[rate_name][0 if raw[rate_name][i] == 0 else 1]
            extra = " (and accuracy)" if rate_name == "selection_rate" else ""
            warns.append(
                f"group {_group_text(groups[i])}: {rate_name}{extra} is undefined (0/0, {why}); "
                f"left out of {metric_text}"
            )
        if len(undefined) > _GROUP_WARNINGS:
            warns.append(
                f"... and {len(undefined) - _GROUP_WARNINGS} more groups with an undefined {rate_name}, "
                f"also left out of {metric_text}"
            )
        n_valid, hi = diag[rate_name]
        if len(groups) == 1 and int(n_valid) == 1:
            if rate_name == "selection_rate":
                warns.append(
                    "only one group: differences are 0 and ratios 1 by definition (as fairlearn reports)"
                )
            if float(hi) == 0:
                zero_rates.append(rate_name)
        elif int(n_valid) < 2:
            warns.append(
                f"{', '.join(affected)} are NaN: fewer than 2 groups have a defined {rate_name}"
                + (" after min_group_size" if min_group_size is not None else "")
            )
        elif float(hi) == 0:
            zero_rates.append(rate_name)
    if "selection_rate" in zero_rates:
        warns.append("demographic_parity_ratio is NaN: selection_rate is 0 in every group (ratio 0/0)")
    if "true_positive_rate" in zero_rates:
        warns.append("equal_opportunity_ratio is NaN: true_positive_rate is 0 in every group (ratio 0/0)")
    tp_zero, fp_zero = "true_positive_rate" in zero_rates, "false_positive_rate" in zero_rates
    if tp_zero and fp_zero:
        warns.append("equalized_odds_ratio is NaN: both true and false positive rates are 0 in every group")
    elif tp_zero or fp_zero:
        zero, other = ("true", "false") if tp_zero else ("false", "true")
        warns.append(
            f"equalized_odds_ratio uses the {other} positive rate alone: the {zero} positive rate is 0 in "
            "every group (exact parity, ratio 0/0)"
        )

    values = {name: float(v) for name, v in agg.items()}

    # --- confidence intervals
    intervals: dict[str, tuple[float, float]] = {}
    if n_boot is not None:
        if isinstance(random_state, np.random.Generator):
            rng = random_state
        else:
            try:
                rng = np.random.default_rng(random_state)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"random_state must be an int, a numpy Generator or None: {exc}") from None
        if weights is None:
            boot = _bootstrap_counts(row_cells, n, min_group_size, n_boot, rng)
        else:
            if key is None:
                all_digits = [*group_digits, lt.digit, lp.digit]
                key = np.empty(n, dtype=np.intp)
                _keys(all_digits, 0, n, key, _const(all_digits))
            # Map each row's product-space cell to (sorted group, TN/FP/FN/TP).
            lookup = np.full(space * label_cells, -1, dtype=np.intp)
            base = present[:, None] * label_cells + np.arange(label_cells)[None, :]
            lookup[base] = np.arange(len(present))[:, None] * 4 + to_cell.reshape(-1)[None, :]
            boot = _bootstrap_rows(lookup[key], weights, len(present), min_group_size, n_boot, rng)
        alpha = (1.0 - ci) / 2.0
        for name in AGGREGATE_METRICS:
            if name == "count":
                intervals[name] = (float(n), float(n))
                continue
            sample = boot[name]
            ok = sample[~np.isnan(sample)]
            if ok.size == 0:
                intervals[name] = (math.nan, math.nan)
            else:
                low, high = np.quantile(ok, [alpha, 1.0 - alpha])
                intervals[name] = (float(low), float(high))
            undefined = int(sample.size - ok.size)
            if undefined and not math.isnan(values[name]):
                warns.append(
                    f"bootstrap: {undefined} of {n_boot} resamples left {name} undefined; "
                    f"its interval uses the other {ok.size}"
                )

    by_group: list[dict[str, Any]] = [
        {
            "group": groups[i],
            "count": int(rows[i]),
            "selection_rate": float(rates["selection_rate"][i]),
            "true_positive_rate": float(rates["true_positive_rate"][i]),
            "false_positive_rate": float(rates["false_positive_rate"][i]),
            "accuracy": float(rates["accuracy"][i]),
        }
        for i in range(len(present))
    ]
    return FairnessResult(
        scope=scope if scope is not None else ".".join(names),
        sensitive_feature_names=tuple(names),
        count=n,
        by_group=by_group,
        warnings=warns,
        ci=intervals,
        ci_level=ci,
        n_boot=n_boot,
        demographic_parity_difference=values["demographic_parity_difference"],
        demographic_parity_ratio=values["demographic_parity_ratio"],
        equalized_odds_difference=values["equalized_odds_difference"],
        equalized_odds_ratio=values["equalized_odds_ratio"],
        equal_opportunity_difference=values["equal_opportunity_difference"],
        equal_opportunity_ratio=values["equal_opportunity_ratio"],
        accuracy=values["accuracy"],
        selection_rate=values["selection_rate"],
    )
