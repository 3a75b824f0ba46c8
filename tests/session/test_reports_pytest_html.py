"""pytest-html: the verdict table lands in its report's summary (its documented hook), serial and
under xdist, and says what the session's own report says."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from helpers import REPORT, TWO_MODELS, load_report

from pytest_fairmind.numtext import beside

pytest.importorskip("pytest_html")

MODEL = 'credit.v2<img src=x onerror="alert(1)">'
SUITE = (
    TWO_MODELS
    + f"""

@pytest.mark.fairmind(model={MODEL!r})
def test_escaped(fairmind):
    fairmind.record({{"demographic_parity_ratio": 0.5}}, scope="sex")
"""
)
GATES = ("--fairmind-gate=demographic_parity_ratio>=0.8", "--fairmind-gate=typo_ratio>=0.8")


class Summary(HTMLParser):
    """The rows of the fairmind verdict table (``data-model`` -> ``data-verdict``), the text of
    its gate lines, and the tags inside the fairmind summary."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, str] = {}
        self.tags: list[str] = []
        self.gate_lines: list[str] = []
        self._in_gates = False
        self._in_summary = False
        self._line: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "div" and found.get("class") == "fairmind-summary":
            self._in_summary = True  # it holds no other div
        elif self._in_summary:
            self.tags.append(tag)
        if tag == "tr" and "data-model" in found:
            self.rows[found["data-model"]] = found["data-verdict"]
        if tag == "ul" and found.get("class") == "fairmind-gates":
            self._in_gates = True
        if tag == "li" and self._in_gates:
            self._line = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "li" and self._line is not None:
            self.gate_lines.append("".join(self._line))
            self._line = None
        if tag == "ul":
            self._in_gates = False
        if tag == "div":
            self._in_summary = False

    def handle_data(self, data: str) -> None:
        if self._line is not None:
            self._line.append(data)


def summary_of(page: Path) -> Summary:
    parser = Summary()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(test_models=SUITE)
    result = pytester.runpytest(
        "-p", "no:randomly", "--html=report.html", f"--fairmind-json={REPORT}", *GATES, *args
    )
    return result, load_report(pytester.path / REPORT)


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_pytest_html_summary_holds_the_verdict_table(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    result, doc = run(pytester, *xdist)
    assert result.ret == 1  # the escaped model fails its gate
    summary = summary_of(pytester.path / "report.html")
    assert summary.rows == {name: model["verdict"] for name, model in doc["models"].items()}
    assert summary.rows[MODEL] == "fail" and summary.rows["credit"] == "pass"
    failed = [
        f"gate failed: {name}: {g['key']} = {beside(g['value'], g['bound'])}, bound {g['bound']} "
        f"[{g['expr']}]"
        for name, model in doc["models"].items()
        for g in model["gates"]
        if g["outcome"] == "fail"
    ]
    assert failed and [line for line in summary.gate_lines if line.startswith("gate failed")] == failed
    assert [line for line in summary.gate_lines if "not evaluated" in line] == [
        f"gate not evaluated (it matched no metric): {e}" for e in doc["gates_not_evaluated"]
    ]
    assert {"table", "tr", "td", "li"} <= set(summary.tags)
    assert "img" not in summary.tags  # the model name stayed text


def test_no_fairmind_table_when_nothing_was_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert True\n")
    result = pytester.runpytest("-p", "no:randomly", "--html=report.html")
    assert result.ret == 0
    page = (pytester.path / "report.html").read_text(encoding="utf-8")
    assert "fairmind-summary" not in page
    assert summary_of(pytester.path / "report.html").rows == {}


def test_inconclusive_gates_are_listed_with_their_interval() -> None:
    from pytest_fairmind.pytest_html_summary import verdict_table_html
    from pytest_fairmind.result import GateResult, ModelResult, SessionResult

    gate = GateResult(
        expr="dpr>=0.8", key="sex/dpr", value=0.82637048, bound=">= 0.8", outcome="inconclusive",
        evidence="interval", ci_low=0.71386861, ci_high=float("inf"), p_value=0.2, alpha=0.05,
    )  # fmt: skip
    model = ModelResult(
        name="m<1>", metrics={"sex/dpr": gate.value or 0.0}, gates=[gate], verdict="inconclusive"
    )
    result = SessionResult(id="s", project="p&q", started="2026-03-02T10:00:00+00:00", models={"m<1>": model})
    parser = Summary()
    parser.feed(verdict_table_html(result))
    assert parser.rows == {"m<1>": "inconclusive"}
    assert parser.gate_lines == [
        "gate inconclusive: m<1>: sex/dpr = 0.8264, interval [0.7139, inf], bound >= 0.8 [dpr>=0.8]"
    ]
