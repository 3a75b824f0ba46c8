"""The result model: what a session produced, per model, and what providers made of it.

Pure data (no pytest import). Providers receive a :class:`SessionResult`; the report, the
history and ``fairmind replay`` all serialise it with :mod:`pytest_fairmind.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The fields of a subgroup scan's row, in table order (docs/scan.md); ``conditions`` maps each
#: feature of the subgroup to its value.
SCAN_ROW_FIELDS: tuple[str, ...] = (
    "conditions",
    "count",
    "value",
    "complement_value",
    "ratio",
    "difference",
    "p_value",
    "q_value",
    "significant",
)

#: A param value as recorded: text, a boolean or None (numbers become metrics, not params).
ParamValue = str | int | float | bool | None

#: One row of a per-group table: ``{"group": {feature: label}, "count": ..., "selection_rate": ...}``.
GroupRow = dict[str, Any]

#: Gate outcomes and the kinds of rule a gate result comes from.
PASS, FAIL = "pass", "fail"
INCONCLUSIVE = "inconclusive"
BOUND, REGRESSION = "bound", "regression"

#: A model's verdict: ``interrupted`` (the session was interrupted: pytest exit status 2; its
#: results are partial) over ``fail`` over ``inconclusive`` over ``pass``. See docs/report.md.
INTERRUPTED = "interrupted"
VERDICTS = (INTERRUPTED, FAIL, INCONCLUSIVE, PASS)  # worst first


@dataclass
class GateResult:
    """One gate evaluated against one metric of one model."""

    expr: str
    key: str
    value: float | None
    bound: str
    outcome: str  # "pass", "fail" or "inconclusive"
    rule: str = "bound"  # "bound" or "regression": what kind of gate produced it
    baseline: float | None = None  # regression rules: the baseline's value (None: no baseline)
    change: float | None = None  # regression rules: value - baseline
    direction: str | None = None  # regression rules: "lower" or "higher" (is better)
    #: How the outcome was decided: "point" (value against bound) or "interval" (bootstrap evidence,
    #: docs/evidence.md). The fields below are set only for "interval".
    evidence: str = "point"
    #: One-sided bounds at the family level (``fairmind_ci``), both sides: ``ci_high`` decides a
    #: ``<=`` pass, ``ci_low`` a ``>=`` pass.
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None  # share of bootstrap replicates on the fair side of the bound
    p_adjusted: float | None = None  # Holm/Bonferroni-adjusted p-value
    alpha: float | None = None  # the level this gate's p-value was compared with

    @property
    def passed(self) -> bool:
        return self.outcome != FAIL


@dataclass
class TestOutcome:
    """A test that recorded results for a model, with pytest's outcome word."""

    nodeid: str
    outcome: str


@dataclass
class Collision:
    """A key that different tests recorded with different values for one model."""

    key: str
    values: list[tuple[str, Any]]  # (nodeid, value), in node id order; the last one won


@dataclass
class ModelResult:
    """Everything one session knows about one model."""

    name: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, ParamValue] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    groups: dict[str, list[GroupRow]] = field(default_factory=dict)
    tests: list[TestOutcome] = field(default_factory=list)
    gates: list[GateResult] = field(default_factory=list)
    collisions: list[Collision] = field(default_factory=list)
    verdict: str = "pass"
    #: Subgroup scans by scope: ``{"metric", "subgroups_tested", "rows"}`` (docs/scan.md).
    scans: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: What interval gates need to redraw replicates, by scope (docs/evidence.md): plain data,
    #: ``{"kind": "cells" | "grid", ...}`` as :mod:`pytest_fairmind.metrics.evidence` writes it.
    evidence: dict[str, dict[str, Any]] = field(default_factory=dict)

    def recompute_verdict(self) -> str:
        """The verdict from the tests and gates (see docs/report.md): ``fail`` when any gate failed
        or any contributing test failed, else ``inconclusive`` when a gate was, else ``pass``.

        ``interrupted`` stays: it says the session did not run to its end, which no gate can undo.
        """
        if self.verdict == INTERRUPTED:
            return self.verdict
        failed_test = any(t.outcome in ("failed", "error") for t in self.tests)
        if failed_test or any(g.outcome == FAIL for g in self.gates):
            self.verdict = FAIL
        elif any(g.outcome == INCONCLUSIVE for g in self.gates):
            self.verdict = INCONCLUSIVE
        else:
            self.verdict = PASS
        return self.verdict


@dataclass
class RunRef:
    """Where a provider put one model's run."""

    id: str
    url: str | None = None
    path: str | None = None
    skipped: bool = False  # True when the run already existed (replay is idempotent)


@dataclass
class ProviderOutcome:
    """What one provider did with a session."""

    ok: bool
    error: str | None = None
    runs: dict[str, RunRef] = field(default_factory=dict)
    target: str | None = None  # where it writes, credentials redacted
    note: str | None = None  # a hint for the summary, e.g. the `wandb sync` command


@dataclass
class SessionResult:
    """One pytest session's fairness results: the unit that is saved, logged and replayed."""

    id: str
    project: str
    started: str
    finished: str | None = None
    exitstatus: int | None = None
    git: dict[str, Any] | None = None
    models: dict[str, ModelResult] = field(default_factory=dict)
    providers: dict[str, ProviderOutcome] = field(default_factory=dict)
    gates_not_evaluated: list[str] = field(default_factory=list)
    #: Context tags for provider runs (CI job URL, pytest version...), never secrets.
    context: dict[str, str] = field(default_factory=dict)
    #: Lines for the summary that are not tied to a model (lost workers, missing baselines...).
    notices: list[str] = field(default_factory=list)
    #: The gate policy the session ran with, for ``fairmind check`` to reuse: ``evidence``,
    #: ``inconclusive``, ``multiple_testing``, ``ci``, ``gate_action``, ``strict``.
    settings: dict[str, Any] = field(default_factory=dict)
