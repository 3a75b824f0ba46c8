"""``fairmind check PATH --baseline SOURCE`` (issue 8): regression gating outside pytest, with the
same table, the same verdicts and exit codes 0 (pass), 1 (a gate failed), 2 (bad usage)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_fairmind import history, report
from pytest_fairmind.cli import main
from pytest_fairmind.result import GateResult, ModelResult, SessionResult

EOD = "sex/equalized_odds_difference"
DPR = "sex/demographic_parity_ratio"
FAIRMIND = Path(sys.executable).with_name("fairmind")


def session(sid: str, started: str, metrics: dict[str, float], *, gates: list[GateResult] | None = None,
            project: str = "p", model: str = "credit") -> SessionResult:  # fmt: skip
    return SessionResult(
        id=sid,
        project=project,
        started=started,
        models={model: ModelResult(model, metrics=metrics, gates=gates or [])},
    )


def write(path: Path, s: SessionResult) -> Path:
    path.write_text(report.dumps(s), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """base.json (EOD 0.1, DPR 0.9), worse.json (EOD 0.3), better.json (EOD 0.05) in the cwd."""
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path / "base.json",
        session("b", "2025-01-01T00:00:00+00:00", {EOD: 0.1, DPR: 0.9, "sex/gap": 0.0}),
    )
    write(
        tmp_path / "worse.json",
        session("w", "2025-01-02T00:00:00+00:00", {EOD: 0.3, DPR: 0.9, "sex/gap": 0.2}),
    )
    write(
        tmp_path / "better.json",
        session("g", "2025-01-02T00:00:00+00:00", {EOD: 0.05, DPR: 0.95, "sex/gap": 0.0}),
    )
    return tmp_path


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_exit_codes_and_table(files: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(FAIRMIND), "check", *args], capture_output=True, text=True, cwd=files, timeout=60
        )

    worse = run("worse.json", "--baseline", "base.json", "--gate", "equalized_odds_difference ~ 0.05")
    assert worse.returncode == 1, worse.stderr
    lines = worse.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("model   metric")))
    assert lines[header].split() == ["model", "metric", "baseline", "current", "change", "limit", "result"]
    assert lines[header + 1].split() == [
        "credit",
        EOD,
        "0.1",
        "0.3",
        "+0.2",
        "(+200.0%)",
        "<=",
        "0.15",
        "WORSE",
    ]
    assert any(
        line.startswith(f"gate FAILED: credit: {EOD} = 0.3, bound <= 0.15 (baseline 0.1") for line in lines
    )

    better = run("better.json", "--baseline", "base.json", "--gate", "equalized_odds_difference ~ 0.05")
    assert better.returncode == 0, better.stdout
    assert "ok" in better.stdout.split()

    bad = run("worse.json", "--baseline", "base.json", "--gate", "equalized_odds_difference ~ -1")
    assert bad.returncode == 2
    assert "fairmind: error: gate 'equalized_odds_difference ~ -1': the tolerance must be" in bad.stderr


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ("*_difference ~ 0.2", 0),
        ("*_difference ~ 0.19", 1),
        ("*_difference ~ 200%", 0),
        ("*_difference ~ 199%", 1),
        ("demographic_parity_ratio ~ 0", 0),
        ("credit:* ~ 0.5", 0),  # gap has no known direction: not applied, not a failure
    ],
)
def test_exit_code_follows_the_rules(
    files: Path, capsys: pytest.CaptureFixture[str], rule: str, code: int
) -> None:
    assert check(capsys, "worse.json", "--baseline", "base.json", "--gate", rule)[0] == code


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 1)])
def test_missing_baseline_file(
    files: Path, capsys: pytest.CaptureFixture[str], strict: bool, code: int
) -> None:
    args = ["worse.json", "--baseline", "main.json", "--gate", "*_difference ~ 0.05"]
    result, out, _ = check(capsys, *args, *(["--strict"] if strict else []))
    assert result == code
    assert "no baseline" in out and "warning: no baseline (main.json: no such file) for 1 metric(s)" in out


@pytest.mark.parametrize(("strict", "code"), [(False, 0), (True, 1)])
def test_unknown_direction(files: Path, capsys: pytest.CaptureFixture[str], strict: bool, code: int) -> None:
    args = ["worse.json", "--baseline", "base.json", "--gate", "gap ~ 0.1"]
    result, out, _ = check(capsys, *args, *(["--strict"] if strict else []))
    assert result == code
    assert "gate not evaluated (no metric of known direction matched): gap ~ 0.1" in out
    assert "credit: sex/gap: direction unknown [gap ~ 0.1]" in out and "--lower-is-better GLOB" in out
    # declared: evaluated (0 -> 0.2 is worse than 0 + 0.1)
    result, out, _ = check(capsys, *args, "--lower-is-better", "gap", *(["--strict"] if strict else []))
    assert result == 1 and "WORSE" in out and "<= 0.1 (baseline 0, tolerance 0.1, lower is better)" in out


def test_relative_tolerance_with_zero_baseline(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--baseline", "base.json", "--gate", "gap ~ 1000%", "--lower-is-better", "credit:gap"]
    assert check(capsys, "better.json", *args)[0] == 0  # 0 -> 0
    assert check(capsys, "worse.json", *args)[0] == 1  # 0 -> 0.2: any worsening of 0 fails


def test_nan_current_value_fails(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(files / "nan.json", session("n", "2025-01-03T00:00:00+00:00", {EOD: math.nan}))
    code, out, _ = check(capsys, "nan.json", "--baseline", "base.json", "--gate", "*_difference ~ 1")
    assert code == 1 and "FAIL: nan" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.json", "--gate", "x ~ 1"], "nope.json: no such file"),
        (["worse.json", "--gate", "x ~ abc"], "'abc' is not a tolerance"),
        (["worse.json", "--gate", "x ~"], "the tolerance is missing"),
        (
            ["worse.json", "--baseline", "junk.txt", "--gate", "x ~ 1"],
            "junk.txt: not a readable pytest-fairmind report",
        ),
        (["junk.txt", "--gate", "x ~ 1"], "junk.txt: cannot read the session"),
        (
            ["worse.json", "--baseline", "base.json", "--gate", "x ~ 1", "--timeout", "0"],
            "--timeout must be > 0",
        ),
    ],
)
def test_usage_errors_exit_2(
    files: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (files / "junk.txt").write_text("not json", encoding="utf-8")
    code, _, err = check(capsys, *args)
    assert code == 2 and message in err


def test_a_folder_of_several_sessions_is_a_usage_error(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history.save(files / "h", session("a", "2025-01-01T00:00:00+00:00", {EOD: 0.1}))
    history.save(files / "h", session("b", "2025-01-02T00:00:00+00:00", {EOD: 0.1}))
    code, _, err = check(capsys, str(files / "h" / "sessions"), "--gate", "eq* ~ 1")
    assert code == 2 and "check takes one" in err


def test_rules_without_baseline_source(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(capsys, "worse.json", "--gate", "*_difference ~ 0.05")
    assert code == 0 and "warning: no baseline (no --baseline given)" in out
    assert check(capsys, "worse.json", "--gate", "*_difference ~ 0.05", "--strict")[0] == 1


def test_baseline_without_rules(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(
        capsys, "worse.json", "--baseline", "base.json", "--gate", "accuracy <= 1", "--strict"
    )
    assert code == 1  # the plain gate matches nothing: strict
    assert "baseline 'base.json' given but no regression rule uses it" in out


def test_last_baseline_from_the_history(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = files / ".fairmind"
    history.save(folder, session("s1", "2025-01-01T00:00:00+00:00", {EOD: 0.1}))
    history.save(folder, session("s2", "2025-01-02T00:00:00+00:00", {EOD: 0.12}))
    history.save(folder, session("s3", "2025-01-03T00:00:00+00:00", {EOD: 0.3}))
    code, out, _ = check(capsys, "last", "--baseline", "last", "--gate", "*_difference ~ 0.05")
    assert code == 1 and "0.12" in out.split()  # s3 against s2
    entries = history.entries(folder)
    # an older session is checked against the sessions before it, never against newer ones
    code, out, _ = check(capsys, str(entries[1]), "--baseline", "last", "--gate", "*_difference ~ 0.05")
    assert code == 0 and "0.1" in out.split()
    code, out, _ = check(capsys, str(entries[0]), "--baseline", "last", "--gate", "*_difference ~ 0.05")
    assert code == 0 and "no earlier session of project 'p'" in out


def test_the_sessions_own_rules_and_directions(pytester: pytest.Pytester) -> None:
    """A report written by pytest is checked again with its own rules and the directions pytest used."""
    pytester.makeini("[pytest]\nfairmind_lower_is_better = gap\n")
    pytester.makepyfile(
        test_it=textwrap.dedent(
            """
            import json, pathlib

            def test_rec(fairmind):
                gap = json.loads(pathlib.Path("gap.json").read_text())
                fairmind.record({"gap": gap, "equalized_odds_difference": 0.1}, model="credit", scope="sex")
            """
        )
    )
    (pytester.path / "gap.json").write_text("0.1", encoding="utf-8")
    assert pytester.runpytest("-p", "no:cacheprovider", "--fairmind-json=base.json").ret == 0
    (pytester.path / "gap.json").write_text("0.25", encoding="utf-8")
    rules = ["--fairmind-gate=gap ~ 0.1", "--fairmind-gate=equalized_odds_difference ~ 0"]
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--fairmind-baseline=base.json", *rules, "--fairmind-json=r.json"
    )
    assert result.ret == 1
    pytest_table = [line for line in result.stdout.lines if line.startswith("credit  sex/")]

    done = subprocess.run(
        [str(FAIRMIND), "check", "r.json", "--baseline", "base.json"],
        capture_output=True, text=True, cwd=pytester.path, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("credit  sex/")] == pytest_table
    assert "direction unknown" not in done.stdout
    # against itself nothing got worse
    assert main(["check", str(pytester.path / "r.json"), "--baseline", str(pytester.path / "r.json")]) == 0


def test_check_report_is_json_clean(files: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The session check loads is unchanged on disk (check never rewrites a report)."""
    before = (files / "worse.json").read_text(encoding="utf-8")
    check(capsys, "worse.json", "--baseline", "base.json", "--gate", "*_difference ~ 0.05")
    assert (files / "worse.json").read_text(encoding="utf-8") == before
    assert json.loads(before)["models"]["credit"]["gates"] == []
