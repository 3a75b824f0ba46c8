"""The second wave's options: evidence policy, the fixture's default ``n_boot``, JUnit and HTML paths
(docs/configuration.md)."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import usage_error

from pytest_fairmind.settings import SettingsError, resolve

ASSESS_TEST = """
    import numpy as np

    def test_assess(fairmind):
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 400)
        groups = rng.choice(["a", "b"], 400)
        result = fairmind.assess(y, y, sensitive_features={"g": groups}, model="m"{extra})
        keys = sorted(result.metrics())
        open("keys.txt", "w").write("\\n".join(keys))
"""


def test_defaults_of_the_evidence_policy() -> None:
    settings = resolve({}, {}, {})
    assert (settings.evidence, settings.inconclusive, settings.multiple_testing) == ("point", "warn", "holm")
    assert settings.ci == 0.95 and settings.n_boot is None
    assert settings.junit_path is None and settings.html_path is None
    assert settings.gate_policy() == {
        "evidence": "point",
        "inconclusive": "warn",
        "multiple_testing": "holm",
        "ci": 0.95,
        "gate_action": "fail",
        "strict": False,
    }


def test_command_line_then_ini_then_environment() -> None:
    env = {
        "FAIRMIND_EVIDENCE": "interval",
        "FAIRMIND_INCONCLUSIVE": "fail",
        "FAIRMIND_MULTIPLE_TESTING": "none",
        "FAIRMIND_CI": "0.9",
        "FAIRMIND_N_BOOT": "500",
        "FAIRMIND_JUNIT": "env.xml",
        "FAIRMIND_HTML": "env.html",
    }
    from_env = resolve({}, {}, env)
    assert (from_env.evidence, from_env.inconclusive, from_env.multiple_testing) == (
        "interval",
        "fail",
        "none",
    )
    assert (from_env.ci, from_env.n_boot) == (0.9, 500)
    assert (from_env.junit_path, from_env.html_path) == ("env.xml", "env.html")
    ini = {
        "evidence": "point",
        "multiple_testing": "Bonferroni",
        "ci": "0.99",
        "n_boot": "0",
        "junit": "ini.xml",
    }
    from_ini = resolve({}, ini, env)
    assert (from_ini.evidence, from_ini.multiple_testing, from_ini.ci, from_ini.n_boot) == (
        "point",
        "bonferroni",
        0.99,
        0,
    )
    assert from_ini.junit_path == "ini.xml"
    cli = {"evidence": "interval", "inconclusive": "pass", "junit": "cli.xml", "html": "cli.html"}
    from_cli = resolve(cli, ini, env)
    assert (from_cli.evidence, from_cli.inconclusive, from_cli.junit_path, from_cli.html_path) == (
        "interval",
        "pass",
        "cli.xml",
        "cli.html",
    )


@pytest.mark.parametrize(
    ("cli", "ini", "env", "expected"),
    [
        ({"evidence": "maybe"}, {}, {}, "--fairmind-evidence"),
        ({"inconclusive": "shrug"}, {}, {}, "--fairmind-inconclusive"),
        ({}, {"multiple_testing": "fdr"}, {}, "fairmind_multiple_testing"),
        ({}, {"ci": "95"}, {}, "fairmind_ci"),
        ({}, {"ci": "x"}, {}, "fairmind_ci"),
        ({}, {"n_boot": "-1"}, {}, "fairmind_n_boot"),
        ({}, {}, {"FAIRMIND_N_BOOT": "lots"}, "FAIRMIND_N_BOOT"),
        ({}, {}, {"FAIRMIND_EVIDENCE": "interval-ish"}, "FAIRMIND_EVIDENCE"),
    ],
)
def test_bad_values_name_the_option_and_where_they_came_from(
    cli: dict[str, Any], ini: dict[str, Any], env: dict[str, str], expected: str
) -> None:
    with pytest.raises(SettingsError, match=expected):
        resolve(cli, ini, env)


@pytest.mark.parametrize(
    ("args", "ini", "option"),
    [
        (["--fairmind-evidence=sometimes"], "", "--fairmind-evidence"),
        (["--fairmind-inconclusive=loud"], "", "--fairmind-inconclusive"),
        ([], "fairmind_multiple_testing = fdr", "fairmind_multiple_testing"),
        ([], "fairmind_ci = 1.5", "fairmind_ci"),
        ([], "fairmind_n_boot = some", "fairmind_n_boot"),
    ],
)
def test_bad_values_stop_pytest_before_any_test(
    pytester: pytest.Pytester, args: list[str], ini: str, option: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_never():\n    open('ran.txt', 'w').close()\n")
    line = usage_error(pytester.runpytest(*args))
    assert option in line
    assert not (pytester.path / "ran.txt").exists()


@pytest.mark.parametrize("option", ["junit", "html"])
def test_a_report_path_that_is_a_folder_is_a_usage_error(pytester: pytest.Pytester, option: str) -> None:
    (pytester.path / "out").mkdir()
    pytester.makepyfile("def test_never():\n    open('ran.txt', 'w').close()\n")
    line = usage_error(pytester.runpytest(f"--fairmind-{option}=out"))
    assert f"--fairmind-{option}" in line and "folder" in line
    assert not (pytester.path / "ran.txt").exists()


def _recorded_keys(pytester: pytest.Pytester, ini: str, extra: str = "") -> list[str]:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(ASSESS_TEST.replace("{extra}", extra))
    result = pytester.runpytest("-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()
    return (pytester.path / "keys.txt").read_text().splitlines()


def test_ini_n_boot_is_the_fixtures_default(pytester: pytest.Pytester) -> None:
    keys = _recorded_keys(pytester, "fairmind_n_boot = 40")
    assert "demographic_parity_ratio.ci_low" in keys and "demographic_parity_ratio.ci_high" in keys


def test_ini_n_boot_zero_turns_the_bootstrap_off(pytester: pytest.Pytester) -> None:
    keys = _recorded_keys(pytester, "fairmind_n_boot = 0")
    assert "demographic_parity_ratio" in keys
    assert not [k for k in keys if k.endswith((".ci_low", ".ci_high"))]


def test_a_call_n_boot_wins_over_the_ini(pytester: pytest.Pytester) -> None:
    keys = _recorded_keys(pytester, "fairmind_n_boot = 40", extra=", n_boot=0")
    assert not [k for k in keys if k.endswith((".ci_low", ".ci_high"))]


def test_numpy_values_a_hook_puts_in_scans_and_evidence_reach_the_report(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import numpy as np

        def pytest_fairmind_model_result(result, session):
            result.scans["hooked"] = {
                "metric": "selection_rate", "subgroups_tested": np.int64(3), "rows": [],
            }
            result.evidence["hooked"] = {"kind": "grid", "n_boot": np.int64(10), "probs": np.array([0.5])}
        """
    )
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"accuracy": 0.9}, model="m")
        """
    )
    result = pytester.runpytest("--fairmind-json=report.json", "-p", "no:randomly")
    assert result.ret == 0, result.stdout.str()
    import json

    model = json.loads((pytester.path / "report.json").read_text())["models"]["m"]
    assert model["scans"]["hooked"]["subgroups_tested"] == 3
    assert model["evidence"]["hooked"]["probs"] == [0.5]
