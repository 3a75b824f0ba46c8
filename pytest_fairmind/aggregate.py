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


_RECORDED = ("metrics", "params", "tags")  # collisions are tracked for these kinds
_PER_SCOPE = ("groups", "scans", "evidence")  # replaced as a whole per scope: the last test wins


@dataclass
class _Seen:
    """What tests recorded one kind of one model, to find collisions without a list per key."""

    tests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (node id, values) in order
    again: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)  # key -> every (node id, value)


def _merge(target: dict[str, Any], seen: _Seen, values: dict[str, Any], nodeid: str) -> None:
    """``values`` of test ``nodeid`` into ``target`` (the last test wins), noting repeated keys.

    The common case, keys no earlier test recorded, is two dict operations in C; a key recorded
    again looks up the earlier tests that recorded it (rare: a collision or a shared key).
    """
    if values and not target.keys().isdisjoint(values):
        for key in values.keys() & target.keys():
            recorded = seen.again.get(key)
            if recorded is None:
                recorded = seen.again[key] = [
                    (n, earlier[key]) for n, earlier in seen.tests if key in earlier
                ]
            recorded.append((nodeid, values[key]))
    seen.tests.append((nodeid, values))
    target.update(values)


def _merged_records(records: list[Record]) -> dict[str, dict[str, dict[str, Any]]]:
    """One test's records per model; within a test a later record of a key wins (arrival order)."""
    merged: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:
        model = merged.get(record["model"])
        if model is None:
            model = merged[record["model"]] = {kind: {} for kind in (*_RECORDED, *_PER_SCOPE)}
        for kind, values in model.items():
            values.update(record.get(kind) or {})
    return merged


def build_models(tests: Iterable[TestData]) -> tuple[dict[str, ModelResult], list[CollisionWarning]]:
    """Merge tests' records into model results; see the module docstring for the rules."""
    per_model: dict[str, ModelResult] = {}
    # key kind -> model (in the order models first got values) -> where its keys came from
    seen: dict[str, dict[str, _Seen]] = {kind: {} for kind in _RECORDED}

    for data in sorted(tests, key=lambda t: t.nodeid):
        merged = _merged_records(data.records)
        names = [*merged, *(m for m in data.models if m not in merged)] or data.default_models
        for name in names:
            result = per_model.get(name)
            if result is None:
                result = per_model[name] = ModelResult(name=name)
            result.tests.append(TestOutcome(data.nodeid, data.outcome or "error"))
            values = merged.get(name)
            if values is None:
                continue
            for kind in _RECORDED:
                target: dict[str, Any] = getattr(result, kind)
                _merge(target, seen[kind].setdefault(name, _Seen()), values[kind], data.nodeid)
            for kind in _PER_SCOPE:
                getattr(result, kind).update(values[kind])

    warnings = [w for kind in _RECORDED for w in _collisions(kind, seen[kind], per_model)]
    for result in per_model.values():
        result.recompute_verdict()
    return dict(sorted(per_model.items())), warnings


def _collisions(
    kind: str, models: dict[str, _Seen], per_model: dict[str, ModelResult]
) -> list[CollisionWarning]:
    """Keys of ``kind`` recorded with differing values, added to their models; the warnings."""
    warnings: list[CollisionWarning] = []
    for name, seen in models.items():
        if not seen.again:
            continue
        for key in getattr(per_model[name], kind):  # first-recorded order: tests ran in node id order
            recorded = seen.again.get(key)
            if recorded is None or all(_same(recorded[0][1], v) for _, v in recorded[1:]):
                continue
            per_model[name].collisions.append(Collision(key, recorded))
            listing = ", ".join(f"{nodeid} -> {value!r}" for nodeid, value in recorded)
            message = (
                f"model {name!r}: {kind[:-1]} {key!r} was recorded with different values by "
                f"different tests; the last node id wins ({listing})"
            )
            warnings.append(CollisionWarning(message, recorded[-1][0]))
    return warnings
