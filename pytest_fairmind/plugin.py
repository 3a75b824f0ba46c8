"""pytest-fairmind's hooks, options and the ``fairmind`` fixture.

The pipeline: the fixture records into the test item; each test report carries the new records
(``report.fairmind_payload``: plain data, as JSON text from an xdist worker, so it crosses xdist
and stays out of ``--junitxml``);
the aggregating process (the xdist controller, or the only process) collects them, and at session
end builds one result per model, evaluates gates, saves the session in the history, logs it to the
providers, writes the report and prints the verdict table. Workers never aggregate or log.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Generator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from pytest_fairmind import hookspecs, markers, spool
from pytest_fairmind.fixture import Fairmind
from pytest_fairmind.gating.directions import declaration_to_plain
from pytest_fairmind.gating.grammar import gate_to_plain
from pytest_fairmind.markers import Marked, parse_marks
from pytest_fairmind.providers.base import (
    Provider,
    ProviderBuildError,
    ProviderRegistry,
    ProviderSettings,
    project_for,
    safe_target,
)
from pytest_fairmind.records import Record
from pytest_fairmind.settings import Settings, SettingsError, resolve
from pytest_fairmind.state import MARKED_KEY, PAYLOAD_ATTR, RECORDS_KEY, SENT_KEY, STATE_KEY, FairmindState
from pytest_fairmind.summary import header_gates

# (option suffix, metavar, help); each gets `--fairmind-<name>` and ini `fairmind_<name>`.
_OPTIONS: list[tuple[str, str | None, str]] = [
    (
        "provider",
        "LIST",
        "where to log: comma list of mlflow, wandb, none or a registered provider (repeatable). "
        "Env FAIRMIND_PROVIDER; default none.",
    ),
    (
        "project",
        "NAME",
        "MLflow experiment and W&B project. Env FAIRMIND_PROJECT, then MLFLOW_EXPERIMENT_NAME / "
        "WANDB_PROJECT; default fairmind.",
    ),
    (
        "mlflow-uri",
        "URI",
        "MLflow tracking URI. Env MLFLOW_TRACKING_URI; default sqlite:///mlflow.db in cwd.",
    ),
    (
        "wandb-mode",
        "MODE",
        "online, offline or disabled. Env WANDB_MODE; default online with an API key, else offline.",
    ),
    (
        "gate",
        "EXPR",
        "CI gate such as 'demographic_parity_ratio>=0.8', 'model:0<=accuracy<=1' or the regression rule "
        "'equalized_odds_difference~0.02' (repeatable; adds to ini fairmind_gates).",
    ),
    ("gate-action", "fail|warn", "fail: a failed gate exits 1 (default); warn: report it only."),
    ("baseline", "SOURCE", "baseline for regression rules: a session JSON file, 'last' or 'mlflow'."),
    ("json", "PATH", "write the session report (JSON) to PATH."),
    ("timeout", "SECONDS", "the most time all providers together may take at session end (default 30)."),
    (
        "evidence",
        "point|interval",
        "point: gate point values (default); interval: gate on bootstrap evidence, each gate pass, fail "
        "or inconclusive with error control across the session (docs/evidence.md). Env FAIRMIND_EVIDENCE.",
    ),
    (
        "inconclusive",
        "pass|warn|fail",
        "what an inconclusive gate does: pass, warn (default) or fail the session. "
        "Env FAIRMIND_INCONCLUSIVE.",
    ),
    ("junit", "PATH", "write the gate results as JUnit XML to PATH. Env FAIRMIND_JUNIT."),
    ("html", "PATH", "write a self-contained HTML report to PATH. Env FAIRMIND_HTML."),
]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fairmind", "fairness testing (pytest-fairmind)")
    for name, metavar, text in _OPTIONS:
        dest = "fairmind_" + name.replace("-", "_")
        repeatable = name in ("provider", "gate")
        group.addoption(
            f"--fairmind-{name}",
            dest=dest,
            metavar=metavar,
            action="append" if repeatable else "store",
            default=None,
            help=text,
        )
        if name == "gate":
            parser.addini(
                "fairmind_gates", "CI gates, one per line (see --fairmind-gate).", type="linelist", default=[]
            )
        else:
            parser.addini(dest, text, default=None)
    group.addoption(
        "--fairmind-strict",
        dest="fairmind_strict",
        action="store_true",
        default=None,
        help="a failed provider, a gate that matches nothing or a missing baseline fails the session.",
    )
    parser.addini("fairmind_strict", "see --fairmind-strict (true/false).", default=None)
    parser.addini("fairmind_model", "default model for fairmind records.", default=None)
    parser.addini(
        "fairmind_history", "history folder (default .fairmind, relative to rootdir).", default=None
    )
    parser.addini("fairmind_history_keep", "newest sessions kept in the history (default 100).", default=None)
    parser.addini("fairmind_plots", "per-group charts as provider artifacts (default true).", default=None)
    parser.addini(
        "fairmind_multiple_testing",
        "holm (default), bonferroni or none: error control across interval gates.",
        default=None,
    )
    parser.addini("fairmind_ci", "family level of interval gates (default 0.95).", default=None)
    parser.addini(
        "fairmind_n_boot", "default n_boot of fairmind.assess/scan (0: no bootstrap).", default=None
    )
    parser.addini(
        "fairmind_lower_is_better",
        "metric globs where lower is better (regression rules).",
        type="linelist",
        default=[],
    )
    parser.addini(
        "fairmind_higher_is_better",
        "metric globs where higher is better (regression rules).",
        type="linelist",
        default=[],
    )


def _read_settings(config: pytest.Config) -> Settings:
    cli = {
        "provider": config.getoption("fairmind_provider"),
        "project": config.getoption("fairmind_project"),
        "mlflow_uri": config.getoption("fairmind_mlflow_uri"),
        "wandb_mode": config.getoption("fairmind_wandb_mode"),
        "gate": config.getoption("fairmind_gate"),
        "gate_action": config.getoption("fairmind_gate_action"),
        "baseline": config.getoption("fairmind_baseline"),
        "json": config.getoption("fairmind_json"),
        "timeout": config.getoption("fairmind_timeout"),
        "strict": config.getoption("fairmind_strict"),
        "evidence": config.getoption("fairmind_evidence"),
        "inconclusive": config.getoption("fairmind_inconclusive"),
        "junit": config.getoption("fairmind_junit"),
        "html": config.getoption("fairmind_html"),
    }
    ini_names = [
        "provider", "project", "mlflow_uri", "wandb_mode", "gates", "gate_action", "baseline", "json",
        "timeout", "strict", "model", "history", "history_keep", "plots",
        "lower_is_better", "higher_is_better", "evidence", "inconclusive", "multiple_testing", "ci",
        "n_boot", "junit", "html",
    ]  # fmt: skip
    ini = {name: config.getini(f"fairmind_{name}") for name in ini_names}
    return resolve(cli, ini, os.environ)


def _registry(config: pytest.Config) -> ProviderRegistry:
    from pytest_fairmind import providers as builtin

    if not config.pluginmanager.is_registered(builtin):
        config.pluginmanager.register(builtin, "fairmind-builtin-providers")
    registry = ProviderRegistry()
    config.hook.pytest_fairmind_register_providers(registry=registry)
    return registry


def _build_providers(config: pytest.Config, settings: Settings) -> list[Provider]:
    """The selected providers, each given the project it logs to (``project_for``)."""
    registry = _registry(config)
    shared = ProviderSettings(
        mlflow_uri=settings.mlflow_uri,
        wandb_mode=settings.wandb_mode,
        plots=settings.plots,
        timeout=settings.timeout,
        workdir=str(config.invocation_params.dir),
    )
    built: list[Provider] = []
    try:
        for name in settings.providers:
            own = replace(shared, project=project_for(name, settings.project))
            built.extend(registry.build([name], own))
    except ProviderBuildError as exc:
        raise pytest.UsageError(f"--fairmind-provider: {exc}") from None
    return built


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", markers.HELP)
    try:
        settings = _read_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    aggregating = workerinput is None
    state = FairmindState(settings=settings, aggregating=aggregating)
    config.stash[STATE_KEY] = state
    if workerinput is not None and workerinput.get(spool.WORKERINPUT_KEY):
        state.spool = spool.Spool(workerinput[spool.WORKERINPUT_KEY], str(workerinput.get("workerid", "gw")))
    if aggregating:
        from pytest_fairmind.controller import FairmindController

        _check_output_paths(config, settings)
        if config.pluginmanager.hasplugin("html"):  # pytest-html: its summary gets the verdict table
            from pytest_fairmind import pytest_html_summary

            config.pluginmanager.register(pytest_html_summary, "fairmind-pytest-html")

        state.providers = _build_providers(config, settings)
        config.pluginmanager.register(FairmindController(config, state), "fairmind-controller")


def _check_output_paths(config: pytest.Config, settings: Settings) -> None:
    """A report path that is a folder is a usage error, before any test runs."""
    outputs = (("json", settings.json_path), ("junit", settings.junit_path), ("html", settings.html_path))
    for option, value in outputs:
        if not value:
            continue
        path = Path(value)
        if (path if path.is_absolute() else config.invocation_params.dir / path).is_dir():
            raise pytest.UsageError(f"--fairmind-{option}: {value} is a folder; expected a file path")


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.aggregating:
        return None
    where = ", ".join(f"{p.name} ({safe_target(p)})" for p in state.providers) or "none"
    return f"fairmind: providers: {where}; {header_gates(len(dict.fromkeys(state.settings.gates)))}"


# --- the fixture and per-test transport ---------------------------------------------------------


def _marked(item: pytest.Item) -> Marked:
    """The item's ``fairmind`` marks, parsed on first use and kept in its stash."""
    marked = item.stash.get(MARKED_KEY, None)
    if marked is None:
        default = item.config.stash[STATE_KEY].settings.model
        marked = item.stash[MARKED_KEY] = parse_marks(item.iter_markers(markers.NAME), default_model=default)
    return marked


def _test_model(item: pytest.Item) -> str | None:
    """The test's model: its marks', else ini ``fairmind_model``."""
    return _marked(item).model or item.config.stash[STATE_KEY].settings.model


@pytest.fixture
def fairmind(request: pytest.FixtureRequest) -> Fairmind:
    """Record fairness results of this test: ``fairmind.record(...)`` and ``fairmind.assess(...)``."""
    item = request.node
    nodeid = item.nodeid  # a property that joins strings: read it once
    state = item.config.stash[STATE_KEY]
    records = item.stash.get(RECORDS_KEY, None)
    if records is None:
        fresh: list[Record] = [] if state.spool is None else spool.SpoolingRecords(state.spool, nodeid)
        records = item.stash[RECORDS_KEY] = fresh
    return Fairmind(nodeid, _test_model(item), records, n_boot=state.settings.n_boot)


def pytest_runtest_setup(item: pytest.Item) -> None:
    error = _marked(item).error
    if error is not None:
        pytest.fail(f"@pytest.mark.fairmind: {error}", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    payload: dict[str, Any] = {}
    records = item.stash.get(RECORDS_KEY, None)
    if records:
        sent = item.stash.get(SENT_KEY, 0)
        if len(records) > sent:
            payload["records"] = records[sent:]
            item.stash[SENT_KEY] = len(records)
    if call.when == "setup":
        payload.update(_marks_payload(item))
    if payload:
        payload["location"] = _location(item)
        if item.config.stash[STATE_KEY].aggregating:
            setattr(report, PAYLOAD_ATTR, payload)
        else:  # an xdist worker: one string crosses execnet several times faster than nested dicts
            setattr(report, PAYLOAD_ATTR, json.dumps(payload))
    return report


def _location(item: pytest.Item) -> list[str | int]:
    """``[file, line]`` of the test (1-based), for warnings that concern it."""
    path, lineno, _ = item.location
    return [_file_path(str(item.config.rootpath), path), (lineno or 0) + 1]


@functools.lru_cache(maxsize=4096)
def _file_path(rootpath: str, relative: str) -> str:
    # one normalisation per test file, not per test (10k tests: 0.2 s)
    return os.path.normpath(os.path.join(rootpath, relative))


def _marks_payload(item: pytest.Item) -> dict[str, Any]:
    """What the setup report says about the test's model and its marks' gates and directions."""
    marked = _marked(item)
    model = marked.model
    if model is None and "fairmind" in getattr(item, "fixturenames", ()):
        model = item.config.stash[STATE_KEY].settings.model
    if model is None:
        return {}
    # A marked test belongs to its marker's model; the ini default only claims a test that
    # records for no model explicitly (else every test would add an empty default model).
    payload: dict[str, Any] = {"models" if marked.model is not None else "default_models": [model]}
    if marked.gates:  # a bad mark has none: pytest_runtest_setup reported it as the test's error
        payload["gates"] = [gate_to_plain(g) for g in marked.gates]
    if marked.directions:
        payload["directions"] = [declaration_to_plain(d) for d in marked.directions]
    return payload


__all__ = ["Fairmind", "FairmindState", "fairmind"]
