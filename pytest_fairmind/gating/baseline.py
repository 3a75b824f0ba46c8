"""The baseline of regression rules (``[MODEL:]METRIC ~ TOLERANCE[%]``): did a model get less fair?

A rule says "this metric may get worse than the baseline by at most TOLERANCE" (absolute, or ``%``
of ``|baseline|``); "worse" follows the metric's direction (:mod:`pytest_fairmind.gating.directions`).
A :class:`Baseline` maps model -> metric key -> value (read by :mod:`pytest_fairmind.gating.sources`)
and keeps the bookkeeping of one evaluation: the metrics without a baseline value and the rules
not applied for want of a direction, for the summary and ``--fairmind-strict``.

A missing baseline (first run, new model, new metric, NaN baseline) gives the gate result
``bound == "no baseline"``: passed, with a warning line in the summary; failed under
``--fairmind-strict``. Pure (no pytest import). See docs/baseline.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_fairmind.gating.directions import LOWER, PYTEST_HINT, Directions
from pytest_fairmind.gating.grammar import Gate
from pytest_fairmind.numtext import short
from pytest_fairmind.result import FAIL, PASS, REGRESSION, GateResult, ModelResult

NO_BASELINE = "no baseline"
#: ``Baseline.source`` of the baselines a saved session recorded (``fairmind check`` without ``--baseline``).
RECORDED = "recorded"
PYTEST_STRICT = "--fairmind-strict"
_SHOWN = 5


def regressed_keys(model: ModelResult) -> set[str]:
    """Keys of ``model`` that failed a regression rule against a real baseline: never a baseline
    themselves, so rerunning a regressed build does not make the regression the new baseline."""
    return {g.key for g in model.gates if g.rule == REGRESSION and not g.passed and g.baseline is not None}


def merge_older(known: dict[str, float], older: Mapping[str, float], *, skip: set[str]) -> None:
    """Fill ``known`` (newer values) with ``older`` ones it lacks, but for ``skip``; a finite older
    value replaces a non-finite newer one."""
    for key, value in older.items():
        have = known.get(key)
        if have is not None and (math.isfinite(have) or not math.isfinite(value)):
            continue  # a newer value is already known (a finite one beats NaN)
        if key not in skip:
            known[key] = value


def _listing(items: list[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


@dataclass
class Baseline:
    """Baseline values plus the bookkeeping of one evaluation of regression rules."""

    source: str | None  # as configured; None: no baseline source was given
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    description: str = ""  # where the values came from, for the summary
    available: bool = True  # False: the source had nothing at all (see ``reason``)
    reason: str = ""  # why it is not available
    directions: Directions = field(default_factory=Directions)
    strict: bool = False
    hint: str = PYTEST_HINT
    strict_flag: str = PYTEST_STRICT  # how the summary names strict mode (``--strict`` in ``fairmind check``)
    #: (model, key) -> why there is no value, where the source knows better than "not in the baseline".
    absent: dict[tuple[str, str], str] = field(default_factory=dict)
    missing: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, key) -> why
    undirected: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)  # expr -> ...

    def value(self, model: str, key: str) -> tuple[float | None, str]:
        """The finite baseline value of ``key``, or (None, why there is none)."""
        if not self.available:
            return None, self.reason or NO_BASELINE
        if (model, key) in self.absent:
            return None, self.absent[(model, key)]
        metrics = self.models.get(model)
        if metrics is None:
            return None, "new model: not in the baseline"
        if key not in metrics:
            return None, "new metric: not in the baseline"
        value = metrics[key]
        if not math.isfinite(value):
            return None, f"the baseline value is {short(value, 6)}"
        return value, ""

    def compare(self, gate: Gate, model: str, key: str, value: float) -> GateResult | None:
        """The rule's result for one metric of one model, or None when its direction is unknown."""
        tolerance = gate.tolerance
        assert tolerance is not None, "compare() takes regression rules only"
        direction, why = self.directions.lookup(model, key)
        if direction is None:
            self.undirected.setdefault(gate.expr, {})[(model, key)] = why
            return None
        base, why = self.value(model, key)
        if base is None:
            self.missing.setdefault((model, key), why)
            outcome = FAIL if self.strict else PASS
            return GateResult(gate.expr, key, value, NO_BASELINE, outcome, REGRESSION, direction=direction)
        allowed = tolerance.allowed(base)
        if direction == LOWER:
            limit, op = base + allowed, "<="
            passed = value <= limit
        else:
            limit, op = base - allowed, ">="
            passed = value >= limit
        # The boundary is allowed: 0.7 -> 0.8 with tolerance 0.1 passes despite float rounding.
        passed = not math.isnan(value) and (passed or math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12))
        limits = f"{op} {short(limit, 6)} (baseline {short(base, 6)}"
        bound = f"{limits}, tolerance {tolerance}, {direction} is better)"
        change = value - base if math.isfinite(value) else None
        outcome = PASS if passed else FAIL
        return GateResult(
            gate.expr,
            key,
            value,
            bound,
            outcome,
            REGRESSION,
            baseline=base,
            change=change,
            direction=direction,
        )

    @property
    def problems(self) -> bool:
        """What ``--fairmind-strict`` turns into a failure: a missing baseline, an unknown direction."""
        return bool(self.missing) or bool(self.undirected)

    def notices(self) -> list[str]:
        """Summary lines: missing baselines (warnings) and rules not applied for want of a direction."""
        lines: list[str] = []
        consequence = (
            f"these regression rules FAILED ({self.strict_flag})"
            if self.strict
            else f"not compared, not a failure (it is with {self.strict_flag})"
        )
        if self.missing and not self.available:
            items = [f"{m}: {k}" for m, k in self.missing]
            lines.append(
                f"warning: no baseline ({self.reason}) for {len(items)} metric(s): {_listing(items)}; "
                f"{consequence}"
            )
        elif self.missing:
            by_reason: dict[str, list[str]] = {}
            for (m, k), why in self.missing.items():
                by_reason.setdefault(why, []).append(f"{m}: {k}")
            parts = "; ".join(f"{_listing(items)} ({why})" for why, items in by_reason.items())
            lines.append(
                f"warning: no baseline value in {self.description} for {len(self.missing)} metric(s): "
                f"{parts}; {consequence}"
            )
        for expr, found in self.undirected.items():
            by_reason = {}
            for (m, k), why in found.items():
                by_reason.setdefault(why, []).append(f"{m}: {k}")
            for why, items in by_reason.items():
                failing = f" (fails the session: {self.strict_flag})" if self.strict else ""
                lines.append(
                    f"regression rule not applied to {_listing(items)}: {why} [{expr}]{failing}; {self.hint}"
                )
        return lines


def recorded_baseline(models: Mapping[str, ModelResult], **options: Any) -> Baseline | None:
    """The baselines a saved session's regression rules were compared with (the ``baseline`` of
    its gate entries), so that ``fairmind check`` of a report re-evaluates the session's own rules
    without being told the source again; None when the session has no regression rule.

    A rule that had no baseline then has none now (the same warning, a failure under strict).
    ``options`` are further :class:`Baseline` fields (``directions``, ``strict``, ``hint``...).
    """
    values: dict[str, dict[str, float]] = {}
    absent: dict[tuple[str, str], str] = {}
    found = False
    for name, model in models.items():
        for gate in model.gates:
            if gate.rule != REGRESSION:
                continue
            found = True
            if gate.baseline is not None and math.isfinite(gate.baseline):
                values.setdefault(name, {})[gate.key] = gate.baseline
            elif gate.key not in values.get(name, {}):
                absent[(name, gate.key)] = "none recorded: the session had no baseline value"
    if not found:
        return None
    for name, key in list(absent):
        if key in values.get(name, {}):
            del absent[(name, key)]
    return Baseline(
        source=RECORDED,
        models=values,
        description="the baselines recorded in the session",
        absent=absent,
        **options,
    )


def unused_notice(source: str) -> str:
    """The summary line for a baseline source that no regression rule uses."""
    return (
        f"baseline {source!r} given but no regression rule uses it "
        "(add one such as 'equalized_odds_difference ~ 0.02')"
    )
