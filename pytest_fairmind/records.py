"""Turning what a test passes to ``fairmind.record`` into a plain, validated record.

Pure (no pytest import). A record is a dict of plain Python values, because it travels on the
test report to the aggregating process (xdist's execnet cannot serialise numpy scalars):

    {"model": str, "metrics": {key: float}, "params": {key: str|int|float|bool|None},
     "tags": {key: str}, "groups": {scope: [row, ...]}, "scans": {scope: entry},
     "evidence": {scope: payload}}

``scans`` and ``evidence`` hold plain JSON data (a subgroup scan's report entry, the bootstrap
evidence interval gates redraw from), carried untouched to the report.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from pytest_fairmind.redact import key_leaks_secret, redact_text

Record = dict[str, Any]

MAX_KEY_LENGTH = 250
# Letters, digits, `_ - . /` and space: what MLflow stores on every platform. `:` is reserved for
# gates (MODEL:METRIC) and `<`, `=`, `,` are refused by MLflow.
_KEY_PATTERN = re.compile(r"^[\w\-. /]+$")
# Keys that pass every check of validate_key, several at once joined by newlines (which no key may
# hold): one regex call per record instead of several checks per key. Parts are never `.` or `..`.
_PART = r"(?!\.\.?(?:[/\n]|\Z))[\w\-. ]+"
_CLEAN_KEYS = re.compile(rf"{_PART}(?:/{_PART})*(?:\n{_PART}(?:/{_PART})*)*")


class RecordError(ValueError):
    """A record that cannot be stored as given (bad key, unsupported value)."""


def validate_key(key: str, *, what: str = "key") -> str:
    """Return ``key`` unchanged, or raise :class:`RecordError` saying what is wrong with it."""
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    if not key:
        raise RecordError(f"{what} must not be empty")
    if len(key) > MAX_KEY_LENGTH:
        raise RecordError(
            f"{what} {key[:40]!r}... has {len(key)} characters; at most {MAX_KEY_LENGTH} are allowed"
        )
    if not _KEY_PATTERN.fullmatch(key):  # not .match: `$` would accept a trailing newline
        bad = sorted({c for c in key if not _KEY_PATTERN.fullmatch(c)})
        raise RecordError(
            f"{what} {key!r} contains {''.join(bad)!r}; keys may hold letters, digits, "
            "'_', '-', '.', '/' and space (':' is reserved for gates)"
        )
    # MLflow stores keys as paths: it refuses ones that are not already normalised.
    parts = key.split("/")
    if key.startswith("/") or key.endswith("/") or any(p in ("", ".", "..") for p in parts):
        raise RecordError(
            f"{what} {key!r} is not a clean path (no leading, trailing or doubled '/', no '.' or '..' parts)"
        )
    return key


def validate_keys(keys: Iterable[str], *, what: str = "key") -> None:
    """:func:`validate_key` for each of ``keys``: :class:`RecordError` for the first bad one."""
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    names = list(keys)
    if not names:
        return
    joined = "\n".join(names) if all(type(k) is str for k in names) else ""
    if (
        joined.count("\n") == len(names) - 1  # no key holds a newline of its own
        and max(map(len, names)) <= MAX_KEY_LENGTH
        and _CLEAN_KEYS.fullmatch(joined)
    ):
        return
    for name in names:
        validate_key(name, what=what)


def _is_numpy(value: object) -> bool:
    return type(value).__module__ == "numpy"


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or (_is_numpy(value) and type(value).__name__ == "bool")


def _is_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not _is_bool(value)


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {"count": 0.0}
    n = len(values)
    if any(math.isnan(v) for v in values):
        return {"mean": math.nan, "min": math.nan, "max": math.nan, "std": math.nan, "count": float(n)}
    mean = math.fsum(values) / n
    if math.isinf(mean) or any(math.isinf(v) for v in values):
        std = math.nan
    else:
        std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)  # population std
    return {"mean": mean, "min": min(values), "max": max(values), "std": std, "count": float(n)}


def _as_number_list(value: object) -> list[float] | None:
    """The numbers of a numeric sequence/array, or None when ``value`` is not one."""
    if _is_numpy(value) and hasattr(value, "dtype") and hasattr(value, "ravel"):
        kind = value.dtype.kind
        if kind in "iuf":
            return [float(v) for v in value.ravel().tolist()]
        return None
    if isinstance(value, (list, tuple)):
        if all(_is_number(v) for v in value):
            return [float(v) for v in value]
        return None
    to_numpy = getattr(value, "to_numpy", None)
    if callable(to_numpy) and type(value).__module__.partition(".")[0] == "pandas":
        array = to_numpy()  # a Series/Index/DataFrame: its numbers, like the array they hold
        return _as_number_list(array) if _is_numpy(array) else None
    return None


def _plain_scalar(value: object) -> object:
    """numpy scalars and 0-d arrays as the Python scalar they hold."""
    if _is_numpy(value) and hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


_PLAIN_LEAVES = (float, int, str)


def _key_text(key: object, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)  # per-class dicts such as {0: ..., 1: ...}
    raise RecordError(f"key {key!r} at {path or 'the top level'} is a {type(key).__name__}; keys must be str")


def _leaves(values: Mapping[Any, Any], prefix: str = "") -> Iterator[tuple[str, object]]:
    """``(dotted key, plain value)`` for every non-mapping leaf, breadth first.

    Iterative: deeply nested dicts must not hit the recursion limit.
    """
    pending: deque[tuple[str, Mapping[Any, Any]]] = deque([(prefix, values)])
    while pending:
        path, mapping = pending.popleft()
        for raw_key, raw_value in mapping.items():
            key = f"{path}.{_key_text(raw_key, path)}" if path else _key_text(raw_key, path)
            # plain numbers and text (nearly every leaf) skip the numpy probing
            value = raw_value if type(raw_value) in _PLAIN_LEAVES else _plain_scalar(raw_value)
            if isinstance(value, Mapping):
                pending.append((key, value))
            else:
                yield key, value


def flatten(values: Mapping[str, Any], *, prefix: str = "") -> tuple[dict[str, float], dict[str, Any]]:
    """Split a nested mapping into ``(metrics, params)`` with dotted keys (not yet validated)."""
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    if all(type(k) is str for k in values) and all(type(v) in (float, int) for v in values.values()):
        # the common case, a flat mapping of numbers: what the loop below would do, quicker
        dotted = f"{prefix}." if prefix else ""
        return {f"{dotted}{k}": float(v) for k, v in values.items()}, {}
    metrics: dict[str, float] = {}
    params: dict[str, Any] = {}

    def unique(key: str) -> str:
        # {"a.b": 1, "a": {"b": 2}} or {"s": [1], "s.mean": 2} flatten to one key: say so, never
        # let one value silently replace the other
        if key in metrics or key in params:
            raise RecordError(f"key {key!r} is recorded twice in one call (after flattening with '.')")
        return key

    for key, value in _leaves(values, prefix):
        if type(value) is float or type(value) is int:  # the common case first
            metrics[unique(key)] = float(value)
        elif _is_bool(value) or value is None or isinstance(value, str):
            params[unique(key)] = bool(value) if _is_bool(value) else value
        elif _is_number(value):
            metrics[unique(key)] = float(value)  # type: ignore[arg-type]
        else:
            numbers_ = _as_number_list(value)
            if numbers_ is None:
                raise RecordError(
                    f"value of {key!r} is a {type(value).__name__}; record numbers, numeric "
                    "sequences or arrays (as statistics), str, bool or None"
                )
            for suffix, stat in _stats(numbers_).items():
                metrics[unique(f"{key}.{suffix}")] = stat
    return metrics, params


def _flatten_params(values: Mapping[str, Any]) -> dict[str, Any]:
    """Explicit ``params=``: every leaf is a param (numbers stay numbers, sequences become text)."""
    params: dict[str, Any] = {}
    for key, value in _leaves(values):
        if value is None or isinstance(value, (str, bool)):
            params[key] = value
        elif _is_bool(value):
            params[key] = bool(value)
        elif _is_number(value):
            number = float(value)  # type: ignore[arg-type]
            params[key] = int(value) if isinstance(value, numbers.Integral) else number
            if not math.isfinite(number):
                params[key] = str(number)
        else:
            params[key] = str(value)
    return params


def make_record(
    metrics: Mapping[str, Any],
    *,
    model: str,
    scope: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    groups: Mapping[str, list[dict[str, Any]]] | None = None,
    scans: Mapping[str, Mapping[str, Any]] | None = None,
    evidence: Mapping[str, Mapping[str, Any]] | None = None,
) -> Record:
    """Validate and convert one ``record(...)`` call into a plain record.

    ``scans`` and ``evidence`` map a scope to plain JSON data (numpy scalars and arrays are turned
    into Python values); :class:`RecordError` for a bad scope or a value JSON cannot hold.
    """
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    if not isinstance(metrics, Mapping):
        raise RecordError(f"metrics must be a mapping of results, not {type(metrics).__name__}")
    validate_model_name(model)
    if scope is not None:
        if not isinstance(scope, str):
            raise RecordError(f"scope must be a str, not {type(scope).__name__}")
        validate_key(scope, what="scope")
    found_metrics, found_params = flatten(metrics)
    if params is not None:
        if not isinstance(params, Mapping):
            raise RecordError(f"params must be a mapping, not {type(params).__name__}")
        found_params.update(_flatten_params(params))
    prefix = f"{scope}/" if scope else ""
    out_metrics = {prefix + k: v for k, v in found_metrics.items()} if prefix else found_metrics
    out_params = {prefix + k: v for k, v in found_params.items()} if prefix else found_params
    validate_keys(out_metrics, what="metric key")
    validate_keys(out_params, what="param key")
    clash = sorted(set(out_metrics) & set(out_params))
    if clash:
        raise RecordError(f"key {clash[0]!r} is recorded both as a metric and as a param")
    out_tags = _tags(tags)
    out_groups = {validate_key(s, what="scope"): list(rows) for s, rows in (groups or {}).items()}
    out_scans = _scoped_data(scans, "scans")
    out_evidence = _scoped_data(evidence, "evidence")
    refuse_secret_keys([model, *out_metrics, *out_params, *out_tags, *out_groups, *out_scans, *out_evidence])
    return {
        "model": model,
        "metrics": out_metrics,
        "params": out_params,
        "tags": out_tags,
        "groups": out_groups,
        "scans": out_scans,
        "evidence": out_evidence,
    }


_JSON_LEAVES = (str, int, float, bool, type(None))


def _scoped_data(values: Mapping[str, Any] | None, what: str) -> dict[str, dict[str, Any]]:
    """``{scope: mapping}`` as plain JSON data (``scans=`` and ``evidence=``), scopes validated."""
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise RecordError(f"{what} must be a mapping of scope to data, not {type(values).__name__}")
    out: dict[str, dict[str, Any]] = {}
    for scope, entry in values.items():
        if not isinstance(scope, str):
            raise RecordError(f"{what} scope {scope!r} is a {type(scope).__name__}; scopes must be str")
        validate_key(scope, what=f"{what} scope")
        if not isinstance(entry, Mapping):
            raise RecordError(f"{what}[{scope!r}] must be a mapping, not {type(entry).__name__}")
        data = plain(entry)
        _check_json_data(data, f"{what}[{scope!r}]")
        out[scope] = data
    return out


def _check_json_data(data: Any, where: str) -> None:
    """:class:`RecordError` unless ``data`` (after :func:`plain`) holds only JSON types.

    Non-finite floats are allowed: the report spells them out. Iterative, like :func:`_leaves`.
    """
    pending: list[tuple[str, Any]] = [(where, data)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, dict):
            pending.extend((f"{path}[{k!r}]", v) for k, v in node.items())
        elif isinstance(node, list):
            pending.extend((f"{path}[{i}]", v) for i, v in enumerate(node))
        elif type(node) not in _JSON_LEAVES:
            raise RecordError(
                f"{path} is a {type(node).__name__}; scans and evidence hold JSON data only "
                "(mappings, lists, str, numbers, bool, None)"
            )


def refuse_secret_keys(keys: Iterable[str]) -> None:
    """Raise :class:`RecordError` for a key (or model name) holding a secret of the environment.

    Values are redacted wherever they go; a key cannot be: a redacted key is another key, one
    MLflow refuses. One scan of the environment per call (the keys are checked together first).
    """
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    names = list(keys)
    if not names or key_leaks_secret("\n".join(names)) is None:
        return
    for name in names:
        why = key_leaks_secret(name)
        if why is not None:
            raise RecordError(
                f"key {redact_text(name)!r} holds {why}: keys are never redacted (a redacted key is "
                "another key), so it cannot be recorded; leave the secret out of the key"
            )


def _tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    if tags is None:
        return {}
    if not isinstance(tags, Mapping):
        raise RecordError(f"tags must be a mapping of str to str, not {type(tags).__name__}")
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not isinstance(key, str):
            raise RecordError(f"tag key {key!r} is a {type(key).__name__}; tag keys must be str")
        if not isinstance(value, (str, int, float, bool)):
            raise RecordError(f"tag {key!r} has a {type(value).__name__} value; tags are strings")
        out[validate_key(key, what="tag key")] = str(value)
    return out


#: Unicode categories a model name may not hold: control characters (NUL, newline, DEL, NEL...)
#: and line and paragraph separators (U+2028, U+2029): they break run names and terminal lines.
_BAD_NAME_CATEGORIES = {"Cc": "control characters", "Zl": "a line separator", "Zp": "a paragraph separator"}


def validate_model_name(model: object) -> str:
    """Model names are free text (run names), but must be a non-empty str of at most
    :data:`MAX_KEY_LENGTH` characters, without control characters or line separators."""
    __tracebackhide__ = True  # pytest shows the user's call, not our validation
    if not isinstance(model, str):
        raise RecordError(f"model must be a str, not {type(model).__name__}")
    if not model.strip():
        raise RecordError("model name must not be empty")
    if len(model) > MAX_KEY_LENGTH:
        raise RecordError(
            f"model name {model[:40]!r}... has {len(model)} characters; at most {MAX_KEY_LENGTH} are allowed"
        )
    for char in model:
        bad = _BAD_NAME_CATEGORIES.get(unicodedata.category(char))
        if bad is not None:
            raise RecordError(f"model name {model!r} contains {bad} ({char!r})")
    return model


def plain(value: Any) -> Any:
    """A JSON-like structure with numpy scalars/arrays turned into Python values."""
    value = _plain_scalar(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if _is_numpy(value) and hasattr(value, "tolist"):
        return value.tolist()
    return value
