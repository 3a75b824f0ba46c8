"""JUnit XML from a session report document: elements, counts, exit policy, schema validity."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fairmind.junit import gate_outcome, gate_rule, junit_xml, number_text

XSD = Path(__file__).parent.parent / "data" / "junit.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(str(XSD))


def gate(expr: str, key: str, value: float | None, bound: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"expr": expr, "key": key, "value": value, "bound": bound, "passed": outcome != "fail",
            "outcome": outcome, **extra}  # fmt: skip


def model(gates: list[dict[str, Any]], verdict: str = "pass", **extra: Any) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "metrics": {g["key"]: g["value"] for g in gates},
        "nonfinite": {},
        "params": {},
        "tags": {},
        "groups": {},
        "tests": [{"nodeid": "test_m.py::test_fair", "outcome": "passed"}],
        "gates": gates,
        "collisions": [],
        **extra,
    }


def document(models: dict[str, Any], not_evaluated: list[str] | None = None) -> dict[str, Any]:
    return {
        "schema": "pytest-fairmind/1",
        "session": {
            "id": "0f9c3b6f3a2b4c59a1a3f3c1f0e2d4b7",
            "project": "credit",
            "started": "2026-03-02T10:00:00+00:00",
            "finished": "2026-03-02T10:00:07.500000+00:00",
            "exitstatus": 1,
            "git": {"commit": "4f2a9c1e0b7d", "branch": "main", "dirty": False},
        },
        "providers": {},
        "models": models,
        "gates_not_evaluated": not_evaluated or [],
        "context": {"ci.job_url": "https://gitlab.example.com/p/-/jobs/7"},
        "notices": [],
    }


@pytest.fixture
def doc() -> dict[str, Any]:
    return document(
        {
            "credit.v2": model(
                [
                    gate(
                        "demographic_parity_ratio >= 0.8",
                        "sex/demographic_parity_ratio",
                        0.536,
                        ">= 0.8",
                        "fail",
                    ),
                    gate(
                        "demographic_parity_ratio >= 0.8",
                        "age/demographic_parity_ratio",
                        0.91,
                        ">= 0.8",
                        "pass",
                    ),
                    gate(
                        "equalized_odds_difference <= 0.1",
                        "sex/equalized_odds_difference",
                        0.09,
                        "<= 0.1",
                        "inconclusive",
                        ci_low=0.05,
                        ci_high=0.13,
                        p_value=0.2,
                        alpha=0.025,
                    ),
                ],
                verdict="fail",
            ),
            "baseline": model(
                [gate("accuracy >= 0.7", "perf/accuracy", 0.82, ">= 0.7", "pass")],
            ),
        },
        not_evaluated=["typo_ratio >= 0.8"],
    )


def parse(text: str) -> ET.Element:
    return ET.fromstring(text.encode("utf-8"))


def cases(root: ET.Element) -> dict[tuple[str, str], ET.Element]:
    return {(c.get("classname", ""), c.get("name", "")): c for c in root.iter("testcase")}


def assert_counts(root: ET.Element) -> None:
    """The attributes CI tools show (tests/failures/errors/skipped) agree with the elements."""
    testcases = list(root.iter("testcase"))
    expected = {
        "tests": len(testcases),
        "failures": sum(c.find("failure") is not None for c in testcases),
        "errors": sum(c.find("error") is not None for c in testcases),
        "skipped": sum(c.find("skipped") is not None for c in testcases),
    }
    suites = root.findall("testsuite")
    assert len(suites) == 1
    for element in (root, suites[0]):
        assert {k: int(element.get(k, "-1")) for k in expected} == expected


def test_one_suite_named_fairmind_one_testcase_per_gate_result(doc: dict[str, Any], schema: Any) -> None:
    text = junit_xml(doc)
    schema.validate(text)
    root = parse(text)
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "fairmind"
    assert sorted(cases(root)) == [
        ("fairmind", "typo_ratio >= 0.8"),
        ("fairmind.baseline", "accuracy >= 0.7 [perf/accuracy]"),
        ("fairmind.credit_v2", "demographic_parity_ratio >= 0.8 [age/demographic_parity_ratio]"),
        ("fairmind.credit_v2", "demographic_parity_ratio >= 0.8 [sex/demographic_parity_ratio]"),
        ("fairmind.credit_v2", "equalized_odds_difference <= 0.1 [sex/equalized_odds_difference]"),
    ]
    assert_counts(root)
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("5", "1", "2")
    assert suite.get("time") == "7.500"
    assert suite.get("timestamp") == "2026-03-02T10:00:00+00:00"


def test_failed_gate_is_a_failure_naming_key_value_and_bound(doc: dict[str, Any]) -> None:
    case = cases(parse(junit_xml(doc)))[
        ("fairmind.credit_v2", "demographic_parity_ratio >= 0.8 [sex/demographic_parity_ratio]")
    ]
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == "gate failed: sex/demographic_parity_ratio = 0.536, bound >= 0.8"
    assert failure.get("type") == "fairmind.gate"
    assert "model: credit.v2" in (failure.text or "")
    assert case.find("skipped") is None


def test_passed_gate_has_no_result_element_and_its_detail_in_system_out(doc: dict[str, Any]) -> None:
    case = cases(parse(junit_xml(doc)))[("fairmind.baseline", "accuracy >= 0.7 [perf/accuracy]")]
    assert [child.tag for child in case] == ["system-out"]
    out = case.findtext("system-out") or ""
    assert "value: 0.82" in out
    assert "bound: >= 0.7" in out
    assert "outcome: pass" in out


def test_gate_action_warn_turns_a_failed_gate_into_skipped(doc: dict[str, Any], schema: Any) -> None:
    text = junit_xml(doc, gate_action="warn")
    schema.validate(text)
    root = parse(text)
    case = cases(root)[
        ("fairmind.credit_v2", "demographic_parity_ratio >= 0.8 [sex/demographic_parity_ratio]")
    ]
    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "failed (warn only)"
    assert case.find("failure") is None
    assert root.get("failures") == "0"
    assert_counts(root)


@pytest.mark.parametrize(("policy", "tag"), [("pass", "skipped"), ("warn", "skipped"), ("fail", "failure")])
def test_inconclusive_follows_the_inconclusive_policy(doc: dict[str, Any], policy: str, tag: str) -> None:
    root = parse(junit_xml(doc, inconclusive=policy))
    case = cases(root)[
        ("fairmind.credit_v2", "equalized_odds_difference <= 0.1 [sex/equalized_odds_difference]")
    ]
    result = [child for child in case if child.tag in ("skipped", "failure", "error")]
    assert [child.tag for child in result] == [tag]
    assert "inconclusive" in (result[0].get("message") or "")
    assert "0.09" in (result[0].get("message") or "")
    assert_counts(root)


def test_inconclusive_detail_carries_interval_p_value_and_alpha(doc: dict[str, Any]) -> None:
    root = parse(junit_xml(doc, inconclusive="fail"))
    case = cases(root)[
        ("fairmind.credit_v2", "equalized_odds_difference <= 0.1 [sex/equalized_odds_difference]")
    ]
    text = case.findtext("failure") or ""
    assert "interval: [0.05, 0.13]" in text
    assert "p_value: 0.2" in text
    assert "alpha: 0.025" in text


def test_gates_not_evaluated_are_skipped_testcases_of_classname_fairmind(doc: dict[str, Any]) -> None:
    case = cases(parse(junit_xml(doc)))[("fairmind", "typo_ratio >= 0.8")]
    skipped = case.find("skipped")
    assert skipped is not None
    assert "not evaluated" in (skipped.get("message") or "")


def test_each_strict_failure_is_a_failed_testcase_of_its_own(doc: dict[str, Any], schema: Any) -> None:
    reasons = ["gate matched no metric: typo_ratio >= 0.8", "provider mlflow failed: timed out after 30 s"]
    text = junit_xml(doc, gate_action="warn", strict_failures=reasons)
    schema.validate(text)
    root = parse(text)
    strict = [c for c in root.iter("testcase") if c.get("name", "").startswith("--fairmind-strict: ")]
    assert [c.get("name") for c in strict] == [f"--fairmind-strict: {r}" for r in reasons]
    for case, reason in zip(strict, reasons, strict=True):
        assert case.get("classname") == "fairmind"
        failure = case.find("failure")
        assert failure is not None
        assert failure.get("message") == reason
        assert failure.get("type") == "fairmind.strict"
    assert root.get("failures") == "2"  # the warn-only gate failure is skipped, the strict ones fail
    assert_counts(root)


def test_undefined_value_reads_as_its_nonfinite_word() -> None:
    entry = gate("equalized_odds_ratio >= 0.8", "sex/equalized_odds_ratio", None, ">= 0.8", "fail")
    m = model([entry])
    m["nonfinite"] = {"sex/equalized_odds_ratio": "nan"}
    failure = parse(junit_xml(document({"m": m}))).find(".//failure")
    assert failure is not None
    assert failure.get("message") == "gate failed: sex/equalized_odds_ratio = nan, bound >= 0.8"


def test_reports_written_before_outcomes_existed_use_passed() -> None:
    old = {"expr": "ratio >= 0.8", "key": "s/ratio", "value": 0.5, "bound": ">= 0.8", "passed": False}
    assert gate_outcome(old) == "fail"
    assert gate_outcome({**old, "passed": True}) == "pass"
    root = parse(junit_xml(document({"m": model([old])})))
    assert root.get("failures") == "1"


def test_regression_rule_detail_names_baseline_change_and_direction(schema: Any) -> None:
    entry = gate(
        "*_difference ~ 0.02",
        "sex/demographic_parity_difference",
        0.15,
        "<= 0.12 (baseline 0.1, tolerance 0.02, lower is better)",
        "fail",
        baseline=0.1,
        change=0.05,
        direction="lower",
    )
    assert gate_rule(entry) == "regression"
    assert gate_rule({**entry, "rule": "bound"}) == "bound"
    text = junit_xml(document({"m": model([entry])}))
    schema.validate(text)
    body = parse(text).findtext(".//failure") or ""
    assert "baseline: 0.1" in body
    assert "change: 0.05" in body
    assert "direction: lower is better" in body


def test_markup_and_control_characters_in_names_stay_text(schema: Any) -> None:
    name = 'm<script>&"\x01.v1'
    entry = gate("ratio >= 0.8", "s/ratio", 0.5, ">= 0.8", "fail")
    text = junit_xml(document({name: model([entry])}))
    schema.validate(text)
    case = next(parse(text).iter("testcase"))
    assert case.get("classname") == 'fairmind.m<script>&"\\x01_v1'  # dots -> _, control char spelled out
    assert "<script>" not in text


def test_an_empty_session_is_a_valid_empty_suite(schema: Any) -> None:
    text = junit_xml(document({}))
    schema.validate(text)
    root = parse(text)
    assert root.get("tests") == "0"
    assert_counts(root)


@pytest.mark.parametrize(("option", "value"), [("gate_action", "fial"), ("inconclusive", "maybe")])
def test_unknown_policy_is_a_value_error(doc: dict[str, Any], option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        junit_xml(doc, **{option: value})


def test_the_schema_is_not_vacuous(doc: dict[str, Any], schema: Any) -> None:
    """What CI parsers reject, the schema rejects too: a testcase without a name, a count that is not
    a number, two result elements in one testcase, an unknown element."""
    root = parse(junit_xml(doc))
    broken = []
    no_name = copy.deepcopy(root)
    del next(no_name.iter("testcase")).attrib["name"]
    broken.append(no_name)
    bad_count = copy.deepcopy(root)
    bad_count.find("testsuite").set("failures", "one")  # type: ignore[union-attr]
    broken.append(bad_count)
    two_results = copy.deepcopy(root)
    case = next(c for c in two_results.iter("testcase") if c.find("failure") is not None)
    case.insert(0, ET.Element("skipped"))
    broken.append(two_results)
    unknown = copy.deepcopy(root)
    next(unknown.iter("testcase")).append(ET.Element("verdict"))
    broken.append(unknown)
    assert schema.is_valid(ET.tostring(root, encoding="unicode"))
    for element in broken:
        assert not schema.is_valid(ET.tostring(element, encoding="unicode"))


def test_number_text_is_the_shortest_round_trip_form() -> None:
    assert number_text(1.0) == "1"
    assert number_text(0.1 + 0.2) == "0.30000000000000004"
    assert number_text(None) == "nan"
    assert number_text(float("-inf")) == "-inf"


_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12)
_entries = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(["pass", "fail", "inconclusive"]),
        "key": _names,
        "value": st.none() | st.floats(allow_nan=False, allow_infinity=False),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    models=st.dictionaries(_names, st.lists(_entries, max_size=4), max_size=4),
    not_evaluated=st.lists(_names, max_size=3),
    strict=st.lists(_names, max_size=2),
    gate_action=st.sampled_from(["fail", "warn"]),
    inconclusive=st.sampled_from(["pass", "warn", "fail"]),
)
def test_any_document_gives_valid_xml_with_counts_that_match(
    schema: Any,
    models: dict[str, list[dict[str, Any]]],
    not_evaluated: list[str],
    strict: list[str],
    gate_action: str,
    inconclusive: str,
) -> None:
    doc = document(
        {
            name: model(
                [gate(f"{e['key']} >= 0.5", e["key"], e["value"], ">= 0.5", e["outcome"]) for e in entries]
            )
            for name, entries in models.items()
        },
        not_evaluated=not_evaluated,
    )
    text = junit_xml(doc, gate_action=gate_action, inconclusive=inconclusive, strict_failures=strict)
    schema.validate(text)
    root = parse(text)
    assert_counts(root)
    outcomes = [e["outcome"] for entries in models.values() for e in entries]
    failures = (
        (outcomes.count("fail") if gate_action == "fail" else 0)
        + (outcomes.count("inconclusive") if inconclusive == "fail" else 0)
        + len(strict)
    )
    assert int(root.get("failures", "-1")) == failures
    assert int(root.get("tests", "-1")) == len(outcomes) + len(not_evaluated) + len(strict)


# ------------------------------------------------------------- write_junit (from a SessionResult)


def _session(**gate_fields: Any) -> Any:
    from pytest_fairmind.result import GateResult, ModelResult, SessionResult

    gate = GateResult(
        expr="demographic_parity_ratio >= 0.8",
        key="sex/demographic_parity_ratio",
        value=0.7712,
        bound=">= 0.8",
        outcome="inconclusive",
        **gate_fields,
    )
    model = ModelResult(name="credit.v2", metrics={gate.key: 0.7712}, gates=[gate], verdict="inconclusive")
    return SessionResult(
        id="abc", project="credit", started="2026-03-02T10:00:00+00:00",
        finished="2026-03-02T10:00:01+00:00", models={"credit.v2": model},
        gates_not_evaluated=["typo >= 1"],
    )  # fmt: skip


@pytest.mark.parametrize(("policy", "tag"), [("warn", "skipped"), ("fail", "failure")])
def test_write_junit_carries_the_evidence_of_interval_gates(
    tmp_path: Path, schema: Any, policy: str, tag: str
) -> None:
    from pytest_fairmind.junit import write_junit

    result = _session(evidence="interval", ci_low=0.7401, ci_high=0.8123, p_value=0.061, p_adjusted=0.122,
                      alpha=0.025)  # fmt: skip
    out = tmp_path / "ci" / "fairness-junit.xml"
    write_junit(out, result, gate_action="fail", inconclusive=policy, strict_reasons=["no baseline"])
    text = out.read_text(encoding="utf-8")
    schema.validate(text)
    root = parse(text)
    assert_counts(root)
    case = cases(root)[
        ("fairmind.credit_v2", "demographic_parity_ratio >= 0.8 [sex/demographic_parity_ratio]")
    ]
    element = case.find(tag)
    assert element is not None
    assert "sex/demographic_parity_ratio = 0.7712 [0.7401, 0.8123], bound >= 0.8" in (
        element.get("message") or ""
    )
    detail = (element.text or "") if tag == "failure" else (case.findtext("system-out") or "")
    for line in ("evidence: interval", "interval: [0.7401, 0.8123]", "p_value: 0.061", "p_adjusted: 0.122",
                 "alpha: 0.025"):  # fmt: skip
        assert line in detail.splitlines()
    assert ("fairmind", "typo >= 1") in cases(root)
    strict = cases(root)[("fairmind", "--fairmind-strict: no baseline")]
    assert strict.find("failure") is not None
    assert [p.name for p in out.parent.iterdir()] == ["fairness-junit.xml"]  # atomic: no temp file left


def test_write_junit_point_gate_says_so_and_has_no_interval(tmp_path: Path, schema: Any) -> None:
    from pytest_fairmind.junit import write_junit

    out = tmp_path / "j.xml"
    write_junit(out, _session(), gate_action="warn", inconclusive="pass", strict_reasons=())
    schema.validate(str(out))
    out_text = parse(out.read_text(encoding="utf-8")).findtext(".//system-out") or ""
    assert "evidence: point" in out_text.splitlines()
    assert "interval:" not in out_text and "p_value" not in out_text


def test_write_junit_replaces_an_old_file_and_writes_an_empty_session(tmp_path: Path, schema: Any) -> None:
    from pytest_fairmind.junit import write_junit
    from pytest_fairmind.result import SessionResult

    out = tmp_path / "j.xml"
    out.write_text("old", encoding="utf-8")
    write_junit(out, SessionResult(id="x", project="p", started="2026-03-02T10:00:00+00:00"),
                gate_action="fail", inconclusive="warn", strict_reasons=[])  # fmt: skip
    schema.validate(str(out))
    assert parse(out.read_text(encoding="utf-8")).get("tests") == "0"


def test_a_one_sided_interval_reads_with_its_open_end(tmp_path: Path, schema: Any) -> None:
    """Strict JSON cannot hold the infinite end of a one-sided interval: the report leaves it out,
    and JUnit writes it back as ``inf`` (the same from a document and from a result)."""
    from pytest_fairmind.junit import write_junit

    entry = gate("dpr >= 0.8", "sex/dpr", 0.83, ">= 0.8", "inconclusive", evidence="interval", ci_low=0.71)
    from_doc = parse(junit_xml(document({"m": model([entry])})))
    out = tmp_path / "j.xml"
    result = _session(evidence="interval", ci_low=0.71, ci_high=float("inf"), p_value=0.2, alpha=0.05)
    write_junit(out, result, gate_action="fail", inconclusive="warn", strict_reasons=())
    from_result = parse(out.read_text(encoding="utf-8"))
    for root in (from_doc, from_result):
        (case,) = [c for c in root.iter("testcase") if c.get("classname") != "fairmind"]
        skipped = case.find("skipped")
        assert skipped is not None and "[0.71, inf], bound >= 0.8" in (skipped.get("message") or "")
        assert "interval: [0.71, inf]" in (case.findtext("system-out") or "").splitlines()
