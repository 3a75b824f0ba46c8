"""The ``fairmind`` marker parser: one parse per test into model, gates and directions."""

from __future__ import annotations

import pytest

from pytest_fairmind.gating.directions import (
    HIGHER,
    LOWER,
    Declaration,
    declaration_from_plain,
    declaration_to_plain,
)
from pytest_fairmind.gating.grammar import Bound, gate_from_plain, gate_to_plain, parse_gate
from pytest_fairmind.markers import Marked, parse_marks


def mark(*args: object, **kwargs: object) -> pytest.Mark:
    return pytest.mark.fairmind(*args, **kwargs).mark


def test_no_marks() -> None:
    assert parse_marks([]) == Marked()
    assert parse_marks([], default_model="ini") == Marked()  # the ini model is the plugin's fallback


def test_model_from_the_closest_mark_that_names_one() -> None:
    marks = [mark(gates=["accuracy >= 0.5"]), mark(model="class-model"), mark("module-model")]
    marked = parse_marks(marks)
    assert marked.model == "class-model"
    assert [g.expr for g in marked.gates] == ["class-model:accuracy >= 0.5"]
    assert parse_marks([mark("positional")]).model == "positional"


def test_gates_are_applied_to_their_marks_model() -> None:
    marks = [mark(model="test", gates="accuracy >= 0.5"), mark(model="module", gates=["other:ratio >= 0.8"])]
    marked = parse_marks(marks)
    assert [(g.expr, g.model, g.metric) for g in marked.gates] == [
        ("test:accuracy >= 0.5", "test", "accuracy"),
        ("other:ratio >= 0.8", "other", "ratio"),  # a gate naming its model keeps it
    ]
    assert marked.gates[0].bounds == (Bound(">=", 0.5),)
    assert marked.error is None


def test_gates_fall_back_to_the_default_model() -> None:
    marked = parse_marks([mark(gates=["accuracy >= 0.5"])], default_model="ini-model")
    assert marked.model is None
    assert [g.expr for g in marked.gates] == ["ini-model:accuracy >= 0.5"]


def test_repeated_gates_are_kept_once() -> None:
    marks = [mark(model="m", gates=["accuracy >= 0.5"]), mark(model="m", gates=["accuracy >= 0.5", "x < 1"])]
    assert [g.expr for g in parse_marks(marks).gates] == ["m:accuracy >= 0.5", "m:x < 1"]


def test_directions_belong_to_the_marked_model() -> None:
    marks = [mark(model="m", lower_is_better=["calib*"], higher_is_better=" auc ")]
    marked = parse_marks(marks)
    assert marked.directions == (Declaration("calib*", LOWER, "m"), Declaration("auc", HIGHER, "m"))


@pytest.mark.parametrize(
    ("marks", "default", "message"),
    [
        ([mark(gates=["accuracy >= 0.5"])], None, "needs a model: add model='...' to the marker"),
        ([mark(model="m", gates=["accuracy => 0.5"])], None, "operators are"),
        ([mark(lower_is_better=["x"])], "ini-model", "lower_is_better on a fairmind marker needs a model"),
        ([mark(model="m", higher_is_better=[3])], None, "higher_is_better: expected metric globs (str)"),
        ([mark(model="m", lower_is_better=["  "])], None, "lower_is_better: expected metric globs (str)"),
    ],
)
def test_bad_marks_are_an_error_not_an_exception(
    marks: list[pytest.Mark], default: str | None, message: str
) -> None:
    marked = parse_marks(marks, default_model=default)
    assert marked.error is not None and message in marked.error
    assert marked.gates == () and marked.directions == ()


def test_the_model_is_known_even_when_a_gate_is_bad() -> None:
    marked = parse_marks([mark(model="m", gates=["nonsense"])])
    assert marked.model == "m" and marked.error is not None


@pytest.mark.parametrize(
    "expr", ["m:accuracy >= 0.5", "m:0.8 <= ratio <= 1.25", "eod ~ 5%", "x:eod ~ 0.02", "a < -inf"]
)
def test_gates_cross_as_plain_data(expr: str) -> None:
    gate = parse_gate(expr)
    assert gate_from_plain(gate_to_plain(gate)) == gate


def test_declarations_cross_as_plain_data() -> None:
    for declaration in (Declaration("calib*", LOWER, "m"), Declaration("auc", HIGHER)):
        assert declaration_from_plain(declaration_to_plain(declaration)) == declaration
