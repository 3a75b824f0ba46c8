"""``--fairmind-junit`` and ``--fairmind-html`` from real sessions: written at the session's end,
saying what the JSON report says, following the exit policy, serial and under xdist."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from helpers import REPORT, TWO_MODELS, load_report

XSD = Path(__file__).parent.parent / "data" / "junit.xsd"
SUITE = (
    TWO_MODELS
    + """

@pytest.mark.fairmind(model="credit.v2")
def test_biased(fairmind):
    fairmind.record({"demographic_parity_ratio": 0.5}, scope="sex")
"""
)
GATES = ("--fairmind-gate=demographic_parity_ratio>=0.8", "--fairmind-gate=typo_ratio>=0.8")


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
    pytester.makepyfile(test_models=SUITE)
    result = pytester.runpytest("-p", "no:randomly", f"--fairmind-json={REPORT}", *args)
    return result, load_report(pytester.path / REPORT)


def cases_in(path: Path) -> dict[tuple[str, str], ET.Element]:
    root = ET.fromstring(path.read_bytes())
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def outcome_of(case: ET.Element) -> str:
    """``failure``, ``skipped`` or ``passed``, with a skip's message."""
    for tag in ("failure", "skipped"):
        element = case.find(tag)
        if element is not None:
            return tag if tag == "failure" else f"skipped: {element.get('message')}"
    return "passed"


def expected_cases(doc: dict[str, Any], *, failed_word: str = "failure") -> dict[tuple[str, str], str]:
    """The testcases the report's gate results call for (bound gates, no inconclusive ones here)."""
    cases = {
        ("fairmind." + name.replace(".", "_"), f"{g['expr']} [{g['key']}]"): failed_word
        if g["outcome"] == "fail"
        else "passed"
        for name, model in doc["models"].items()
        for g in model["gates"]
    }
    for expr in doc["gates_not_evaluated"]:
        cases[("fairmind", expr)] = "skipped: not evaluated: the gate matched no metric"
    return cases


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_junit_and_html_say_what_the_report_says(
    pytester: pytest.Pytester, schema: Any, xdist: tuple[str, ...]
) -> None:
    result, doc = run(
        pytester, "--fairmind-junit=out/junit.xml", "--fairmind-html=out/page.html", *GATES, *xdist
    )
    assert result.ret == 1
    junit = pytester.path / "out" / "junit.xml"
    schema.validate(str(junit))
    found = {key: outcome_of(case) for key, case in cases_in(junit).items()}
    assert found == expected_cases(doc)
    assert ("fairmind.credit_v2", "demographic_parity_ratio>=0.8 [sex/demographic_parity_ratio]") in found
    page = (pytester.path / "out" / "page.html").read_text(encoding="utf-8")
    sections = dict(
        re.findall(r'<section class="model" id="m\d+" data-model="([^"]*)" data-verdict="(\w+)"', page)
    )
    assert sections == {name: model["verdict"] for name, model in doc["models"].items()}
    assert "<script" not in page and "http" not in re.sub(r'xmlns="http://www.w3.org/2000/svg"', "", page)


def test_gate_action_warn_skips_the_failed_gate_in_junit(pytester: pytest.Pytester, schema: Any) -> None:
    result, doc = run(pytester, "--fairmind-junit=junit.xml", "--fairmind-gate-action=warn", *GATES)
    assert result.ret == 0
    junit = pytester.path / "junit.xml"
    schema.validate(str(junit))
    found = {key: outcome_of(case) for key, case in cases_in(junit).items()}
    assert found == expected_cases(doc, failed_word="skipped: failed (warn only)")
    assert ET.fromstring(junit.read_bytes()).get("failures") == "0"


def test_strict_reasons_are_testcases_of_their_own(pytester: pytest.Pytester, schema: Any) -> None:
    result, _ = run(
        pytester, "--fairmind-junit=junit.xml", "--fairmind-strict", "--fairmind-gate=typo_ratio>=0.8"
    )
    assert result.ret == 1
    schema.validate(str(pytester.path / "junit.xml"))
    strict = {
        name: outcome_of(case) for (cls, name), case in cases_in(pytester.path / "junit.xml").items()
        if name.startswith("--fairmind-strict: ")
    }  # fmt: skip
    assert strict and set(strict.values()) == {"failure"}
    assert any("typo_ratio>=0.8" in name for name in strict)


def test_environment_twins_and_a_session_without_gates(
    pytester: pytest.Pytester, schema: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIRMIND_JUNIT", "env-junit.xml")
    monkeypatch.setenv("FAIRMIND_HTML", "env-page.html")
    result, doc = run(pytester)
    assert result.ret == 0
    junit = pytester.path / "env-junit.xml"
    schema.validate(str(junit))
    assert ET.fromstring(junit.read_bytes()).get("tests") == "0"  # nothing gated: an empty suite, written
    page = (pytester.path / "env-page.html").read_text(encoding="utf-8")
    assert all(f'data-model="{name}"' in page for name in doc["models"])


EVIDENCE_SUITE = """
import numpy as np
import pytest

rng = np.random.default_rng(0)
N = 600
sex = rng.choice(["f", "m"], N)
y = rng.integers(0, 2, N)
pred = np.where(sex == "m", rng.random(N) < 0.5, rng.random(N) < 0.42).astype(int)


@pytest.mark.fairmind(model="m1")
def test_close_to_the_bound(fairmind):
    fairmind.assess(y, pred, sensitive_features={"sex": sex}, n_boot=200)
"""


@pytest.mark.parametrize("policy", ["warn", "fail"])
def test_interval_gates_carry_their_evidence(pytester: pytest.Pytester, schema: Any, policy: str) -> None:
    from pytest_fairmind.junit import number_text

    pytester.makepyfile(test_evidence=EVIDENCE_SUITE)
    outputs = (f"--fairmind-json={REPORT}", "--fairmind-junit=junit.xml", "--fairmind-html=page.html")
    pytester.runpytest(
        "-p", "no:randomly", *outputs, "--fairmind-evidence=interval", f"--fairmind-inconclusive={policy}",
        "--fairmind-gate=demographic_parity_ratio>=0.8",
    )  # fmt: skip
    doc = load_report(pytester.path / REPORT)
    (entry,) = doc["models"]["m1"]["gates"]
    assert entry["evidence"] == "interval"
    schema.validate(str(pytester.path / "junit.xml"))
    (case,) = cases_in(pytester.path / "junit.xml").values()
    expected = {"pass": "passed", "fail": "failure"}.get(
        entry["outcome"], "failure" if policy == "fail" else "skipped"
    )
    assert outcome_of(case).partition(":")[0] == expected
    failure = case.find("failure")
    detail = (failure.text if failure is not None else case.findtext("system-out")) or ""
    low = number_text(entry.get("ci_low", float("-inf")))
    high = number_text(entry.get("ci_high", float("inf")))
    p_value, alpha = number_text(entry["p_value"]), number_text(entry["alpha"])
    for line in (
        "evidence: interval",
        f"interval: [{low}, {high}]",
        f"p_value: {p_value}",
        f"alpha: {alpha}",
    ):
        assert line in detail.splitlines()
    page = (pytester.path / "page.html").read_text(encoding="utf-8")
    assert '<td class="evidence">interval</td>' in page
    assert f'<td class="num alpha">{entry["alpha"]:.4g}</td>' in page
