"""Evaluating parsed gates against the aggregated results of each model (see docs/gates.md).

Pure (no pytest import). NaN fails its gate; a gate that matches nothing is "not evaluated".
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from pytest_fairmind.gating.baseline import Baseline
from pytest_fairmind.gating.grammar import Bound, Gate, GateSyntaxError, Tolerance, parse_gate
from pytest_fairmind.result import FAIL, PASS, GateResult, ModelResult


def evaluate(
    gates: Iterable[Gate],
    models: Mapping[str, ModelResult],
    *,
    baseline: Baseline | None = None,
    attached: list[tuple[str, Gate, GateResult]] | None = None,
) -> list[str]:
    """Attach :class:`GateResult`s to ``models`` (in place); return the exprs that matched nothing.

    Verdicts are recomputed. A gate repeated (ini and command line, or several marked tests) is
    evaluated once. Regression rules need ``baseline``; without one they are not evaluated.
    ``attached``, when given, receives (model, gate, result) of every result, for the evidence pass.
    """
    not_evaluated: list[str] = []
    seen: set[tuple[str | None, str, tuple[Bound, ...], Tolerance | None]] = set()
    for gate in gates:
        identity = (gate.model, gate.metric, gate.bounds, gate.tolerance)
        if identity in seen:
            continue
        seen.add(identity)
        if not _apply(gate, models, baseline, attached):
            not_evaluated.append(gate.expr)
    for result in models.values():
        result.recompute_verdict()
    return not_evaluated


def _apply(
    gate: Gate,
    models: Mapping[str, ModelResult],
    baseline: Baseline | None,
    attached: list[tuple[str, Gate, GateResult]] | None,
) -> bool:
    """Add ``gate``'s results to the models it matches; whether it matched any metric."""
    matched = False
    for name, result in models.items():
        if not gate.matches_model(name):
            continue
        for key in sorted(result.metrics):
            if not gate.matches_key(key):
                continue
            value = result.metrics[key]
            made: GateResult | None = None
            if gate.tolerance is None:
                outcome = PASS if gate.check(value) else FAIL
                made = GateResult(gate.expr, key, value, gate.bound_text, outcome)
            elif baseline is not None:
                made = baseline.compare(gate, name, key, value)
            if made is not None:
                result.gates.append(made)
                matched = True
                if attached is not None:
                    attached.append((name, gate, made))
    return matched


def failed_gates(models: Mapping[str, ModelResult]) -> list[tuple[str, GateResult]]:
    """(model, result) of every failed gate."""
    return [(name, g) for name, m in models.items() for g in m.gates if not g.passed]


_SUGGESTED = 3


def _closest(word: str, candidates: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(word, sorted(set(candidates)), n=_SUGGESTED, cutoff=0.6)


def _alternatives(words: list[str]) -> str:
    return " or ".join(words)


def not_evaluated_hint(expr: str, models: Mapping[str, ModelResult]) -> str | None:
    """For a gate that matched nothing, the closest names the session knows: ``"did you mean
    demographic_parity_ratio?"`` (over the keys and their last segments of the models the gate
    applies to), or the closest model names when the gate's model matched none. None when the gate
    did match keys (it was not evaluated for another reason) or nothing is close."""
    try:
        gate = parse_gate(expr)
    except GateSyntaxError:
        return None
    applies = [m for name, m in models.items() if gate.matches_model(name)]
    if not applies:
        if gate.model is None:
            return None
        close = _closest(gate.model, models)
        return f"no model is named {gate.model!r}; did you mean {_alternatives(close)}?" if close else None
    keys = [key for model in applies for key in model.metrics]
    if any(gate.matches_key(key) for key in keys):
        return None
    # A name without "/" matches last segments: suggest those (whole keys only when none is close).
    close = [] if "/" in gate.metric else _closest(gate.metric, (k.rpartition("/")[2] for k in keys))
    close = close or _closest(gate.metric, keys)
    return f"did you mean {_alternatives(close)}?" if close else None
