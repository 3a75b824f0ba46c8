"""Binary labels: the ``pos_label`` rules, each label array as a digit, and the label errors.

``pos_label=1`` (the default rule) needs labels in {0, 1}, {-1, 1} or bool; any other ``pos_label``
allows one other value besides it across ``y_true`` and ``y_pred``. Small integer labels are counted
as they are and checked after counting; anything else becomes a 0/1 indicator of ``pos_label``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.counting import Digit
from pytest_fairmind.metrics.inputs import is_missing, plain

# Integer labels spanning at most this many values are counted directly, no comparison pass.
_SMALL_LABEL_RANGE = 8


@dataclass
class Labels:
    digit: Digit
    positive: NDArray[np.bool_]  # per code: is it pos_label?
    values: NDArray[Any] | None  # label of each code, for direct integer digits (validated after counting)
    seen: list[object] | None  # distinct labels, when known before counting

    def seen_in(self, per_code: NDArray[Any]) -> list[object]:
        """The distinct labels, given the rows counted per code."""
        if self.seen is not None:
            return self.seen
        assert self.values is not None
        return [v for v, c in zip(self.values.tolist(), per_code.tolist(), strict=True) if c > 0]


def read_pos_label(pos_label: Any) -> tuple[Any, bool]:
    """``pos_label`` (None means 1) and whether the default rule applies to it."""
    if pos_label is not None:
        try:
            hash(pos_label)
        except TypeError:
            raise ValueError(f"pos_label must be a single label, got {type(pos_label).__name__}") from None
        if is_missing(pos_label):
            raise ValueError("pos_label must not be NaN")
    default_rule = pos_label is None or (
        isinstance(pos_label, (int, float, np.number, np.bool_))
        and not isinstance(pos_label, (str, bytes))
        and bool(pos_label == 1)
    )
    return (1 if pos_label is None else pos_label), default_rule


def _show(values: Iterable[object], limit: int = 5) -> str:
    items = [repr(plain(v)) if not is_missing(v) else repr(v) for v in values]
    with contextlib.suppress(TypeError):
        items.sort()
    if len(items) > limit:
        items = [*items[:limit], "..."]
    return "[" + ", ".join(items) + "]"


def _not_comparable(arg: str) -> ValueError:
    return ValueError(f"{arg} contains missing values (NaN/None/NA) or labels that cannot be compared")


def _indicator(arr: NDArray[Any], arg: str, pos_label: object) -> Labels:
    # One comparison with pos_label, then check the rest hold a single other label.
    try:
        eq = arr == pos_label
        ind = np.asarray(eq, dtype=bool) if isinstance(eq, np.ndarray) else np.zeros(len(arr), dtype=bool)
    except (TypeError, ValueError):
        raise _not_comparable(arg) from None
    seen: list[object] = [pos_label] if ind.any() else []
    rest = arr[~ind]
    if rest.size:
        first = rest[0]
        if is_missing(first):
            raise ValueError(f"{arg} contains missing values (NaN/None/NA)")
        try:
            same = np.asarray(rest == first, dtype=bool)
        except (TypeError, ValueError):
            raise _not_comparable(arg) from None
        if same.all():
            seen.append(first)
        else:
            others = dict.fromkeys([first, *rest[~same][:10_000].tolist()])
            seen.extend(others)
    if any(is_missing(v) for v in seen):
        raise ValueError(f"{arg} contains missing values (NaN/None/NA)")
    return Labels(Digit(ind, 2, 0), np.array([False, True]), None, seen)


SCORES_HINT = "pass task='regression', or y_score= with threshold= for a classifier's scores"
MULTICLASS_HINT = "pass task='multiclass'"


def check_integral(arr: NDArray[Any], arg: str) -> None:
    """Floats that are not whole numbers are scores or regression targets, not labels: say what to pass."""
    if arr.dtype.kind != "f" or arr.size == 0:
        return
    if bool(np.isnan(arr).any()):
        raise ValueError(f"{arg} contains missing values (NaN)")
    whole = np.floor(arr) == arr
    if not bool(whole.all()):
        example = float(arr[int(np.argmin(whole))])
        raise ValueError(
            f"{arg} holds non-integral floats (e.g. {example!r}), which are not class labels: {SCORES_HINT}"
        )


def _pos_label_hint(labels: Iterable[object]) -> str:
    items = sorted({repr(plain(v)) for v in labels})
    if not items:
        return "pass pos_label"
    return "pass pos_label=<one of the actual labels>, e.g. " + " or ".join(
        f"pos_label={v}" for v in items[:2]
    )


def _hint(labels: Iterable[object]) -> str:
    distinct = {plain(v) for v in labels}
    return MULTICLASS_HINT if len(distinct) > 2 else _pos_label_hint(distinct)


def label_digit(arr: NDArray[Any], arg: str, pos_label: object, default_rule: bool) -> Labels:
    """``y_true`` or ``y_pred`` (named ``arg``) as a digit to count, with its positive codes."""
    kind = arr.dtype.kind
    check_integral(arr, arg)
    if kind == "b":
        values = np.array([False, True])
        return Labels(Digit(arr, 2, 0), np.asarray(values == pos_label, dtype=bool), values, None)
    if kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if default_rule and (lo < -1 or hi > 1):
            raise _default_rule_error(arg, np.unique(arr).tolist())
        if hi - lo < _SMALL_LABEL_RANGE:
            values = np.arange(lo, hi + 1)
            positive = np.array([v == pos_label for v in values.tolist()], dtype=bool)
            return Labels(Digit(arr, hi - lo + 1, lo), positive, values, None)
    if kind == "f" and bool(np.isnan(arr).any()):
        raise ValueError(f"{arg} contains missing values (NaN)")
    return _indicator(arr, arg, pos_label)


def _default_rule_error(arg: str, labels: Sequence[object]) -> ValueError:
    return ValueError(
        f"{arg} has labels {_show(labels)}; pos_label=1 (the default) needs labels in {{0, 1}}, "
        f"{{-1, 1}} or bool: {_hint(labels)}"
    )


def _in_default_set(v: object) -> bool:
    try:
        return bool(v == 0 or v == 1 or v == -1) and not isinstance(v, (str, bytes))
    except (TypeError, ValueError):
        return False


def _check_default_rule(seen_t: list[object], seen_p: list[object]) -> None:
    for arg, seen in (("y_true", seen_t), ("y_pred", seen_p)):
        plain_seen = {plain(v) for v in seen}
        if any(not _in_default_set(v) for v in seen) or (0 in plain_seen and -1 in plain_seen):
            raise _default_rule_error(arg, seen)
    union = {plain(v) for v in [*seen_t, *seen_p]}
    if 0 in union and -1 in union:
        raise ValueError(
            f"y_true and y_pred mix labels {_show(union)}: use either {{0, 1}} or {{-1, 1}}, "
            "or pass pos_label"
        )


def check_labels(seen_t: list[object], seen_p: list[object], pos_label: object, default_rule: bool) -> None:
    """Raise the ``ValueError`` for labels the rule does not allow (``seen_*``: the distinct labels)."""
    if default_rule:
        _check_default_rule(seen_t, seen_p)
        return
    negatives: dict[object, str] = {}
    for arg, seen in (("y_true", seen_t), ("y_pred", seen_p)):
        for v in seen:
            if not bool(v == pos_label):
                negatives.setdefault(plain(v), arg)
    if len(negatives) == 2 and len(negatives) == len({plain(v) for v in [*seen_t, *seen_p]}):
        raise ValueError(
            f"unknown labels: pos_label={pos_label!r} is not one of the labels {_show(negatives)} "
            f"in y_true and y_pred: {_pos_label_hint(negatives)}"
        )
    if len(negatives) > 1:
        arg = list(negatives.values())[-1]
        raise ValueError(
            f"unknown labels: y_true and y_pred hold {_show(negatives)} besides pos_label={pos_label!r}, "
            f"but binary labels allow one negative label (first extra one in {arg}): {MULTICLASS_HINT}"
        )
