"""SPEC section 3 (records belong to tests; collisions) and 6 (tests and outcomes): aggregation."""

from __future__ import annotations

import pytest
from helpers import (
    outcomes,
    run_with_report,
)

from pytest_fairmind.aggregate import Collector, outcome_word
from pytest_fairmind.exceptions import FairmindWarning


def test_one_result_per_model_across_tests_and_files(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_a="""
        def test_sex(fairmind):
            fairmind.record({"demographic_parity_ratio": 0.9}, model="credit", scope="sex")

        def test_other_model(fairmind):
            fairmind.record({"accuracy": 0.7}, model="fraud")
        """,
        test_b="""
        def test_age(fairmind):
            fairmind.record({"demographic_parity_ratio": 0.8}, model="credit", scope="age",
                            params={"threshold": 0.5}, tags={"owner": "risk"})
        """,
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=3)
    assert sorted(doc["models"]) == ["credit", "fraud"]
    credit = doc["models"]["credit"]
    assert credit["metrics"] == {"sex/demographic_parity_ratio": 0.9, "age/demographic_parity_ratio": 0.8}
    assert credit["params"] == {"age/threshold": 0.5}
    assert credit["tags"] == {"owner": "risk"}
    assert credit["tests"] == [
        {"nodeid": "test_a.py::test_sex", "outcome": "passed"},
        {"nodeid": "test_b.py::test_age", "outcome": "passed"},
    ]
    assert credit["collisions"] == []
    assert doc["models"]["fraud"]["tests"] == [{"nodeid": "test_a.py::test_other_model", "outcome": "passed"}]
    result.stdout.fnmatch_lines(
        ["*fairmind: 2 model(s), 0 gate(s)*", "model*verdict*", "credit*PASS*2 passed*"]
    )


def test_outcomes_use_pytests_words(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.fairmind(model="m")

        def test_passed(fairmind):
            fairmind.record({"a": 1})

        def test_failed(fairmind):
            fairmind.record({"b": 1})
            assert False

        def test_skipped_in_call(fairmind):
            fairmind.record({"c": 1})
            pytest.skip("not today")

        @pytest.mark.skip(reason="marked")
        def test_skipped_by_marker(fairmind):
            pass

        @pytest.fixture
        def broken():
            raise RuntimeError("setup failed")

        def test_setup_error(broken, fairmind):
            pass

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown failed")

        def test_teardown_error(broken_teardown, fairmind):
            fairmind.record({"d": 1})

        @pytest.mark.xfail(reason="known bias", strict=False)
        def test_xfailed(fairmind):
            fairmind.record({"e": 1})
            assert False

        @pytest.mark.xfail(reason="known bias", strict=False)
        def test_xpassed(fairmind):
            fairmind.record({"f": 1})

        @pytest.mark.xfail(reason="known bias", strict=True)
        def test_xpassed_strict(fairmind):
            fairmind.record({"g": 1})

        def test_imperative_xfail(fairmind):
            fairmind.record({"h": 1})
            pytest.xfail("known")
        """
    )
    _, doc = run_with_report(pytester)
    mod = "test_outcomes_use_pytests_words.py::"
    assert outcomes(doc, "m") == {
        mod + "test_passed": "passed",
        mod + "test_failed": "failed",
        mod + "test_skipped_in_call": "skipped",
        mod + "test_skipped_by_marker": "skipped",
        mod + "test_setup_error": "error",
        mod + "test_teardown_error": "error",
        mod + "test_xfailed": "xfailed",
        mod + "test_xpassed": "xpassed",
        mod + "test_xpassed_strict": "failed",  # pytest reports a strict XPASS as failed
        mod + "test_imperative_xfail": "xfailed",
    }
    # records of every test that got to record arrive, whatever its outcome
    assert sorted(doc["models"]["m"]["metrics"]) == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert doc["models"]["m"]["verdict"] == "fail"


def test_only_passing_outcomes_keep_the_verdict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.fairmind(model="m")

        def test_passed(fairmind):
            fairmind.record({"a": 1})

        def test_skipped(fairmind):
            pytest.skip("no data")

        @pytest.mark.xfail(reason="known")
        def test_xfailed(fairmind):
            assert False
        """
    )
    _, doc = run_with_report(pytester)
    assert doc["models"]["m"]["verdict"] == "pass"
    assert sorted(outcomes(doc, "m").values()) == ["passed", "skipped", "xfailed"]


def test_tests_without_fairmind_are_not_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_rec(fairmind):
            fairmind.record({"a": 1}, model="m")

        def test_fixture_unused(fairmind):
            pass
        """
    )
    _, doc = run_with_report(pytester)
    assert list(outcomes(doc, "m")) == ["test_tests_without_fairmind_are_not_listed.py::test_rec"]


def test_collision_across_tests_last_nodeid_wins_with_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_b="""
        def test_z(fairmind):
            fairmind.record({"ratio": 0.7, "same": 1.0}, model="m", params={"p": "from-b-z"})

        def test_a(fairmind):
            fairmind.record({"ratio": 0.9, "same": 1.0}, model="m", params={"p": "from-b-a"})
        """,
        test_a="""
        def test_first(fairmind):
            fairmind.record({"ratio": 0.8}, model="m", tags={"t": "x"})

        def test_tag(fairmind):
            fairmind.record({}, model="m", tags={"t": "y"})
        """,
    )
    result, doc = run_with_report(pytester)
    assert result.ret == 0
    model = doc["models"]["m"]
    # node ids sort: test_a.py::test_first < test_a.py::test_tag < test_b.py::test_a < test_b.py::test_z
    assert model["metrics"] == {"ratio": 0.7, "same": 1.0}
    assert model["params"] == {"p": "from-b-z"}
    assert model["tags"] == {"t": "y"}
    collisions = {c["key"]: c["values"] for c in model["collisions"]}
    assert collisions == {
        "ratio": [
            {"nodeid": "test_a.py::test_first", "value": 0.8},
            {"nodeid": "test_b.py::test_a", "value": 0.9},
            {"nodeid": "test_b.py::test_z", "value": 0.7},
        ],
        "p": [
            {"nodeid": "test_b.py::test_a", "value": "from-b-a"},
            {"nodeid": "test_b.py::test_z", "value": "from-b-z"},
        ],
        "t": [
            {"nodeid": "test_a.py::test_first", "value": "x"},
            {"nodeid": "test_a.py::test_tag", "value": "y"},
        ],
    }  # "same" was recorded with equal values: no collision
    result.stdout.fnmatch_lines(["*FairmindWarning*'ratio'*last node id wins*"])
    assert result.parseoutcomes()["warnings"] == 3


def test_same_test_recording_twice_last_wins_silently(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_twice(fairmind):
            fairmind.record({"ratio": 0.5, "kept": 1.0}, model="m")
            fairmind.record({"ratio": 0.6}, model="m")
        """
    )
    result, doc = run_with_report(pytester, "-W", "error::pytest_fairmind.FairmindWarning")
    assert result.ret == 0
    assert doc["models"]["m"]["metrics"] == {"ratio": 0.6, "kept": 1.0}
    assert doc["models"]["m"]["collisions"] == []
    assert "FairmindWarning" not in result.stdout.str()


def test_rerun_of_one_test_last_attempt_wins_silently() -> None:
    """What pytest-rerunfailures produces: a ``rerun`` report, then the final attempt's."""
    collector = Collector()
    first = {
        "models": ["m"],
        "records": [{"model": "m", "metrics": {"ratio": 0.5}, "params": {}, "tags": {}}],
    }
    collector.add_report("t.py::test", "setup", "passed", payload={"models": ["m"]})
    collector.add_report("t.py::test", "call", "rerun", payload=first)
    second = {"records": [{"model": "m", "metrics": {"ratio": 0.7}, "params": {}, "tags": {}}]}
    collector.add_report("t.py::test", "setup", "passed")
    collector.add_report("t.py::test", "call", "passed", payload=second)
    collector.add_report("t.py::test", "teardown", "passed")
    models, warnings = collector.build()
    assert models["m"].metrics == {"ratio": 0.7}
    assert models["m"].collisions == []
    assert [(t.nodeid, t.outcome) for t in models["m"].tests] == [("t.py::test", "passed")]
    assert warnings == []


def test_collisions_do_not_depend_on_arrival_order() -> None:
    def build(order: list[str]) -> tuple[dict[str, float], list[list[tuple[str, object]]]]:
        collector = Collector()
        for nodeid in order:
            value = {"t.py::a": 0.1, "t.py::b": 0.2, "t.py::c": 0.3}[nodeid]
            payload = {"records": [{"model": "m", "metrics": {"k": value}, "params": {}, "tags": {}}]}
            collector.add_report(nodeid, "call", "passed", payload=payload)
        models, _ = collector.build()
        return models["m"].metrics, [c.values for c in models["m"].collisions]

    expected = build(["t.py::a", "t.py::b", "t.py::c"])
    assert expected[0] == {"k": 0.3}
    assert build(["t.py::c", "t.py::a", "t.py::b"]) == expected
    assert build(["t.py::b", "t.py::c", "t.py::a"]) == expected


@pytest.mark.parametrize(
    ("when", "outcome", "wasxfail", "previous", "expected"),
    [
        ("setup", "passed", False, None, None),
        ("setup", "failed", False, None, "error"),
        ("setup", "skipped", False, None, "skipped"),
        ("call", "passed", False, None, "passed"),
        ("call", "failed", False, None, "failed"),
        ("call", "skipped", True, None, "xfailed"),
        ("call", "passed", True, None, "xpassed"),
        ("call", "rerun", False, None, None),
        ("teardown", "failed", False, "passed", "error"),
        ("teardown", "failed", False, "failed", "failed"),
        ("teardown", "passed", False, "passed", None),
    ],
)
def test_outcome_word(
    when: str, outcome: str, wasxfail: bool, previous: str | None, expected: str | None
) -> None:
    assert outcome_word(when, outcome, wasxfail, previous) == expected


def test_fairmind_warning_is_a_pytest_warning() -> None:
    assert issubclass(FairmindWarning, pytest.PytestWarning)
    import pytest_fairmind

    assert pytest_fairmind.FairmindWarning is FairmindWarning


def test_crashed_worker_report_is_failed() -> None:
    """xdist reports the test a crashed worker was running with ``when="???"``; pytest says failed."""
    assert outcome_word("???", "failed", False, None) == "failed"


RERUN_CONFTEST = """
    import pytest
    from _pytest.runner import runtestprotocol


    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(item, nextitem):
        # what pytest-rerunfailures does: a failed attempt is logged as "rerun", then the test runs again
        item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for attempt in range(3):
            item.attempt = attempt
            reports = runtestprotocol(item, nextitem=nextitem, log=False)
            failed = any(r.failed for r in reports)
            for report in reports:
                if failed and attempt < 2 and report.failed:
                    report.outcome = "rerun"
                    item.ihook.pytest_runtest_logreport(report=report)
                elif not failed or attempt == 2:
                    item.ihook.pytest_runtest_logreport(report=report)
            if not failed:
                break
        item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True
"""


@pytest.mark.parametrize("xdist", [["-p", "no:xdist"], ["-n", "2"]], ids=["serial", "xdist"])
def test_reruns_last_attempt_wins_silently(pytester: pytest.Pytester, xdist: list[str]) -> None:
    pytester.makeconftest(RERUN_CONFTEST)
    pytester.makepyfile(
        """
        def test_flaky(fairmind, request):
            attempt = request.node.attempt
            fairmind.record({"ratio": 0.5 + attempt / 10, f"attempt{attempt}": 1.0}, model="m")
            assert attempt == 1, "flaky"

        def test_always_fails(fairmind, request):
            fairmind.record({"bad": float(request.node.attempt)}, model="n")
            assert False
        """
    )
    result, doc = run_with_report(pytester, "-W", "error::pytest_fairmind.FairmindWarning", *xdist)
    assert result.parseoutcomes().get("passed") == 1
    assert result.parseoutcomes().get("failed") == 1
    m = doc["models"]["m"]
    assert m["metrics"] == {"ratio": 0.6, "attempt0": 1.0, "attempt1": 1.0}
    assert m["collisions"] == []
    assert m["tests"] == [
        {"nodeid": "test_reruns_last_attempt_wins_silently.py::test_flaky", "outcome": "passed"}
    ]
    assert m["verdict"] == "pass"
    n = doc["models"]["n"]
    assert n["metrics"] == {"bad": 2.0} and n["collisions"] == []
    assert n["tests"][0]["outcome"] == "failed"
    assert "FairmindWarning" not in result.stdout.str()
