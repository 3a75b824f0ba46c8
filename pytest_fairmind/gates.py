"""CI gates: ``[MODEL:]METRIC OP NUMBER``, ``[MODEL:]NUMBER OP METRIC OP NUMBER`` and regression
rules ``[MODEL:]METRIC ~ TOLERANCE[%]`` (may get worse than the baseline by at most TOLERANCE).

Pure (no pytest import). ``MODEL`` is the text before the last ``:`` (keys never contain one) and
may be an fnmatch glob. ``METRIC`` is a key or an fnmatch glob over whole keys; a name without
``/`` also matches the last segment of any key, so ``demographic_parity_ratio>=0.8`` checks every
scope of every model. NaN fails its gate; a gate that matches nothing is "not evaluated".
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from pytest_fairmind.result import GateResult, ModelResult

if TYPE_CHECKING:
    from pytest_fairmind.baseline import Baseline

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
}
_OP_PATTERN = re.compile(r"<=|>=|<|>")
_FLIP = {"<=": ">=", "<": ">", ">=": "<=", ">": "<"}
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?inf$", re.IGNORECASE)


def number_text(value: float) -> str:
    """``value`` as written (shortest round-trip form, ``1`` not ``1.0``): a bound or a gated value
    must not be rounded, or a failure would read ``ratio = 0.8, bound >= 0.8``."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


class GateSyntaxError(ValueError):
    """A gate expression that does not follow the grammar."""


@dataclass(frozen=True)
class Bound:
    op: str
    number: float

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.number)

    def __str__(self) -> str:
        return f"{self.op} {number_text(self.number)}"


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
        return f"{self.amount:g}%" if self.relative else f"{self.amount:g}"


@dataclass(frozen=True)
class Gate:
    """A parsed gate expression: bounds, or a regression tolerance against the baseline."""

    expr: str
    model: str | None  # None: every model
    metric: str
    bounds: tuple[Bound, ...] = ()
    tolerance: Tolerance | None = None

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
    number_text = tolerance_text[:-1].strip() if relative else tolerance_text
    if not _NUMBER.match(number_text):
        raise GateSyntaxError(f"{usage}: {tolerance_text!r} is not a tolerance")
    amount = float(number_text)
    if amount < 0 or math.isinf(amount):
        raise GateSyntaxError(
            f"gate {expr!r}: the tolerance must be a finite number >= 0, not {tolerance_text!r}"
        )
    return Gate(expr=expr.strip(), model=model, metric=metric, tolerance=Tolerance(amount, relative))


def evaluate(
    gates: Iterable[Gate],
    models: Mapping[str, ModelResult],
    *,
    baseline: Baseline | None = None,
) -> list[str]:
    """Attach :class:`GateResult`s to ``models`` (in place); return the exprs that matched nothing.

    Verdicts are recomputed. A gate repeated (ini and command line, or several marked tests) is
    evaluated once. Regression rules need ``baseline``; without one they are not evaluated.
    """
    not_evaluated: list[str] = []
    seen: set[tuple[str | None, str, tuple[Bound, ...], Tolerance | None]] = set()
    for gate in gates:
        identity = (gate.model, gate.metric, gate.bounds, gate.tolerance)
        if identity in seen:
            continue
        seen.add(identity)
        matched = False
        for name, result in models.items():
            if not gate.matches_model(name):
                continue
            for key in sorted(result.metrics):
                if not gate.matches_key(key):
                    continue
                value = result.metrics[key]
                if gate.tolerance is None:
                    matched = True
                    result.gates.append(GateResult(gate.expr, key, value, gate.bound_text, gate.check(value)))
                elif baseline is not None:
                    outcome = baseline.compare(gate, name, key, value)
                    if outcome is not None:
                        matched = True
                        result.gates.append(outcome)
        if not matched:
            not_evaluated.append(gate.expr)
    for result in models.values():
        result.recompute_verdict()
    return not_evaluated


def failed_gates(models: Mapping[str, ModelResult]) -> list[tuple[str, GateResult]]:
    return [(name, g) for name, m in models.items() for g in m.gates if not g.passed]
