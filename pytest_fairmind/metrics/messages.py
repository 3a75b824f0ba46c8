"""The texts of ``FairnessResult.warnings``: every group or rate left out of an aggregate, and why.

Warnings follow the metrics table: one kind of line per compared group column, one per ratio whose
columns are 0 in every group, one per aggregate that some bootstrap resamples left undefined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pytest_fairmind.metrics.inputs import GroupLabel
from pytest_fairmind.metrics.rates import Evaluation
from pytest_fairmind.metrics.table import Aggregate, GroupColumn, Table

# Per-group warnings listed one by one before the rest are summarised in one line.
GROUP_WARNINGS = 20

ONLY_ONE_GROUP = "only one group: differences are 0 and ratios 1 by definition (as fairlearn reports)"


def group_text(group: Mapping[str, GroupLabel]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in group.items())


def _listed(lines: list[str], summary: str, total: int) -> list[str]:
    """The first GROUP_WARNINGS lines, then one line for the rest."""
    if total > GROUP_WARNINGS:
        return [*lines[:GROUP_WARNINGS], f"... and {total - GROUP_WARNINGS} more {summary}"]
    return lines


def small_groups(groups: Sequence[Mapping[str, GroupLabel]], rows: NDArray[Any], minimum: int) -> list[str]:
    small = np.flatnonzero(rows < minimum).tolist()
    lines = [
        f"group {group_text(groups[i])} has {int(rows[i])} rows, fewer than "
        f"min_group_size={minimum}: reported but left out of the aggregates"
        for i in small[:GROUP_WARNINGS]
    ]
    summary = f"groups smaller than min_group_size={minimum}, also left out of the aggregates"
    return _listed(lines, summary, len(small))


_KINDS = ("_difference", "_ratio", "_group_min", "_group_max")


def _families(names: Sequence[str]) -> str:
    """``equal_opportunity_* and equalized_odds_*``: aggregate names by their base, sorted."""
    bases = set()
    for name in names:
        base = next((name[: -len(k)] for k in _KINDS if name.endswith(k)), name)
        bases.add(base + "_*")
    return " and ".join(sorted(bases))


@dataclass(frozen=True)
class _Family:
    """Compared columns undefined together: the ``cells`` columns sharing a denominator, the columns
    not compared with that denominator, and the means built on any of them."""

    first: GroupColumn
    compared: list[GroupColumn]
    alike: list[str]

    @property
    def named(self) -> str:
        others = [c.name for c in self.compared[1:]] + self.alike
        return self.first.name + (f" (and {', '.join(others)})" if others else "")

    def left_out(self, table: Table) -> str:
        return _families([name for c in self.compared for name in table.using(c.name)])


def _families_of(table: Table) -> list[_Family]:
    out: list[_Family] = []
    seen: set[frozenset[int]] = set()
    between = table.between_columns
    for column in between:
        if column.form != "cells" or frozenset(column.denominator) in seen:
            continue
        key = frozenset(column.denominator)
        seen.add(key)
        compared = [c for c in between if c.form == "cells" and frozenset(c.denominator) == key]
        names = {c.name for c in compared}
        compared += [c for c in between if c.form == "mean" and names & set(c.of)]
        alike = [c.name for c in table.columns if c.form == "cells" and frozenset(c.denominator) == key]
        out.append(_Family(column, compared, [n for n in alike if n not in names]))
    return out


def _undefined(
    table: Table,
    family: _Family,
    groups: Sequence[Mapping[str, GroupLabel]],
    undefined: list[int],
    no_rows: NDArray[np.bool_],
) -> list[str]:
    left_out = family.left_out(table)
    text = family.first.denominator_text
    why = (f"its {text} have zero total sample_weight", f"no {text}")
    lines = [
        f"group {group_text(groups[i])}: {family.named} is undefined (0/0, {why[bool(no_rows[i])]}); "
        f"left out of {left_out}"
        for i in undefined[:GROUP_WARNINGS]
    ]
    return _listed(
        lines, f"groups with an undefined {family.first.name}, also left out of {left_out}", len(undefined)
    )


def _humane(name: str) -> str:
    return name.replace("_", " ")


def _all_at_parity(columns: Sequence[str]) -> str:
    """``both true and false positive rates``: the columns with their common trailing words once."""
    words = [name.split("_") for name in columns]
    k = 0
    while k < min(map(len, words)) - 1 and len({tuple(w[len(w) - k - 1 :]) for w in words}) == 1:
        k += 1
    heads = " and ".join(" ".join(w[: len(w) - k]) for w in words)
    tail = " ".join(words[0][len(words[0]) - k :])
    return f"both {heads} {tail}s" if tail else f"both {heads}"


def _parity(aggregate: Aggregate, zero: list[str]) -> str | None:
    if not zero:
        return None
    if len(aggregate.columns) == 1:
        return f"{aggregate.name} is NaN: {zero[0]} is 0 in every group (ratio 0/0)"
    if len(zero) == len(aggregate.columns):
        return f"{aggregate.name} is NaN: {_all_at_parity(zero)} are 0 in every group"
    others = " and the ".join(_humane(c) for c in aggregate.columns if c not in zero)
    zeros = " and the ".join(_humane(c) for c in zero)
    return (
        f"{aggregate.name} uses the {others} alone: the {zeros} is 0 in every group (exact parity, ratio 0/0)"
    )


def _too_few(names: Sequence[str], column: str, min_group_size: int | None) -> str:
    after = " after min_group_size" if min_group_size is not None else ""
    return f"{', '.join(names)} are NaN: fewer than 2 groups have a defined {column}{after}"


def point_warnings(
    table: Table,
    evaluation: Evaluation,
    groups: Sequence[Mapping[str, GroupLabel]],
    row_cells: NDArray[np.int64],
    rows: NDArray[np.int64],
    min_group_size: int | None,
) -> list[str]:
    """Every group or rate left out of the aggregates of a point estimate, in the order they apply."""
    warns: list[str] = []
    eligible = np.ones(len(groups), dtype=bool)
    if min_group_size is not None:
        eligible = rows >= min_group_size
        warns += small_groups(groups, rows, min_group_size)
    if len(groups) == 1 and bool(eligible[0]):
        warns.append(ONLY_ONE_GROUP)
    reported: set[str] = set()
    for family in _families_of(table):
        column = family.first
        undefined = np.flatnonzero(np.isnan(evaluation.rates[column.name]) & eligible).tolist()
        if undefined:
            no_rows = row_cells[:, list(column.denominator)].sum(axis=1) == 0
            warns += _undefined(table, family, groups, undefined, no_rows)
        if not bool(evaluation.spreads[column.name].enough):
            names = [n for c in family.compared for n in table.using(c.name)]
            warns.append(_too_few(names, family.named, min_group_size))
            reported.update(c.name for c in family.compared)
    for column in table.between_columns:  # a mean whose parts were each defined often enough
        if column.name not in reported and not bool(evaluation.spreads[column.name].enough):
            warns.append(_too_few(table.using(column.name), column.name, min_group_size))
    ratios = [a for a in table.aggregates if a.kind == "ratio"]
    for aggregate in sorted(ratios, key=lambda a: len(a.columns) > 1):  # worst cases last
        zero = [c for c in aggregate.columns if bool(evaluation.spreads[c].at_parity)]
        line = _parity(aggregate, zero)
        if line is not None:
            warns.append(line)
    for column in table.columns:
        if column.form == "over_max" and column.name in evaluation.rates:
            spread = evaluation.spreads[column.of[0]]
            if bool(np.isnan(evaluation.rates[column.name]).all()) and bool(spread.n_valid > 0):
                warns.append(
                    f"{column.name} is NaN: {column.of[0]} is 0 in every group that enters aggregates"
                )
    return warns


def resamples_undefined(name: str, undefined: int, n_boot: int) -> str:
    return (
        f"bootstrap: {undefined} of {n_boot} resamples left {name} undefined; "
        f"its interval uses the other {n_boot - undefined}"
    )


def too_few_groups(
    aggregates: Sequence[Aggregate], rates: Mapping[str, NDArray[Any]], values: Mapping[str, Any]
) -> list[str]:
    """One line per between-groups aggregate that is NaN although some group has a defined value."""
    lines: list[str] = []
    for a in aggregates:
        if a.kind in ("overall", "count") or not np.isnan(values[a.name]):
            continue
        column = a.columns[0]
        if not bool(np.isnan(rates[column]).all()):
            lines.append(f"{a.name} is NaN: fewer than 2 groups have a defined {column}")
    return lines
