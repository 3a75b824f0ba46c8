"""The HTML report in a real browser (headless Chromium), from the reports of real sessions.

Three pytest sessions of a small suite write ``--fairmind-json``, ``--fairmind-junit`` and
``--fairmind-html`` and the history; the pages (the session's own, and ``fairmind report last``'s
with the history's trends) are opened in Chromium (the ``browser`` fixture of the conftest): the
DOM it builds holds every model, its verdict, the charts and the scan, and a screenshot is saved
under the test's tmp folder. Skipped when no Chromium is installed.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from pytest_fairmind.html import render_html
from pytest_fairmind.html.command import report_command
from pytest_fairmind.junit import junit_xml

XSD = Path(__file__).parent.parent / "data" / "junit.xsd"


SUITE = """
import numpy as np
import pytest

rng = np.random.default_rng(int(__import__("os").environ.get("SEED", "0")))
N = 1500
sex = rng.choice(["female", "male"], N)
age = rng.choice(["<25", "25-60", ">60"], N)
y = rng.integers(0, 2, N)
biased = np.where(sex == "male", rng.random(N) < 0.6, rng.random(N) < 0.35).astype(int)


@pytest.mark.fairmind(model="credit.v2<script>alert(1)</script>")
def test_biased_by_sex(fairmind):
    fairmind.assess(y, biased, sensitive_features={"sex": sex}, n_boot=30)


@pytest.mark.fairmind(model="credit.v2<script>alert(1)</script>")
def test_biased_crossed(fairmind):
    fairmind.assess(y, biased, sensitive_features={"sex": sex, "age": age})


@pytest.mark.fairmind(model="credit.v2<script>alert(1)</script>")
def test_scan(fairmind):
    fairmind.scan(y, biased, features={"sex": sex, "age": age}, top=8)


def test_oracle(fairmind):
    fairmind.assess(y, y, sensitive_features={"sex": sex}, model="oracle")
"""
MODELS = ("credit.v2<script>alert(1)</script>", "oracle")
GATES = ("--fairmind-gate=demographic_parity_ratio>=0.8", "--fairmind-gate=typo_ratio<=1")
OUTPUTS = ("--fairmind-json=report.json", "--fairmind-junit=junit.xml", "--fairmind-html=page.html")
Sessions = tuple[dict[str, Any], list[Any], Path]


def _clean_env(seed: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FAIRMIND_", "PYTEST_", "MLFLOW_", "WANDB_"))
    }
    env.pop("GITHUB_STEP_SUMMARY", None)
    env["SEED"] = str(seed)
    return env


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Sessions:
    """(the last session's report, the history documents, the project folder) of three real
    sessions, run as CI runs them (``python -m pytest`` in a project folder)."""
    project = tmp_path_factory.mktemp("project")
    (project / "test_credit.py").write_text(SUITE, encoding="utf-8")
    (project / "pytest.ini").write_text("[pytest]\nfairmind_history = .fairmind\n", encoding="utf-8")
    for seed in range(3):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:randomly",
                *OUTPUTS,
                *GATES,
            ],
            cwd=project,
            env=_clean_env(seed),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 1, done.stdout + done.stderr  # the biased model fails its gate
    doc = json.loads((project / "report.json").read_text(encoding="utf-8"))
    entries = sorted((project / ".fairmind" / "sessions").glob("*.json"))
    assert len(entries) == 3
    return doc, [json.loads(p.read_text(encoding="utf-8")) for p in entries], project


class Dom(HTMLParser):
    """The elements of a serialised DOM: (tag, attributes) and the text of each section."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, css_class: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and css_class in a.get("class", "").split()]


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def dom_of(browser: Any, page: Path) -> Dom:
    dom = Dom()
    dom.feed(browser.dump_dom(page))
    assert [t for t, _ in dom.elements if t == "script"] == []  # the model name stayed text
    return dom


def check_models(dom: Dom, doc: dict[str, Any]) -> None:
    models = {a["data-model"]: a["data-verdict"] for a in dom.having("section", "model")}
    assert models == {name: doc["models"][name]["verdict"] for name in MODELS}
    assert models[MODELS[0]] == "fail"
    assert "credit.v2<script>alert(1)</script>" in "".join(dom.text)


def test_report_page_in_chromium(browser: Any, sessions: Sessions, tmp_path: Path) -> None:
    doc, _, project = sessions
    page = tmp_path / "report.html"
    assert report_command("last", str(page), ".fairmind", str(project)) == 0
    dom = dom_of(browser, page)
    check_models(dom, doc)

    bars = dom.having("svg", "bar-chart")
    scopes = {(a["data-scope"], a["data-column"]) for a in bars}
    assert {scope for scope, _ in scopes} == {"sex", "sex.age"}
    assert ("sex.age", "selection_rate") in scopes
    # two scopes of one model, one of the other: one chart per numeric column of each group table
    rate_columns = {
        key
        for name in MODELS
        for rows in doc["models"][name]["groups"].values()
        for row in rows
        for key, value in row.items()
        if key not in ("group", "count", "ci", "impact_ratio")  # the impact ratio has its own table
        and (value is None or isinstance(value, float))
    }
    assert {"selection_rate", "true_positive_rate", "false_positive_rate", "accuracy"} <= rate_columns
    assert len(bars) == 3 * len(rate_columns)
    trends = dom.having("svg", "trend-chart")
    gated = {(name, g["key"]) for name in MODELS for g in doc["models"][name]["gates"]}
    assert {(a["data-model"], a["data-key"]) for a in trends} == gated
    assert len(dom.having("circle", "current")) == len(gated)
    assert dom.having("table", "impact")

    scans = doc["models"][MODELS[0]]["scans"]
    assert {a["data-scope"] for a in dom.having("div", "scan")} == set(scans) == {"scan"}
    rows = dom.having("tr", "scan-row")
    assert len(rows) == len(scans["scan"]["rows"]) > 0
    assert len(dom.having("tr", "significant")) == sum(r["significant"] for r in scans["scan"]["rows"]) > 0

    shot = browser.screenshot(page, tmp_path / "report.png", height=4800)
    width, height = png_size(shot)
    assert (width, height) == (1400, 4800)
    assert shot.stat().st_size > 20_000  # a page was drawn, not a blank canvas


def test_the_sessions_own_page_in_chromium(browser: Any, sessions: Sessions) -> None:
    """``--fairmind-html`` of the third session: its verdicts, and trends over the two before it."""
    doc, _, project = sessions
    dom = dom_of(browser, project / "page.html")
    check_models(dom, doc)
    trends = dom.having("svg", "trend-chart")
    assert trends and len(dom.having("circle", "current")) == len(trends)
    assert len(dom.having("circle", "point")) == 3 * len(trends)  # two earlier sessions and this one


def test_page_without_history_in_chromium(browser: Any, sessions: Sessions, tmp_path: Path) -> None:
    doc, _, _ = sessions
    page = tmp_path / "alone.html"
    page.write_text(render_html(doc), encoding="utf-8")
    dom = dom_of(browser, page)
    assert dom.having("p", "history-note")
    assert dom.having("svg", "trend-chart") == []
    assert dom.having("svg", "bar-chart")


def test_junit_of_a_real_session_is_valid(sessions: Sessions) -> None:
    doc, _, project = sessions
    schema = xmlschema.XMLSchema(str(XSD))
    written = (project / "junit.xml").read_text(encoding="utf-8")
    schema.validate(written)
    text = junit_xml(doc)
    schema.validate(text)
    for root in (ET.fromstring(text), ET.fromstring(written)):
        failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
        assert failed == [
            f"demographic_parity_ratio>=0.8 [{g['key']}]"
            for g in doc["models"][MODELS[0]]["gates"]
            if not g["passed"]
        ]
        assert [c.get("name") for c in root.iter("testcase") if c.get("classname") == "fairmind"] == [
            "typo_ratio<=1"
        ]


def test_the_schema_accepts_what_pytest_junitxml_writes(pytester: pytest.Pytester) -> None:
    """The shipped XSD is the format CI tools read: pytest's own --junitxml output validates."""
    pytester.makepyfile(
        """
        import pytest

        def test_pass(record_property):
            record_property("k", "v")
            print("out")

        def test_fail():
            assert 1 == 2

        @pytest.mark.skip(reason="no")
        def test_skip():
            pass

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        @pytest.fixture
        def broken():
            raise RuntimeError("setup")

        def test_error(broken):
            pass
        """
    )
    for family in ("xunit1", "xunit2"):
        out = pytester.path / f"junit-{family}.xml"
        pytester.runpytest("-p", "no:randomly", f"--junitxml={out}", "-o", f"junit_family={family}")
        xmlschema.XMLSchema(str(XSD)).validate(str(out))
