"""Gate results as JUnit XML, the test report CI systems (GitLab, Jenkins, GitHub actions) show.

A pure function of the session report document (the ``--fairmind-json`` dict, ``pytest-fairmind/1``);
no pytest import. One ``<testsuite name="fairmind">``; one ``<testcase>`` per evaluated gate result,
classname ``fairmind.<model>`` (``.`` in the model name becomes ``_``, since CI tools split class
names on dots), name ``<gate expr> [<key>]``. How outcomes map to elements follows the exit policy;
see docs/reports.md.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pytest_fairmind import report
from pytest_fairmind.history import atomic_write
from pytest_fairmind.redact import redact_obj
from pytest_fairmind.result import SessionResult

__all__ = [
    "gate_interval",
    "gate_outcome",
    "gate_rule",
    "junit_xml",
    "number_text",
    "session_document",
    "write_junit",
]

GATE_ACTIONS = ("fail", "warn")
INCONCLUSIVE_ACTIONS = ("pass", "warn", "fail")

# Characters XML 1.0 cannot carry at all (not even escaped): control characters but tab/newline/CR.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def number_text(value: Any) -> str:
    """A number as written in the report: shortest round-trip form (``1`` not ``1.0``), never rounded,
    so a failure never reads ``ratio = 0.8, bound >= 0.8``. ``None`` (an undefined value) is ``nan``."""
    if value is None:
        return "nan"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    number = float(value)
    if not math.isfinite(number):
        return "nan" if math.isnan(number) else ("inf" if number > 0 else "-inf")
    text = repr(number)
    return text[:-2] if text.endswith(".0") else text


def gate_outcome(entry: Mapping[str, Any]) -> str:
    """``pass``, ``fail`` or ``inconclusive``: the entry's ``outcome``, else derived from ``passed``
    (reports written before gates had outcomes)."""
    outcome = entry.get("outcome")
    if outcome in ("pass", "fail", "inconclusive"):
        return str(outcome)
    return "pass" if entry.get("passed") else "fail"


def gate_rule(entry: Mapping[str, Any]) -> str:
    """``regression`` for a regression rule (``METRIC ~ TOL``) result, else ``bound``."""
    rule = entry.get("rule")
    if rule in ("bound", "regression"):
        return str(rule)
    return "regression" if "direction" in entry or entry.get("bound") == "no baseline" else "bound"


def _gate_value(entry: Mapping[str, Any], model: Mapping[str, Any]) -> str:
    value = entry.get("value")
    if value is None:  # null: undefined; the model's ``nonfinite`` says which word
        return str((model.get("nonfinite") or {}).get(entry.get("key"), "nan"))
    return number_text(value)


def _gate_detail(model_name: str, entry: Mapping[str, Any], model: Mapping[str, Any]) -> list[str]:
    """The lines a CI user needs to read one gate result without opening the JSON."""
    lines = [
        f"model: {model_name}",
        f"gate: {entry.get('expr')}",
        f"key: {entry.get('key')}",
        f"value: {_gate_value(entry, model)}",
        f"bound: {entry.get('bound')}",
        f"outcome: {gate_outcome(entry)}",
    ]
    if entry.get("evidence"):  # "interval": decided on bootstrap evidence; "point": on the value
        lines.append(f"evidence: {entry['evidence']}")
    interval = gate_interval(entry)
    if interval is not None:
        lines.append(f"interval: [{number_text(interval[0])}, {number_text(interval[1])}]")
    for field in ("p_value", "p_adjusted", "alpha"):
        if entry.get(field) is not None:
            lines.append(f"{field}: {number_text(entry[field])}")
    if gate_rule(entry) == "regression":
        for field in ("baseline", "change"):
            if field in entry:
                lines.append(f"{field}: {number_text(entry[field]) if entry[field] is not None else 'none'}")
        if entry.get("direction"):
            lines.append(f"direction: {entry['direction']} is better")
    return lines


def _clean(text: Any) -> str:
    """Text XML can carry: characters XML 1.0 forbids are written as ``\\xNN``."""
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def _suite_time(session: Mapping[str, Any]) -> tuple[str | None, float]:
    """(timestamp, duration in seconds) from the session's ISO times; (None, 0) when unreadable."""
    started = _parse_time(session.get("started"))
    finished = _parse_time(session.get("finished"))
    if started is None:
        return None, 0.0
    duration = (finished - started).total_seconds() if finished is not None else 0.0
    return started.isoformat(timespec="seconds"), max(duration, 0.0)


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class _Suite:
    def __init__(self) -> None:
        self.cases: list[ET.Element] = []
        self.failures = 0
        self.skipped = 0

    def case(self, classname: str, name: str) -> ET.Element:
        element = ET.Element("testcase", {"classname": _clean(classname), "name": _clean(name), "time": "0"})
        self.cases.append(element)
        return element

    def fail(self, case: ET.Element, message: str, kind: str, text: str = "") -> None:
        failure = ET.Element("failure", {"message": _clean(message), "type": kind})
        failure.text = _clean(text) if text else None
        case.append(failure)
        self.failures += 1

    def skip(self, case: ET.Element, message: str) -> None:
        case.append(ET.Element("skipped", {"message": _clean(message)}))
        self.skipped += 1


def junit_xml(
    doc: Mapping[str, Any],
    *,
    gate_action: str = "fail",
    inconclusive: str = "warn",
    strict_failures: Iterable[str] = (),
) -> str:
    """The JUnit XML text for a session report document.

    ``gate_action`` and ``inconclusive`` are the session's ``--fairmind-gate-action`` and
    ``--fairmind-inconclusive``: a failed gate is a ``<failure>`` (a ``<skipped message="failed
    (warn only)">`` under ``warn``); an inconclusive one is a ``<failure>`` under ``fail``, else
    ``<skipped>``. ``strict_failures`` are the reasons ``--fairmind-strict`` failed the session (one
    line each); each becomes a failed testcase of classname ``fairmind``.
    """
    if gate_action not in GATE_ACTIONS:
        raise ValueError(f"gate_action must be one of {', '.join(GATE_ACTIONS)}, not {gate_action!r}")
    if inconclusive not in INCONCLUSIVE_ACTIONS:
        raise ValueError(
            f"inconclusive must be one of {', '.join(INCONCLUSIVE_ACTIONS)}, not {inconclusive!r}"
        )
    suite = _Suite()
    models: Mapping[str, Any] = doc.get("models") or {}
    for model_name, model in models.items():
        for entry in model.get("gates") or []:
            _gate_case(suite, model_name, model, entry, gate_action=gate_action, inconclusive=inconclusive)
    for expr in doc.get("gates_not_evaluated") or []:
        case = suite.case("fairmind", str(expr))
        suite.skip(case, "not evaluated: the gate matched no metric")
    for reason in strict_failures:
        case = suite.case("fairmind", f"--fairmind-strict: {reason}")
        suite.fail(case, str(reason), "fairmind.strict")
    return _serialise(doc, suite)


def _gate_case(
    suite: _Suite,
    model_name: str,
    model: Mapping[str, Any],
    entry: Mapping[str, Any],
    *,
    gate_action: str,
    inconclusive: str,
) -> None:
    """One gate result's testcase: the element its outcome gets under the session's exit policy."""
    classname = "fairmind." + model_name.replace(".", "_")
    case = suite.case(classname, f"{entry.get('expr')} [{entry.get('key')}]")
    detail = "\n".join(_gate_detail(model_name, entry, model))
    outcome = gate_outcome(entry)
    summary = (
        f"{entry.get('key')} = {_gate_value(entry, model)}{_interval_text(entry)}, bound {entry.get('bound')}"
    )
    if outcome == "fail" and gate_action == "warn":
        suite.skip(case, "failed (warn only)")
    elif outcome == "fail":
        suite.fail(case, f"gate failed: {summary}", "fairmind.gate", detail)
    elif outcome == "inconclusive" and inconclusive == "fail":
        suite.fail(case, f"gate inconclusive: {summary}", "fairmind.inconclusive", detail)
    elif outcome == "inconclusive":
        suite.skip(case, f"inconclusive: {summary}")
    if case.find("failure") is None:  # a failure's text holds the detail already
        ET.SubElement(case, "system-out").text = _clean(detail)


def gate_interval(entry: Mapping[str, Any]) -> tuple[float, float] | None:
    """A gate's interval, or None when it has none. A one-sided interval's open end is infinite,
    which strict JSON cannot hold: the report leaves that end out, so a missing end is unbounded."""
    low, high = entry.get("ci_low"), entry.get("ci_high")
    if low is None and high is None:
        return None
    try:
        return (-math.inf if low is None else float(low), math.inf if high is None else float(high))
    except (TypeError, ValueError):  # not numbers: a document written by something else
        return None


def _interval_text(entry: Mapping[str, Any]) -> str:
    """`` [low, high]`` for a gate decided on an interval, else nothing."""
    interval = gate_interval(entry)
    if interval is None:
        return ""
    return f" [{number_text(interval[0])}, {number_text(interval[1])}]"


def _serialise(doc: Mapping[str, Any], suite: _Suite) -> str:
    session: Mapping[str, Any] = doc.get("session") or {}
    timestamp, duration = _suite_time(session)
    counts = {
        "tests": str(len(suite.cases)),
        "failures": str(suite.failures),
        "errors": "0",
        "skipped": str(suite.skipped),
        "time": f"{duration:.3f}",
    }
    root = ET.Element("testsuites", {"name": "fairmind", **counts})
    attrs = {"name": "fairmind", **counts}
    if timestamp is not None:
        attrs["timestamp"] = timestamp
    testsuite = ET.SubElement(root, "testsuite", attrs)
    properties = _properties(doc, session)
    if properties:
        props = ET.SubElement(testsuite, "properties")
        for name, value in properties:
            ET.SubElement(props, "property", {"name": _clean(name), "value": _clean(value)})
    testsuite.extend(suite.cases)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(
    path: Path,
    result: SessionResult,
    *,
    gate_action: str,
    inconclusive: str,
    strict_reasons: Sequence[str],
) -> None:
    """Write the JUnit XML of ``result`` to ``path`` atomically (``--fairmind-junit``); always
    written, also when nothing was gated (an empty suite)."""
    text = junit_xml(
        session_document(result),
        gate_action=gate_action,
        inconclusive=inconclusive,
        strict_failures=strict_reasons,
    )
    atomic_write(Path(path), text)


#: Gate fields of evidence-aware gates (docs/evidence.md), as the report names them.
EVIDENCE_FIELDS = ("ci_low", "ci_high", "p_value", "p_adjusted", "alpha")


def session_document(result: SessionResult) -> dict[str, Any]:
    """The report document of ``result`` (redacted, as ``--fairmind-json`` writes it), with the
    gate evidence, scans and settings of the result filled in where the document lacks them."""
    doc = report.session_to_dict(result)
    extra: dict[str, Any] = {"settings": dict(result.settings), "models": {}}
    for name, model in result.models.items():
        entries = doc["models"][name]["gates"]
        gates = []
        for gate, entry in zip(model.gates, entries, strict=True):
            missing = {f: getattr(gate, f) for f in EVIDENCE_FIELDS if f not in entry}
            missing = {f: v for f, v in missing.items() if v is not None and math.isfinite(v)}
            if "evidence" not in entry:
                missing["evidence"] = gate.evidence
            gates.append(missing)
        extra["models"][name] = {"gates": gates, "scans": model.scans}
    extra = redact_obj(extra)
    doc.setdefault("settings", extra["settings"])
    for name, fill in extra["models"].items():
        target = doc["models"][name]
        target.setdefault("scans", fill["scans"])
        for entry, missing in zip(target["gates"], fill["gates"], strict=True):
            for field, value in missing.items():
                entry.setdefault(field, value)
    return doc


def _properties(doc: Mapping[str, Any], session: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Session facts CI tools show beside the suite: id, project, git, each model's verdict."""
    props: list[tuple[str, str]] = []
    for field in ("id", "project"):
        if session.get(field):
            props.append((f"fairmind.session.{field}", str(session[field])))
    git = session.get("git")
    if isinstance(git, Mapping) and git.get("commit"):
        props.append(("fairmind.git.commit", str(git["commit"])))
        if git.get("branch"):
            props.append(("fairmind.git.branch", str(git["branch"])))
    url = (doc.get("context") or {}).get("ci.job_url")
    if url:
        props.append(("fairmind.ci.job_url", str(url)))
    for model_name, model in (doc.get("models") or {}).items():
        props.append((f"fairmind.verdict.{model_name}", str(model.get("verdict", ""))))
    return props
