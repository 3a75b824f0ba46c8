"""SPEC sections 1-2: the plugin's registration, options, ini twins, env fallbacks and usage errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest
from helpers import (
    providers_conftest,
    run_with_report,
    usage_error,
)

from pytest_fairmind.settings import Settings, SettingsError, resolve

RECORDING_TEST = """
    def test_rec(fairmind):
        fairmind.record({"demographic_parity_ratio": 0.9}, model="m", scope="sex")
        fairmind.record({"accuracy": 0.8}, model="m")
"""

#: (option suffix, value) pairs for every command-line option that takes a value.
VALUE_OPTIONS = [
    "provider",
    "project",
    "mlflow-uri",
    "wandb-mode",
    "gate",
    "gate-action",
    "baseline",
    "json",
    "timeout",
    "evidence",
    "inconclusive",
    "junit",
    "html",
]


def _header(result: pytest.RunResult) -> str:
    lines = [line for line in result.stdout.lines if line.startswith("fairmind:")]
    assert len(lines) == 1, result.stdout.str()
    return lines[0]


# --- section 1: package and registration ----------------------------------------------------


def test_distribution_metadata() -> None:
    from importlib.metadata import metadata, requires

    meta = metadata("pytest-fairmind")
    assert meta["Name"] == "pytest-fairmind"
    assert meta["Requires-Python"] == ">=3.10"
    assert {"mlflow", "wandb", "plot", "all", "test"} <= set(meta.get_all("Provides-Extra") or [])
    core = [r for r in requires("pytest-fairmind") or [] if "extra ==" not in r]
    assert any(r.replace(" ", "").startswith("pytest>=8") for r in core), core
    for heavy in ("mlflow", "wandb", "pandas", "matplotlib", "scikit-learn", "sklearn"):
        assert not any(r.startswith(heavy) for r in core), core


def test_repository_layout() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for name in ("pytest_fairmind", "tests", "examples", "pyproject.toml", "README.md", "tox.ini"):
        assert (root / name).exists(), name
    assert (root / "pytest_fairmind" / "report.schema.json").is_file()


def test_entry_point_is_named_fairmind() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("fairmind") == "pytest_fairmind.plugin"


def test_plugin_is_active_and_fixture_available(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_fairmind import Fairmind

        def test_fixture(fairmind):
            assert isinstance(fairmind, Fairmind)
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_p_no_fairmind_disables_the_plugin(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fixture(fairmind):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:fairmind", "--fairmind-json=x.json")
    # the option itself is unknown without the plugin
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest("-p", "no:fairmind")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'fairmind' not found*"])
    assert not (pytester.path / ".fairmind").exists()
    assert not any(line.startswith("fairmind:") for line in result.stdout.lines)


def test_import_does_not_load_heavy_libraries() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pytest_fairmind, pytest_fairmind.plugin, pytest_fairmind.controller
        heavy = ["mlflow", "wandb", "pandas", "matplotlib", "sklearn", "numpy"]
        print(",".join(m for m in heavy if m in sys.modules))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_recording_plain_values_does_not_import_numpy(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_rec(fairmind):
            fairmind.record({"acc": 0.9, "scores": [0.1, 0.2]}, model="m", params={"p": "x"})
            assert "numpy" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:xdist", "--fairmind-gate=acc>=0.5"
    )
    result.assert_outcomes(passed=1)


def test_options_in_help_under_fairmind_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == 0
    text = result.stdout.str()
    group_start = text.index("fairness testing (pytest-fairmind):")
    group = text[group_start:]
    for name in [*VALUE_OPTIONS, "strict"]:
        assert f"--fairmind-{name}" in group, name
    ini_names = [
        "provider", "project", "mlflow_uri", "wandb_mode", "gates", "gate_action", "baseline", "json",
        "timeout", "strict", "model", "history", "history_keep", "plots",
    ]  # fmt: skip
    for name in ini_names:
        assert f"fairmind_{name} (" in text, name


def test_report_header_names_providers_and_gate_count(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makeini(
        """
        [pytest]
        fairmind_gates =
            accuracy >= 0.5
            m:demographic_parity_ratio >= 0.8
        """
    )
    pytester.makepyfile(RECORDING_TEST)
    result = pytester.runpytest("--fairmind-provider=probe", "--fairmind-gate=accuracy<=1")
    header = _header(result)
    assert "probe (project=fairmind" in header
    assert "gates: 3 from options/ini (marker gates are added per test)" in header
    result = pytester.runpytest()
    assert _header(result).startswith("fairmind: providers: none; gates: 2 from options/ini")


def test_report_header_redacts_credentials(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING_TEST)
    result = pytester.runpytest(
        "--fairmind-provider=probe", "--fairmind-mlflow-uri=https://alice:s3cr3tpw@mlflow.example.org"
    )
    header = _header(result)
    assert "s3cr3tpw" not in result.stdout.str()
    assert "uri=https://***@mlflow.example.org" in header


# --- section 2: ini twins, env, precedence ---------------------------------------------------


INI_FILES = {
    "pytest.ini": "[pytest]\n{body}",
    "tox.ini": "[pytest]\n{body}",
    "setup.cfg": "[tool:pytest]\n{body}",
}


def _write_config(pytester: pytest.Pytester, kind: str, values: dict[str, str | list[str]]) -> None:
    if kind == "pyproject.toml":
        lines = ["[tool.pytest.ini_options]"]
        for key, value in values.items():
            if isinstance(value, list):
                lines.append(f"{key} = [{', '.join(repr(v) for v in value)}]")
            else:
                lines.append(f"{key} = {value!r}")
        pytester.makefile(".toml", pyproject="\n".join(lines) + "\n")
        return
    body = ""
    for key, value in values.items():
        if isinstance(value, list):
            body += f"{key} =\n" + "".join(f"    {v}\n" for v in value)
        else:
            body += f"{key} = {value}\n"
    name, ext = kind.split(".")
    pytester.makefile(f".{ext}", **{name: INI_FILES[kind].format(body=body)})


@pytest.mark.parametrize("kind", ["pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml"])
def test_ini_twins_read_from_every_config_file(pytester: pytest.Pytester, kind: str) -> None:
    providers_conftest(pytester)
    _write_config(
        pytester,
        kind,
        {
            "fairmind_provider": "probe",
            "fairmind_project": "proj-from-ini",
            "fairmind_mlflow_uri": "sqlite:///from-ini.db",
            "fairmind_wandb_mode": "disabled",
            "fairmind_gates": ["accuracy >= 0.9", "m:demographic_parity_ratio>=0.5"],
            "fairmind_gate_action": "warn",
            "fairmind_json": "ini-report.json",
            "fairmind_timeout": "7",
            "fairmind_strict": "true",
            "fairmind_model": "m",
            "fairmind_history": "hist",
            "fairmind_history_keep": "3",
            "fairmind_plots": "false",
        },
    )
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"demographic_parity_ratio": 0.9}, scope="sex")
            fairmind.record({"accuracy": 0.8})
        """
    )
    result = pytester.runpytest()
    # gate_action=warn: the failing accuracy gate does not change the exit code
    assert result.ret == 0, result.stdout.str()
    header = _header(result)
    assert (
        "probe (project=proj-from-ini uri=sqlite:///from-ini.db mode=disabled timeout=7 plots=False)"
        in header
    )
    assert "gates: 2 from options/ini" in header
    result.stdout.fnmatch_lines(["*gate failed (warn only): m: accuracy = 0.8*"])
    from helpers import history_entries, load_report

    doc = load_report(pytester.path / "ini-report.json")  # fairmind_json
    assert doc["session"]["project"] == "proj-from-ini"
    assert list(doc["models"]) == ["m"]  # fairmind_model
    assert {g["key"]: g["passed"] for g in doc["models"]["m"]["gates"]} == {
        "accuracy": False,
        "sex/demographic_parity_ratio": True,
    }
    assert len(history_entries(pytester.path / "hist")) == 1  # fairmind_history
    assert not (pytester.path / ".fairmind").exists()


def test_ini_strict_and_timeout_twins(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        fairmind_strict = true
        fairmind_gates = nothing_matches >= 1
        """
    )
    pytester.makepyfile(RECORDING_TEST)
    result = pytester.runpytest()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*gate not evaluated (matched no metric): nothing_matches >= 1*"])
    pytester.makeini(
        """
        [pytest]
        fairmind_timeout = soon
        """
    )
    assert "--fairmind-timeout" in usage_error(pytester.runpytest())


def test_ini_baseline_twin(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        fairmind_baseline = not-a-report.json
        """
    )
    pytester.makefile(".json", **{"not-a-report": "this is not JSON"})
    pytester.makepyfile(RECORDING_TEST)
    # the ini value is read: an unreadable baseline is a usage error naming the option
    line = usage_error(pytester.runpytest())
    assert "--fairmind-baseline" in line and "not-a-report.json" in line
    # the command line wins over the ini: a baseline that does not exist yet is a first run
    result = pytester.runpytest("--fairmind-baseline=first-run.json", "--fairmind-gate=accuracy ~ 0.1")
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(["*first-run.json*"])


def test_gate_action_twin_and_cli_precedence(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        fairmind_gate_action = warn
        """
    )
    pytester.makepyfile(RECORDING_TEST)
    assert pytester.runpytest("--fairmind-gate=accuracy>=0.9").ret == 0
    assert pytester.runpytest("--fairmind-gate=accuracy>=0.9", "--fairmind-gate-action=fail").ret == 1


@pytest.mark.usefixtures("charts")  # the defaults a user gets: charts on
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"FAIRMIND_PROVIDER": "probe"}, "probe (project=fairmind uri=None mode=None timeout=30 plots=True)"),
        ({"FAIRMIND_PROVIDER": "probe", "FAIRMIND_PLOTS": "false"}, " plots=False)"),
        ({"FAIRMIND_PROVIDER": "probe", "FAIRMIND_PLOTS": "1"}, " plots=True)"),
        ({"FAIRMIND_PROVIDER": "probe", "FAIRMIND_PROJECT": "envproj"}, "probe (project=envproj "),
        ({"FAIRMIND_PROVIDER": "probe", "MLFLOW_TRACKING_URI": "sqlite:///env.db"}, "uri=sqlite:///env.db "),
        ({"FAIRMIND_PROVIDER": "probe", "WANDB_MODE": "offline"}, "mode=offline "),
        ({"FAIRMIND_PROVIDER": "probe,probe2"}, "probe2 (project=fairmind"),
    ],
)
def test_env_fallbacks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING_TEST)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = pytester.runpytest()
    assert result.ret == 0
    assert expected in _header(result)


def test_env_project_reaches_report(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(RECORDING_TEST)
    _, doc = run_with_report(pytester)
    assert doc["session"]["project"] == "fairmind"  # default
    monkeypatch.setenv("FAIRMIND_PROJECT", "from-env")
    _, doc = run_with_report(pytester)
    assert doc["session"]["project"] == "from-env"


@pytest.mark.parametrize(
    ("provider", "env_name"), [("mlflow", "MLFLOW_EXPERIMENT_NAME"), ("wandb", "WANDB_PROJECT")]
)
def test_project_falls_back_to_the_providers_own_env(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, provider: str, env_name: str
) -> None:
    from helpers import provider_log

    providers_conftest(pytester, fake_builtins=True)
    pytester.makepyfile(RECORDING_TEST)
    monkeypatch.setenv(env_name, "own-project")
    _, doc = run_with_report(pytester, f"--fairmind-provider={provider}")
    assert provider_log(pytester, provider)[0]["project"] == "own-project"
    assert doc["session"]["project"] == "own-project"
    # FAIRMIND_PROJECT comes first
    monkeypatch.setenv("FAIRMIND_PROJECT", "fm-project")
    _, doc = run_with_report(pytester, f"--fairmind-provider={provider}")
    assert provider_log(pytester, provider)[-1]["project"] == "fm-project"
    assert doc["session"]["project"] == "fm-project"


@pytest.mark.parametrize(
    ("option", "ini", "env", "cli_value", "ini_value", "env_value", "shown"),
    [
        ("project", "fairmind_project", "FAIRMIND_PROJECT", "c", "i", "e", "project={}"),
        ("mlflow-uri", "fairmind_mlflow_uri", "MLFLOW_TRACKING_URI", "file:c", "file:i", "file:e", "uri={}"),
        ("wandb-mode", "fairmind_wandb_mode", "WANDB_MODE", "offline", "disabled", "online", "mode={}"),
        ("timeout", "fairmind_timeout", "FAIRMIND_TIMEOUT", "3", "4", "5", "timeout={}"),
    ],
)
def test_precedence_cli_ini_env_default(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    option: str,
    ini: str,
    env: str,
    cli_value: str,
    ini_value: str,
    env_value: str,
    shown: str,
) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING_TEST)
    monkeypatch.setenv(env, env_value)
    pytester.makeini(f"[pytest]\n{ini} = {ini_value}\n")
    header = _header(pytester.runpytest("--fairmind-provider=probe", f"--fairmind-{option}={cli_value}"))
    assert shown.format(cli_value) in header
    header = _header(pytester.runpytest("--fairmind-provider=probe"))
    assert shown.format(ini_value) in header
    pytester.makeini("[pytest]\n")
    header = _header(pytester.runpytest("--fairmind-provider=probe"))
    assert shown.format(env_value) in header


def test_provider_precedence_and_repeatable_list(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(RECORDING_TEST)
    monkeypatch.setenv("FAIRMIND_PROVIDER", "probe2")
    pytester.makeini("[pytest]\nfairmind_provider = probe\n")
    assert "providers: probe (" in _header(pytester.runpytest())
    header = _header(pytester.runpytest("--fairmind-provider=none"))
    assert header.startswith("fairmind: providers: none;")
    header = _header(pytester.runpytest("--fairmind-provider=probe2", "--fairmind-provider", "probe"))
    assert header.index("probe2 (") < header.index(", probe (")
    pytester.makeini("[pytest]\n")
    assert "providers: probe2 (" in _header(pytester.runpytest())


def test_defaults_without_any_configuration() -> None:
    settings = resolve({}, {}, {})
    assert settings == Settings()
    assert settings.providers == ()
    assert settings.project is None  # each provider's own env, then "fairmind"
    assert settings.gate_action == "fail"
    assert settings.timeout == 30.0
    assert settings.strict is False
    assert settings.history == ".fairmind"
    assert settings.history_keep == 100
    assert settings.plots is True


def test_resolve_precedence_unit() -> None:
    env = {
        "FAIRMIND_PROJECT": "e",
        "MLFLOW_TRACKING_URI": "u-e",
        "WANDB_MODE": "online",
        "FAIRMIND_PROVIDER": "x",
    }
    ini = {"project": "i", "mlflow_uri": "u-i", "wandb_mode": "offline", "provider": "y", "gates": ["a>=1"]}
    cli = {
        "project": "c",
        "mlflow_uri": "u-c",
        "wandb_mode": "disabled",
        "provider": ["z", "none"],
        "gate": ["b<1"],
    }
    s = resolve(cli, ini, env)
    assert (s.project, s.mlflow_uri, s.wandb_mode, s.providers) == ("c", "u-c", "disabled", ("z",))
    assert s.gates == ("a>=1", "b<1")  # command-line gates apply in addition to the ini's
    s = resolve({}, ini, env)
    assert (s.project, s.mlflow_uri, s.wandb_mode, s.providers) == ("i", "u-i", "offline", ("y",))
    s = resolve({}, {}, env)
    assert (s.project, s.mlflow_uri, s.wandb_mode, s.providers) == ("e", "u-e", "online", ("x",))


# --- usage errors: exit code 4 before any test runs, one line naming the option ----------------


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--fairmind-gate=accuracy => 0.8"], "--fairmind-gate"),
        (["--fairmind-gate=accuracy"], "--fairmind-gate"),
        (["--fairmind-gate=accuracy >= high"], "--fairmind-gate"),
        (["--fairmind-gate=m:"], "--fairmind-gate"),
        (["--fairmind-timeout=abc"], "--fairmind-timeout"),
        (["--fairmind-timeout=-1"], "--fairmind-timeout"),
        (["--fairmind-timeout=0"], "--fairmind-timeout"),
        (["--fairmind-timeout=nan"], "--fairmind-timeout"),
        (["--fairmind-gate-action=explode"], "--fairmind-gate-action"),
        (["--fairmind-wandb-mode=sometimes"], "--fairmind-wandb-mode"),
        (["--fairmind-provider=nosuch"], "--fairmind-provider"),
        (["--fairmind-project="], None),  # empty value: nothing set, the default applies
    ],
)
def test_bad_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], option: str | None) -> None:
    pytester.makepyfile(
        """
        def test_never(fairmind):
            open("ran.txt", "w").close()
        """
    )
    result = pytester.runpytest(*args)
    if option is None:
        assert result.ret == 0
        return
    line = usage_error(result)
    assert option in line
    assert not (pytester.path / "ran.txt").exists()


@pytest.mark.parametrize(
    ("ini", "option"),
    [
        ("fairmind_gates = accuracy >> 1", "fairmind_gates"),
        ("fairmind_gate_action = loud", "fairmind_gate_action"),
        ("fairmind_wandb_mode = sometimes", "fairmind_wandb_mode"),
        ("fairmind_strict = perhaps", "fairmind_strict"),
        ("fairmind_timeout = -3", "fairmind_timeout"),
        ("fairmind_provider = nosuch", "--fairmind-provider"),
        ("fairmind_history_keep = many", "fairmind_history_keep"),
        ("fairmind_history_keep = -2", "fairmind_history_keep"),
        ("fairmind_plots = maybe", "fairmind_plots"),
    ],
)
def test_bad_ini_values_are_usage_errors(pytester: pytest.Pytester, ini: str, option: str) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_never():\n    open('ran.txt', 'w').close()\n")
    line = usage_error(pytester.runpytest())
    assert option in line
    assert not (pytester.path / "ran.txt").exists()


@pytest.mark.parametrize(("name", "value"), [("WANDB_MODE", "sometimes"), ("FAIRMIND_PROVIDER", "nosuch")])
def test_bad_env_values_are_usage_errors(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    pytester.makepyfile("def test_never():\n    pass\n")
    line = usage_error(pytester.runpytest())
    assert value in line
    if name == "WANDB_MODE":
        assert "--fairmind-wandb-mode" in line and "WANDB_MODE" in line


def test_unknown_provider_lists_the_known_ones(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile("def test_never():\n    pass\n")
    line = usage_error(pytester.runpytest("--fairmind-provider=probe,nosuch"))
    assert "--fairmind-provider" in line and "'nosuch'" in line
    for known in ("none", "mlflow", "wandb", "probe", "boom"):
        assert known in line.partition("known")[2], line


def test_provider_with_missing_package_names_the_extra(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile("def test_never():\n    pass\n")
    line = usage_error(pytester.runpytest("--fairmind-provider=xyzprov"))
    assert "--fairmind-provider" in line
    assert "no_such_module_xyz" in line
    assert "pytest-fairmind[xyz]" in line


def test_provider_factory_failure_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def _factory(settings):
            raise RuntimeError("cannot reach https://bob:hunter2pw@tracker.example")

        def pytest_fairmind_register_providers(registry):
            registry.register("broken", _factory)
        """
    )
    pytester.makepyfile("def test_never():\n    pass\n")
    line = usage_error(pytester.runpytest("--fairmind-provider=broken"))
    assert "broken" in line and "hunter2pw" not in line


def test_plots_environment_twin_unit() -> None:
    assert resolve({}, {}, {"FAIRMIND_PLOTS": "false"}).plots is False
    assert resolve({}, {"plots": "true"}, {"FAIRMIND_PLOTS": "false"}).plots is True  # ini first
    with pytest.raises(
        SettingsError, match=r"fairmind_plots: .*'maybe' \(from environment variable FAIRMIND_PLOTS\)"
    ):
        resolve({}, {}, {"FAIRMIND_PLOTS": "maybe"})


def test_settings_errors_name_the_option_unit() -> None:
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"timeout": "x"}, {}, "--fairmind-timeout"),
        ({"gate_action": "x"}, {}, "--fairmind-gate-action"),
        ({"wandb_mode": "x"}, {}, "--fairmind-wandb-mode"),
        ({"gate": ["acc ~~ 1"]}, {}, "--fairmind-gate"),
        ({"strict": "x"}, {}, "--fairmind-strict"),
        ({}, {"history_keep": "x"}, "fairmind_history_keep"),
        ({}, {"plots": "x"}, "fairmind_plots"),
    ]
    for cli, ini, option in cases:
        with pytest.raises(SettingsError, match=option):
            resolve(cli, ini, {})
