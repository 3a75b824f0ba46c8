"""pytest-fairmind's hooks, options and the ``fairmind`` fixture.

The pipeline: the fixture records into the test item; each test report carries the new records
(``report.fairmind_payload``: plain data, so it crosses xdist and stays out of ``--junitxml``);
the aggregating process (the xdist controller, or the only process) collects them, and at session
end builds one result per model, evaluates gates, saves the session in the history, logs it to the
providers, writes the report and prints the verdict table. Workers never aggregate or log.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_fairmind import hookspecs
from pytest_fairmind.aggregate import Collector
from pytest_fairmind.fixture import Fairmind
from pytest_fairmind.gates import GateSyntaxError, parse_gate
from pytest_fairmind.providers.base import Provider, ProviderRegistry, ProviderSettings
from pytest_fairmind.records import Record
from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import SessionResult
from pytest_fairmind.settings import Settings, SettingsError, resolve

PAYLOAD_ATTR = "fairmind_payload"

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
]

_MARKER = (
    "fairmind(model=None, gates=None, lower_is_better=None, higher_is_better=None): name the model "
    "this test's fairness results belong to, gates (list of expressions) that apply to that model, "
    "and the direction of its custom metrics (globs) for regression rules"
)


@dataclass
class FairmindState:
    """Per-config state, kept in ``config.stash``."""

    settings: Settings
    aggregating: bool
    providers: list[Provider] = field(default_factory=list)
    collector: Collector = field(default_factory=Collector)
    session_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started: str = ""
    result: SessionResult | None = None
    history_entry: Path | None = None
    notices: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # FairmindWarnings turned into errors by filters


STATE_KEY = pytest.StashKey[FairmindState]()
RECORDS_KEY = pytest.StashKey[list[Record]]()
SENT_KEY = pytest.StashKey[int]()


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
    }
    ini_names = [
        "provider", "project", "mlflow_uri", "wandb_mode", "gates", "gate_action", "baseline", "json",
        "timeout", "strict", "model", "history", "history_keep", "plots",
        "lower_is_better", "higher_is_better",
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
    registry = _registry(config)
    provider_settings = ProviderSettings(
        project=settings.project or "fairmind",
        mlflow_uri=settings.mlflow_uri,
        wandb_mode=settings.wandb_mode,
        plots=settings.plots,
        timeout=settings.timeout,
        workdir=str(config.invocation_params.dir),
    )
    built: list[Provider] = []
    for name in settings.providers:
        spec = registry.get(name)
        if spec is None:
            known = ", ".join(["none", *registry.names()])
            raise pytest.UsageError(f"--fairmind-provider: unknown provider {name!r} (known: {known})")
        missing = spec.missing_requirements()
        if missing:
            raise pytest.UsageError(
                f"--fairmind-provider: provider {name!r} needs {', '.join(missing)}: {spec.install_hint()}"
            )
        try:
            provider = spec.factory(provider_settings)
        except Exception as exc:
            raise pytest.UsageError(
                f"--fairmind-provider: provider {name!r}: {redact_text(str(exc))}"
            ) from None
        built.append(provider)
    return built


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)
    try:
        settings = _read_settings(config)
    except SettingsError as exc:
        raise pytest.UsageError(str(exc)) from None
    aggregating = not hasattr(config, "workerinput")
    state = FairmindState(settings=settings, aggregating=aggregating)
    config.stash[STATE_KEY] = state
    if aggregating:
        from pytest_fairmind.controller import FairmindController

        if settings.json_path:
            path = Path(settings.json_path)
            if (path if path.is_absolute() else config.invocation_params.dir / path).is_dir():
                raise pytest.UsageError(
                    f"--fairmind-json: {settings.json_path} is a folder; expected a file path"
                )

        state.providers = _build_providers(config, settings)
        config.pluginmanager.register(FairmindController(config, state), "fairmind-controller")


def _safe_target(provider: Provider) -> str:
    """Where ``provider`` writes, redacted; a provider whose ``target()`` fails cannot break pytest."""
    try:
        return redact_text(str(provider.target()))
    except Exception as exc:
        return redact_text(f"target unknown: {type(exc).__name__}: {exc}")


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(STATE_KEY, None)
    if state is None or not state.aggregating:
        return None
    where = ", ".join(f"{p.name} ({_safe_target(p)})" for p in state.providers) or "none"
    gates = len(state.settings.gates)
    return f"fairmind: providers: {where}; gates: {gates} configured (markers may add more)"


# --- the fixture and per-test transport ---------------------------------------------------------


def _own_model(marker: pytest.Mark) -> str | None:
    model = marker.kwargs.get("model", marker.args[0] if marker.args else None)
    return None if model is None else str(model)


def _marker_model(item: pytest.Item) -> str | None:
    """The model of the closest ``fairmind`` marker that names one (test, then class, then module):
    a marker that only carries ``gates=`` does not hide the model of the class or module."""
    for marker in item.iter_markers("fairmind"):
        model = _own_model(marker)
        if model is not None:
            return model
    return None


def _test_model(item: pytest.Item) -> str | None:
    """The test's model: its markers', else ini ``fairmind_model``."""
    return _marker_model(item) or item.config.stash[STATE_KEY].settings.model


def _marker_gates(item: pytest.Item) -> list[str]:
    gates: list[str] = []
    test_model = _test_model(item)
    for marker in item.iter_markers("fairmind"):
        exprs = marker.kwargs.get("gates") or []
        if isinstance(exprs, str):
            exprs = [exprs]
        model = _own_model(marker) or test_model  # a marker's gates are for the model it names
        for expr in exprs:
            gate = parse_gate(str(expr), model=model)  # GateSyntaxError: the test errors at setup
            if gate.model is None:
                raise GateSyntaxError(
                    f"gate {expr!r} on a fairmind marker needs a model: add model='...' to the marker"
                )
            text = gate.expr if ":" in gate.expr else f"{gate.model}:{gate.expr}"
            if text not in gates:
                gates.append(text)
    return gates


def _marker_directions(item: pytest.Item) -> list[list[str]]:
    """``[direction, model, glob]`` from the markers' ``lower_is_better=`` / ``higher_is_better=``."""
    declared: list[list[str]] = []
    model = _marker_model(item)
    for marker in item.iter_markers("fairmind"):
        for direction in ("lower", "higher"):
            globs = marker.kwargs.get(f"{direction}_is_better") or []
            if isinstance(globs, str):
                globs = [globs]
            for glob in globs:
                if not isinstance(glob, str) or not glob.strip():
                    raise GateSyntaxError(f"{direction}_is_better: expected metric globs (str), got {glob!r}")
                if model is None:
                    raise GateSyntaxError(
                        f"{direction}_is_better on a fairmind marker needs a model: "
                        "add model='...' to the marker"
                    )
                entry = [direction, model, glob.strip()]
                if entry not in declared:
                    declared.append(entry)
    return declared


@pytest.fixture
def fairmind(request: pytest.FixtureRequest) -> Fairmind:
    """Record fairness results of this test: ``fairmind.record(...)`` and ``fairmind.assess(...)``."""
    item = request.node
    records = item.stash.setdefault(RECORDS_KEY, [])
    return Fairmind(item.nodeid, _test_model(item), records)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("fairmind") is not None:
        try:
            _marker_gates(item)
            _marker_directions(item)
        except GateSyntaxError as exc:
            pytest.fail(f"@pytest.mark.fairmind: {exc}", pytrace=False)


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
        marked = _marker_model(item)
        model = marked
        if model is None and "fairmind" in getattr(item, "fixturenames", ()):
            model = item.config.stash[STATE_KEY].settings.model
        if model is not None:
            # A marked test belongs to its marker's model; the ini default only claims a test that
            # records for no model explicitly (else every test would add an empty default model).
            payload["models" if marked is not None else "default_models"] = [model]
            try:
                gates, directions = _marker_gates(item), _marker_directions(item)
            except GateSyntaxError:
                gates, directions = [], []  # reported by pytest_runtest_setup as the test's error
            if gates:
                payload["gates"] = gates
            if directions:
                payload["directions"] = directions
    if payload:
        setattr(report, PAYLOAD_ATTR, payload)
    return report


__all__ = ["Fairmind", "FairmindState", "fairmind"]
