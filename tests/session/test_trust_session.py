"""Issue 12, "trust in what we log", on the pytest side: each fault a user hit, as a real session.

Numbers in the test names are the issue's items. Sessions run in-process (pytester) unless the
item is about xdist, which gets a real ``-n 2``.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    REPORT,
    history_entries,
    load_report,
    provider_log,
    providers_conftest,
    run_with_report,
    usage_error,
)

from pytest_fairmind import result as results
from pytest_fairmind.exceptions import FairmindWarning
from pytest_fairmind.markers import parse_marks
from pytest_fairmind.records import RecordError, make_record, validate_model_name
from pytest_fairmind.result import GateResult, ModelResult

# What issue 12 added is imported where used, so each test also runs (and fails) against the
# code before it.


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    return load_report(pytester.path / REPORT)


# --- 6. a test that crashed its xdist worker ---------------------------------------------------------

CRASHING = """
    import os
    import pytest

    def test_crash(fairmind):
        fairmind.record({"accuracy": 0.9}, model="lost")  # the only test of model "lost"
        os._exit(3)

    @pytest.mark.fairmind(model="marked")
    def test_marked_crash(fairmind):
        os._exit(3)

    def test_fine(fairmind):
        fairmind.record({"accuracy": 0.8}, model="fine")
"""


def test_6_a_model_whose_only_test_crashed_its_worker_is_listed_as_failed(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    path = pytester.makepyfile(CRASHING)
    result, doc = run_with_report(pytester, "-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=2)
    assert result.ret == 1
    for model, test in (("lost", "test_crash"), ("marked", "test_marked_crash")):
        nodeid = f"{path.name}::{test}"
        entry = doc["models"][model]
        assert entry["verdict"] == "fail"
        assert entry["tests"] == [{"nodeid": nodeid, "outcome": "failed"}]
        assert entry["metrics"] == {}  # what it recorded died with the worker
        lost = [n for n in doc["notices"] if n.startswith(f"lost test {nodeid} (model '{model}')")]
        assert len(lost) == 1, doc["notices"]
        assert "crashed xdist worker" in lost[0]
        assert lost[0] in result.stdout.lines  # named in the summary too
    assert doc["models"]["fine"]["verdict"] == "pass"
    result.stdout.fnmatch_lines(["lost*FAIL*1 failed*"])


# --- 7. Ctrl-C during the tests ----------------------------------------------------------------------

INTERRUPTED = """
    def test_a_records(fairmind):
        fairmind.record({"accuracy": 0.9}, model="credit")

    def test_b_interrupts():
        raise KeyboardInterrupt

    def test_c_never_runs(fairmind):
        fairmind.record({"accuracy": 0.9}, model="never")
"""


def test_7_an_interrupted_session_logs_its_models_as_interrupted(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(INTERRUPTED)
    result = pytester.runpytest(
        f"--fairmind-json={REPORT}",
        "--fairmind-provider=probe",
        "--fairmind-gate=accuracy >= 0.5",
        "-p",
        "no:randomly",
        no_reraise_ctrlc=True,
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    doc = _report(pytester)  # validated against the schema: "interrupted" is a verdict
    assert doc["session"]["exitstatus"] == 2
    assert {name: m["verdict"] for name, m in doc["models"].items()} == {"credit": "interrupted"}
    assert [g["passed"] for g in doc["models"]["credit"]["gates"]] == [True]  # gated all the same
    assert any("interrupted" in n for n in doc["notices"])
    # the history entry and the provider's run carry it too
    [entry] = history_entries(pytester.path / ".fairmind")
    assert load_report(entry)["models"]["credit"]["verdict"] == "interrupted"
    [logged] = provider_log(pytester, "probe")
    assert logged["models"]["credit"]["verdict"] == "interrupted"
    result.stdout.fnmatch_lines(["credit*INTERRUPTED*1 passed*", "session interrupted*"])


def test_7_verdicts_rank_interrupted_over_fail_over_inconclusive_over_pass() -> None:
    from pytest_fairmind.result import FAIL, INCONCLUSIVE

    def gate(outcome: str) -> GateResult:
        return GateResult("m >= 0", "m", 1.0, ">= 0", outcome)

    model = ModelResult("m", gates=[gate("pass"), gate(INCONCLUSIVE)])
    assert model.recompute_verdict() == "inconclusive"
    model.gates.append(gate(FAIL))
    assert model.recompute_verdict() == "fail"
    model.gates = [gate("pass")]
    model.tests = [results.TestOutcome("t.py::t", "error")]
    assert model.recompute_verdict() == "fail"
    model.verdict = "interrupted"  # the session's fact: no re-evaluation (fairmind check) undoes it
    assert model.recompute_verdict() == "interrupted"

    from pytest_fairmind.result import SessionResult
    from pytest_fairmind.summary import FAIL as FAIL_STYLE
    from pytest_fairmind.summary import markdown, model_rows

    session = SessionResult(id="s", project="p", started="2026-01-01T00:00:00+00:00", models={"m": model})
    assert [(r.verdict.text, r.verdict.style) for r in model_rows(session)] == [("INTERRUPTED", FAIL_STYLE)]
    assert "| m | ⏹️ interrupted |" in markdown(session)


# --- 8. huge timeouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("timeout", ["1e10", "inf", "1e300"])
def test_8_a_huge_timeout_is_clamped_and_the_session_ends_normally(
    pytester: pytest.Pytester, timeout: str
) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"accuracy": 0.9}, model="m")
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-provider=probe", f"--fairmind-timeout={timeout}")
    from pytest_fairmind.timeouts import MAX_TIMEOUT

    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert "OverflowError" not in result.stdout.str() + result.stderr.str()
    assert doc["providers"]["probe"]["ok"] is True
    [logged] = provider_log(pytester, "probe")
    assert 0 < logged["timeout"] <= MAX_TIMEOUT
    result.stdout.fnmatch_lines(["*fairmind: 1 model(s)*", "probe: 1 run(s)*"])


@pytest.mark.parametrize("timeout", ["nan", "-1", "-inf"])
def test_8_nan_and_negative_timeouts_are_usage_errors(pytester: pytest.Pytester, timeout: str) -> None:
    pytester.makepyfile("def test_a():\n    pass\n")
    assert "--fairmind-timeout" in usage_error(pytester.runpytest(f"--fairmind-timeout={timeout}"))


def test_8_clamped_timeouts_are_accepted_by_threads_and_signals() -> None:
    from pytest_fairmind.timeouts import MAX_TIMEOUT, clamp_timeout

    for seconds in (1e10, math.inf, 1e300, float(2**40)):
        clamped = clamp_timeout(seconds)
        assert clamped == MAX_TIMEOUT
        lock = threading.Lock()
        assert lock.acquire(timeout=clamped + 0.5)  # what dispatch waits: the budget plus a margin
        lock.release()
        if hasattr(signal, "alarm"):
            signal.alarm(int(clamped))
            signal.alarm(0)
    assert clamp_timeout(30) == 30.0
    for bad in (math.nan, -1.0, 0.0, -math.inf):
        with pytest.raises(ValueError):
            clamp_timeout(bad)


# --- 11. strict mode says why it failed ----------------------------------------------------------------


def test_11_strict_failure_says_why_in_the_fail_style(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"accuracy": 0.9}, model="m")
        """
    )
    result, doc = run_with_report(
        pytester,
        "--fairmind-strict",
        "--fairmind-gate=accuracy >= 0.5",
        "--fairmind-gate=no_such_metric >= 0.5",
        "--fairmind-provider=probe,boom",
        "--color=yes",
    )
    assert result.ret == 1
    expected = (
        "strict: FAILED because 1 gate(s) not evaluated (no_such_metric >= 0.5); provider(s) failed: boom"
    )
    assert doc["notices"][-1] == expected
    # red and bold, as failed gates are
    colored = [line for line in result.stdout.lines if expected in line]
    assert len(colored) == 1, result.stdout.str()
    assert "\x1b[31m" in colored[0] and "\x1b[1m" in colored[0]


def test_11_a_session_strict_mode_does_not_fail_prints_no_strict_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"accuracy": 0.9}, model="m")
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-strict", "--fairmind-gate=accuracy >= 0.5")
    assert result.ret == 0
    assert "strict:" not in result.stdout.str()
    assert doc["notices"] == []


# --- 12. --fairmind-baseline typos -------------------------------------------------------------------------


def test_12_a_baseline_typo_is_a_usage_error_with_a_suggestion(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a():\n    raise AssertionError('no test may run')\n")
    line = usage_error(pytester.runpytest("--fairmind-baseline=lastt", "--fairmind-gate=accuracy ~ 0.1"))
    assert "--fairmind-baseline" in line and "did you mean 'last'?" in line
    assert not (pytester.path / ".fairmind").exists()


@pytest.mark.parametrize("source", ["prev/base.json", "base.json"])
def test_12_a_path_that_does_not_exist_yet_is_a_first_run(pytester: pytest.Pytester, source: str) -> None:
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"equalized_odds_difference": 0.1}, model="m")
        """
    )
    args = (f"--fairmind-baseline={source}", "--fairmind-gate=equalized_odds_difference ~ 0.02")
    result, doc = run_with_report(pytester, *args)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert any("no baseline" in n and source in n for n in doc["notices"]), doc["notices"]
    result, doc = run_with_report(pytester, *args, "--fairmind-strict")
    assert result.ret == 1
    assert doc["notices"][-1].startswith("strict: FAILED because no baseline for 1 metric(s)")


# --- 13. collect-only ----------------------------------------------------------------------------------


def test_13_collect_only_records_gates_and_writes_nothing(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fairmind(model="m", gates=["accuracy >= 0.9"])
        def test_a(fairmind):
            fairmind.record({"accuracy": 0.1})
        """
    )
    args = [
        "--collect-only",
        f"--fairmind-json={REPORT}",
        "--fairmind-strict",
        "--fairmind-gate=no_such_metric >= 1",
        "--fairmind-provider=probe",
        "--fairmind-baseline=last",
    ]
    for extra in ([], ["-n", "2"]) if _has_xdist() else ([],):  # xdist workers start nothing either
        result = pytester.runpytest(*args, *extra)
        assert result.ret == 0, result.stdout.str()
        assert not (pytester.path / REPORT).exists()
        assert not (pytester.path / ".fairmind").exists()
        assert provider_log(pytester, "probe") == []
        assert "fairmind: 1 model" not in result.stdout.str() and "strict:" not in result.stdout.str()


def _has_xdist() -> bool:
    try:
        import xdist  # noqa: F401
    except ImportError:
        return False
    return True


# --- 14. gate typos ---------------------------------------------------------------------------------------

TYPO_SESSION = """
    def test_a(fairmind):
        fairmind.record({"demographic_parity_ratio": 0.9, "accuracy": 0.8}, model="credit", scope="sex")
"""


def test_14_a_gate_typo_offers_the_closest_known_keys(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(TYPO_SESSION)
    result, doc = run_with_report(
        pytester,
        "--fairmind-gate=demographic_parity_ratoi >= 0.8",
        "--fairmind-gate=credti:accuracy >= 0.5",
        "--fairmind-gate=zzz_unrelated <= 1",
    )
    prefix = "gate not evaluated (matched no metric): "
    typo = prefix + "demographic_parity_ratoi >= 0.8; did you mean demographic_parity_ratio?"
    model = prefix + "credti:accuracy >= 0.5; no model is named 'credti'; did you mean credit?"
    assert doc["gates_not_evaluated"] == [
        "demographic_parity_ratoi >= 0.8",
        "credti:accuracy >= 0.5",
        "zzz_unrelated <= 1",
    ]
    assert doc["notices"] == [typo, model]  # kept in the report
    assert result.stdout.lines.count(typo) == 1  # printed once
    assert result.stdout.lines.count(model) == 1
    assert "gate not evaluated (matched no metric): zzz_unrelated <= 1" in result.stdout.lines


def test_14_hints_use_keys_and_their_last_segments() -> None:
    from pytest_fairmind.gating.evaluate import not_evaluated_hint

    models = {
        "credit": ModelResult("credit", metrics={"sex/demographic_parity_ratio": 0.9, "age/accuracy": 0.8}),
        "churn": ModelResult("churn", metrics={"recall": 0.5}),
    }
    assert not_evaluated_hint("demographic_parity_ratoi >= 0.8", models) == (
        "did you mean demographic_parity_ratio?"
    )
    assert not_evaluated_hint("sex/demographic_parity_rati >= 0.8", models) == (
        "did you mean sex/demographic_parity_ratio?"
    )
    assert not_evaluated_hint("churn:acuracy >= 0.8", models) is None  # churn has no such key
    assert not_evaluated_hint("credit:acuracy >= 0.8", models) == "did you mean accuracy?"
    assert (
        not_evaluated_hint("chrun:recall >= 0.8", models) == "no model is named 'chrun'; did you mean churn?"
    )
    assert not_evaluated_hint("recall ~ 0.1", models) is None  # it matched: not evaluated for another reason
    assert not_evaluated_hint("not a gate", models) is None


# --- 16. marker model names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ('"a\\x00b"', "control characters"),
        ('"x" * 5000', "5000 characters"),
        ('"line\\u2028break"', "a line separator"),
        ('"two\\nlines"', "control characters"),
    ],
)
def test_16_a_bad_marker_model_name_errors_once(pytester: pytest.Pytester, name: str, why: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.fairmind(model={name})
        def test_bad(fairmind):
            fairmind.record({{"accuracy": 0.9}})

        def test_good(fairmind):
            fairmind.record({{"accuracy": 0.9}}, model="good")
        """
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=1, errors=1)
    out = result.stdout.str()
    assert "During handling of the above exception" not in out
    errors = [line for line in result.stdout.lines if line.startswith("@pytest.mark.fairmind: model name")]
    assert len(errors) == 1, out
    assert why in errors[0]
    assert list(doc["models"]) == ["good"]  # the bad name reached no report


def test_16_model_names_are_validated_alike_in_records_and_marks() -> None:
    for bad in ("a\x00b", "x" * 251, "a\u2028b", "a\u2029b", "a\x85b", "a\x7fb", ""):
        with pytest.raises(RecordError):
            validate_model_name(bad)
        with pytest.raises(RecordError):
            make_record({"a": 1}, model=bad)
        marked = parse_marks([pytest.mark.fairmind(model=bad).mark])
        assert marked.error is not None and marked.model is None
    assert validate_model_name("crédit v2 (ß)") == "crédit v2 (ß)"


# --- 17. collision warnings point at the test ---------------------------------------------------------------

COLLIDING = """
    def test_a(fairmind):
        fairmind.record({"ratio": 0.8}, model="m")


    def test_b(fairmind):
        fairmind.record({"ratio": 0.9}, model="m")
"""


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_17_a_collision_warning_points_at_the_test(pytester: pytest.Pytester, xdist: list[str]) -> None:
    if xdist:
        pytest.importorskip("xdist")
    path = pytester.makepyfile(COLLIDING)
    # without pytest's warnings plugin the warning reaches Python's machinery, here this test's
    with pytest.warns(FairmindWarning, match="'ratio'") as caught:
        result, _ = run_with_report(pytester, "-p", "no:warnings", *xdist)
    assert result.ret == 0
    [warning] = [w for w in caught if issubclass(w.category, FairmindWarning)]
    assert Path(warning.filename) == path  # the test file, not controller.py
    lines = path.read_text().splitlines()
    assert lines[warning.lineno - 1].startswith("def test_b")  # the test whose value won


def test_17_the_warnings_summary_names_the_test_file(pytester: pytest.Pytester) -> None:
    path = pytester.makepyfile(COLLIDING)
    line = 1 + path.read_text().splitlines().index("def test_b(fairmind):")
    result = pytester.runpytest()
    assert result.ret == 0
    summary = result.stdout.str().partition("warnings summary")[2]
    assert "controller.py" not in summary
    assert re.search(rf"{re.escape(path.name)}:{line}: FairmindWarning: model 'm'", summary), summary


# --- 18. the report line only when the report was written ---------------------------------------------------


def test_18_no_report_line_when_writing_the_report_failed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_a(fairmind):
            fairmind.record({"accuracy": 0.9}, model="m")
        """
    )
    (pytester.path / "blocker").write_text("a file, not a folder")
    result = pytester.runpytest("--fairmind-json=blocker/r.json")
    assert result.ret == 1
    assert not any(line.startswith("report: ") for line in result.stdout.lines), result.stdout.str()
    result.stdout.fnmatch_lines(["could not write the report blocker/r.json*"])
    result = pytester.runpytest("--fairmind-json=written.json")
    assert result.ret == 0
    assert "report: written.json" in result.stdout.lines


# --- 20. a key holding a secret is refused at record time ---------------------------------------------------

SECRET = "abc123verysecretvalue"


def test_20_a_key_holding_a_secret_is_refused_where_it_is_recorded(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_TOKEN", SECRET)
    providers_conftest(pytester)
    pytester.makepyfile(
        """
        import os
        import pytest

        def test_leaky(fairmind):
            fairmind.record({f"run/{os.environ['MY_TOKEN']}/x": 1.0}, model="m")

        def test_leaky_scope(fairmind):
            fairmind.record({"x": 1.0}, model="m", scope=f"s{os.environ['MY_TOKEN']}")

        def test_clean(fairmind):
            fairmind.record({"x": 1.0}, model="m", params={"token": os.environ["MY_TOKEN"]})
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-provider=probe")
    result.assert_outcomes(passed=1, failed=2)
    out = result.stdout.str()
    refused = [line for line in result.stdout.lines if line.startswith("E ") and "RecordError" in line]
    assert len(refused) == 2 and all("holds the value of MY_TOKEN" in line for line in refused), out
    assert SECRET not in out
    assert doc["models"]["m"]["metrics"] == {"x": 1.0}
    assert doc["models"]["m"]["params"] == {"token": "***"}  # values are redacted, as before
    [logged] = provider_log(pytester, "probe")
    assert list(logged["models"]["m"]["metrics"]) == ["x"]


def test_20_make_record_names_where_the_secret_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", SECRET)
    leaky: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
        ({f"a/{SECRET}": 1}, "m", {}),
        ({"a": 1}, "m", {"tags": {f"t{SECRET}": "x"}}),
        ({"a": 1}, f"m-{SECRET}", {}),
    ]
    for metrics, model, more in leaky:
        with pytest.raises(RecordError, match="the value of PGPASSWORD") as info:
            make_record(metrics, model=model, **more)
        assert SECRET not in str(info.value)
    assert make_record({"a": 1}, model="m", params={"p": SECRET})["params"] == {"p": SECRET}


# --- 24. the header and the summary use the same words for gates --------------------------------------------


def test_24_header_and_summary_count_gates_in_the_same_words(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfairmind_gates =\n    accuracy >= 0.5\n    demographic_parity_ratio >= 0.8\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fairmind(model="credit", gates=["accuracy <= 1", "demographic_parity_ratio <= 1"])
        def test_credit(fairmind):
            fairmind.record({"accuracy": 0.9, "demographic_parity_ratio": 0.85}, scope="sex")
            fairmind.record({"demographic_parity_ratio": 0.9}, scope="age")
        """
    )
    result = pytester.runpytest()
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "fairmind: providers: none; gates: 2 from options/ini (marker gates are added per test)",
            "*- fairmind: 1 model(s), 4 gate(s) (2 from options/ini, 2 from markers) on 3 key(s) -*",
            "model*verdict*",
        ]
    )


# --- 22. providers warm up at session start (plugin side) --------------------------------------------

WARMING = """
    import json
    import os

    from pytest_fairmind.result import ProviderOutcome, RunRef


    def event(what, **more):
        with open("events.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"event": what, "pid": os.getpid(), **more}) + "\\n")


    class Warming:
        name = "warming"

        def __init__(self, settings):
            self.settings = settings

        def target(self):
            return "memory://warming"

        def warm_up(self):
            event("warm_up")

        def prepare(self, project):
            event("prepare", project=project)

        def log(self, session, *, timeout):
            event("log", models=sorted(session.models))
            return ProviderOutcome(ok=True, runs={m: RunRef(id=m) for m in session.models})

        def close(self):
            event("close")


    def pytest_fairmind_register_providers(registry):
        registry.register("warming", Warming)
"""

WARMED_TESTS = """
    import pytest
    from conftest import event

    def test_a(fairmind):
        event("test")
        fairmind.record({"accuracy": 0.9}, model="m")

    def test_b(fairmind):
        event("test")
        fairmind.record({"accuracy": 0.8}, model="m")
"""


def _events(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    path = pytester.path / "events.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    events = [json.loads(line) for line in lines]
    path.unlink(missing_ok=True)
    return events


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_22_providers_warm_up_at_session_start_and_only_log_at_its_end(
    pytester: pytest.Pytester, xdist: list[str]
) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makeconftest(WARMING)
    pytester.makepyfile(WARMED_TESTS)
    result = pytester.runpytest("--fairmind-provider=warming", "-p", "no:randomly", *xdist)
    assert result.ret == 0, result.stdout.str()
    events = _events(pytester)
    provider = [e for e in events if e["event"] != "test"]
    # started once, in the aggregating process (never in an xdist worker), before any test ran;
    # asked to create its store once something was recorded; ended after logging
    assert [e["event"] for e in provider] == ["warm_up", "prepare", "log", "close"]
    assert {e["pid"] for e in provider} == {os.getpid()}
    assert events[0]["event"] == "warm_up"
    assert provider[1]["project"] == "fairmind"
    assert provider[2]["models"] == ["m"]


def test_22_providers_are_stopped_on_every_path(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(WARMING)
    pytester.makepyfile(
        test_quiet="def test_quiet():\n    pass\n",
        test_interrupt="def test_a(fairmind):\n"
        "    fairmind.record({'accuracy': 0.9}, model='m')\n"
        "def test_b():\n"
        "    raise KeyboardInterrupt\n",
        test_records="def test_records(fairmind):\n    fairmind.record({'accuracy': 0.9}, model='m')\n",
    )
    # nothing recorded: no store created, nothing logged, the child ended
    assert pytester.runpytest("--fairmind-provider=warming", "test_quiet.py").ret == 0
    assert [e["event"] for e in _events(pytester)] == ["warm_up", "close"]
    # a usage error after the session started (a bad -k expression, found while collecting)
    result = pytester.runpytest("--fairmind-provider=warming", "-k", "bad(", "test_records.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [e["event"] for e in _events(pytester)] == ["warm_up", "close"]
    # an interrupted session still logs (verdict "interrupted"), then ends its providers
    result = pytester.runpytest("--fairmind-provider=warming", "test_interrupt.py", no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert [e["event"] for e in _events(pytester)] == ["warm_up", "prepare", "log", "close"]
    # collect-only starts nothing
    assert pytester.runpytest("--fairmind-provider=warming", "--collect-only").ret == 0
    assert _events(pytester) == []
