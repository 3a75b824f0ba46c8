"""Provider isolation: a provider that raises, fails, breaks its contract or hangs is reported as
failed, warned about in the summary, and changes the exit code only under ``--fairmind-strict``;
it never stops another provider. Third-party providers registered from a conftest (real sessions
in a subprocess, no mocks)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import TWO_MODELS, load, run_pytest, third_party_conftest, wait_no_processes, write

PROVIDERS = {"boom": "raise", "nope": "fail", "weird": "bad-return", "quits": "exit", "good": "ok"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    extra = {"slow": "sleep", "malformed": "malformed", "silent": "silent-fail", "vandal": "vandal"}
    write(tmp_path, "conftest.py", third_party_conftest({**PROVIDERS, **extra}))
    write(tmp_path, "test_models.py", TWO_MODELS)
    return tmp_path


def test_failures_are_reported_and_never_stop_another_provider(project: Path) -> None:
    names = ",".join(PROVIDERS)
    result = run_pytest(project, f"--fairmind-provider={names}", "--fairmind-json=report.json")
    assert result.rc == 0, result.out
    providers = result.report()["providers"]
    assert list(providers) == list(PROVIDERS)
    assert providers["good"]["ok"] is True
    assert set(providers["good"]["runs"]) == {"credit", "churn"}
    assert (project / "logged-good.txt").read_text() == "churn,credit\n"
    expected_errors = {
        "boom": "RuntimeError: boom exploded",
        "nope": "nope: server said no",
        "weird": "provider returned dict",
        "quits": "SystemExit",
    }
    for name, text in expected_errors.items():
        assert providers[name]["ok"] is False, name
        assert text in providers[name]["error"], (name, providers[name]["error"])
        assert providers[name]["runs"] == {}
        assert f"{name}: FAILED: " in result.out
        assert "timed out" not in providers[name]["error"]  # they failed; nothing hung
    assert "good: 2 run(s) -> memory://good" in result.out
    assert "fairmind replay .fairmind/sessions/" in result.out
    assert "INTERNALERROR" not in result.out
    # The history entry holds the final outcome (not the "pending" one saved before logging).
    [entry] = result.entries()
    saved = entry.read_text(encoding="utf-8")
    assert '"ok": true' in saved and "boom exploded" in saved


def test_failing_tests_keep_their_exit_code_when_a_provider_fails(project: Path) -> None:
    write(project, "test_zfail.py", "def test_fails(fairmind):\n    fairmind.record({'a': 1}, model='x')\n"
          "    assert False\n")  # fmt: skip
    result = run_pytest(project, "--fairmind-provider=boom,good", "--fairmind-strict")
    assert result.rc == 1
    assert "1 failed, 2 passed" in result.out


def test_a_hanging_provider_is_abandoned_at_the_timeout(project: Path) -> None:
    result = run_pytest(
        project, "--fairmind-provider=slow,good", "--fairmind-timeout=1.5", "--fairmind-json=report.json"
    )
    assert result.rc == 0, result.out
    providers = result.report()["providers"]
    assert providers["good"]["ok"] is True
    assert providers["slow"]["ok"] is False
    assert "timed out after 1.5 s (--fairmind-timeout)" in providers["slow"]["error"]
    assert "slow: FAILED: timed out" in result.out
    # Bounded: interpreter start-up plus the 1.5 s budget, not the provider's 600 s (the start-up
    # depends on the machine's load: a generous bound).
    assert result.seconds < 1.5 + 60, result.seconds
    assert not wait_no_processes(project, grace=2)

    strict = run_pytest(project, "--fairmind-provider=slow", "--fairmind-timeout=1", "--fairmind-strict")
    assert strict.rc == 1, strict.out


def test_provider_failures_do_not_mask_a_failed_gate(project: Path) -> None:
    result = run_pytest(
        project,
        "--fairmind-provider=boom",
        "--fairmind-gate=credit:demographic_parity_ratio>=0.9",
        "--fairmind-json=report.json",
    )
    assert result.rc == 1, result.out
    report = result.report()
    assert report["models"]["credit"]["verdict"] == "fail"
    assert report["providers"]["boom"]["ok"] is False
    # warn-only gates and a failed provider: still exit 0 without --fairmind-strict
    warn = run_pytest(
        project,
        "--fairmind-provider=boom",
        "--fairmind-gate=credit:demographic_parity_ratio>=0.9",
        "--fairmind-gate-action=warn",
    )
    assert warn.rc == 0, warn.out


def test_malformed_outcomes_and_vandal_providers_cannot_break_the_report(project: Path) -> None:
    """A provider that returns an outcome the report cannot store, or changes the session it
    was given: the report, the history and the other providers see nothing of it."""
    result = run_pytest(
        project, "--fairmind-provider=malformed,silent,vandal,good", "--fairmind-json=report.json"
    )
    assert result.rc == 0, result.out
    assert "INTERNALERROR" not in result.out and "Traceback" not in result.out
    report = result.report()
    providers = report["providers"]
    assert providers["malformed"]["ok"] is False
    assert providers["malformed"]["error"] == (
        "provider returned a malformed outcome: TypeError: run of 'credit' is a str, not a RunRef"
    )
    assert providers["silent"] == {
        "ok": False,
        "error": "failed (the provider gave no reason)",
        "runs": {},
        "target": "memory://silent",
    }
    assert providers["vandal"]["ok"] is True
    assert set(report["models"]) == {"credit", "churn"}
    assert report["session"]["id"] != "changed"
    assert (project / "logged-good.txt").read_text() == "churn,credit\n"
    [entry] = result.entries()
    assert load(entry) == report
