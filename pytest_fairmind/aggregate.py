"""Aggregation: from per-test records to one :class:`ModelResult` per model.

Pure (no pytest import). The plugin feeds :class:`Collector` with what arrives on test reports, in
the order they arrive (with or without xdist), then calls :meth:`Collector.build`.

Merging rules (see docs/report.md): within one test, a later record of a key wins silently (reruns
record again); across tests, the test whose node id sorts last wins, so xdist's scheduling order
changes nothing, and every differing value is kept in the model's ``collisions``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pytest_fairmind.gating.directions import Declaration, declaration_from_plain
from pytest_fairmind.gating.grammar import Gate, gate_from_plain
from pytest_fairmind.records import Record
from pytest_fairmind.result import Collision, ModelResult, TestOutcome

_FAILED = ("failed", "error")
T = TypeVar("T")


@dataclass
class TestData:
    """What the aggregating process learned about one test."""

    nodeid: str
    outcome: str | None = None
    records: list[Record] = field(default_factory=list)
    models: list[str] = field(default_factory=list)  # models the test belongs to without recording
    default_models: list[str] = field(default_factory=list)  # ini fairmind_model: when it recorded none
    gates: list[Gate] = field(default_factory=list)  # marker gates, each for its mark's model
    directions: list[Declaration] = field(default_factory=list)  # the marks' lower/higher_is_better
    location: tuple[str, int] | None = None  # (file, 1-based line) of the test, for warnings


@dataclass(frozen=True)
class CollisionWarning:
    """A key recorded with different values by different tests: the warning to emit about it."""

    message: str
    nodeid: str  # the test whose value won (its node id sorts last): where the warning points


def outcome_word(when: str, outcome: str, wasxfail: bool, previous: str | None) -> str | None:
    """pytest's outcome word for a test after one more of its reports (``None``: no change)."""
    if outcome == "rerun":
        return None  # another attempt follows; its reports decide
    if when not in ("setup", "teardown"):  # "call", or "???" for xdist's report of a crashed test
        if wasxfail:
            return "xfailed" if outcome == "skipped" else "xpassed"
        return outcome
    if outcome == "failed":  # setup or teardown
        return previous if previous in _FAILED else "error"
    if outcome == "skipped" and when == "setup":
        return "skipped"
    return None


class Collector:
    """Accumulates per-test data in the aggregating process."""

    def __init__(self) -> None:
        self.tests: dict[str, TestData] = {}

    def test(self, nodeid: str) -> TestData:
        data = self.tests.get(nodeid)
        if data is None:
            data = self.tests[nodeid] = TestData(nodeid)
        return data

    def add_report(
        self,
        nodeid: str,
        when: str,
        outcome: str,
        *,
        wasxfail: bool = False,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Take one test report: its outcome and the fairmind payload it carries, if any."""
        if payload is None and nodeid not in self.tests:
            return  # a test that has nothing to do with fairness: keep nothing about it
        data = self.test(nodeid)
        word = outcome_word(when, outcome, wasxfail, data.outcome)
        if word is not None:
            data.outcome = word
        if payload:
            location = payload.get("location")
            if location and data.location is None:
                data.location = (str(location[0]), int(location[1]))
            data.records.extend(payload.get("records", ()))
            _extend(data.models, payload.get("models", ()))
            _extend(data.default_models, payload.get("default_models", ()))
            _extend(data.gates, map(gate_from_plain, payload.get("gates", ())))
            _extend(data.directions, map(declaration_from_plain, payload.get("directions", ())))

    def add_crash(self, nodeid: str, models: Iterable[str]) -> TestData | None:
        """xdist: the test ``nodeid`` crashed its worker. ``models`` are those it had recorded for
        (the worker's spool): the test is kept for them, so they are listed even when it was their
        only test. None when the test is known for no model."""
        models = list(models)
        if not models and nodeid not in self.tests:
            return None
        data = self.test(nodeid)
        _extend(data.models, models)
        return data

    def marker_gates(self) -> list[Gate]:
        """The marks' gates of every test, in node id order, each once."""
        gates: list[Gate] = []
        for nodeid in sorted(self.tests):
            _extend(gates, self.tests[nodeid].gates)
        return gates

    def marker_directions(self) -> list[Declaration]:
        """The marks' direction declarations of every test, in node id order, each once."""
        declared: list[Declaration] = []
        for nodeid in sorted(self.tests):
            _extend(declared, self.tests[nodeid].directions)
        return declared

    def build(self) -> tuple[dict[str, ModelResult], list[CollisionWarning]]:
        """One result per model (sorted by name) and the collisions to warn about."""
        return build_models(self.tests.values())


def _extend(items: list[T], more: Iterable[T]) -> None:
    """Append each of ``more`` that ``items`` does not hold yet."""
    for item in more:
        if item not in items:
            items.append(item)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def build_models(tests: Iterable[TestData]) -> tuple[dict[str, ModelResult], list[CollisionWarning]]:
    """Merge tests' records into model results; see the module docstring for the rules."""
    per_model: dict[str, ModelResult] = {}
    # key kind -> model -> key -> [(nodeid, value)] to find collisions
    seen: dict[str, dict[str, dict[str, list[tuple[str, Any]]]]] = {"metrics": {}, "params": {}, "tags": {}}

    def model_result(name: str) -> ModelResult:
        result = per_model.get(name)
        if result is None:
            result = per_model[name] = ModelResult(name=name)
        return result

    for data in sorted(tests, key=lambda t: t.nodeid):
        merged: dict[str, dict[str, dict[str, Any]]] = {}
        for record in data.records:  # arrival order: the later record of a key wins
            model = merged.setdefault(
                record["model"], {"metrics": {}, "params": {}, "tags": {}, "groups": {}}
            )
            for kind in ("metrics", "params", "tags", "groups"):
                model[kind].update(record.get(kind) or {})
        names = [*merged, *(m for m in data.models if m not in merged)] or data.default_models
        for name in names:
            result = model_result(name)
            result.tests.append(TestOutcome(data.nodeid, data.outcome or "error"))
            values = merged.get(name)
            if values is None:
                continue
            for kind in ("metrics", "params", "tags"):
                target: dict[str, Any] = getattr(result, kind)
                history = seen[kind].setdefault(name, {})
                for key, value in values[kind].items():
                    history.setdefault(key, []).append((data.nodeid, value))
                    target[key] = value  # node ids ascend: the last one wins
            result.groups.update(values["groups"])

    warnings: list[CollisionWarning] = []
    for kind, models in seen.items():
        for name, keys in models.items():
            for key, recorded in keys.items():
                if len(recorded) > 1 and any(not _same(recorded[0][1], v) for _, v in recorded[1:]):
                    per_model[name].collisions.append(Collision(key, recorded))
                    listing = ", ".join(f"{nodeid} -> {value!r}" for nodeid, value in recorded)
                    message = (
                        f"model {name!r}: {kind[:-1]} {key!r} was recorded with different values by "
                        f"different tests; the last node id wins ({listing})"
                    )
                    warnings.append(CollisionWarning(message, recorded[-1][0]))
    for result in per_model.values():
        result.recompute_verdict()
    return dict(sorted(per_model.items())), warnings
