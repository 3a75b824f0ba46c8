"""SPEC section 6: the session report, the local history and the GitHub job summary."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from helpers import (
    REPORT,
    TWO_MODELS,
    history_entries,
    load_report,
    providers_conftest,
    run_with_report,
    schema,
    strict_loads,
    third_party_conftest,
    validate,
)

from pytest_fairmind import report as report_module
from pytest_fairmind.dispatch import PENDING_ERROR
from pytest_fairmind.result import ModelResult, SessionResult

FULL_SUITE = """
    import math
    import pytest

    def test_credit(fairmind):
        fairmind.record({"demographic_parity_ratio": 0.85, "count": 100}, model="credit", scope="sex",
                        params={"threshold": 0.5, "solver": "lbfgs", "calibrated": True, "note": None},
                        tags={"owner": "risk"})

    def test_credit_age(fairmind):
        fairmind.record({"demographic_parity_ratio": 0.7}, model="credit", scope="age")

    def test_collide(fairmind):
        fairmind.record({"shared": 1.0}, model="credit")

    def test_collide_2(fairmind):
        fairmind.record({"shared": 2.0}, model="credit")

    @pytest.mark.fairmind(model="unicodé model")
    def test_nonfinite(fairmind):
        fairmind.record({"nan_metric": math.nan, "inf_metric": math.inf, "neg_inf": -math.inf, "fine": 1.5})

    @pytest.mark.fairmind(model="unicodé model")
    @pytest.mark.xfail(reason="known")
    def test_xfail(fairmind):
        assert False
"""

HOOK_CONFTEST = """
    import math

    def pytest_fairmind_model_result(result, session):
        if result.name == "credit":
            result.groups["sex"] = [
                {"group": {"sex": "f"}, "count": 40, "selection_rate": 0.5, "true_positive_rate": math.nan,
                 "false_positive_rate": 0.1, "accuracy": 0.9},
                {"group": {"sex": "m"}, "count": 60, "selection_rate": 0.6, "true_positive_rate": 0.8,
                 "false_positive_rate": 0.2, "accuracy": 0.85},
            ]
"""


@pytest.fixture
def full(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_full=FULL_SUITE)
    pytester.makeconftest(HOOK_CONFTEST)
    return pytester


def test_schema_file_is_shipped_and_valid_draft_2020_12() -> None:
    doc = schema()
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(doc)
    assert doc["properties"]["schema"] == {"const": "pytest-fairmind/1"}


def test_full_report_matches_the_schema_and_spec(full: pytest.Pytester) -> None:
    result, doc = run_with_report(
        full, "--fairmind-gate=demographic_parity_ratio>=0.8", "--fairmind-gate=zzz>=1"
    )
    result.assert_outcomes(passed=5, xfailed=1, warnings=1)
    assert doc["schema"] == "pytest-fairmind/1"
    assert set(doc) >= {"schema", "session", "providers", "models", "gates_not_evaluated"}
    session = doc["session"]
    assert set(session) == {"id", "project", "started", "finished", "exitstatus", "git"}
    assert session["project"] == "fairmind"
    assert session["exitstatus"] == 1  # final: a gate failed though every test passed
    assert result.ret == 1
    assert session["git"] is None  # not a git repository
    assert doc["providers"] == {}
    assert doc["gates_not_evaluated"] == ["zzz>=1"]

    credit = doc["models"]["credit"]
    assert set(credit) == {
        "verdict", "metrics", "nonfinite", "params", "tags", "groups", "tests", "gates", "collisions",
        "scans", "evidence", "nonfinite_paths",
    }  # fmt: skip
    assert (credit["scans"], credit["evidence"], credit["nonfinite_paths"]) == ({}, {}, {})
    assert credit["verdict"] == "fail"
    assert credit["params"] == {
        "sex/threshold": 0.5,
        "sex/solver": "lbfgs",
        "sex/calibrated": True,
        "sex/note": None,
    }
    assert credit["collisions"] == [
        {
            "key": "shared",
            "values": [
                {"nodeid": "test_full.py::test_collide", "value": 1.0},
                {"nodeid": "test_full.py::test_collide_2", "value": 2.0},
            ],
        }
    ]
    assert [row["group"] for row in credit["groups"]["sex"]] == [{"sex": "f"}, {"sex": "m"}]
    assert credit["groups"]["sex"][0]["true_positive_rate"] is None  # strict JSON: NaN -> null
    assert sorted((g["key"], g["passed"]) for g in credit["gates"]) == [
        ("age/demographic_parity_ratio", False),
        ("sex/demographic_parity_ratio", True),
    ]
    other = doc["models"]["unicodé model"]
    assert other["verdict"] == "pass"
    assert sorted(t["outcome"] for t in other["tests"]) == ["passed", "xfailed"]


def test_nonfinite_metrics_are_null_with_words(full: pytest.Pytester) -> None:
    _, doc = run_with_report(full)
    text = (full.path / REPORT).read_text(encoding="utf-8")
    for token in ("NaN", "Infinity"):
        assert token not in text
    model = doc["models"]["unicodé model"]
    assert model["metrics"] == {"nan_metric": None, "inf_metric": None, "neg_inf": None, "fine": 1.5}
    assert model["nonfinite"] == {"nan_metric": "nan", "inf_metric": "inf", "neg_inf": "-inf"}
    # and back: the report rebuilds the same values
    session = report_module.load(str(full.path / REPORT))
    metrics = session.models["unicodé model"].metrics
    assert (
        math.isnan(metrics["nan_metric"])
        and metrics["inf_metric"] == math.inf
        and metrics["neg_inf"] == -math.inf
    )


def test_report_is_strict_utf8(full: pytest.Pytester) -> None:
    run_with_report(full)
    raw = (full.path / REPORT).read_bytes()
    text = raw.decode("utf-8")  # raises on anything else
    assert "unicodé model" in text
    assert strict_loads(text)["schema"] == "pytest-fairmind/1"


def test_strict_loader_rejects_nan_tokens() -> None:
    with pytest.raises(ValueError, match="NaN"):
        strict_loads('{"a": NaN}')
    with pytest.raises(ValueError, match="Infinity"):
        strict_loads('{"a": -Infinity}')


def test_dumps_never_writes_nan_tokens() -> None:
    session = SessionResult(
        id="s1",
        project="p",
        started="2024-01-01T00:00:00+00:00",
        finished="2024-01-01T00:00:01+00:00",
        exitstatus=0,
        models={"m": ModelResult(name="m", metrics={"a": math.nan, "b": -math.inf}, params={"p": "x"})},
    )
    doc = validate(strict_loads(report_module.dumps(session)))
    assert doc["models"]["m"]["metrics"] == {"a": None, "b": None}
    assert doc["models"]["m"]["nonfinite"] == {"a": "nan", "b": "-inf"}


def test_report_validates_schema_negative_cases() -> None:
    session = SessionResult(
        id="s", project="p", started="2024-01-01T00:00:00+00:00", finished=None, exitstatus=0
    )
    good = strict_loads(report_module.dumps(session))
    validate(good)
    mutations: tuple[Callable[[dict[str, Any]], object], ...] = (
        lambda d: d.update(schema="pytest-fairmind/2"),
        lambda d: d["session"].pop("id"),
        lambda d: d["models"].update(m={"verdict": "maybe"}),
        lambda d: d["providers"].update(x={"ok": True}),
    )
    for mutate in mutations:
        bad = json.loads(json.dumps(good))
        mutate(bad)
        with pytest.raises(AssertionError):
            validate(bad)


def test_json_path_is_relative_to_the_invocation_dir_and_dirs_are_created(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_rec(fairmind):\n    fairmind.record({'a': 1}, model='m')\n")
    result = pytester.runpytest("--fairmind-json=out/nested/r.json")
    assert result.ret == 0
    doc = load_report(pytester.path / "out" / "nested" / "r.json")
    assert doc["models"]["m"]["metrics"] == {"a": 1.0}
    result.stdout.fnmatch_lines(["report: out/nested/r.json"])
    assert not list((pytester.path / "out" / "nested").glob(".*"))  # no temp file left


def test_report_written_even_when_nothing_was_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result, doc = run_with_report(pytester)
    assert result.ret == 0
    assert doc["models"] == {} and doc["gates_not_evaluated"] == []
    assert doc["session"]["exitstatus"] == 0


def test_exitstatus_is_the_final_one(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"a": 1}, model="m")
        """
    )
    for args, code in (
        (["--fairmind-gate=a>=2"], 1),
        (["--fairmind-gate=a>=2", "--fairmind-gate-action=warn"], 0),
        ([], 0),
    ):
        result, doc = run_with_report(pytester, *args)
        assert result.ret == code
        assert doc["session"]["exitstatus"] == code
    pytester.makepyfile(test_failing="def test_fail():\n    assert False\n")
    result, doc = run_with_report(pytester)
    assert result.ret == doc["session"]["exitstatus"] == 1


def test_session_ids_are_unique_and_times_ordered(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_rec(fairmind):\n    fairmind.record({'a': 1}, model='m')\n")
    _, first = run_with_report(pytester)
    _, second = run_with_report(pytester)
    assert first["session"]["id"] != second["session"]["id"]
    assert first["session"]["started"] <= first["session"]["finished"] <= second["session"]["started"]


def test_git_information(pytester: pytest.Pytester) -> None:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
            cwd=pytester.path, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    git("init", "-q", "-b", "main")
    pytester.makepyfile("def test_rec(fairmind):\n    fairmind.record({'a': 1}, model='m')\n")
    pytester.makefile(".txt", tracked="v1")
    git("add", "tracked.txt")
    git("commit", "-q", "-m", "init")
    _, doc = run_with_report(pytester)
    assert doc["session"]["git"] == {"commit": git("rev-parse", "HEAD"), "branch": "main", "dirty": False}
    (pytester.path / "tracked.txt").write_text("v2")
    _, doc = run_with_report(pytester)
    assert doc["session"]["git"]["dirty"] is True


def test_providers_block(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"a": 1}, model="m1")
            fairmind.record({"a": 1}, model="m2")
        """
    )
    result, doc = run_with_report(pytester, "--fairmind-provider=probe,boom")
    assert result.ret == 0
    probe = doc["providers"]["probe"]
    assert probe["ok"] is True and probe["error"] is None
    assert probe["runs"] == {
        "m1": {"id": "probe-0", "url": "https://tracker.example/0", "path": None},
        "m2": {"id": "probe-1", "url": "https://tracker.example/1", "path": None},
    }
    boom = doc["providers"]["boom"]
    assert boom["ok"] is False and "probe exploded" in boom["error"] and boom["runs"] == {}


# --- history --------------------------------------------------------------------------------------

RECORDING = "def test_rec(fairmind):\n    fairmind.record({'a': 1}, model='m')\n"


def test_history_saved_for_a_session_that_recorded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDING)
    result = pytester.runpytest()
    assert result.ret == 0
    folder = pytester.path / ".fairmind"
    entries = history_entries(folder)
    assert len(entries) == 1
    doc = load_report(entries[0])
    assert doc["models"]["m"]["metrics"] == {"a": 1.0}
    assert doc["session"]["finished"] is not None and doc["session"]["exitstatus"] == 0
    assert entries[0].name.endswith(f"{doc['session']['id']}.json")
    assert (folder / ".gitignore").read_text().strip().endswith("*")
    assert not [p for p in (folder / "sessions").iterdir() if p.suffix != ".json"]  # atomic: no temp files


def test_history_saved_before_providers_are_called_and_updated_after(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(third_party_conftest({"peek": "peek", "nope": "fail"}))
    pytester.makepyfile(test_models=TWO_MODELS)
    result, doc = run_with_report(pytester, "--fairmind-provider=peek,nope")
    assert result.ret == 0, result.stdout.str()
    during = load_report(pytester.path / "peek-peek.json")  # what the history held while providers ran
    assert {name: p["error"] for name, p in during["providers"].items()} == {
        "peek": PENDING_ERROR,
        "nope": PENDING_ERROR,
    }
    assert during["models"] == doc["models"]
    [entry] = history_entries(pytester.path / ".fairmind")
    after = load_report(entry)
    assert after["providers"]["peek"]["ok"] is True
    assert after["providers"]["nope"] == {
        "ok": False,
        "error": "nope: server said no",
        "runs": {},
        "target": "memory://nope",
    }
    assert after == doc  # the entry and the report are the same document
    assert (pytester.path / ".fairmind" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert not [p for p in entry.parent.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    ("args", "saved"),
    [
        ([], False),
        (["--fairmind-gate=a>=1"], True),
        (["--fairmind-json=r.json"], True),
    ],
)
def test_history_only_for_sessions_that_did_something(
    pytester: pytest.Pytester, args: list[str], saved: bool
) -> None:
    pytester.makepyfile(
        """
        def test_plain():
            pass

        def test_fixture_without_record(fairmind):
            pass
        """
    )
    assert pytester.runpytest(*args).ret == 0
    assert bool(history_entries(pytester.path / ".fairmind")) is saved
    if not saved:
        assert not (pytester.path / ".fairmind").exists()


def test_history_folder_from_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfairmind_history = var/fm-history\n")
    pytester.makepyfile(RECORDING)
    pytester.runpytest()
    assert len(history_entries(pytester.path / "var" / "fm-history")) == 1
    assert not (pytester.path / ".fairmind").exists()


def test_history_folder_is_relative_to_rootdir(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    sub = pytester.mkpydir("sub")
    (sub / "test_sub.py").write_text(RECORDING)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        pytester.runpytest(str(sub))
    assert len(history_entries(pytester.path / ".fairmind")) == 1


def test_history_keep_prunes_to_the_newest(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfairmind_history_keep = 2\n")
    pytester.makepyfile(RECORDING)
    ids = []
    for _ in range(4):
        result, doc = run_with_report(pytester)
        assert result.ret == 0, result.stdout.str()
        ids.append(doc["session"]["id"])
    entries = history_entries(pytester.path / ".fairmind")
    assert [load_report(p)["session"]["id"] for p in entries] == ids[-2:]


def test_github_step_summary(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = pytester.path / "step_summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"demographic_parity_ratio": 0.7}, model="credit", scope="sex")
        """
    )
    result = pytester.runpytest("--fairmind-gate=demographic_parity_ratio>=0.8")
    assert result.ret == 1
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n")  # appended, not overwritten
    assert "| model | verdict |" in text
    row = next(line for line in text.splitlines() if line.startswith("| credit |"))
    assert "fail" in row
    assert "sex/demographic_parity_ratio" in text and "0.7" in text


def test_no_github_summary_without_the_variable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDING)
    assert pytester.runpytest().ret == 0
    assert not list(Path(pytester.path).glob("*.md"))


def test_json_path_that_is_a_folder_is_a_usage_error(pytester: pytest.Pytester) -> None:
    from helpers import usage_error

    pytester.mkdir("reports")
    pytester.makepyfile(RECORDING)
    assert "--fairmind-json" in usage_error(pytester.runpytest("--fairmind-json=reports"))


def test_unwritable_report_fails_the_session_with_a_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(RECORDING)
    blocker = pytester.path / "blocker"
    blocker.write_text("a file where a folder should be")
    result = pytester.runpytest("--fairmind-json=blocker/report.json")
    result.assert_outcomes(passed=1)
    assert result.ret == 1
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["could not write the report blocker/report.json*"])
