"""The gate pipeline the plugin's session end and ``fairmind check`` share: gates, then the
baseline of regression rules, then (``evidence="interval"``) the decision on bootstrap evidence
across the session's family of interval gates, then the exit policy (``--fairmind-gate-action``,
``--fairmind-inconclusive``, ``--fairmind-strict``).

Pure except for reading the baseline (no pytest import). See docs/gates.md, docs/baseline.md and
docs/evidence.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_fairmind.gating.baseline import Baseline, unused_notice
from pytest_fairmind.gating.evaluate import evaluate, failed_gates
from pytest_fairmind.gating.evidence import (
    EVIDENCE_MODES,
    INCONCLUSIVE_ACTIONS,
    INTERVAL,
    MULTIPLE_TESTING,
    DistributionFn,
    Family,
    ScopeDistributionsFn,
    apply_policy,
    decide,
    default_distribution,
    default_distributions,
)
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
    evidence: str = "point"  # how gates were decided: "point", or "interval" where keys have intervals
    inconclusive: list[tuple[str, GateResult]] = field(default_factory=list)  # (model, result)
    inconclusive_failure: bool = False  # --fairmind-inconclusive=fail and a gate was inconclusive
    family: Family | None = None  # evidence="interval": the family of interval gates, its point-gated keys


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
    evidence: str = "point",
    inconclusive: str = "warn",
    multiple_testing: str = "holm",
    level: float = 0.95,
    distribution: DistributionFn | None = None,
    distributions: ScopeDistributionsFn | None = None,
) -> GateRun:
    """Evaluate ``gates`` on ``models`` (results attached in place, verdicts recomputed).

    ``baseline`` (where to read it, or the :class:`Baseline` itself) is read only when a
    regression rule needs it; without it such rules are not evaluated. The session fails
    (``exitstatus`` escalated, see :func:`escalate`) when a gate failed under
    ``gate_action="fail"``, or under ``strict`` when a gate matched nothing, a baseline value was
    missing or a metric's direction was unknown (:attr:`GateRun.strict_reasons` says which).

    ``evidence="interval"`` decides every gate whose key has an interval on evidence: ``pass``,
    ``fail`` or ``inconclusive``, adjusted by ``multiple_testing`` (``holm``, ``bonferroni``,
    ``none``) so that the chance of any false ``fail`` is at most ``1 - level``; the replicates come
    from ``distributions`` (one replicate set per scope) or ``distribution`` (one per key); given
    neither, from :mod:`pytest_fairmind.metrics.evidence` (``distributions`` when it has it).
    ``inconclusive`` says what an inconclusive gate does: ``pass`` (the model's verdict passes),
    ``warn`` (a line), ``fail`` (the session fails, unless ``gate_action="warn"``).
    """
    _check_choices(gate_action, evidence, inconclusive, multiple_testing, level)
    outcome = GateRun(exitstatus=exitstatus, evidence=evidence)
    regression = any(g.rule == REGRESSION for g in gates)
    if isinstance(baseline, Baseline):
        outcome.baseline = baseline if regression else None
    elif baseline is not None and regression:
        outcome.baseline = read_baseline(baseline, strict=strict)
    elif baseline is not None and baseline.source:
        outcome.notices.append(unused_notice(baseline.source))
    attached: list[tuple[str, Gate, GateResult]] = []
    outcome.not_evaluated = evaluate(gates, models, baseline=outcome.baseline, attached=attached)
    if outcome.baseline is not None:
        outcome.notices.extend(outcome.baseline.notices())
    if evidence == INTERVAL:
        outcome.family = decide(
            attached,
            models,
            level=level,
            multiple_testing=multiple_testing,
            **_sources(distribution, distributions),
        )
        outcome.notices.extend(outcome.family.notices)
    outcome.inconclusive = apply_policy(models, inconclusive)
    outcome.failed = failed_gates(models)
    outcome.inconclusive_failure = inconclusive == "fail" and bool(outcome.inconclusive)
    if strict:
        outcome.strict_reasons = strict_reasons(outcome.not_evaluated, outcome.baseline)
    outcome.strict_failure = bool(outcome.strict_reasons)
    gate_failure = bool(outcome.failed) or outcome.inconclusive_failure
    if (gate_failure and gate_action == "fail") or outcome.strict_failure:
        outcome.exitstatus = escalate(exitstatus)
    return outcome


def _sources(
    distribution: DistributionFn | None, distributions: ScopeDistributionsFn | None
) -> dict[str, Any]:
    """Where replicates come from: what the caller gave, else the metrics side's."""
    if distribution is None and distributions is None:
        return {"distribution": default_distribution(), "distributions": default_distributions()}
    return {"distribution": distribution, "distributions": distributions}


def _check_choices(gate_action: str, evidence: str, inconclusive: str, testing: str, level: float) -> None:
    for name, value, choices in (
        ("gate_action", gate_action, GATE_ACTIONS),
        ("evidence", evidence, EVIDENCE_MODES),
        ("inconclusive", inconclusive, INCONCLUSIVE_ACTIONS),
        ("multiple_testing", testing, MULTIPLE_TESTING),
    ):
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    if not (isinstance(level, (int, float)) and 0.0 < level < 1.0):
        raise ValueError(f"level must be strictly between 0 and 1, not {level!r}")
