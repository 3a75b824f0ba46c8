"""``fairmind check`` on evidence (``--evidence``, ``--inconclusive``, ``--multiple-testing``,
``--ci``, defaulting to the settings the session ran with) and ``fairmind report --html``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_fairmind import report
from pytest_fairmind.cli import _policy, build_parser, main
from pytest_fairmind.metrics import assess
from pytest_fairmind.result import ModelResult, SessionResult

KEY = "sex/demographic_parity_difference"
GATE = "demographic_parity_difference <= 0.1"


def small_groups_session(settings: dict[str, Any]) -> SessionResult:
    """A model whose difference (0.2 in 40-row groups) is past the bound on points, but cannot be
    told apart from it on evidence."""
    y = np.tile([0, 1], 40)
    pred = np.r_[np.repeat([1, 0], [24, 16]), np.repeat([1, 0], [16, 24])]
    groups = np.repeat(["a", "b"], 40)
    result = assess(y, pred, sensitive_features={"sex": groups}, n_boot=500)
    metrics = {f"sex/{k}": float(v) for k, v in result.metrics().items()}
    assert metrics[KEY] == pytest.approx(0.2) and result.evidence is not None
    model = ModelResult("credit", metrics=metrics, evidence={"sex": result.evidence})
    return SessionResult(
        id="s1", project="p", started="2026-01-01T00:00:00+00:00", models={"credit": model}, settings=settings
    )


def saved(tmp_path: Path, settings: dict[str, Any]) -> str:
    path = tmp_path / "fairness.json"
    path.write_text(report.dumps(small_groups_session(settings)), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("settings", "flags", "code"),
    [
        ({}, [], 1),  # no settings recorded: points, 0.2 > 0.1 fails
        ({}, ["--evidence", "interval"], 0),  # inconclusive, warn
        ({}, ["--evidence", "interval", "--inconclusive", "fail"], 1),
        ({"evidence": "interval"}, [], 0),  # the session's own policy
        ({"evidence": "interval", "inconclusive": "fail"}, [], 1),
        ({"evidence": "interval", "inconclusive": "fail"}, ["--inconclusive", "warn"], 0),  # flags win
        ({"evidence": "interval"}, ["--evidence", "point"], 1),
        ({"evidence": "bogus", "inconclusive": 3}, [], 1),  # invalid recorded values: the defaults
    ],
)
def test_check_policy_precedence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], settings: dict[str, Any], flags: list[str], code: int
) -> None:
    path = saved(tmp_path, settings)
    assert main(["check", path, "--gate", GATE, *flags]) == code, capsys.readouterr()


def test_policy_reads_flags_then_settings_then_defaults() -> None:
    session = SessionResult(
        id="s", project="p", started="", settings={"ci": 0.9, "multiple_testing": "bonferroni"}
    )
    args = build_parser().parse_args(["check", "x.json"])
    assert _policy(args, session) == {
        "evidence": "point",
        "inconclusive": "warn",
        "multiple_testing": "bonferroni",
        "level": 0.9,
    }
    args = build_parser().parse_args(["check", "x.json", "--ci", "0.99", "--multiple-testing", "none"])
    assert _policy(args, session)["level"] == 0.99 and _policy(args, session)["multiple_testing"] == "none"
    session.settings = {"ci": True}  # not a level
    assert _policy(build_parser().parse_args(["check", "x.json"]), session)["level"] == 0.95


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "nan", "high"])
def test_a_bad_ci_is_bad_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    assert main(["check", saved(tmp_path, {}), "--ci", bad]) == 2
    assert "--ci" in capsys.readouterr().err


def test_the_check_level_changes_the_outcome(tmp_path: Path) -> None:
    """A looser family level (ci 0.5) turns the same inconclusive evidence into a failure."""
    path, gate = saved(tmp_path, {"evidence": "interval"}), "demographic_parity_difference <= 0.05"
    assert main(["check", path, "--gate", gate]) == 0  # inconclusive at 0.95, warn
    assert main(["check", path, "--gate", gate, "--ci", "0.5"]) == 1


def _report_command() -> Any:
    try:
        return importlib.import_module("pytest_fairmind.html.command").report_command
    except (ImportError, AttributeError):
        pytest.skip("pytest_fairmind.html.command.report_command is not there yet")


def test_report_writes_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_command()
    pytest.importorskip("jinja2")
    monkeypatch.chdir(tmp_path)
    path = saved(tmp_path, {"evidence": "interval"})
    assert main(["report", path, "--html", "out.html", "--history", str(tmp_path / "none")]) == 0
    page = (tmp_path / "out.html").read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "credit" in page


def test_report_needs_html_and_a_readable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _report_command()
    monkeypatch.chdir(tmp_path)
    assert main(["report", "whatever.json"]) == 2  # --html is required
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    assert main(["report", "bad.json", "--html", "out.html"]) == 2
    assert main(["report", "missing.json", "--html", "out.html"]) == 2
    assert not (tmp_path / "out.html").exists()
