"""The session report (``pytest-fairmind/1``): the JSON form of a :class:`SessionResult`.

The same document is the ``--fairmind-json`` file, a history entry and what ``fairmind replay``
and ``fairmind check`` read back; a provider child process hands its outcome back in the same
form. Strict JSON: non-finite metrics are ``null`` in ``metrics`` and spelled out in ``nonfinite``;
an undefined (NaN) group value is ``null`` and decodes back to NaN; a non-finite number inside a
scan or an evidence payload is ``null`` there and spelled out in ``nonfinite_paths`` (a JSON
Pointer into the model entry); a gate's interval numbers are a number or the word. See
docs/report.md.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pytest_fairmind.redact import json_may_hold_secret, redact_obj
from pytest_fairmind.result import (
    BOUND,
    FAIL,
    PASS,
    REGRESSION,
    Collision,
    GateResult,
    GroupRow,
    ModelResult,
    ProviderOutcome,
    RunRef,
    SessionResult,
    TestOutcome,
)

SCHEMA = "pytest-fairmind/1"

#: The largest report file read: a real report of 10k tests x 50 metrics is a few MiB.
MAX_REPORT_BYTES = 64 * 1024 * 1024
#: The deepest nesting of objects and arrays a report may have (a real one has 6 levels).
MAX_DEPTH = 32

#: Verdicts, worst first, and gate outcomes a report may hold (see docs/report.md).
VERDICTS = ("interrupted", "fail", "inconclusive", "pass")
OUTCOMES = ("pass", "fail", "inconclusive")
_RULES = (BOUND, REGRESSION)
_DIRECTIONS = ("lower", "higher")
_NONFINITE_WORDS = ("nan", "inf", "-inf")
_EVIDENCE = ("point", "interval")
#: A gate's interval fields: written when set, a number or (non-finite) its word.
_INTERVAL_FIELDS = ("ci_low", "ci_high", "p_value", "p_adjusted", "alpha")
#: Model fields holding plain data per scope, carried as they were recorded.
_SCOPED_DATA = ("scans", "evidence")
_LARGEST_FLOAT_INT = int(sys.float_info.max)

T = TypeVar("T")


class ReportError(ValueError):
    """A document (or file) that is not a readable pytest-fairmind report. The message is one
    line naming where in the document the problem is (without the file name: callers add it)."""


#: ``baseline.NO_BASELINE``, the bound of a regression rule without a baseline value, for reading
#: entries written before ``rule`` existed (baseline imports this module, so not imported from there).
_NO_BASELINE_BOUND = "no baseline"


def _number_or_null(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return value


def _nonfinite_word(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


def _from_nonfinite_word(word: str) -> float:
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[word]


def _json_safe(value: Any) -> Any:
    """A recorded value as strict JSON (NaN/inf floats as their words)."""
    if isinstance(value, float) and not math.isfinite(value):
        return _nonfinite_word(value)
    return value


def _group_row(row: dict[str, Any]) -> dict[str, Any]:
    """A per-group row as strict JSON: an undefined (NaN) rate is ``null`` like a metric, not the
    string ``"nan"`` in a numeric column; a non-finite group label (``{feature: label}``) keeps its word."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key == "group" and isinstance(value, dict):
            out[key] = {str(feature): _json_safe(label) for feature, label in value.items()}
        elif isinstance(value, float):
            out[key] = _number_or_null(value)
        else:
            out[key] = _json_safe(value)
    return out


def _group_row_from_dict(row: dict[str, Any]) -> GroupRow:
    """The inverse of :func:`_group_row`: a ``null`` column is an undefined (NaN) value again."""
    return {key: math.nan if value is None and key != "group" else value for key, value in row.items()}


def model_to_dict(model: ModelResult) -> dict[str, Any]:
    return {
        "verdict": model.verdict,
        **_metrics_to_dict(model.metrics),
        "params": {k: _json_safe(v) for k, v in model.params.items()},
        "tags": dict(model.tags),
        "groups": {scope: [_group_row(row) for row in rows] for scope, rows in model.groups.items()},
        "tests": [{"nodeid": t.nodeid, "outcome": t.outcome} for t in model.tests],
        "gates": [gate_to_dict(g) for g in model.gates],
        "collisions": [
            {"key": c.key, "values": [{"nodeid": n, "value": _json_safe(v)} for n, v in c.values]}
            for c in model.collisions
        ],
        **_scoped_data_to_dict(model),
    }


def _scoped_data_to_dict(model: ModelResult) -> dict[str, Any]:
    """``scans``, ``evidence`` and the ``nonfinite_paths`` of the non-finite numbers inside them."""
    nonfinite: dict[str, str] = {}
    out: dict[str, Any] = {}
    for kind in _SCOPED_DATA:
        entries: dict[str, Any] = getattr(model, kind)
        out[kind] = {
            scope: _data_to_json(entry, f"/{kind}/{_pointer_part(scope)}", nonfinite)
            for scope, entry in entries.items()
        }
    out["nonfinite_paths"] = nonfinite
    return out


def _pointer_part(key: str) -> str:
    """One reference token of a JSON Pointer (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _data_to_json(data: Any, pointer: str, nonfinite: dict[str, str]) -> Any:
    """A copy of plain data with each non-finite float ``null``, its pointer noted in ``nonfinite``."""
    if isinstance(data, float):
        if math.isfinite(data):
            return data
        nonfinite[pointer] = _nonfinite_word(data)
        return None
    if isinstance(data, dict):
        return {
            str(k): _data_to_json(v, f"{pointer}/{_pointer_part(str(k))}", nonfinite) for k, v in data.items()
        }
    if isinstance(data, list | tuple):
        return [_data_to_json(v, f"{pointer}/{i}", nonfinite) for i, v in enumerate(data)]
    return data


def _metrics_to_dict(metrics: dict[str, float]) -> dict[str, Any]:
    """``metrics`` (non-finite ones null) and ``nonfinite`` (their words). A session has up to a
    million metrics, nearly all finite: one pass in C finds the few that are not."""
    isfinite = math.isfinite
    words = {k: _nonfinite_word(metrics[k]) for k in [k for k, v in metrics.items() if not isfinite(v)]}
    shown: dict[str, float | None] = dict(metrics)
    shown.update(dict.fromkeys(words))
    return {"metrics": shown, "nonfinite": words}


def gate_to_dict(gate: GateResult) -> dict[str, Any]:
    """A gate entry: today's fields, ``outcome`` and ``rule``; a regression rule adds what it was
    compared with, an interval gate its ``evidence`` and the interval numbers that are set
    (see docs/report.md)."""
    data: dict[str, Any] = {
        "expr": gate.expr,
        "key": gate.key,
        "value": _number_or_null(gate.value),
        "bound": gate.bound,
        "passed": gate.passed,
        "outcome": gate.outcome,
        "rule": gate.rule,
    }
    if gate.rule == REGRESSION:
        data["baseline"] = _number_or_null(gate.baseline)
        data["change"] = _number_or_null(gate.change)
        data["direction"] = gate.direction
    if gate.evidence != "point":
        data["evidence"] = gate.evidence
    for name in _INTERVAL_FIELDS:
        value: float | None = getattr(gate, name)
        if value is not None:
            data[name] = value if math.isfinite(value) else _nonfinite_word(value)
    return data


def gate_from_dict(data: dict[str, Any], metrics: dict[str, float] | None = None) -> GateResult:
    """A gate entry back as a :class:`GateResult`; entries of reports written before ``outcome``
    and ``rule`` existed take them from ``passed`` and the regression fields.

    A ``null`` value is the model's own non-finite metric of that key when ``metrics`` has one
    (``inf`` stays ``inf``), else NaN. :class:`ReportError` for an entry of the wrong shape.
    """
    return _decoding(lambda: _gate(data, metrics, "gate"))


def _gate(data: Any, metrics: dict[str, float] | None, where: str) -> GateResult:
    entry = _object(data, where)
    key = _text(entry.get("key"), f"{where}.key")
    value = _number_or_none(entry.get("value"), f"{where}.value")
    if value is None:
        own = (metrics or {}).get(key, math.nan)
        value = own if not math.isfinite(own) else math.nan
    outcome = _optional(entry.get("outcome"), _text, f"{where}.outcome")
    if outcome is None:
        outcome = PASS if _optional(entry.get("passed"), _flag, f"{where}.passed") else FAIL
    _one_of(outcome, OUTCOMES, f"{where}.outcome")
    bound = _text(entry.get("bound"), f"{where}.bound")
    direction = _optional(entry.get("direction"), _text, f"{where}.direction")
    if direction is not None:
        _one_of(direction, _DIRECTIONS, f"{where}.direction")
    rule = _optional(entry.get("rule"), _text, f"{where}.rule") or (
        REGRESSION if "direction" in entry or bound == _NO_BASELINE_BOUND else BOUND
    )
    _one_of(rule, _RULES, f"{where}.rule")
    evidence = _optional(entry.get("evidence"), _text, f"{where}.evidence") or "point"
    _one_of(evidence, _EVIDENCE, f"{where}.evidence")
    interval = {
        name: _optional(entry.get(name), _number_or_word, f"{where}.{name}") for name in _INTERVAL_FIELDS
    }
    return GateResult(
        expr=_text(entry.get("expr"), f"{where}.expr"),
        key=key,
        value=value,
        bound=bound,
        outcome=outcome,
        rule=rule,
        baseline=_number_or_none(entry.get("baseline"), f"{where}.baseline"),
        change=_number_or_none(entry.get("change"), f"{where}.change"),
        direction=direction,
        evidence=evidence,
        **interval,
    )


def model_from_dict(name: str, data: dict[str, Any]) -> ModelResult:
    """A model entry back as a :class:`ModelResult`; :class:`ReportError` for the wrong shape."""
    return _decoding(lambda: _model(name, data, f"models.{_shown(name)}"))


def _model(name: str, data: Any, where: str) -> ModelResult:
    entry = _object(data, where)
    nonfinite = _mapping(entry.get("nonfinite"), _text, f"{where}.nonfinite")
    metrics: dict[str, float] = {}
    for key, value in _mapping(entry.get("metrics"), _number_or_none, f"{where}.metrics").items():
        if value is None:
            word = nonfinite.get(key, "nan")
            _one_of(word, _NONFINITE_WORDS, f"{where}.nonfinite.{_shown(key)}")
            metrics[key] = _from_nonfinite_word(word)
        else:
            metrics[key] = value
    groups = _mapping(entry.get("groups"), _list, f"{where}.groups")
    verdict = _optional(entry.get("verdict"), _text, f"{where}.verdict") or PASS
    _one_of(verdict, VERDICTS, f"{where}.verdict")
    return ModelResult(
        name=name,
        metrics=metrics,
        params=_mapping(entry.get("params"), _scalar, f"{where}.params"),
        tags=_mapping(entry.get("tags"), _text, f"{where}.tags"),
        groups={
            scope: [
                _group_row_from_dict(_row(row, f"{where}.groups.{_shown(scope)}[{i}]"))
                for i, row in enumerate(rows)
            ]
            for scope, rows in groups.items()
        },
        tests=[
            _test(t, f"{where}.tests[{i}]")
            for i, t in enumerate(_sequence(entry.get("tests"), f"{where}.tests"))
        ],
        gates=[
            _gate(g, metrics, f"{where}.gates[{i}]")
            for i, g in enumerate(_sequence(entry.get("gates"), f"{where}.gates"))
        ],
        collisions=[
            _collision(c, f"{where}.collisions[{i}]")
            for i, c in enumerate(_sequence(entry.get("collisions"), f"{where}.collisions"))
        ],
        verdict=verdict,
        **_scoped_data_from_dict(entry, where),
    )


def _scoped_data_from_dict(entry: dict[str, Any], where: str) -> dict[str, dict[str, dict[str, Any]]]:
    """``scans`` and ``evidence`` of a model entry as copies, ``nonfinite_paths`` put back in."""
    out: dict[str, dict[str, dict[str, Any]]] = {
        kind: {
            scope: _copy_data(_object(data, f"{where}.{kind}.{_shown(scope)}"))
            for scope, data in _mapping(entry.get(kind), _object, f"{where}.{kind}").items()
        }
        for kind in _SCOPED_DATA
    }
    for scope, scan in out["scans"].items():
        _list(scan.get("rows", []), f"{where}.scans.{_shown(scope)}.rows")
    for pointer, word in _mapping(entry.get("nonfinite_paths"), _text, f"{where}.nonfinite_paths").items():
        at = f"{where}.nonfinite_paths.{_shown(pointer)}"
        _one_of(word, _NONFINITE_WORDS, at)
        _put_nonfinite(out, pointer, _from_nonfinite_word(word), at)
    return out


def _copy_data(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy_data(v) for v in data]
    return data


def _put_nonfinite(data: dict[str, Any], pointer: str, value: float, where: str) -> None:
    """Replace the ``null`` at JSON Pointer ``pointer`` (under ``scans`` or ``evidence``) with ``value``."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not pointer.startswith("/") or len(parts) < 3 or parts[0] not in _SCOPED_DATA:
        raise ReportError(f"{where}: not a pointer into scans or evidence")
    node: Any = data
    for part in parts[:-1]:
        node = _child(node, part, where)
    last = parts[-1]
    if _child(node, last, where) is not None:
        raise ReportError(f"{where}: the value there is not null")
    node[int(last) if isinstance(node, list) else last] = value


def _child(node: Any, part: str, where: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise ReportError(f"{where}: no such place in the model entry")


def _row(data: Any, where: str) -> GroupRow:
    row = _object(data, where)
    if "group" in row:
        _mapping(row["group"], _scalar, f"{where}.group")
    return dict(row)


def _test(data: Any, where: str) -> TestOutcome:
    entry = _object(data, where)
    return TestOutcome(
        _text(entry.get("nodeid"), f"{where}.nodeid"), _text(entry.get("outcome"), f"{where}.outcome")
    )


def _collision(data: Any, where: str) -> Collision:
    entry = _object(data, where)
    values = []
    for i, item in enumerate(_list(entry.get("values"), f"{where}.values")):
        value = _object(item, f"{where}.values[{i}]")
        values.append(
            (
                _text(value.get("nodeid"), f"{where}.values[{i}].nodeid"),
                _scalar(value.get("value"), f"{where}.values[{i}].value"),
            )
        )
    return Collision(_text(entry.get("key"), f"{where}.key"), values)


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


def provider_to_dict(outcome: ProviderOutcome) -> dict[str, Any]:
    """A provider outcome as plain JSON types (the report's ``providers`` entry and what a provider
    child process hands back); ``skipped`` is written only for runs that already existed."""
    runs: dict[str, Any] = {}
    for model, ref in outcome.runs.items():
        run: dict[str, Any] = {
            "id": str(ref.id),
            "url": _text_or_none(ref.url),
            "path": _text_or_none(ref.path),
        }
        if ref.skipped:
            run["skipped"] = True
        runs[str(model)] = run
    data: dict[str, Any] = {"ok": bool(outcome.ok), "error": _text_or_none(outcome.error), "runs": runs}
    if outcome.target is not None:
        data["target"] = str(outcome.target)
    if outcome.note is not None:
        data["note"] = str(outcome.note)
    return data


def provider_from_dict(data: dict[str, Any]) -> ProviderOutcome:
    """The inverse of :func:`provider_to_dict`; :class:`ReportError` for the wrong shape."""
    return _decoding(lambda: _provider(data, "provider"))


def _provider(data: Any, where: str) -> ProviderOutcome:
    entry = _object(data, where)
    runs: dict[str, RunRef] = {}
    for model, raw in _mapping(entry.get("runs"), _object, f"{where}.runs").items():
        at = f"{where}.runs.{_shown(model)}"
        runs[model] = RunRef(
            _text(raw.get("id"), f"{at}.id"),
            _optional(raw.get("url"), _text, f"{at}.url"),
            _optional(raw.get("path"), _text, f"{at}.path"),
            bool(_optional(raw.get("skipped"), _flag, f"{at}.skipped")),
        )
    return ProviderOutcome(
        ok=bool(_optional(entry.get("ok"), _flag, f"{where}.ok")),
        error=_optional(entry.get("error"), _text, f"{where}.error"),
        runs=runs,
        target=_optional(entry.get("target"), _text, f"{where}.target"),
        note=_optional(entry.get("note"), _text, f"{where}.note"),
    )


def session_header(session: SessionResult) -> dict[str, Any]:
    """The report's ``session`` object (not yet redacted)."""
    return {
        "id": session.id,
        "project": session.project,
        "started": session.started,
        "finished": session.finished,
        "exitstatus": session.exitstatus,
        "git": None if session.git is None else dict(session.git),
    }


def session_document(session: SessionResult) -> dict[str, Any]:
    """The report document before secret redaction."""
    return {
        "schema": SCHEMA,
        "session": session_header(session),
        "providers": {name: provider_to_dict(o) for name, o in session.providers.items()},
        "models": {name: model_to_dict(m) for name, m in session.models.items()},
        "gates_not_evaluated": list(session.gates_not_evaluated),
        "context": dict(session.context),
        "notices": list(session.notices),
        "settings": {str(k): v for k, v in session.settings.items()},
    }


def session_to_dict(session: SessionResult) -> dict[str, Any]:
    """The report document, with every string passed through secret redaction."""
    with _collector_paused():
        return _redacted(session_document(session), strict=False)[0]


def _redacted(doc: dict[str, Any], *, strict: bool) -> tuple[dict[str, Any], str]:
    """``doc`` with every string passed through secret redaction, and its JSON text (``strict``:
    raise on a NaN token or a value that is not JSON, else write them as ``json.dumps`` can).

    Redaction walks every string; most reports hold no secret, which one scan of the JSON text
    tells (a 10k-test report has a million strings).
    """
    options: dict[str, Any] = {"ensure_ascii": False, "allow_nan": not strict}
    if not strict:
        options["default"] = str
    text = json.dumps(doc, **options)
    if not json_may_hold_secret(text):
        return doc, text
    redacted: dict[str, Any] = redact_obj(doc)
    return redacted, json.dumps(redacted, **options)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a large document is encoded or decoded.

    Both make an object (the encoder a tuple) per item: a million for a 10k-test report; each few
    hundred of them start a collection, and the older generations' collections walk everything
    the process holds (in the aggregating process: every test's report). Encoding and decoding
    make no reference cycles, so nothing is missed; it was 1 s of a 1.5 s ``dumps`` of such a
    report at the end of a session.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def session_from_dict(doc: dict[str, Any]) -> SessionResult:
    """Rebuild a session from a report document; :class:`ReportError` when it is not one (any
    wrong type, a number out of range, nesting deeper than :data:`MAX_DEPTH`)."""
    check_plain(doc)
    return _decoding(lambda: _session(doc))


def _session(data: Any) -> SessionResult:
    doc = _object(data, "the document")
    if doc.get("schema") != SCHEMA:
        raise ReportError(f"not a pytest-fairmind report (expected schema {SCHEMA!r})")
    info = _object(doc.get("session"), "session")
    git = _optional(info.get("git"), _object, "session.git")
    exitstatus = _optional(info.get("exitstatus"), _integer, "session.exitstatus")
    session_id = _text(info.get("id"), "session.id")
    if not session_id:
        raise ReportError("session.id: empty")
    return SessionResult(
        id=session_id,
        project=_text(info.get("project"), "session.project"),
        started=_text(info.get("started"), "session.started"),
        finished=_optional(info.get("finished"), _text, "session.finished"),
        exitstatus=exitstatus,
        git=None if git is None else dict(git),
        models={
            name: _model(name, m, f"models.{_shown(name)}")
            for name, m in _mapping(doc.get("models"), _object, "models").items()
        },
        providers={
            name: _provider(p, f"providers.{_shown(name)}")
            for name, p in _mapping(doc.get("providers"), _object, "providers").items()
        },
        gates_not_evaluated=[
            _text(e, f"gates_not_evaluated[{i}]")
            for i, e in enumerate(_sequence(doc.get("gates_not_evaluated"), "gates_not_evaluated"))
        ],
        context=_mapping(doc.get("context"), _text, "context"),
        notices=[_text(n, f"notices[{i}]") for i, n in enumerate(_sequence(doc.get("notices"), "notices"))],
        settings=_mapping(doc.get("settings"), _scalar, "settings"),
    )


def dumps(session: SessionResult) -> str:
    """Strict JSON text of the report (raises rather than writing a NaN token). Compact: an
    indented dump takes Python's pure-Python encoder, several times slower on a large session."""
    with _collector_paused():
        return _redacted(session_document(session), strict=True)[1] + "\n"


def loads(data: str | bytes) -> SessionResult:
    """A report from its JSON text; :class:`ReportError` for anything that is not a report: too
    large, not UTF-8, not strict JSON (``NaN`` tokens included), or the wrong shape."""
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(
            f"larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB: not a pytest-fairmind report"
        )
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise ReportError(f"not UTF-8 text (byte {exc.start})") from None
    try:
        with _collector_paused():
            doc = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise ReportError(f"not valid JSON ({exc})") from None
    except RecursionError:
        raise ReportError(f"nested deeper than {MAX_DEPTH} levels: not a pytest-fairmind report") from None
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ReportError(f"not valid JSON ({_first_line(exc)})") from None
    with _collector_paused():
        return session_from_dict(doc)


def load(path: str) -> SessionResult:
    """Read a report or history entry: :class:`ReportError` when it is not one, ``OSError`` when
    the file cannot be read. At most :data:`MAX_REPORT_BYTES` are read."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_REPORT_BYTES + 1)
    return loads(data)


# --------------------------------------------------------------------------- checking shapes


def check_plain(doc: Any) -> None:
    """:class:`ReportError` unless ``doc`` is plain JSON data that is at most :data:`MAX_DEPTH`
    deep, holds no number a float cannot hold (a 400-digit integer) and no string that cannot be
    printed or saved (a lone surrogate). Iterative: a deep document cannot exhaust the stack here."""
    if not isinstance(doc, dict | list):
        _check_leaf(doc)
        return
    isfinite = math.isfinite
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ReportError(f"nested deeper than {MAX_DEPTH} levels: not a pytest-fairmind report")
        if isinstance(node, dict):
            _check_keys(node)
        for child in node.values() if isinstance(node, dict) else node:
            if type(child) is float:  # most of a report (its metrics): checked right here
                if not isfinite(child):
                    raise ReportError("a non-finite number: not strict JSON")
            elif isinstance(child, dict | list):
                stack.append((child, depth + 1))
            else:
                _check_leaf(child)


def _check_keys(node: dict[Any, Any]) -> None:
    """The keys of an object: the common case (all text) in one encode of them joined."""
    try:
        "".join(node).encode("utf-8")
    except (TypeError, UnicodeEncodeError):
        for key in node:
            _check_leaf(key)


def _check_leaf(node: Any) -> None:
    if isinstance(node, int) and not isinstance(node, bool):
        if abs(node) > _LARGEST_FLOAT_INT:
            raise ReportError(f"a number with {len(str(abs(node)))} digits: out of range")
    elif isinstance(node, float):
        if not math.isfinite(node):
            raise ReportError("a non-finite number: not strict JSON")
    elif isinstance(node, str):
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            raise ReportError("a string that is not valid Unicode (a lone surrogate)") from None
    elif not isinstance(node, bool) and node is not None:
        raise ReportError(f"a {type(node).__name__} value: not JSON data")


def _refuse_constant(token: str) -> Any:
    raise ReportError(f"the token {token!r}: not strict JSON")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _decoding(build: Callable[[], T]) -> T:
    """``build()``, any error of a shape the checks did not foresee turned into a ReportError."""
    try:
        return build()
    except ReportError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError, IndexError) as exc:
        raise ReportError(f"malformed report ({type(exc).__name__}: {_first_line(exc)})") from None


def _shown(key: object) -> str:
    """A key as it appears in a message: short, on one line."""
    text = str(key)
    short_text = text if len(text) <= 40 else text[:37] + "..."
    return short_text if short_text.isprintable() and "." not in short_text else repr(short_text)


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _wrong(where: str, expected: str, value: Any) -> ReportError:
    return ReportError(f"{where}: expected {expected}, got {_kind(value)}")


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(where, "an object", value)
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _wrong(where, "an array", value)
    return value


def _sequence(value: Any, where: str) -> list[Any]:
    """An optional array (absent or null: empty)."""
    return [] if value is None else _list(value, where)


def _mapping(value: Any, item: Callable[[Any, str], T], where: str) -> dict[str, T]:
    """An optional object (absent or null: empty) whose values are each checked by ``item``."""
    if value is None:
        return {}
    entries = _object(value, where)
    try:  # a report has up to a million metrics: where each one is goes into a message only
        return {key: item(v, where) for key, v in entries.items()}
    except ReportError:
        return {key: item(v, f"{where}.{_shown(key)}") for key, v in entries.items()}  # raises, naming it


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _wrong(where, "a string", value)
    return value


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(where, "true or false", value)
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(where, "a number", value)
    return float(value)


def _number_or_none(value: Any, where: str) -> float | None:
    return None if value is None else _number(value, where)


def _number_or_word(value: Any, where: str) -> float:
    """A number, or the word of a non-finite one (``"nan"``, ``"inf"``, ``"-inf"``)."""
    if isinstance(value, str):
        _one_of(value, _NONFINITE_WORDS, where)
        return _from_nonfinite_word(value)
    return _number(value, where)


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(where, "an integer", value)
    if not -(2**31) <= value < 2**31:
        raise ReportError(f"{where}: {value} is out of range")
    return value


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, dict | list):
        raise _wrong(where, "a string, number, boolean or null", value)
    return value


def _optional(value: Any, check: Callable[[Any, str], T], where: str) -> T | None:
    return None if value is None else check(value, where)


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> None:
    if value not in allowed:
        raise ReportError(f"{where}: {_shown(value)} is not one of {', '.join(allowed)}")
