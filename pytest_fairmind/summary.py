"""The verdict table: terminal lines for pytest and ``fairmind check``, Markdown for CI job summaries.

Pure (no pytest import): renders a :class:`SessionResult` to text.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from pytest_fairmind.gates import number_text
from pytest_fairmind.result import GateResult, ModelResult, SessionResult

#: Metrics shown for a model without gates, in this order of preference.
_HEADLINE = (
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy",
)
_MAX_SHOWN = 3


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


_BOUND_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _precise(value: float | None, bound: str) -> str:
    """A gated value in a failure line, as short as :func:`fmt` but never rounded onto a number of
    its bound (``ratio = 0.8, bound >= 0.8`` for 0.79995 would read as a passing value)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return fmt(value)
    limits = {float(n) for n in _BOUND_NUMBER.findall(bound)}
    for digits in range(4, 18):
        text = f"{value:.{digits}g}"
        if float(text) == value or float(text) not in limits:
            return text
    return number_text(value)


def key_metrics(model: ModelResult) -> list[tuple[str, float]]:
    """The few metrics worth a glance: gated ones first, else the headline fairness metrics."""
    keys: list[str] = []
    for gate in sorted(model.gates, key=lambda g: g.passed):
        if gate.key not in keys:
            keys.append(gate.key)
    if not keys:
        for name in _HEADLINE:
            keys.extend(k for k in model.metrics if k.rpartition("/")[2] == name and k not in keys)
    if not keys:
        keys = list(model.metrics)
    return [(k, model.metrics[k]) for k in keys[:_MAX_SHOWN] if k in model.metrics]


def _tests_text(model: ModelResult) -> str:
    counts = Counter(t.outcome for t in model.tests)
    if not counts:
        return "-"
    return ", ".join(f"{n} {word}" for word, n in sorted(counts.items()))


def _gates_text(model: ModelResult) -> str:
    if not model.gates:
        return "-"
    failed = sum(not g.passed for g in model.gates)
    return f"{failed}/{len(model.gates)} failed" if failed else f"{len(model.gates)} passed"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]


def verdict_lines(session: SessionResult, *, gate_action: str = "fail") -> list[str]:
    """The verdict table and one line per failed or unevaluated gate."""
    lines: list[str] = []
    if session.models:
        rows = [["model", "verdict", "tests", "gates", "key metrics"]]
        for name, model in session.models.items():
            shown = " ".join(f"{k}={fmt(v)}" for k, v in key_metrics(model)) or "-"
            rows.append([name, model.verdict.upper(), _tests_text(model), _gates_text(model), shown])
        lines.extend(_table(rows))
    regression = regression_rows(session)
    if regression:
        lines.append("")
        lines.extend(_table([list(REGRESSION_COLUMNS), *regression]))
    label = "gate FAILED" if gate_action == "fail" else "gate failed (warn only)"
    for name, model in session.models.items():
        for gate in model.gates:
            if not gate.passed:
                value = _precise(gate.value, gate.bound)
                lines.append(f"{label}: {name}: {gate.key} = {value}, bound {gate.bound} [{gate.expr}]")
    for expr in session.gates_not_evaluated:
        lines.append(f"gate not evaluated ({_not_evaluated_reason(expr)}): {expr}")
    lines.extend(session.notices)
    return lines


def _not_evaluated_reason(expr: str) -> str:
    return "no metric of known direction matched" if "~" in expr else "matched no metric"


#: The regression table (rules ``METRIC ~ TOLERANCE``): one row per model and compared metric.
REGRESSION_COLUMNS = ("model", "metric", "baseline", "current", "change", "limit", "result")


def _change_text(gate: GateResult) -> str:
    if gate.change is None or not math.isfinite(gate.change):
        return "-"
    text = f"{gate.change:+.4g}"
    if gate.baseline:  # relative change too, when defined
        text += f" ({gate.change / abs(gate.baseline):+.1%})"
    return text


def _result_text(gate: GateResult) -> str:
    if gate.baseline is None:
        return "no baseline" if gate.passed else "FAIL: no baseline"
    if gate.passed:
        return "ok"
    return "FAIL: nan" if gate.value is None or math.isnan(gate.value) else "WORSE"


def regression_rows(session: SessionResult) -> list[list[str]]:
    """Rows of the regression table: baseline, current value, change, the limit and the result."""
    rows: list[list[str]] = []
    for name, model in session.models.items():
        for gate in model.gates:
            if "~" not in gate.expr:
                continue
            limit = gate.bound.partition(" (")[0] if gate.baseline is not None else "-"
            baseline = fmt(gate.baseline) if gate.baseline is not None else "no baseline"
            rows.append(
                [name, gate.key, baseline, fmt(gate.value), _change_text(gate), limit, _result_text(gate)]
            )
    return rows


def provider_lines(session: SessionResult, *, history_entry: str | None = None) -> list[str]:
    """Where each model was logged, or why it was not."""
    lines: list[str] = []
    for name, outcome in session.providers.items():
        where = f" -> {outcome.target}" if outcome.target else ""
        if outcome.ok:
            lines.append(f"{name}: {len(outcome.runs)} run(s){where}")
            for model, ref in outcome.runs.items():
                location = ref.url or ref.path or ""
                state = "already logged" if ref.skipped else "run"
                lines.append(f"  {model}: {state} {ref.id} {location}".rstrip())
        else:
            lines.append(f"{name}: FAILED: {outcome.error}{where}")
            if history_entry:
                lines.append(f"  the session is saved; log it later with: fairmind replay {history_entry}")
        if outcome.note:
            lines.append(f"  {outcome.note}")
    return lines


def markdown(session: SessionResult) -> str:
    """The verdict table as GitHub-flavoured Markdown (for ``GITHUB_STEP_SUMMARY``)."""
    out = [f"### fairmind: {session.project}", ""]
    out.append("| model | verdict | tests | gates | key metrics |")
    out.append("| --- | --- | --- | --- | --- |")
    for name, model in session.models.items():
        shown = "<br>".join(f"`{k}` = {fmt(v)}" for k, v in key_metrics(model)) or "-"
        icon = "❌ fail" if model.verdict == "fail" else "✅ pass"
        out.append(f"| {name} | {icon} | {_tests_text(model)} | {_gates_text(model)} | {shown} |")
    failed = [(n, g) for n, m in session.models.items() for g in m.gates if not g.passed]
    if failed:
        out.append("")
        out.extend(
            f"- gate failed: **{n}** `{g.key}` = {_precise(g.value, g.bound)}, bound {g.bound}"
            for n, g in failed
        )
    regression = regression_rows(session)
    if regression:
        out.append("")
        out.append("| " + " | ".join(REGRESSION_COLUMNS) + " |")
        out.append("|" + " --- |" * len(REGRESSION_COLUMNS))
        out.extend("| " + " | ".join(row).replace("`", "") + " |" for row in regression)
    if session.gates_not_evaluated:
        out.append("")
        out.extend(
            f"- gate not evaluated ({_not_evaluated_reason(e)}): `{e}`" for e in session.gates_not_evaluated
        )
    return "\n".join(out) + "\n\n"
