"""The gate pipeline the plugin's session end and ``fairmind check`` share: gates, then the
baseline of regression rules, then the exit policy (``--fairmind-gate-action``, ``--fairmind-strict``).

Pure except for reading the baseline (no pytest import). See docs/gates.md and docs/baseline.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pytest_fairmind.gating.baseline import Baseline, unused_notice
from pytest_fairmind.gating.evaluate import evaluate, failed_gates
from pytest_fairmind.gating.grammar import Gate
from pytest_fairmind.gating.sources import BaselineRequest, read_baseline
from pytest_fairmind.result import REGRESSION, GateResult, ModelResult

GATE_ACTIONS = ("fail", "warn")

#: Exit statuses a failure replaces: success, and pytest's "no tests collected".
_SUCCESS = (0, 5)
EXIT_FAILED = 1


def escalate(exitstatus: int) -> int:
    """``exitstatus`` turned into a failure (1) when it said success; any other status stays."""
    return EXIT_FAILED if exitstatus in _SUCCESS else exitstatus


@dataclass
class GateRun:
    """What gating made of a session. The gate results themselves are on the models."""

    not_evaluated: list[str] = field(default_factory=list)  # exprs that matched nothing
    failed: list[tuple[str, GateResult]] = field(default_factory=list)  # (model, result)
    notices: list[str] = field(default_factory=list)  # summary lines: the baseline's, an unused source
    strict_failure: bool = False  # --fairmind-strict: a gate not evaluated, no baseline, no direction
    strict_reasons: list[str] = field(default_factory=list)  # why strict failed, one line each
    exitstatus: int = 0  # the status given, escalated when gating fails the session
    baseline: Baseline | None = None  # read only when a regression rule needs it


STRICT_FAILED = "strict: FAILED because "


def strict_line(reasons: Sequence[str]) -> str:
    """The summary line of a session that strict mode failed: ``strict: FAILED because ...``."""
    return STRICT_FAILED + "; ".join(reasons)


def strict_reasons(not_evaluated: Sequence[str], baseline: Baseline | None) -> list[str]:
    """Why strict mode fails a session, one line each (empty: it does not): gates that matched
    nothing, metrics without a baseline value, regression rules not applied for want of a direction."""
    reasons: list[str] = []
    if not_evaluated:
        shown = ", ".join(not_evaluated[:3]) + (
            f" and {len(not_evaluated) - 3} more" if len(not_evaluated) > 3 else ""
        )
        reasons.append(f"{len(not_evaluated)} gate(s) not evaluated ({shown})")
    if baseline is not None and baseline.missing:
        reasons.append(f"no baseline for {len(baseline.missing)} metric(s)")
    if baseline is not None and baseline.undirected:
        exprs = ", ".join(baseline.undirected)
        reasons.append(f"regression rule(s) not applied to metrics of unknown direction ({exprs})")
    return reasons


def run(
    gates: Sequence[Gate],
    models: Mapping[str, ModelResult],
    *,
    baseline: BaselineRequest | Baseline | None = None,
    strict: bool = False,
    gate_action: str = "fail",
    exitstatus: int = 0,
) -> GateRun:
    """Evaluate ``gates`` on ``models`` (results attached in place, verdicts recomputed).

    ``baseline`` (where to read it, or the :class:`Baseline` itself) is read only when a
    regression rule needs it; without it such rules are not evaluated. The session fails
    (``exitstatus`` escalated, see :func:`escalate`) when a gate failed under
    ``gate_action="fail"``, or under ``strict`` when a gate matched nothing, a baseline value was
    missing or a metric's direction was unknown (:attr:`GateRun.strict_reasons` says which).
    """
    if gate_action not in GATE_ACTIONS:
        raise ValueError(f"gate_action must be one of {', '.join(GATE_ACTIONS)}, not {gate_action!r}")
    outcome = GateRun(exitstatus=exitstatus)
    regression = any(g.rule == REGRESSION for g in gates)
    if isinstance(baseline, Baseline):
        outcome.baseline = baseline if regression else None
    elif baseline is not None and regression:
        outcome.baseline = read_baseline(baseline, strict=strict)
    elif baseline is not None and baseline.source:
        outcome.notices.append(unused_notice(baseline.source))
    outcome.not_evaluated = evaluate(gates, models, baseline=outcome.baseline)
    if outcome.baseline is not None:
        outcome.notices.extend(outcome.baseline.notices())
    outcome.failed = failed_gates(models)
    if strict:
        outcome.strict_reasons = strict_reasons(outcome.not_evaluated, outcome.baseline)
    outcome.strict_failure = bool(outcome.strict_reasons)
    if (outcome.failed and gate_action == "fail") or outcome.strict_failure:
        outcome.exitstatus = escalate(exitstatus)
    return outcome
