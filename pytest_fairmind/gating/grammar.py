"""The gate grammar: ``[MODEL:]METRIC OP NUMBER``, ``[MODEL:]NUMBER OP METRIC OP NUMBER`` and
regression rules ``[MODEL:]METRIC ~ TOLERANCE[%]`` (may get worse than the baseline by at most
TOLERANCE); see docs/gates.md and docs/baseline.md.

Pure (no pytest import). ``MODEL`` is the text before the last ``:`` (keys never contain one) and
may be an fnmatch glob. ``METRIC`` is a key or an fnmatch glob over whole keys; a name without
``/`` also matches the last segment of any key, so ``demographic_parity_ratio>=0.8`` checks every
scope of every model. Evaluation lives in :mod:`pytest_fairmind.gating.evaluate`.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Any

from pytest_fairmind.numtext import exact, short
from pytest_fairmind.result import BOUND, REGRESSION

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_OP_PATTERN = re.compile(r"<=|>=|<|>")
_FLIP = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?inf$", re.IGNORECASE)


class GateSyntaxError(ValueError):
    """A gate expression that does not follow the grammar."""


@dataclass(frozen=True)
class Bound:
    op: str
    number: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.number)

    def __str__(self) -> str:
        return f"{self.op} {exact(self.number)}"


@dataclass(frozen=True)
class Tolerance:
    """How much worse than the baseline a metric may get: absolute, or ``amount`` % of |baseline|.

    A relative tolerance of a zero baseline allows no worsening at all (``amount`` % of 0 is 0).
    """

    amount: float
    relative: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.amount) and self.amount >= 0):
            raise ValueError(f"a tolerance must be a finite number >= 0, not {self.amount!r}")

    def allowed(self, baseline: float) -> float:
        """The largest allowed worsening from ``baseline`` (a finite number)."""
        return self.amount / 100.0 * abs(baseline) if self.relative else self.amount

    def __str__(self) -> str:
        text = short(self.amount, 6)
        return f"{text}%" if self.relative else text


@dataclass(frozen=True)
class Gate:
    """A parsed gate expression: bounds, or a regression tolerance against the baseline."""

    expr: str
    model: str | None  # None: every model
    metric: str
    bounds: tuple[Bound, ...] = ()
    tolerance: Tolerance | None = None

    @property
    def rule(self) -> str:
        """``"regression"`` for a rule against the baseline, else ``"bound"``."""
        return BOUND if self.tolerance is None else REGRESSION

    @property
    def bound_text(self) -> str:
        return " and ".join(str(b) for b in self.bounds)

    def matches_model(self, name: str) -> bool:
        return self.model is None or self.model == name or fnmatchcase(name, self.model)

    def matches_key(self, key: str) -> bool:
        if key == self.metric or fnmatchcase(key, self.metric):
            return True
        if "/" not in self.metric:
            last = key.rpartition("/")[2]
            return last == self.metric or fnmatchcase(last, self.metric)
        return False

    def check(self, value: float) -> bool:
        return not math.isnan(value) and all(b.holds(value) for b in self.bounds)


def _number(text: str, expr: str) -> float:
    text = text.strip()
    if not _NUMBER.match(text):
        raise GateSyntaxError(f"gate {expr!r}: {text!r} is not a number")
    return float(text)


def parse_gate(expr: str, *, model: str | None = None) -> Gate:
    """Parse ``expr``; ``model`` (from a marker) applies when the expression names none."""
    if not isinstance(expr, str) or not expr.strip():
        raise GateSyntaxError("empty gate expression")
    text = expr.strip()
    gate_model: str | None = None
    if ":" in text:
        gate_model, _, text = text.rpartition(":")
        gate_model = gate_model.strip()
        if not gate_model:
            raise GateSyntaxError(f"gate {expr!r}: empty model name before ':'")
    gate_model = gate_model or model
    if "~" in text:
        return _parse_regression(expr, gate_model, text)
    ops = _OP_PATTERN.findall(text)
    bounds: tuple[Bound, ...]
    pieces = [p.strip() for p in _OP_PATTERN.split(text)]
    if "=" in "".join(pieces) or "==" in text:
        raise GateSyntaxError(f"gate {expr!r}: operators are <=, <, >=, >")
    if len(ops) == 1:
        left, right = pieces
        if _NUMBER.match(left) and not _NUMBER.match(right):  # "0.8 <= ratio" reads as "ratio >= 0.8"
            metric, bounds = right, (Bound(_FLIP[ops[0]], _number(left, expr)),)
        else:
            metric, bounds = left, (Bound(ops[0], _number(right, expr)),)
    elif len(ops) == 2:
        low_text, metric, high_text = pieces
        if (ops[0] in ("<", "<=")) != (ops[1] in ("<", "<=")):
            raise GateSyntaxError(f"gate {expr!r}: a range needs both operators pointing the same way")
        bounds = (Bound(_FLIP[ops[0]], _number(low_text, expr)), Bound(ops[1], _number(high_text, expr)))
    else:
        raise GateSyntaxError(
            f"gate {expr!r}: expected [MODEL:]METRIC OP NUMBER or [MODEL:]NUMBER OP METRIC OP NUMBER "
            "with OP one of <= < >= >"
        )
    if not metric:
        raise GateSyntaxError(f"gate {expr!r}: no metric name")
    if _NUMBER.match(metric):
        raise GateSyntaxError(f"gate {expr!r}: {metric!r} is a number, not a metric name")
    return Gate(expr=expr.strip(), model=gate_model, metric=metric, bounds=bounds)


def _parse_regression(expr: str, model: str | None, text: str) -> Gate:
    usage = f"gate {expr!r}: a regression rule is [MODEL:]METRIC ~ TOLERANCE or [MODEL:]METRIC ~ TOLERANCE%"
    metric, _, tolerance_text = (part.strip() for part in text.partition("~"))
    if not metric or _OP_PATTERN.search(metric) or "=" in metric or "~" in tolerance_text:
        raise GateSyntaxError(usage)
    if _NUMBER.match(metric):
        raise GateSyntaxError(f"gate {expr!r}: {metric!r} is a number, not a metric name")
    if not tolerance_text:
        raise GateSyntaxError(f"{usage}: the tolerance is missing")
    relative = tolerance_text.endswith("%")
    amount_text = tolerance_text[:-1].strip() if relative else tolerance_text
    if not _NUMBER.match(amount_text):
        raise GateSyntaxError(f"{usage}: {tolerance_text!r} is not a tolerance")
    amount = float(amount_text)
    if amount < 0 or math.isinf(amount):
        raise GateSyntaxError(
            f"gate {expr!r}: the tolerance must be a finite number >= 0, not {tolerance_text!r}"
        )
    return Gate(expr=expr.strip(), model=model, metric=metric, tolerance=Tolerance(amount, relative))


def rule_of(expr: str) -> str:
    """The kind of rule a gate expression is (``"bound"`` when it does not parse): for exprs kept as
    text, such as a report's ``gates_not_evaluated``."""
    try:
        return parse_gate(expr).rule
    except GateSyntaxError:
        return BOUND


def for_model(gate: Gate, model: str) -> Gate:
    """A gate that names no model applied to ``model``, its text prefixed (``m:accuracy >= 0.8``)."""
    return replace(gate, model=model, expr=f"{model}:{gate.expr}")


def gate_to_plain(gate: Gate) -> dict[str, Any]:
    """A parsed gate as plain data (it crosses xdist on a test report): no parsing on the way back."""
    return {
        "expr": gate.expr,
        "model": gate.model,
        "metric": gate.metric,
        "bounds": [[b.op, b.number] for b in gate.bounds],
        "tolerance": None if gate.tolerance is None else [gate.tolerance.amount, gate.tolerance.relative],
    }


def gate_from_plain(data: Mapping[str, Any]) -> Gate:
    """The :class:`Gate` that :func:`gate_to_plain` wrote."""
    tolerance = data.get("tolerance")
    return Gate(
        expr=str(data["expr"]),
        model=None if data.get("model") is None else str(data["model"]),
        metric=str(data["metric"]),
        bounds=tuple(Bound(str(op), float(number)) for op, number in data.get("bounds") or ()),
        tolerance=None if tolerance is None else Tolerance(float(tolerance[0]), bool(tolerance[1])),
    )
