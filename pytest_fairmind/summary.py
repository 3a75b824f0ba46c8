"""The verdict table: terminal lines for pytest and ``fairmind check``, Markdown for CI job summaries.

Pure (no pytest import, no numpy). The rows are built once, as styled parts (text and a style:
``fail``, ``inconclusive``, ``warn``, ``ok`` or ``plain``); the terminal colours a line by its parts'
style, the Markdown summary renders the same content as tables and lists. Besides the table: one
line per model with a subgroup scan (its worst significant subgroup), one line per gate decided on
evidence (value, interval, outcome, adjusted level) and one per failed point gate. See docs/report.md.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_fairmind.gating.evaluate import not_evaluated_hint
from pytest_fairmind.gating.grammar import rule_of
from pytest_fairmind.gating.pipeline import STRICT_FAILED
from pytest_fairmind.numtext import beside, short, signed
from pytest_fairmind.result import (
    INCONCLUSIVE as INCONCLUSIVE_OUTCOME,
)
from pytest_fairmind.result import (
    INTERRUPTED,
    REGRESSION,
    GateResult,
    ModelResult,
    SessionResult,
)

INTERVAL = "interval"  # GateResult.evidence of a gate decided on its bootstrap interval

#: Styles of a part. ``INCONCLUSIVE``: a gate (or verdict) the evidence could not decide.
PLAIN, OK, WARN, INCONCLUSIVE, FAIL = "plain", "ok", "warn", "inconclusive", "fail"
_RANK = {PLAIN: 0, OK: 0, WARN: 1, INCONCLUSIVE: 2, FAIL: 3}

#: Metrics shown for a model without gates, per task of a scope, in this order of preference.
HEADLINE_BY_TASK: dict[str, tuple[str, ...]] = {
    "binary": (
        "demographic_parity_ratio",
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "accuracy",
    ),
    "scores": ("roc_auc_score_group_min", "bpsn_auc_group_min", "bnsp_auc_group_min", "log_loss_group_max"),
    "regression": ("mean_absolute_error_group_max", "r2_score_group_min"),
    "multiclass": ("equalized_odds_difference", "accuracy"),
}
_HEADLINE_NAMES = frozenset(name for names in HEADLINE_BY_TASK.values() for name in names)
#: A metric name that tells a scope's task (multiclass is told by its group rows' ``class``).
_TASK_MARKERS = {"roc_auc_score_group_min": "scores", "mean_absolute_error_group_max": "regression"}
_MAX_SHOWN = 3
_MAX_LISTED = 5  # keys named in one line
#: Scan metrics whose high rate harms (docs/scan.md); the others harm when low. Kept here, not
#: imported from :mod:`pytest_fairmind.subgroup_scan`, so that the summary never imports numpy.
SCAN_HARMED_WHEN_HIGH = frozenset({"false_positive_rate", "false_negative_rate"})
#: The words of the line about gates decided on point values in a session with interval gates.
NO_ERROR_CONTROL = "no error control"

#: The regression table (rules ``METRIC ~ TOLERANCE``): one row per model and compared metric.
REGRESSION_COLUMNS = ("model", "metric", "baseline", "current", "change", "limit", "result")

#: How each verdict stands out, in the terminal and in the Markdown summary.
_VERDICT_STYLE = {INTERRUPTED: FAIL, "fail": FAIL, INCONCLUSIVE_OUTCOME: INCONCLUSIVE}
_VERDICT_ICON = {INTERRUPTED: "⏹️ interrupted", "fail": "❌ fail", INCONCLUSIVE_OUTCOME: "❔ inconclusive"}

#: Where gates come from, in the report header and the summary's heading (the same words).
FROM_OPTIONS, FROM_MARKERS = "from options/ini", "from markers"


@dataclass(frozen=True)
class Part:
    """A piece of the summary and how it should stand out."""

    text: str
    style: str = PLAIN


def worst(parts: Iterable[Part]) -> str:
    """The style of a line made of ``parts``: ``fail`` over ``inconclusive`` over ``warn`` over plain
    (``ok`` stays plain)."""
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


def _scope_tasks(model: ModelResult, markers: dict[str, str]) -> dict[str, str]:
    """The task of each scope that has a headline metric: multiclass when its group rows carry a
    ``class`` (or it has per-class keys), else what its marker metric says, else binary."""
    tasks = dict(markers)
    for scope, rows in model.groups.items():
        if rows and "class" in rows[0]:
            tasks[scope] = "multiclass"
    return tasks


def _headline(model: ModelResult) -> list[str]:
    """The headline keys of a model in one pass over its metrics, ranked by their scope's task."""
    found: list[tuple[str, str, str]] = []  # (scope, name, key), in the metrics' order
    markers: dict[str, str] = {}
    for key in model.metrics:
        scope, _, name = key.rpartition("/")
        if name not in _HEADLINE_NAMES:
            continue
        base, sep, _ = f"/{scope}".partition("/class.")
        if sep:  # per-class keys: their scope is multiclass; the worst case is under the base scope
            markers[base[1:]] = "multiclass"
            continue
        if name in _TASK_MARKERS:
            markers.setdefault(scope, _TASK_MARKERS[name])
        found.append((scope, name, key))
    if not found:
        return []
    tasks = _scope_tasks(model, markers)
    ranked: list[tuple[int, int, str]] = []
    for position, (scope, name, key) in enumerate(found):
        names = HEADLINE_BY_TASK[tasks.get(scope, "binary")]
        if name in names:
            ranked.append((names.index(name), position, key))
    return [key for _, _, key in sorted(ranked)]


def _gate_rank(gate: GateResult) -> int:
    """Failed gates first, then inconclusive ones, then those that passed."""
    return 0 if not gate.passed else 1 if gate.outcome == INCONCLUSIVE_OUTCOME else 2


def key_metrics(model: ModelResult) -> list[tuple[str, float]]:
    """The few metrics worth a glance: gated ones first (failed, then inconclusive), else the headline metrics
    of each scope's task (binary labels, scores, regression, multiclass), else the first ones."""
    keys = list(dict.fromkeys(g.key for g in sorted(model.gates, key=_gate_rank)))
    if not keys:
        keys = _headline(model)
    if not keys:
        keys = list(itertools.islice(model.metrics, _MAX_SHOWN))
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
    unsure = sum(g.outcome == INCONCLUSIVE_OUTCOME for g in model.gates)
    also = f", {unsure} inconclusive" if unsure else ""
    if failed:
        return Part(f"{failed}/{len(model.gates)} failed{also}", FAIL)
    if unsure:
        return Part(f"{len(model.gates) - unsure} passed{also}", INCONCLUSIVE)
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
    """(model, failed gate, its value as shown) for every failed gate decided on its point value
    (gates decided on evidence have lines of their own: :func:`evidence_gate_parts`)."""
    return [
        (name, g, beside(g.value, g.bound))
        for name, m in session.models.items()
        for g in m.gates
        if not g.passed and g.evidence != INTERVAL
    ]


# --------------------------------------------------------------------------------------------------
# Subgroup scans: the worst significant subgroup of each model


def _disparity(row: Mapping[str, Any]) -> float:
    """The lower rate over the higher (``worst_ratio``'s measure, docs/scan.md): 1.0 when both are 0."""
    low, high = sorted((float(row["value"]), float(row["complement_value"])))
    if high == 0:
        return 1.0
    return low / high


def _harm(metric: str, row: Mapping[str, Any]) -> float:
    """Lower is more harmed: the subgroup's gap in the direction that harms under ``metric``."""
    difference = float(row["difference"])
    return -difference if metric in SCAN_HARMED_WHEN_HIGH else difference


@dataclass(frozen=True)
class WorstSubgroup:
    """A model's worst significant subgroup over its scans (the measure of ``worst_ratio``)."""

    scope: str
    metric: str
    row: Mapping[str, Any]
    significant: int  # significant subgroups of that scan
    tested: int  # subgroups tested by that scan


def _significant(model: ModelResult, scope: str, entry: Mapping[str, Any]) -> int:
    recorded = model.metrics.get(f"{scope}/{entry.get('metric')}.significant")
    if recorded is not None and math.isfinite(recorded):
        return int(recorded)
    return sum(bool(row.get("significant")) for row in entry.get("rows", ()))


def worst_subgroup(model: ModelResult) -> WorstSubgroup | None:
    """The significant subgroup with the lowest lower-over-higher rate over all of the model's
    scans (ties: the smaller q, then the more harmed); None when no scan found any."""
    best: tuple[tuple[float, float, float], WorstSubgroup] | None = None
    for scope, entry in model.scans.items():
        metric = str(entry.get("metric", ""))
        for row in entry.get("rows", ()):
            if not row.get("significant"):
                continue
            rank = (_disparity(row), float(row["q_value"]), _harm(metric, row))
            if best is None or rank < best[0]:
                tested = int(entry.get("subgroups_tested", 0))
                found = WorstSubgroup(scope, metric, row, _significant(model, scope, entry), tested)
                best = (rank, found)
    return None if best is None else best[1]


def _conditions_text(conditions: Mapping[str, Any]) -> str:
    return " & ".join(f"{feature}={value}" for feature, value in conditions.items())


def _beyond_rows(model: ModelResult, worst: WorstSubgroup) -> str:
    """A note when the scan's ``worst_ratio`` belongs to a subgroup the report's top rows left out."""
    recorded = model.metrics.get(f"{worst.scope}/{worst.metric}.worst_ratio")
    shown = _disparity(worst.row)
    if recorded is None or not math.isfinite(recorded) or recorded >= shown - 1e-12:
        return ""
    rows = len(model.scans[worst.scope].get("rows", ()))
    return f"; its worst_ratio {short(recorded)} is a subgroup beyond the report's top {rows} rows"


def scan_parts(session: SessionResult) -> list[Part]:
    """One line per model with a scan: its worst significant subgroup (conditions, value vs the
    complement's, ratio, q), or that none of the subgroups tested was significant."""
    lines: list[Part] = []
    for name, model in session.models.items():
        if not model.scans:
            continue
        worst = worst_subgroup(model)
        if worst is None:
            tested = sum(int(entry.get("subgroups_tested", 0)) for entry in model.scans.values())
            scans = f" in {len(model.scans)} scans" if len(model.scans) > 1 else ""
            lines.append(Part(f"scan: {name}: no significant subgroup among {tested} tested{scans}"))
            continue
        row = worst.row
        lines.append(
            Part(
                f"scan: {name}: worst significant subgroup {_conditions_text(row['conditions'])} "
                f"({worst.scope}/{worst.metric}): {short(row['value'])} vs {short(row['complement_value'])} "
                f"for the rest, ratio {short(row['ratio'])}, q={short(row['q_value'], 3)}; "
                f"{worst.significant} of {worst.tested} tested significant{_beyond_rows(model, worst)}",
                WARN,
            )
        )
    return lines


# --------------------------------------------------------------------------------------------------
# Gates decided on evidence, and the point-gated ones beside them


def _end(value: float | None, missing: str) -> str:
    return missing if value is None else short(value)


def interval_text(gate: GateResult) -> str:
    """``[low, high]`` of a gate decided on evidence; a one-sided interval's open end is ``-inf``/``inf``."""
    return f"[{_end(gate.ci_low, '-inf')}, {_end(gate.ci_high, 'inf')}]"


def _evidence_gates(session: SessionResult) -> list[tuple[str, GateResult]]:
    return [(name, g) for name, m in session.models.items() for g in m.gates if g.evidence == INTERVAL]


def _outcome_word(gate: GateResult, gate_action: str) -> tuple[str, str]:
    if gate.outcome == INCONCLUSIVE_OUTCOME:
        return "gate INCONCLUSIVE", INCONCLUSIVE
    if gate.passed:
        return "gate passed", OK
    return ("gate FAILED", FAIL) if gate_action == "fail" else ("gate failed (warn only)", PLAIN)


def _evidence_text(name: str, gate: GateResult) -> str:
    alpha = short(gate.alpha, 3) if gate.alpha is not None else "-"
    return (
        f"{name}: {gate.key} = {beside(gate.value, gate.bound)}, interval {interval_text(gate)}, "
        f"bound {gate.bound}, alpha {alpha}"
    )


def evidence_gate_parts(session: SessionResult, *, gate_action: str = "fail") -> list[Part]:
    """One line per gate decided on evidence: value, interval, outcome and the adjusted level."""
    lines: list[Part] = []
    for name, gate in _evidence_gates(session):
        word, style = _outcome_word(gate, gate_action)
        lines.append(Part(f"{word}: {_evidence_text(name, gate)} [{gate.expr}]", style))
    return lines


def _point_gated(session: SessionResult) -> list[str]:
    """``model: key`` of every key gated on its point value (regression rules without a baseline
    decide nothing and are left out)."""
    keys = {
        f"{name}: {g.key}"
        for name, m in session.models.items()
        for g in m.gates
        if g.evidence != INTERVAL and not (g.rule == REGRESSION and g.baseline is None)
    }
    return sorted(keys)


def point_gated_part(session: SessionResult) -> Part | None:
    """The line saying which keys were gated on point values, with no error control, when the
    session also decided gates on evidence (or asked for it); None otherwise or when a notice of
    the gate pipeline already says it."""
    point = _point_gated(session)
    if not point:
        return None
    asked = session.settings.get("evidence") == INTERVAL
    if not (asked or _evidence_gates(session)):
        return None
    if any(NO_ERROR_CONTROL in notice for notice in session.notices):
        return None
    more = f" and {len(point) - _MAX_LISTED} more" if len(point) > _MAX_LISTED else ""
    return Part(
        f"{len(point)} gated key(s) decided on point values (no interval), with {NO_ERROR_CONTROL}: "
        f"{', '.join(point[:_MAX_LISTED])}{more}",
        WARN,
    )


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
    """The verdict table, a line per model with a scan, the regression table, a line per gate
    decided on evidence and per failed or unevaluated point gate, then the notices; styled parts."""
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
    lines.extend(scan_parts(session))
    regression = regression_parts(session)
    if regression:
        lines.append(Part(""))
        lines.extend(_table([[Part(c) for c in REGRESSION_COLUMNS], *regression]))
    lines.extend(evidence_gate_parts(session, gate_action=gate_action))
    label, style = ("gate FAILED", FAIL) if gate_action == "fail" else ("gate failed (warn only)", PLAIN)
    for name, gate, value in _failures(session):
        lines.append(Part(f"{label}: {name}: {gate.key} = {value}, bound {gate.bound} [{gate.expr}]", style))
    point = point_gated_part(session)
    if point is not None:
        lines.append(point)
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


_MARKDOWN_OUTCOME = {
    "gate passed": "✅ gate passed",
    "gate INCONCLUSIVE": "❔ gate inconclusive",
    "gate FAILED": "❌ gate failed",
    "gate failed (warn only)": "⚠️ gate failed (warn only)",
}


def _markdown_lists(session: SessionResult, gate_action: str) -> list[str]:
    """The lines below the table: scans, gates decided on evidence, failed point gates, the
    point-gated keys' line."""
    out = [f"- {part.text}" for part in scan_parts(session)]
    for name, gate in _evidence_gates(session):
        word = _MARKDOWN_OUTCOME[_outcome_word(gate, gate_action)[0]]
        alpha = short(gate.alpha, 3) if gate.alpha is not None else "-"
        out.append(
            f"- {word}: **{name}** `{gate.key}` = {beside(gate.value, gate.bound)}, interval "
            f"{interval_text(gate)}, bound {gate.bound}, alpha {alpha}"
        )
    out.extend(
        f"- gate failed: **{n}** `{g.key}` = {value}, bound {g.bound}" for n, g, value in _failures(session)
    )
    point = point_gated_part(session)
    if point is not None:
        out.append(f"- {point.text}")
    return out


def markdown(session: SessionResult, *, gate_action: str = "fail") -> str:
    """The verdict table as GitHub-flavoured Markdown (for ``GITHUB_STEP_SUMMARY``), with the same
    scan and gate lines as the terminal."""
    out = [f"### fairmind: {session.project}", ""]
    out.append("| model | verdict | tests | gates | key metrics |")
    out.append("| --- | --- | --- | --- | --- |")
    for row in model_rows(session):
        shown = "<br>".join(f"`{k}` = {v}" for k, v in row.metrics) or "-"
        icon = _VERDICT_ICON.get(session.models[row.name].verdict, "✅ pass")
        out.append(f"| {row.name} | {icon} | {row.tests} | {row.gates.text} | {shown} |")
    below = _markdown_lists(session, gate_action)
    if below:
        out.append("")
        out.extend(below)
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
