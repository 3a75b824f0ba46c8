"""The verdict table: terminal lines for pytest and ``fairmind check``, Markdown for CI job summaries.

Pure (no pytest import). The rows are built once, as styled parts (text and a style: ``fail``,
``warn``, ``ok`` or ``plain``); the terminal colours a line by its parts' style, the Markdown
summary renders the same rows as tables. See docs/report.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from pytest_fairmind.gating.evaluate import not_evaluated_hint
from pytest_fairmind.gating.grammar import rule_of
from pytest_fairmind.gating.pipeline import STRICT_FAILED
from pytest_fairmind.numtext import beside, short, signed
from pytest_fairmind.result import (
    INCONCLUSIVE,
    INTERRUPTED,
    REGRESSION,
    GateResult,
    ModelResult,
    SessionResult,
)

PLAIN, OK, WARN, FAIL = "plain", "ok", "warn", "fail"
_RANK = {PLAIN: 0, OK: 0, WARN: 1, FAIL: 2}

#: Metrics shown for a model without gates, in this order of preference.
_HEADLINE = (
    "demographic_parity_ratio",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy",
)
_MAX_SHOWN = 3

#: The regression table (rules ``METRIC ~ TOLERANCE``): one row per model and compared metric.
REGRESSION_COLUMNS = ("model", "metric", "baseline", "current", "change", "limit", "result")

#: How each verdict stands out, in the terminal and in the Markdown summary.
_VERDICT_STYLE = {INTERRUPTED: FAIL, "fail": FAIL, INCONCLUSIVE: WARN}
_VERDICT_ICON = {INTERRUPTED: "⏹️ interrupted", "fail": "❌ fail", INCONCLUSIVE: "❔ inconclusive"}

#: Where gates come from, in the report header and the summary's heading (the same words).
FROM_OPTIONS, FROM_MARKERS = "from options/ini", "from markers"


@dataclass(frozen=True)
class Part:
    """A piece of the summary and how it should stand out."""

    text: str
    style: str = PLAIN


def worst(parts: Iterable[Part]) -> str:
    """The style of a line made of ``parts``: ``fail`` over ``warn`` over plain (``ok`` stays plain)."""
    found = max((p.style for p in parts), key=_RANK.__getitem__, default=PLAIN)
    return found if _RANK[found] else PLAIN


@dataclass(frozen=True)
class ModelRow:
    """One model's row of the verdict table."""

    name: str
    verdict: Part  # ``PASS``/``FAIL``, styled ``ok``/``fail``
    tests: str
    gates: Part
    metrics: tuple[tuple[str, str], ...]  # (key, value text) worth a glance


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


def _gates_part(model: ModelResult) -> Part:
    if not model.gates:
        return Part("-")
    failed = sum(not g.passed for g in model.gates)
    if failed:
        return Part(f"{failed}/{len(model.gates)} failed", FAIL)
    return Part(f"{len(model.gates)} passed", OK)


def model_rows(session: SessionResult) -> list[ModelRow]:
    """The verdict table's rows, one per model."""
    return [
        ModelRow(
            name=name,
            verdict=Part(model.verdict.upper(), _VERDICT_STYLE.get(model.verdict, OK)),
            tests=_tests_text(model),
            gates=_gates_part(model),
            metrics=tuple((k, short(v)) for k, v in key_metrics(model)),
        )
        for name, model in session.models.items()
    ]


def _change_text(gate: GateResult) -> str:
    if gate.change is None or not math.isfinite(gate.change):
        return "-"
    text = signed(gate.change)
    if gate.baseline:  # relative change too, when defined
        text += f" ({gate.change / abs(gate.baseline):+.1%})"
    return text


def _result_part(gate: GateResult) -> Part:
    if gate.baseline is None:
        return Part("no baseline") if gate.passed else Part("FAIL: no baseline", FAIL)
    if gate.passed:
        return Part("ok", OK)
    return Part("FAIL: nan" if gate.value is None or math.isnan(gate.value) else "WORSE", FAIL)


def regression_parts(session: SessionResult) -> list[list[Part]]:
    """Rows of the regression table: baseline, current value, change, the limit and the result."""
    rows: list[list[Part]] = []
    for name, model in session.models.items():
        for gate in model.gates:
            if gate.rule != REGRESSION:
                continue
            limit = gate.bound.partition(" (")[0] if gate.baseline is not None else "-"
            baseline = short(gate.baseline) if gate.baseline is not None else "no baseline"
            cells = [name, gate.key, baseline, short(gate.value), _change_text(gate), limit]
            rows.append([*map(Part, cells), _result_part(gate)])
    return rows


def regression_rows(session: SessionResult) -> list[list[str]]:
    """The regression table as text."""
    return [[p.text for p in row] for row in regression_parts(session)]


def _failures(session: SessionResult) -> list[tuple[str, GateResult, str]]:
    """(model, failed gate, its value as shown) for every failed gate."""
    return [
        (name, g, beside(g.value, g.bound))
        for name, m in session.models.items()
        for g in m.gates
        if not g.passed
    ]


def _not_evaluated_reason(expr: str) -> str:
    return "no metric of known direction matched" if rule_of(expr) == REGRESSION else "matched no metric"


def not_evaluated_line(expr: str, session: SessionResult) -> str:
    """The summary line of a gate that was not evaluated, with the closest known names when the
    gate looks like a typo (``...; did you mean demographic_parity_ratio?``)."""
    hint = not_evaluated_hint(expr, session.models)
    return f"gate not evaluated ({_not_evaluated_reason(expr)}): {expr}" + (f"; {hint}" if hint else "")


def _notice_style(notice: str) -> str:
    """Notices are plain, but for warnings and the line of a session strict mode failed."""
    if notice.startswith(STRICT_FAILED):
        return FAIL
    return WARN if notice.startswith("warning:") else PLAIN


def gates_heading(session: SessionResult, *, from_options: int, from_markers: int) -> str:
    """The summary's heading: ``2 model(s), 4 gate(s) (2 from options/ini, 2 from markers) on 14
    key(s)``. Where the gates came from is said only when markers added some (the report header
    counted the others); a key checked by several gates counts once."""
    text = f"{len(session.models)} model(s), {from_options + from_markers} gate(s)"
    if from_markers:
        text += f" ({from_options} {FROM_OPTIONS}, {from_markers} {FROM_MARKERS})"
    if from_options + from_markers:
        checked = {(name, g.key) for name, m in session.models.items() for g in m.gates}
        text += f" on {len(checked)} key(s)"
    return text


def header_gates(from_options: int) -> str:
    """The report header's word on gates: ``gates: 2 from options/ini (marker gates are added per
    test)``."""
    return f"gates: {from_options} {FROM_OPTIONS} (marker gates are added per test)"


def _table(rows: list[list[Part]]) -> list[Part]:
    widths = [max(len(row[i].text) for row in rows) for i in range(len(rows[0]))]
    return [
        Part("  ".join(c.text.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), worst(row))
        for row in rows
    ]


def verdict_parts(session: SessionResult, *, gate_action: str = "fail") -> list[Part]:
    """The verdict table and one line per failed or unevaluated gate, each line a styled part."""
    lines: list[Part] = []
    rows = model_rows(session)
    if rows:
        header = [Part(c) for c in ("model", "verdict", "tests", "gates", "key metrics")]
        cells = [
            [
                Part(r.name),
                r.verdict,
                Part(r.tests),
                r.gates,
                Part(" ".join(f"{k}={v}" for k, v in r.metrics) or "-"),
            ]
            for r in rows
        ]
        lines.extend(_table([header, *cells]))
    regression = regression_parts(session)
    if regression:
        lines.append(Part(""))
        lines.extend(_table([[Part(c) for c in REGRESSION_COLUMNS], *regression]))
    label, style = ("gate FAILED", FAIL) if gate_action == "fail" else ("gate failed (warn only)", PLAIN)
    for name, gate, value in _failures(session):
        lines.append(Part(f"{label}: {name}: {gate.key} = {value}, bound {gate.bound} [{gate.expr}]", style))
    for expr in session.gates_not_evaluated:
        lines.append(Part(not_evaluated_line(expr, session)))
    shown = {p.text for p in lines}  # a notice may repeat a line (the report keeps typo hints)
    lines.extend(Part(n, _notice_style(n)) for n in dict.fromkeys(session.notices) if n not in shown)
    return lines


def verdict_lines(session: SessionResult, *, gate_action: str = "fail") -> list[str]:
    """:func:`verdict_parts` as text."""
    return [p.text for p in verdict_parts(session, gate_action=gate_action)]


def provider_parts(session: SessionResult, *, history_entry: str | None = None) -> list[Part]:
    """Where each model was logged, or why it was not."""
    lines: list[Part] = []
    for name, outcome in session.providers.items():
        where = f" -> {outcome.target}" if outcome.target else ""
        if outcome.ok:
            lines.append(Part(f"{name}: {len(outcome.runs)} run(s){where}"))
            for model, ref in outcome.runs.items():
                location = ref.url or ref.path or ""
                state = "already logged" if ref.skipped else "run"
                lines.append(Part(f"  {model}: {state} {ref.id} {location}".rstrip()))
        else:
            lines.append(Part(f"{name}: FAILED: {outcome.error}{where}", WARN))
            if history_entry:
                lines.append(
                    Part(f"  the session is saved; log it later with: fairmind replay {history_entry}")
                )
        if outcome.note:
            lines.append(Part(f"  {outcome.note}"))
    return lines


def provider_lines(session: SessionResult, *, history_entry: str | None = None) -> list[str]:
    """:func:`provider_parts` as text."""
    return [p.text for p in provider_parts(session, history_entry=history_entry)]


def markdown(session: SessionResult) -> str:
    """The verdict table as GitHub-flavoured Markdown (for ``GITHUB_STEP_SUMMARY``)."""
    out = [f"### fairmind: {session.project}", ""]
    out.append("| model | verdict | tests | gates | key metrics |")
    out.append("| --- | --- | --- | --- | --- |")
    for row in model_rows(session):
        shown = "<br>".join(f"`{k}` = {v}" for k, v in row.metrics) or "-"
        icon = _VERDICT_ICON.get(session.models[row.name].verdict, "✅ pass")
        out.append(f"| {row.name} | {icon} | {row.tests} | {row.gates.text} | {shown} |")
    failed = _failures(session)
    if failed:
        out.append("")
        out.extend(f"- gate failed: **{n}** `{g.key}` = {value}, bound {g.bound}" for n, g, value in failed)
    regression = regression_parts(session)
    if regression:
        out.append("")
        out.append("| " + " | ".join(REGRESSION_COLUMNS) + " |")
        out.append("|" + " --- |" * len(REGRESSION_COLUMNS))
        out.extend("| " + " | ".join(p.text for p in row).replace("`", "") + " |" for row in regression)
    if session.gates_not_evaluated:
        out.append("")
        for expr in session.gates_not_evaluated:
            hint = not_evaluated_hint(expr, session.models)
            why = _not_evaluated_reason(expr)
            out.append(f"- gate not evaluated ({why}): `{expr}`" + (f"; {hint}" if hint else ""))
    return "\n".join(out) + "\n\n"
