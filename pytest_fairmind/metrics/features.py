"""Sensitive features: split into named columns, factorised once into integer codes, crossed into groups.

Each feature becomes a :class:`~pytest_fairmind.metrics.counting.Digit` (integers and bools as they
are, pandas Categoricals by their codes, strings through one factorisation) plus the label of each
code; :func:`group_labels` turns the codes of the groups found back into labels, in fairlearn's order.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

import pytest_fairmind.metrics.counting as counting
from pytest_fairmind.metrics.counting import Digit
from pytest_fairmind.metrics.inputs import (
    GroupLabel,
    arrow_codes,
    arrow_columns,
    arrow_values,
    is_columnar,
    is_missing,
    is_pandas,
    loaded_pandas,
    plain,
)

# Fixed-width string features: distinct values found by equality passes before falling back to a dict.
EQ_SCAN_LIMIT = 32


@dataclass
class Feature:
    name: str
    digit: Digit
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


def _feature_from_codes(name: str, codes: NDArray[Any], uniques: Sequence[object]) -> Feature:
    missing = [u for u in uniques if is_missing(u)]
    if missing:
        raise ValueError(f"sensitive feature {name!r} contains missing values (NaN/None/NA)")
    return Feature(name, Digit(codes, len(uniques), 0), _object_array(uniques), _rank_of(uniques))


def _factorize_hashable(name: str, values: Sequence[object] | NDArray[Any]) -> Feature:
    pd = loaded_pandas()
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


def _factorize_fixed_width(name: str, values: NDArray[Any]) -> Feature:
    # Numpy str/bytes arrays: one vectorised equality pass per distinct value beats hashing
    # Python objects (and np.unique's sort) by far when groups are few; many fall back to a dict.
    codes = np.zeros(len(values), dtype=np.intp)
    remaining = np.ones(len(values), dtype=bool)
    uniques: list[object] = []
    while len(uniques) < EQ_SCAN_LIMIT:
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


def _feature_from_ints(name: str, values: NDArray[Any], n: int) -> Feature:
    if values.dtype == np.bool_:
        return Feature(name, Digit(values, 2, 0), np.array([False, True]), None)
    lo, hi = int(values.min()), int(values.max())
    radix = hi - lo + 1
    if radix <= max(2 * n, 4096) and radix <= counting.MAX_CELLS // 4 and hi < 1 << 63:
        # Codes are the values themselves: no factorisation pass; unused values leave empty cells.
        return Feature(name, Digit(values, radix, lo), np.arange(lo, hi + 1, dtype=np.int64), None)
    return _feature_from_sortable(name, values)


def _feature_from_sortable(name: str, values: NDArray[Any]) -> Feature:
    uniques, inverse = np.unique(values, return_inverse=True)
    return Feature(name, Digit(inverse.reshape(-1), len(uniques), 0), uniques, None)


def _feature_from_floats(name: str, values: NDArray[Any], n: int) -> Feature:
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
        return Feature(name, Digit(codes, radix, ilo), np.arange(ilo, ilo + radix, dtype=float), None)
    return _feature_from_sortable(name, values)


def _feature_from_pandas(name: str, x: Any, n: int) -> Feature:
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


def _feature_from_arrow(name: str, column: Any, n: int) -> Feature:
    import pyarrow as pa

    if len(column) != n:
        raise ValueError(f"sensitive feature {name!r} has {len(column)} rows but y_true has {n}")
    if column.null_count:
        raise ValueError(f"sensitive feature {name!r} contains missing values (null)")
    kind = column.type
    if pa.types.is_dictionary(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        codes, uniques = arrow_codes(column)
        return _feature_from_codes(name, codes, uniques)
    return _feature(name, arrow_values(column, f"sensitive feature {name!r}"), n)


def _feature(name: str, x: Any, n: int) -> Feature:
    if type(x).__module__.startswith("pyarrow"):
        return _feature_from_arrow(name, x, n)
    if is_pandas(x):
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
    if kind in "mM":  # dates and durations sort; their labels stay numpy scalars, shown as dates
        return _feature_from_sortable(name, arr)
    return _factorize_hashable(name, arr)


def _split_pandas(sf: Any) -> list[tuple[str, Any]]:
    pd = sys.modules["pandas"]
    if isinstance(sf, pd.DataFrame):
        if sf.shape[1] == 0:
            raise ValueError("sensitive_features has no columns")
        return [(f"sf{i}" if col is None else str(col), sf.iloc[:, i]) for i, col in enumerate(sf.columns)]
    name = getattr(sf, "name", None)
    return [("sf0" if name is None else str(name), sf)]


def _split_ndarray(sf: NDArray[Any]) -> list[tuple[str, Any]]:
    if sf.ndim == 1:
        return [("sf0", sf)]
    if sf.ndim == 2:
        if sf.shape[1] == 0:
            raise ValueError("sensitive_features has no columns")
        return [(f"sf{i}", sf[:, i]) for i in range(sf.shape[1])]
    raise ValueError(f"sensitive_features must be 1-D or 2-D, got shape {sf.shape}")


def _split_sequence(items: Sequence[Any]) -> list[tuple[str, Any]]:
    if len(items) == 0:
        raise ValueError("sensitive_features is empty")
    first = items[0]
    if is_columnar(first):
        return [
            (f"sf{i}" if name is None else name, column)
            for i, col in enumerate(items)
            for name, column in arrow_columns(col)
        ]
    if is_pandas(first) or (isinstance(first, np.ndarray) and first.ndim == 1):
        # A list of columns (Series / 1-D arrays), one feature each.
        out: list[tuple[str, Any]] = []
        for i, col in enumerate(items):
            name = getattr(col, "name", None) if is_pandas(col) else None
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


def _split_features(sensitive_features: Any) -> list[tuple[str, Any]]:
    """(name, column) per feature, in the order given."""
    sf = sensitive_features
    if sf is None:
        raise ValueError("sensitive_features is required")
    if is_columnar(sf):
        columns = arrow_columns(sf)
        if not columns:
            raise ValueError("sensitive_features has no columns")
        return [(f"sf{i}" if name is None else name, col) for i, (name, col) in enumerate(columns)]
    if is_pandas(sf):
        return _split_pandas(sf)
    if isinstance(sf, Mapping):
        if not sf:
            raise ValueError("sensitive_features is an empty mapping")
        return [(str(key), col) for key, col in sf.items()]
    if isinstance(sf, np.ndarray):
        return _split_ndarray(sf)
    if isinstance(sf, (str, bytes)) or not isinstance(sf, Iterable):
        raise ValueError(f"sensitive_features must be array-like, got {type(sf).__name__}")
    return _split_sequence(sf if isinstance(sf, Sequence) else list(sf))


def read_features(sensitive_features: Any, n: int) -> list[Feature]:
    """Every sensitive feature, named and factorised, in the order given."""
    columns = _split_features(sensitive_features)
    names = [name for name, _ in columns]
    if len(set(names)) != len(names):
        raise ValueError(f"sensitive_features has duplicate feature names {names}")
    return [_feature(name, col, n) for name, col in columns]


def _items(labels: NDArray[Any]) -> list[Any]:
    # tolist() turns datetime64[ns] into integers: keep numpy scalars for plain() to show as dates.
    return list(labels) if labels.dtype.kind in "mM" else labels.tolist()


def group_labels(
    features: Sequence[Feature], codes: Sequence[NDArray[Any]]
) -> tuple[NDArray[np.intp], list[dict[str, GroupLabel]]]:
    """The groups' order (fairlearn's: lexicographic over sorted feature labels) and, in that order,
    each group's ``{feature: label}``; ``codes[j]`` holds feature j's code of every group."""
    sort_keys = [c if f.rank is None else f.rank[c] for f, c in zip(features, codes, strict=True)]
    size = len(codes[0])
    order = np.lexsort(sort_keys[::-1]) if size > 1 else np.arange(size)
    labels = [[plain(v) for v in _items(f.labels[c[order]])] for f, c in zip(features, codes, strict=True)]
    return order, [{f.name: labels[j][i] for j, f in enumerate(features)} for i in range(size)]
