"""The session report (``pytest-fairmind/1``): the JSON form of a :class:`SessionResult`.

The same document is the ``--fairmind-json`` file, a history entry and what ``fairmind replay``
and ``fairmind check`` read back. Strict JSON: non-finite metrics are ``null`` in ``metrics`` and
spelled out in ``nonfinite``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pytest_fairmind.redact import redact_obj
from pytest_fairmind.result import (
    Collision,
    GateResult,
    ModelResult,
    ProviderOutcome,
    RunRef,
    SessionResult,
    TestOutcome,
)

SCHEMA = "pytest-fairmind/1"


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


def model_to_dict(model: ModelResult) -> dict[str, Any]:
    return {
        "verdict": model.verdict,
        "metrics": {k: _number_or_null(v) for k, v in model.metrics.items()},
        "nonfinite": {k: _nonfinite_word(v) for k, v in model.metrics.items() if not math.isfinite(v)},
        "params": {k: _json_safe(v) for k, v in model.params.items()},
        "tags": dict(model.tags),
        "groups": {scope: [_group_row(row) for row in rows] for scope, rows in model.groups.items()},
        "tests": [{"nodeid": t.nodeid, "outcome": t.outcome} for t in model.tests],
        "gates": [_gate_to_dict(g) for g in model.gates],
        "collisions": [
            {"key": c.key, "values": [{"nodeid": n, "value": _json_safe(v)} for n, v in c.values]}
            for c in model.collisions
        ],
    }


def _gate_to_dict(gate: GateResult) -> dict[str, Any]:
    data: dict[str, Any] = {
        "expr": gate.expr,
        "key": gate.key,
        "value": _number_or_null(gate.value),
        "bound": gate.bound,
        "passed": gate.passed,
    }
    if "~" in gate.expr:  # regression rule: what it was compared with
        data["baseline"] = _number_or_null(gate.baseline)
        data["change"] = _number_or_null(gate.change)
        data["direction"] = gate.direction
    return data


def model_from_dict(name: str, data: dict[str, Any]) -> ModelResult:
    metrics: dict[str, float] = {}
    nonfinite = data.get("nonfinite") or {}
    for key, value in (data.get("metrics") or {}).items():
        if value is None:
            metrics[key] = _from_nonfinite_word(nonfinite.get(key, "nan"))
        else:
            metrics[key] = float(value)
    gates = []
    for g in data.get("gates") or []:
        value = g.get("value")
        gates.append(
            GateResult(
                expr=g["expr"],
                key=g["key"],
                value=math.nan if value is None else float(value),
                bound=g["bound"],
                passed=bool(g["passed"]),
                baseline=g.get("baseline"),
                change=g.get("change"),
                direction=g.get("direction"),
            )
        )
    return ModelResult(
        name=name,
        metrics=metrics,
        params=dict(data.get("params") or {}),
        tags=dict(data.get("tags") or {}),
        groups={scope: list(rows) for scope, rows in (data.get("groups") or {}).items()},
        tests=[TestOutcome(t["nodeid"], t["outcome"]) for t in data.get("tests") or []],
        gates=gates,
        collisions=[
            Collision(c["key"], [(v["nodeid"], v["value"]) for v in c["values"]])
            for c in data.get("collisions") or []
        ],
        verdict=data.get("verdict", "pass"),
    )


def _provider_to_dict(outcome: ProviderOutcome) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ok": outcome.ok,
        "error": outcome.error,
        "runs": {
            model: {"id": ref.id, "url": ref.url, "path": ref.path} for model, ref in outcome.runs.items()
        },
    }
    if outcome.target is not None:
        data["target"] = outcome.target
    if outcome.note is not None:
        data["note"] = outcome.note
    return data


def _provider_from_dict(data: dict[str, Any]) -> ProviderOutcome:
    return ProviderOutcome(
        ok=bool(data.get("ok")),
        error=data.get("error"),
        runs={m: RunRef(r["id"], r.get("url"), r.get("path")) for m, r in (data.get("runs") or {}).items()},
        target=data.get("target"),
        note=data.get("note"),
    )


def session_header(session: SessionResult) -> dict[str, Any]:
    """The report's ``session`` object (not yet redacted)."""
    return {
        "id": session.id,
        "project": session.project,
        "started": session.started,
        "finished": session.finished,
        "exitstatus": session.exitstatus,
        "git": session.git,
    }


def session_to_dict(session: SessionResult) -> dict[str, Any]:
    """The report document, with every string passed through secret redaction."""
    doc = {
        "schema": SCHEMA,
        "session": session_header(session),
        "providers": {name: _provider_to_dict(o) for name, o in session.providers.items()},
        "models": {name: model_to_dict(m) for name, m in session.models.items()},
        "gates_not_evaluated": list(session.gates_not_evaluated),
        "context": dict(session.context),
        "notices": list(session.notices),
    }
    redacted: dict[str, Any] = redact_obj(doc)
    return redacted


def session_from_dict(doc: dict[str, Any]) -> SessionResult:
    """Rebuild a session from a report document; ``ValueError`` when it is not one."""
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ValueError(f"not a pytest-fairmind report (expected schema {SCHEMA!r})")
    info = doc["session"]
    return SessionResult(
        id=info["id"],
        project=info["project"],
        started=info["started"],
        finished=info.get("finished"),
        exitstatus=info.get("exitstatus"),
        git=info.get("git"),
        models={name: model_from_dict(name, m) for name, m in (doc.get("models") or {}).items()},
        providers={n: _provider_from_dict(p) for n, p in (doc.get("providers") or {}).items()},
        gates_not_evaluated=list(doc.get("gates_not_evaluated") or []),
        context=dict(doc.get("context") or {}),
        notices=list(doc.get("notices") or []),
    )


def dumps(session: SessionResult) -> str:
    """Strict JSON text of the report (raises rather than writing a NaN token)."""
    return json.dumps(session_to_dict(session), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def load(path: str) -> SessionResult:
    """Read a report or history entry; ``ValueError``/``OSError`` when unreadable."""
    with open(path, encoding="utf-8") as fh:
        try:
            doc = json.load(fh)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return session_from_dict(doc)
