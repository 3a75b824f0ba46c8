"""Which way is better for a metric: what regression rules need to call a change "worse".

Pure (no pytest import). Known for built-in metrics (``*_difference``, ``*_group_max``, mean
absolute and squared error: lower is better; ``*_ratio``, ``*_group_min`` and ``accuracy``: higher
is better; their ``.ci_low`` / ``.ci_high`` bounds alike) and declared
for others (ini ``fairmind_lower_is_better`` / ``fairmind_higher_is_better``, the marker's
``lower_is_better=`` / ``higher_is_better=``, ``fairmind check --lower-is-better``). A rule is never
applied to a metric of unknown direction. See docs/baseline.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from pytest_fairmind.result import SessionResult

LOWER = "lower"
HIGHER = "higher"
_BUILTIN_DIRECTIONS = (
    ("*_difference", LOWER),
    ("*_ratio", HIGHER),
    ("*_group_min", HIGHER),  # the worst group of a higher-is-better metric (accuracy, AUC, R^2)
    ("*_group_max", LOWER),  # the worst group of an error (zero-one loss, MAE, log loss)
    ("accuracy", HIGHER),
    ("mean_absolute_error", LOWER),
    ("mean_squared_error", LOWER),
)
_CI_SUFFIXES = (".ci_low", ".ci_high")

#: How to declare a direction, as said in the pytest summary and by ``fairmind check``.
PYTEST_HINT = (
    "declare its direction with the ini option fairmind_lower_is_better or fairmind_higher_is_better "
    "(fnmatch globs, [MODEL:]GLOB), or lower_is_better=/higher_is_better= on the fairmind marker"
)
CHECK_HINT = "declare its direction with --lower-is-better GLOB or --higher-is-better GLOB"


@dataclass(frozen=True)
class Declaration:
    """``pattern`` (a key or fnmatch glob, matched like gate metrics) is ``direction``-is-better."""

    pattern: str
    direction: str
    model: str | None = None  # None: every model

    def matches(self, model: str, key: str) -> bool:
        if self.model is not None and self.model != model and not fnmatchcase(model, self.model):
            return False
        if key == self.pattern or fnmatchcase(key, self.pattern):
            return True
        return "/" not in self.pattern and fnmatchcase(key.rpartition("/")[2], self.pattern)


def declarations(globs: Iterable[str], direction: str, *, model: str | None = None) -> list[Declaration]:
    """``[MODEL:]GLOB`` texts -> declarations; ``model`` applies when a text names none."""
    if direction not in (LOWER, HIGHER):
        raise ValueError(f"direction must be {LOWER!r} or {HIGHER!r}, not {direction!r}")
    out: list[Declaration] = []
    for raw in globs:
        text, own_model = str(raw).strip(), model
        if ":" in text:
            prefix, _, text = text.rpartition(":")
            own_model, text = prefix.strip() or model, text.strip()
        if text:
            out.append(Declaration(text, direction, own_model))
    return out


@dataclass(frozen=True)
class Directions:
    """Declared directions in layers (the first layer with a match decides), then the built-ins."""

    layers: tuple[tuple[Declaration, ...], ...] = ()

    @classmethod
    def layered(cls, *layers: Iterable[Declaration]) -> Directions:
        """Directions from ``layers``, most specific first (empty layers dropped)."""
        return cls(tuple(t for t in (tuple(layer) for layer in layers) if t))

    @classmethod
    def of_globs(cls, lower: Iterable[str] = (), higher: Iterable[str] = ()) -> Directions:
        """One layer of ``[MODEL:]GLOB`` declarations (ini options, ``fairmind check`` flags)."""
        return cls.layered([*declarations(lower, LOWER), *declarations(higher, HIGHER)])

    def lookup(self, model: str, key: str) -> tuple[str | None, str]:
        """(``"lower"``/``"higher"``, "") or (None, why it is unknown)."""
        for layer in self.layers:
            found = {d.direction for d in layer if d.matches(model, key)}
            if len(found) == 1:
                return found.pop(), ""
            if found:
                return None, "declared both lower and higher is better"
        name = key.rpartition("/")[2]
        for suffix in _CI_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        for pattern, direction in _BUILTIN_DIRECTIONS:
            if fnmatchcase(name, pattern):
                return direction, ""
        return None, "direction unknown"


def recorded_directions(session: SessionResult) -> list[Declaration]:
    """The directions a saved session's regression rules used (report field ``direction``)."""
    out: list[Declaration] = []
    for name, model in session.models.items():
        for gate in model.gates:
            if gate.direction in (LOWER, HIGHER):
                decl = Declaration(_escape(gate.key), gate.direction, _escape(name))
                if decl not in out:
                    out.append(decl)
    return out


def _escape(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def declaration_to_plain(declaration: Declaration) -> list[str | None]:
    """``[direction, model, pattern]``: how a marker's declaration crosses xdist on a test report."""
    return [declaration.direction, declaration.model, declaration.pattern]


def declaration_from_plain(data: Sequence[str | None]) -> Declaration:
    """The :class:`Declaration` that :func:`declaration_to_plain` wrote."""
    direction, model, pattern = data
    return Declaration(str(pattern), str(direction), None if model is None else str(model))
