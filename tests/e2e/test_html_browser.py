"""The HTML report in a real browser (headless Chromium), from the reports of real sessions.

Three pytest sessions of a small suite write ``--fairmind-json`` reports and the history; the page
for the last one, with the history's trends, is opened in Chromium: the DOM it builds holds every
model, its verdict and the charts, and a screenshot is saved under the test's tmp folder. Skipped
when no Chromium is installed (Debian: ``apt-get install chromium``; ``FAIRMIND_CHROMIUM`` names
another binary).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import xmlschema

from pytest_fairmind.html import render_html
from pytest_fairmind.junit import junit_xml

XSD = Path(__file__).parent.parent / "data" / "junit.xsd"
_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@dataclass
class Browser:
    """Headless Chromium with a throw-away profile: the DOM after load, and screenshots."""

    binary: str
    profile: Path

    def _run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        command = [self.binary, *_FLAGS, f"--user-data-dir={self.profile}", *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-2000:]}")
        return done

    def dump_dom(self, page: Path) -> str:
        """The serialised DOM once the page has loaded (what the browser made of the file)."""
        return self._run("--dump-dom", page.resolve().as_uri()).stdout

    def screenshot(self, page: Path, out: Path, *, width: int = 1400, height: int = 2400) -> Path:
        self._run(f"--window-size={width},{height}", f"--screenshot={out}", page.resolve().as_uri())
        assert out.is_file(), f"no screenshot written to {out}"
        return out


def find_chromium() -> str | None:
    for name in (os.environ.get("FAIRMIND_CHROMIUM"), *_CANDIDATES):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set FAIRMIND_CHROMIUM)")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    return Browser(binary, profile)


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


def test_oracle(fairmind):
    fairmind.assess(y, y, sensitive_features={"sex": sex}, model="oracle")
"""
MODELS = ("credit.v2<script>alert(1)</script>", "oracle")
GATES = ("--fairmind-gate=demographic_parity_ratio>=0.8", "--fairmind-gate=typo_ratio<=1")


def _clean_env(seed: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("FAIRMIND_", "PYTEST_", "MLFLOW_", "WANDB_"))
    }
    env.pop("GITHUB_STEP_SUMMARY", None)
    env["SEED"] = str(seed)
    return env


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[Any]]:
    """(the last session's report, the history documents) of three real sessions, run as CI runs
    them (``python -m pytest`` in a project folder)."""
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
                "--fairmind-json=report.json",
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
    return doc, [json.loads(p.read_text(encoding="utf-8")) for p in entries]


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


def test_report_page_in_chromium(
    browser: Browser, sessions: tuple[dict[str, Any], list[Any]], tmp_path: Path
) -> None:
    doc, history = sessions
    page = tmp_path / "report.html"
    page.write_text(render_html(doc, history=history), encoding="utf-8")

    dom = Dom()
    dom.feed(browser.dump_dom(page))
    assert [t for t, _ in dom.elements if t == "script"] == []  # the model name stayed text
    models = {a["data-model"]: a["data-verdict"] for a in dom.having("section", "model")}
    assert models == {name: doc["models"][name]["verdict"] for name in MODELS}
    assert models[MODELS[0]] == "fail"
    assert "credit.v2<script>alert(1)</script>" in "".join(dom.text)

    bars = dom.having("svg", "bar-chart")
    scopes = {(a["data-scope"], a["data-column"]) for a in bars}
    assert {scope for scope, _ in scopes} == {"sex", "sex.age"}
    assert ("sex.age", "selection_rate") in scopes
    # two scopes of one model, one of the other: one chart per rate column of each group table
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

    shot = browser.screenshot(page, tmp_path / "report.png", height=4800)
    width, height = png_size(shot)
    assert (width, height) == (1400, 4800)
    assert shot.stat().st_size > 20_000  # a page was drawn, not a blank canvas


def test_page_without_history_in_chromium(
    browser: Browser, sessions: tuple[dict[str, Any], list[Any]], tmp_path: Path
) -> None:
    doc, _ = sessions
    page = tmp_path / "alone.html"
    page.write_text(render_html(doc), encoding="utf-8")
    dom = Dom()
    dom.feed(browser.dump_dom(page))
    assert dom.having("p", "history-note")
    assert dom.having("svg", "trend-chart") == []
    assert dom.having("svg", "bar-chart")


def test_junit_of_a_real_session_is_valid(sessions: tuple[dict[str, Any], list[Any]]) -> None:
    doc, _ = sessions
    text = junit_xml(doc)
    xmlschema.XMLSchema(str(XSD)).validate(text)
    root = ET.fromstring(text)
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
