"""Reading the caller's arguments: containers to 1-D numpy arrays, sample weights, scalar options.

pandas is never imported here: a pandas object's module is checked by name, and pandas is only used
when the caller passed pandas objects (so it is already imported).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: A group label as reported in ``by_group``.
GroupLabel = int | float | str | bool


def is_pandas(x: object) -> bool:
    return type(x).__module__.startswith("pandas")


def is_columnar(x: object) -> bool:
    """A polars or pyarrow object (read through Arrow, never row by row)."""
    module = type(x).__module__
    return module.startswith(("polars", "pyarrow"))


def arrow_columns(x: Any) -> list[tuple[str | None, Any]]:
    """A polars/pyarrow Series, array, DataFrame or table as (name, pyarrow array) columns."""
    if type(x).__module__.startswith("polars"):
        if hasattr(x, "columns") and hasattr(x, "get_column"):  # DataFrame
            return [(str(name), x.get_column(name).to_arrow()) for name in x.columns]
        return [(x.name or None, x.to_arrow())]
    if hasattr(x, "column_names") and hasattr(x, "column"):  # Table / RecordBatch
        return [(str(name), x.column(i)) for i, name in enumerate(x.column_names)]
    return [(None, x)]


def arrow_codes(column: Any) -> tuple[NDArray[Any], list[object]]:
    """Dictionary codes and the distinct values of a pyarrow array (nulls refused by the caller)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column if pa.types.is_dictionary(column.type) else column.dictionary_encode()
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False))
    return codes, encoded.dictionary.to_pylist()


def arrow_values(column: Any, arg: str) -> NDArray[Any]:
    """A pyarrow array as numpy: numbers and booleans as they are, text through its dictionary."""
    import pyarrow as pa

    if column.null_count:
        raise ValueError(f"{arg} contains missing values (null)")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_dictionary(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        codes, uniques = arrow_codes(column)
        return np.asarray(uniques)[codes] if uniques else np.asarray([], dtype=str)
    return np.asarray(column.to_numpy(zero_copy_only=False))


def loaded_pandas() -> Any:
    """pandas if something else already imported it: never pay its import for numpy input."""
    return sys.modules.get("pandas")


def is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)
    except (TypeError, ValueError):  # pandas.NA refuses bool()
        return True


def plain(value: object) -> GroupLabel:
    """A label as a plain Python value: numpy scalars unwrapped, anything unusual as text."""
    if isinstance(value, np.datetime64):  # a date as pandas shows it, not nanoseconds since 1970
        unit = np.datetime_data(value.dtype)[0]
        coarse = unit in ("Y", "M", "W", "D", "h", "m", "s", "ms", "us")
        return str((value if coarse else value.astype("datetime64[us]")).item())
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


def array_1d(y: Any, arg: str) -> NDArray[Any]:
    """y_true / y_pred / sample_weight as a 1-D numpy array (missing values checked by the caller)."""
    if is_pandas(y):
        pd = sys.modules["pandas"]
        if isinstance(y, pd.DataFrame):
            if y.shape[1] != 1:
                raise ValueError(f"{arg} must be 1-D, got a DataFrame with {y.shape[1]} columns")
            y = y.iloc[:, 0]
        dtype = y.dtype
        if (not isinstance(dtype, np.dtype) or dtype.kind == "O") and bool(pd.isna(y).any()):
            raise ValueError(f"{arg} contains missing values (NaN/None/NA)")
        arr = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
    elif is_columnar(y):
        columns = arrow_columns(y)
        if len(columns) != 1:
            raise ValueError(f"{arg} must be 1-D, got a table with {len(columns)} columns")
        arr = arrow_values(columns[0][1], arg)
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


def sample_weights(sample_weight: object, n: int) -> NDArray[np.float64] | None:
    """``sample_weight`` as a float64 array of finite, non-negative values summing above 0."""
    if sample_weight is None:
        return None
    arr = array_1d(sample_weight, "sample_weight")
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


def check_int(value: object, arg: str, minimum: int) -> int | None:
    """An optional int option of at least ``minimum`` (bools refused)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{arg} must be an int >= {minimum} or None, got {value!r}")
    if value < minimum:
        raise ValueError(f"{arg} must be an int >= {minimum} or None, got {value!r}")
    return int(value)


def check_level(ci: object) -> float:
    """The confidence level ``ci``, strictly between 0 and 1."""
    if isinstance(ci, bool) or not isinstance(ci, (float, int, np.floating)) or not 0 < float(ci) < 1:
        raise ValueError(f"ci must be a confidence level between 0 and 1 (exclusive), got {ci!r}")
    return float(ci)


def check_scope(scope: str | None) -> str | None:
    if scope is not None and (not isinstance(scope, str) or not scope):
        raise ValueError(f"scope must be a non-empty str or None, got {scope!r}")
    return scope


def generator(random_state: int | np.random.Generator | None) -> np.random.Generator:
    """The bootstrap's random generator: a Generator as given, else seeded from ``random_state``."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    try:
        return np.random.default_rng(random_state)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"random_state must be an int, a numpy Generator or None: {exc}") from None
