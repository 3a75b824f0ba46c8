"""The ``fairmind`` marker, parsed once per test into its model, gates and directions.

Pure (no pytest import): takes the marks closest first, as ``item.iter_markers("fairmind")``
gives them (test, then class, then module). ``@pytest.mark.fairmind(model=None, gates=None,
lower_is_better=None, higher_is_better=None)``; see docs/gates.md and docs/baseline.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_fairmind.gating.directions import HIGHER, LOWER, Declaration
from pytest_fairmind.gating.grammar import Gate, GateSyntaxError, for_model, parse_gate
from pytest_fairmind.records import RecordError, validate_model_name

NAME = "fairmind"
HELP = (
    "fairmind(model=None, gates=None, lower_is_better=None, higher_is_better=None): name the model "
    "this test's fairness results belong to, gates (list of expressions) that apply to that model, "
    "and the direction of its custom metrics (globs) for regression rules"
)


class Mark(Protocol):
    """What is read of a mark (``pytest.Mark`` has these)."""

    @property
    def args(self) -> tuple[Any, ...]: ...

    @property
    def kwargs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Marked:
    """A test's ``fairmind`` marks, parsed."""

    model: str | None = None  # the closest mark that names a model; None: no mark names one
    gates: tuple[Gate, ...] = ()  # each applied to its mark's model (``m:expr``)
    directions: tuple[Declaration, ...] = ()  # for the marked model
    error: str | None = None  # a bad model, gate or direction: the test errors at setup with this


def _own_model(mark: Mark) -> str | None:
    """The model a mark names (validated as ``record(model=...)`` validates it), or None."""
    model = mark.kwargs.get("model", mark.args[0] if mark.args else None)
    if model is None:
        return None
    if not isinstance(model, str):  # a number or an enum member: its text, as before
        model = str(model)
    return validate_model_name(model)


def _texts(value: Any) -> list[Any]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def parse_marks(marks: Iterable[Mark], *, default_model: str | None = None) -> Marked:
    """``marks`` (closest first) as one :class:`Marked`; a bad gate or direction is its ``error``.

    A mark that only carries ``gates=`` does not hide the model of the class or module; a mark's
    gates are for the model it names, else the test's (the marks', then ``default_model``, the
    ini ``fairmind_model``). Directions need a model named by a mark.
    """
    marks = list(marks)
    try:
        model = next((m for m in map(_own_model, marks) if m is not None), None)
    except RecordError as exc:  # a bad model name: the test errors, and belongs to no model
        return Marked(error=str(exc))
    try:
        gates = _gates(marks, model or default_model)
        directions = _directions(marks, model)
    except (GateSyntaxError, RecordError) as exc:
        return Marked(model=model, error=str(exc))
    return Marked(model=model, gates=gates, directions=directions)


def _gates(marks: Sequence[Mark], test_model: str | None) -> tuple[Gate, ...]:
    gates: list[Gate] = []
    for mark in marks:
        model = _own_model(mark) or test_model
        for expr in _texts(mark.kwargs.get("gates")):
            gate = parse_gate(str(expr))
            if gate.model is None:
                if model is None:
                    raise GateSyntaxError(
                        f"gate {expr!r} on a fairmind marker needs a model: add model='...' to the marker"
                    )
                gate = for_model(gate, model)
            if gate not in gates:
                gates.append(gate)
    return tuple(gates)


def _directions(marks: Sequence[Mark], model: str | None) -> tuple[Declaration, ...]:
    declared: list[Declaration] = []
    for mark in marks:
        for direction in (LOWER, HIGHER):
            for glob in _texts(mark.kwargs.get(f"{direction}_is_better")):
                if not isinstance(glob, str) or not glob.strip():
                    raise GateSyntaxError(f"{direction}_is_better: expected metric globs (str), got {glob!r}")
                if model is None:
                    raise GateSyntaxError(
                        f"{direction}_is_better on a fairmind marker needs a model: "
                        "add model='...' to the marker"
                    )
                declaration = Declaration(glob.strip(), direction, model)
                if declaration not in declared:
                    declared.append(declaration)
    return tuple(declared)
