"""One self-contained HTML page for a session report (``pytest-fairmind/1`` document).

No network: CSS and the SVG charts are inline, there is no script. Built with Jinja2 (the ``html``
extra, imported only when a page is rendered) with autoescaping on, so model names, group labels
and anything else a user recorded are text, never markup. See docs/reports.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_fairmind import history as history_folder
from pytest_fairmind import report
from pytest_fairmind.html.charts import (
    SMALL_GROUP,
    BarChart,
    Observation,
    TrendChart,
    bar_chart,
    group_full_label,
    group_label_lines,
    number,
    short,
    trend_chart,
)
from pytest_fairmind.junit import gate_interval, gate_outcome, gate_rule, number_text, session_document
from pytest_fairmind.result import SessionResult

if TYPE_CHECKING:
    import jinja2

__all__ = [
    "IMPACT_RATIO_THRESHOLD",
    "SMALL_GROUP",
    "history_documents",
    "read_document",
    "render_html",
    "write_html",
]

#: The four-fifths rule: an impact ratio under this is marked.
IMPACT_RATIO_THRESHOLD = 0.8

VERDICTS = ("interrupted", "fail", "inconclusive", "pass")  # worst first
_OUTCOME_RANK = {"fail": 0, "inconclusive": 1, "pass": 2}
_NOT_CHARTED = frozenset({"group", "count", "ci", "class", "impact_ratio"})
_BOUND = re.compile(r"^\s*(<=|>=|<|>)\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)")


_environments: list[jinja2.Environment] = []  # built once per process


def _environment() -> jinja2.Environment:
    try:
        import jinja2
    except ImportError as exc:
        raise ImportError("the HTML report needs Jinja2: pip install 'pytest-fairmind[html]'") from exc
    if not _environments:
        env = jinja2.Environment(
            loader=jinja2.PackageLoader("pytest_fairmind.html", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        env.filters["px"] = lambda value: f"{value:.1f}"
        _environments.append(env)
    return _environments[0]


def render_html(doc: Mapping[str, Any], *, history: Iterable[Mapping[str, Any]] = ()) -> str:
    """The HTML page for ``doc``; ``history`` holds earlier report documents (other projects' and
    the session itself are ignored) for the trend charts of each gated metric."""
    env = _environment()
    page = build_page(doc, history)
    return env.get_template("report.html.j2").render(page=page)


def write_html(path: Path, result: SessionResult, history_dir: Path | None) -> None:
    """Write the page of ``result`` to ``path`` atomically (``--fairmind-html``), with the trends
    of the sessions saved in ``history_dir`` (the history folder; unreadable entries are left out)."""
    earlier, _ = history_documents(history_dir)
    page = render_html(session_document(result), history=earlier)
    history_folder.atomic_write(Path(path), page)


def read_document(path: Path, *, full: bool = True) -> dict[str, Any]:
    """A report document (a ``--fairmind-json`` file or a history entry) as plain data, checked to
    be one: ``OSError`` when the file cannot be read, :class:`report.ReportError` when it is not a
    report (too large, not UTF-8, not strict JSON, the wrong shape). ``full=False`` checks only
    the parts a trend reads (session, each model's metrics and gates): what the page shows of a
    history entry, at a third of the cost of the full check."""
    with open(path, "rb") as fh:
        data = fh.read(report.MAX_REPORT_BYTES + 1)
    if len(data) > report.MAX_REPORT_BYTES:
        raise report.ReportError("too large to be a pytest-fairmind report")
    try:
        doc = json.loads(data.decode("utf-8-sig"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError included
        raise report.ReportError(f"not a JSON report ({str(exc).splitlines()[0]})") from None
    if full:
        report.session_from_dict(doc)  # the shape check of every reader
    else:
        _check_trend_parts(doc)
    return dict(doc)


def _check_trend_parts(doc: Any) -> None:
    """:class:`report.ReportError` unless ``doc`` is a report whose session, models, metrics and
    gates have the shapes the trends read (values are read defensively)."""
    if not isinstance(doc, dict) or doc.get("schema") != report.SCHEMA:
        raise report.ReportError(f"not a pytest-fairmind report (expected schema {report.SCHEMA!r})")
    session = doc.get("session")
    if not isinstance(session, dict) or not all(isinstance(session.get(k), str) for k in ("id", "started")):
        raise report.ReportError("session: expected an object with text id and started")
    models = doc.get("models")
    if not isinstance(models, dict):
        raise report.ReportError("models: expected an object")
    for name, model in models.items():
        if not isinstance(model, dict):
            raise report.ReportError(f"models.{name}: expected an object")
        gates = model.get("gates", [])
        if not isinstance(model.get("metrics", {}), dict) or not isinstance(gates, list):
            raise report.ReportError(f"models.{name}: metrics must be an object and gates a list")
        if not all(isinstance(g, dict) for g in gates):
            raise report.ReportError(f"models.{name}.gates: expected objects")


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not strict JSON")


def history_documents(folder: Path | None) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """The readable entries of a history folder, oldest first, and (path, why) for each one that
    could not be read. No folder, or one without entries, gives none."""
    docs: list[dict[str, Any]] = []
    skipped: list[tuple[Path, str]] = []
    for path in history_folder.entries(folder) if folder is not None else []:
        try:
            docs.append(read_document(path, full=False))
        except (OSError, report.ReportError) as exc:
            skipped.append((path, str(exc)))
    return docs, skipped


# The page's view model: everything the template shows, already worked out.


@dataclass
class GateView:
    expr: str
    key: str
    value_text: str
    value_exact: str  # the value as recorded (a tooltip): never rounded, as the gate compared it
    interval_text: str
    bound: str
    outcome: str
    rule: str
    p_value: str
    p_adjusted: str
    alpha: str
    evidence: str  # "interval", "point", or "" (reports from before evidence-aware gates)
    trend_anchor: str


@dataclass
class ImpactRow:
    label: str
    count: str
    rate: str
    ratio: str
    reference: bool
    below: bool
    small: bool
    undefined: bool


@dataclass
class ImpactTable:
    rows: list[ImpactRow]
    lowest: str  # a sentence: the lowest ratio and its group


@dataclass
class ScopeView:
    name: str
    features: str
    charts: list[BarChart]
    impact: ImpactTable | None
    columns: list[str]
    table: list[list[str]]


@dataclass
class ScanRow:
    conditions: str
    count: str
    value: str
    complement: str
    ratio: str
    difference: str
    p_value: str
    q_value: str
    significant: bool


@dataclass
class ScanView:
    """One subgroup scan (docs/scan.md): its top rows, as recorded."""

    scope: str
    metric: str
    tested: str
    significant: int
    rows: list[ScanRow]


@dataclass
class RunLink:
    provider: str
    run_id: str
    url: str | None


@dataclass
class ModelView:
    name: str
    anchor: str
    verdict: str
    tests_summary: str
    tests: list[tuple[str, str]]
    gates: list[GateView]
    scopes: list[ScopeView]
    scans: list[ScanView]
    runs: list[RunLink]
    tags: list[tuple[str, str]]
    params: list[tuple[str, str]]
    collisions: list[str]

    @property
    def failed_gates(self) -> int:
        return sum(g.outcome == "fail" for g in self.gates)

    @property
    def inconclusive_gates(self) -> int:
        return sum(g.outcome == "inconclusive" for g in self.gates)


@dataclass
class BaselineChange:
    model: str
    anchor: str
    key: str
    expr: str
    baseline: str
    value: str
    change: str
    bound: str
    direction: str
    outcome: str


@dataclass
class TrendGroup:
    model: str
    anchor: str
    charts: list[tuple[str, TrendChart]]  # (anchor, chart)


@dataclass
class Page:
    title: str
    project: str
    session_id: str
    started: str
    finished: str
    duration: str
    exitstatus: str
    git: str
    ci_url: str | None
    versions: str
    policy: str  # the gate policy the session ran with (its ``settings``), or ""
    providers: list[dict[str, str]]
    verdict_counts: list[tuple[str, int]]
    models: list[ModelView]
    gates_not_evaluated: list[str]
    notices: list[str]
    baseline_changes: list[BaselineChange]
    trends: list[TrendGroup]
    history_note: str | None
    history_sessions: int
    small_group: int = SMALL_GROUP
    impact_threshold: float = IMPACT_RATIO_THRESHOLD
    generated: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))


def build_page(doc: Mapping[str, Any], history: Iterable[Mapping[str, Any]] = ()) -> Page:
    """The view model of the page (pure; the template only lays it out)."""
    session: Mapping[str, Any] = doc.get("session") or {}
    context: Mapping[str, Any] = doc.get("context") or {}
    models_doc: Mapping[str, Any] = doc.get("models") or {}
    project = str(session.get("project") or "")
    anchors = {name: f"m{i}" for i, name in enumerate(models_doc)}
    runs = _runs(doc.get("providers") or {})
    models = [_model_view(name, m, anchors[name], runs.get(name, [])) for name, m in models_doc.items()]
    earlier, ignored = _earlier_sessions(doc, history)
    trends = _trends(doc, earlier, anchors) if earlier else []
    if earlier:
        note = None
    elif ignored:
        note = (
            f"No trends: the history holds no earlier session of project {project!r} "
            f"({ignored} other entr{'y' if ignored == 1 else 'ies'} ignored)."
        )
    else:
        note = (
            "No trends: the history holds no earlier session. Trends need earlier sessions of "
            "this project: the history folder (.fairmind), or fairmind report ... --history DIR."
        )
    started = _parse_time(session.get("started"))
    finished = _parse_time(session.get("finished"))
    counts = {v: 0 for v in VERDICTS}
    for m in models:
        counts[m.verdict] = counts.get(m.verdict, 0) + 1
    return Page(
        title=f"Fairness report: {project}" if project else "Fairness report",
        project=project,
        session_id=str(session.get("id") or ""),
        started=_time_text(started, session.get("started")),
        finished=_time_text(finished, session.get("finished")),
        duration=f"{(finished - started).total_seconds():.1f} s" if started and finished else "",
        exitstatus="" if session.get("exitstatus") is None else str(session.get("exitstatus")),
        git=_git_text(session.get("git")),
        ci_url=_http_url(context.get("ci.job_url")),
        policy=_policy_text(doc.get("settings")),
        versions=", ".join(
            f"{label} {context[name]}"
            for name, label in (
                ("fairmind.version", "pytest-fairmind"),
                ("pytest.version", "pytest"),
                ("python.version", "Python"),
            )
            if context.get(name)
        ),
        providers=_providers(doc.get("providers") or {}),
        verdict_counts=[(v, n) for v, n in counts.items() if n],
        models=models,
        gates_not_evaluated=[str(e) for e in doc.get("gates_not_evaluated") or []],
        notices=[str(n) for n in doc.get("notices") or []],
        baseline_changes=_baseline_changes(models_doc, anchors),
        trends=trends,
        history_note=note,
        history_sessions=len(earlier),
    )


_POLICY = (
    ("evidence", "evidence {}"),
    ("multiple_testing", "multiple testing {}"),
    ("ci", "family level {}"),
    ("inconclusive", "inconclusive: {}"),
    ("gate_action", "gate action {}"),
    ("strict", "strict {}"),
)


def _policy_text(settings: Any) -> str:
    """The session's gate policy in one line: ``evidence interval, multiple testing holm, ...``."""
    if not isinstance(settings, Mapping):
        return ""
    parts = []
    for name, text in _POLICY:
        value = settings.get(name)
        if value is None or value == "":
            continue
        shown = ("on" if value else "off") if isinstance(value, bool) else value
        parts.append(text.format(shown))
    return ", ".join(parts)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _time_text(moment: datetime | None, raw: Any) -> str:
    if moment is None:
        return "" if raw is None else str(raw)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _git_text(git: Any) -> str:
    if not isinstance(git, Mapping) or not git.get("commit"):
        return ""
    text = str(git["commit"])[:12]
    if git.get("branch"):
        text += f" on {git['branch']}"
    if git.get("dirty"):
        text += " (uncommitted changes)"
    return text


def _http_url(value: Any) -> str | None:
    """Only http(s) addresses become links (a ``javascript:`` URL is not text autoescaping can defuse)."""
    if isinstance(value, str) and re.match(r"^https?://", value, re.IGNORECASE):
        return value
    return None


def _providers(providers: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for name, info in providers.items():
        info = info or {}
        out.append(
            {
                "name": str(name),
                "status": "ok" if info.get("ok") else "failed",
                "target": str(info.get("target") or ""),
                "error": str(info.get("error") or ""),
                "note": str(info.get("note") or ""),
                "runs": str(len(info.get("runs") or {})),
            }
        )
    return out


def _runs(providers: Mapping[str, Any]) -> dict[str, list[RunLink]]:
    runs: dict[str, list[RunLink]] = {}
    for name, info in providers.items():
        for model, ref in ((info or {}).get("runs") or {}).items():
            runs.setdefault(model, []).append(
                RunLink(str(name), str((ref or {}).get("id") or ""), _http_url((ref or {}).get("url")))
            )
    return runs


def _value_text(value: Any, key: str, model: Mapping[str, Any], *, digits: int | None = None) -> str:
    """A gated value: ``digits`` decimals when given, else exact; its nonfinite word when undefined."""
    if value is None:
        return str((model.get("nonfinite") or {}).get(key, "nan"))
    if digits is not None and number(value) is not None:
        return short(float(value), digits)
    return number_text(value)


def _gate_value_text(entry: Mapping[str, Any], model: Mapping[str, Any]) -> str:
    """Four decimals, unless rounding would put the value on or across a bound (``0.79999`` must
    not read ``0.8000`` beside ``>= 0.8``): then exact."""
    key = str(entry.get("key"))
    value = number(entry.get("value"))
    if value is None:
        return _value_text(entry.get("value"), key, model)
    rounded = float(short(value, 4))
    for part in str(entry.get("bound")).split(" and "):
        match = _BOUND.match(part)
        if match:
            limit = float(match.group(2))
            if rounded == limit or (rounded - limit) * (value - limit) < 0:
                return number_text(value)
    return short(value, 4)


def _gate_interval(entry: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """The gate's own interval, else the one recorded beside the metric (``<key>.ci_low/.ci_high``)."""
    interval = gate_interval(entry)
    if interval is not None:  # a one-sided interval has an infinite end
        return (
            "[" + ", ".join(number_text(e) if math.isinf(e) else short(number(e), 4) for e in interval) + "]"
        )
    key = str(entry.get("key"))
    low, high = metrics.get(f"{key}.ci_low"), metrics.get(f"{key}.ci_high")
    if low is None and high is None:
        return ""
    return f"[{short(number(low), 4)}, {short(number(high), 4)}]"


def _p_text(value: Any) -> str:
    found = number(value)
    return "" if found is None else f"{found:.4g}"


def _model_view(name: str, model: Mapping[str, Any], anchor: str, runs: list[RunLink]) -> ModelView:
    metrics: Mapping[str, Any] = model.get("metrics") or {}
    tests = [(str(t.get("nodeid")), str(t.get("outcome"))) for t in model.get("tests") or []]
    tally: dict[str, int] = {}
    for _, outcome in tests:
        tally[outcome] = tally.get(outcome, 0) + 1
    trend_index = _trend_keys(model)
    gates = []
    for entry in model.get("gates") or []:
        key = str(entry.get("key"))
        gates.append(
            GateView(
                expr=str(entry.get("expr")),
                key=key,
                value_text=_gate_value_text(entry, model),
                value_exact=_value_text(entry.get("value"), key, model),
                interval_text=_gate_interval(entry, metrics),
                bound=str(entry.get("bound")),
                outcome=gate_outcome(entry),
                rule=gate_rule(entry),
                p_value=_p_text(entry.get("p_value")),
                p_adjusted=_p_text(entry.get("p_adjusted")),
                alpha=_p_text(entry.get("alpha")),
                evidence=str(entry.get("evidence") or ""),
                trend_anchor=f"{anchor}-t{trend_index[key]}",
            )
        )
    verdict = str(model.get("verdict") or "pass")
    return ModelView(
        name=name,
        anchor=anchor,
        verdict=verdict if verdict in VERDICTS else "unknown",
        tests_summary=", ".join(f"{n} {outcome}" for outcome, n in tally.items()) or "no tests",
        tests=tests,
        gates=gates,
        scopes=[_scope_view(scope, rows) for scope, rows in (model.get("groups") or {}).items() if rows],
        scans=[_scan_view(scope, scan) for scope, scan in (model.get("scans") or {}).items()],
        runs=runs,
        tags=[(str(k), str(v)) for k, v in (model.get("tags") or {}).items()],
        params=[(str(k), str(v)) for k, v in (model.get("params") or {}).items()],
        collisions=[
            f"{c.get('key')}: "
            + ", ".join(f"{v.get('value')} ({v.get('nodeid')})" for v in c.get("values") or [])
            for c in model.get("collisions") or []
        ],
    )


def _trend_keys(model: Mapping[str, Any]) -> dict[str, int]:
    """Each gated key of a model, numbered in order of first appearance (one trend chart each)."""
    keys: dict[str, int] = {}
    for entry in model.get("gates") or []:
        keys.setdefault(str(entry.get("key")), len(keys))
    return keys


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The numeric per-group columns, in first-seen order (which ones depends on the task)."""
    seen: dict[str, bool] = {}
    for row in rows:
        for key, value in row.items():
            if key in _NOT_CHARTED:
                continue
            numeric = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
            seen[key] = seen.get(key, True) and numeric
    return [k for k, ok in seen.items() if ok]


def _scope_view(scope: str, rows: Sequence[Mapping[str, Any]]) -> ScopeView:
    first = rows[0].get("group")
    features = " × ".join(str(f) for f in first) if isinstance(first, Mapping) else ""
    if features == str(scope):
        features = ""  # a one-feature scope named after its feature
    columns = _columns(rows)
    has_class = any("class" in row for row in rows)
    table_columns = ["group", *(["class"] if has_class else []), "count", *columns]
    table = []
    for row in rows:
        cells = [group_full_label(row.get("group"))]
        if has_class:
            cells.append(str(row.get("class", "")))
        count = number(row.get("count"))
        cells.append("" if count is None else f"{count:g}")
        for column in columns:
            cell = short(number(row.get(column)), 4)
            ci = row.get("ci")
            if isinstance(ci, Mapping) and isinstance(ci.get(column), Sequence) and len(ci[column]) == 2:
                cell += f" [{short(number(ci[column][0]), 3)}, {short(number(ci[column][1]), 3)}]"
            cells.append(cell)
        table.append(cells)
    return ScopeView(
        name=str(scope),
        features=features,
        charts=[] if has_class else [bar_chart(column, rows) for column in columns],
        impact=None if has_class else _impact_table(rows),
        columns=table_columns,
        table=table,
    )


def _scan_view(scope: str, scan: Any) -> ScanView:
    """The table of a scan's top subgroups; what is not a number reads ``undefined``."""
    scan = scan if isinstance(scan, Mapping) else {}
    rows = [r for r in scan.get("rows") or [] if isinstance(r, Mapping)]
    out = []
    for row in rows:
        conditions = row.get("conditions")
        count = number(row.get("count"))
        out.append(
            ScanRow(
                conditions=group_full_label(conditions)
                if isinstance(conditions, Mapping)
                else str(conditions),
                count="" if count is None else f"{count:g}",
                value=short(number(row.get("value")), 4),
                complement=short(number(row.get("complement_value")), 4),
                ratio=short(number(row.get("ratio")), 3),
                difference=short(number(row.get("difference")), 4),
                p_value=_p_text(row.get("p_value")) or "undefined",
                q_value=_p_text(row.get("q_value")) or "undefined",
                significant=row.get("significant") is True,
            )
        )
    tested = number(scan.get("subgroups_tested"))
    return ScanView(
        scope=str(scope),
        metric=str(scan.get("metric") or ""),
        tested="?" if tested is None else f"{tested:g}",
        significant=sum(r.significant for r in out),
        rows=out,
    )


def _impact_table(rows: Sequence[Mapping[str, Any]]) -> ImpactTable | None:
    """Selection rate of each group over the highest (the row's own ``impact_ratio`` when it has one)."""
    if not any("selection_rate" in row for row in rows):
        return None
    rates = [number(row.get("selection_rate")) for row in rows]
    defined = [r for r in rates if r is not None]
    highest = max(defined) if defined else None
    out: list[ImpactRow] = []
    lowest: tuple[float, str] | None = None
    for row, rate in zip(rows, rates, strict=True):
        if "impact_ratio" in row:
            ratio = number(row.get("impact_ratio"))
        else:
            ratio = rate / highest if rate is not None and highest else None
        count = number(row.get("count"))
        label = " · ".join(group_label_lines(row.get("group")))
        if ratio is not None and (lowest is None or ratio < lowest[0]):
            lowest = (ratio, group_full_label(row.get("group")))
        out.append(
            ImpactRow(
                label=label,
                count="" if count is None else f"{count:g}",
                rate=short(rate, 4),
                ratio=short(ratio, 3),
                reference=rate is not None and rate == highest,
                below=ratio is not None and ratio < IMPACT_RATIO_THRESHOLD,
                small=count is not None and count < SMALL_GROUP,
                undefined=ratio is None,
            )
        )
    if lowest is None:
        sentence = "No impact ratio is defined (no group has a positive selection rate)."
    else:
        verdict = "under" if lowest[0] < IMPACT_RATIO_THRESHOLD else "at or over"
        sentence = (
            f"Lowest impact ratio {short(lowest[0], 3)} ({lowest[1]}), {verdict} {IMPACT_RATIO_THRESHOLD}."
        )
    return ImpactTable(rows=out, lowest=sentence)


def _baseline_changes(models: Mapping[str, Any], anchors: Mapping[str, str]) -> list[BaselineChange]:
    changes = []
    for name, model in models.items():
        for entry in model.get("gates") or []:
            if gate_rule(entry) != "regression":
                continue
            key = str(entry.get("key"))
            change = number(entry.get("change"))
            changes.append(
                BaselineChange(
                    model=name,
                    anchor=anchors[name],
                    key=key,
                    expr=str(entry.get("expr")),
                    baseline="none" if entry.get("baseline") is None else number_text(entry.get("baseline")),
                    value=_value_text(entry.get("value"), key, model),
                    change="" if change is None else f"{change:+.4g}",
                    bound=str(entry.get("bound")),
                    direction=f"{entry['direction']} is better" if entry.get("direction") else "",
                    outcome=gate_outcome(entry),
                )
            )
    changes.sort(key=lambda c: _OUTCOME_RANK.get(c.outcome, 3))
    return changes


def _earlier_sessions(
    doc: Mapping[str, Any], history: Iterable[Mapping[str, Any]]
) -> tuple[list[tuple[datetime, Mapping[str, Any]]], int]:
    """Earlier sessions of the same project, oldest first, one per session id; and how many
    history entries were left out (other projects, unreadable times)."""
    session = doc.get("session") or {}
    project, current = session.get("project"), session.get("id")
    started = _parse_time(session.get("started"))
    seen: dict[Any, tuple[datetime, Mapping[str, Any]]] = {}
    ignored = 0
    for entry in history:
        info = entry.get("session") if isinstance(entry, Mapping) else None
        moment = _parse_time(info.get("started")) if isinstance(info, Mapping) else None
        if not isinstance(info, Mapping) or moment is None or info.get("project") != project:
            ignored += 1
            continue
        if info.get("id") == current or (started is not None and moment > started):
            continue  # the session itself (it is in its own history), or a later one
        seen[info.get("id")] = (moment, entry)
    return sorted(seen.values(), key=lambda pair: pair[0]), ignored


def _worst_outcomes(model: Mapping[str, Any]) -> dict[str, str]:
    worst: dict[str, str] = {}
    for entry in model.get("gates") or []:
        key, outcome = str(entry.get("key")), gate_outcome(entry)
        if key not in worst or _OUTCOME_RANK[outcome] < _OUTCOME_RANK[worst[key]]:
            worst[key] = outcome
    return worst


def _bounds(model: Mapping[str, Any], key: str) -> list[tuple[float, str, str]]:
    """The lines to draw on a trend: each bound of the current gates on ``key``."""
    lines: dict[tuple[float, str], tuple[float, str, str]] = {}
    for entry in model.get("gates") or []:
        if str(entry.get("key")) != key:
            continue
        rule = gate_rule(entry)
        for part in str(entry.get("bound")).split(" and "):
            match = _BOUND.match(part)
            if not match:
                continue
            value = float(match.group(2))
            label = f"{match.group(1)} {match.group(2)}"
            if rule == "regression":
                label = f"regression limit {label}"
            lines.setdefault((value, rule), (value, label, rule))
    return list(lines.values())


def _trends(
    doc: Mapping[str, Any], earlier: Sequence[tuple[datetime, Mapping[str, Any]]], anchors: Mapping[str, str]
) -> list[TrendGroup]:
    session = doc.get("session") or {}
    now = _parse_time(session.get("started")) or (earlier[-1][0] if earlier else datetime.now(timezone.utc))
    groups = []
    outcome_cache: dict[tuple[int, str], dict[str, str]] = {}
    for name, model in (doc.get("models") or {}).items():
        keys = _trend_keys(model)
        if not keys:
            continue
        current_outcomes = _worst_outcomes(model)
        charts = []
        for key, index in keys.items():
            observations = []
            for i, (moment, entry) in enumerate(earlier):
                past = (entry.get("models") or {}).get(name)
                if not isinstance(past, Mapping) or key not in (past.get("metrics") or {}):
                    continue
                if (i, name) not in outcome_cache:
                    outcome_cache[(i, name)] = _worst_outcomes(past)
                observations.append(
                    Observation(
                        time=moment,
                        session=str((entry.get("session") or {}).get("id") or ""),
                        value=number(past["metrics"][key]),
                        outcome=outcome_cache[(i, name)].get(key),
                        current=False,
                    )
                )
            observations.append(
                Observation(
                    time=now,
                    session=str(session.get("id") or ""),
                    value=number((model.get("metrics") or {}).get(key)),
                    outcome=current_outcomes.get(key),
                    current=True,
                )
            )
            chart = trend_chart(name, key, observations, _bounds(model, key))
            charts.append((f"{anchors[name]}-t{index}", chart))
        groups.append(TrendGroup(model=name, anchor=anchors[name], charts=charts))
    return groups
