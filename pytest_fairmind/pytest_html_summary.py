"""pytest-html: the verdict table in its report's summary, through its documented hook.

Registered by the plugin only when pytest-html is installed (``config.pluginmanager.hasplugin
("html")``). pytest-html builds its page in its own ``pytest_sessionfinish`` (``trylast``), after
ours (``tryfirst``) has gated the session, so the result is there when this hook is called.
pytest-html inserts what the hook adds as markup: everything here is escaped.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import pytest

from pytest_fairmind.numtext import beside, short
from pytest_fairmind.result import FAIL, INCONCLUSIVE, SessionResult
from pytest_fairmind.state import STATE_KEY
from pytest_fairmind.summary import OK, model_rows

__all__ = ["pytest_html_results_summary", "verdict_table_html"]

_COLOURS = {FAIL: "#cf222e", "warn": "#9a6700", OK: "#1a7f37"}
_VERDICT_COLOURS = {"fail": "#cf222e", "interrupted": "#6639ba", "inconclusive": "#9a6700", "pass": "#1a7f37"}


def _cell(text: str, colour: str | None = None, tag: str = "td") -> str:
    style = "padding: 2px 14px 2px 0; text-align: left"
    if colour:
        style += f"; color: {colour}; font-weight: 600"
    return f'<{tag} style="{style}">{escape(text)}</{tag}>'


def verdict_table_html(result: SessionResult) -> str:
    """The verdict table (the terminal summary's rows) as an HTML fragment, then one line per
    failed or inconclusive gate (numbers written as the terminal writes them) and per gate that
    was not evaluated."""
    head = "".join(_cell(c, tag="th") for c in ("model", "verdict", "tests", "gates", "key metrics"))
    rows = []
    for row in model_rows(result):
        verdict = result.models[row.name].verdict
        metrics = ", ".join(f"{k} = {v}" for k, v in row.metrics) or "-"
        rows.append(
            f'<tr data-model="{escape(row.name)}" data-verdict="{escape(verdict)}">'
            + _cell(row.name)
            + _cell(verdict, _VERDICT_COLOURS.get(verdict))
            + _cell(row.tests)
            + _cell(row.gates.text, _COLOURS.get(row.gates.style))
            + _cell(metrics)
            + "</tr>"
        )
    lines = []
    for name, model in result.models.items():
        for gate in model.gates:
            if gate.outcome not in (FAIL, INCONCLUSIVE):
                continue
            interval = ""
            if gate.ci_low is not None or gate.ci_high is not None:  # an open end is infinite
                low = -math.inf if gate.ci_low is None else gate.ci_low
                high = math.inf if gate.ci_high is None else gate.ci_high
                interval = f", interval [{short(low)}, {short(high)}]"
            word = "gate failed" if gate.outcome == FAIL else "gate inconclusive"
            text = (
                f"{word}: {name}: {gate.key} = {beside(gate.value, gate.bound)}{interval}, bound {gate.bound}"
            )
            lines.append(f"<li>{escape(text)} [<code>{escape(gate.expr)}</code>]</li>")
    lines.extend(
        f"<li>gate not evaluated (it matched no metric): <code>{escape(e)}</code></li>"
        for e in result.gates_not_evaluated
    )
    title = f"<h3>fairmind: {escape(result.project)}</h3>"
    body = "".join(rows)
    table = f'<table class="fairmind-verdicts"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    notes = f'<ul class="fairmind-gates">{"".join(lines)}</ul>' if lines else ""
    return f'<div class="fairmind-summary">{title}{table}{notes}</div>'


def pytest_html_results_summary(
    prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
) -> None:
    """pytest-html's hook: the session's verdict table goes first in the summary."""
    state: Any = session.config.stash.get(STATE_KEY, None)
    result = getattr(state, "result", None)
    if isinstance(result, SessionResult):
        prefix.append(verdict_table_html(result))
