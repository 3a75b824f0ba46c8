"""The aggregating side of the plugin (the xdist controller, or the only process).

Registered as a plugin object only where results are aggregated, so workers never build results
or call providers (as xdist's own ``DSession`` lives only in the controller).
"""

from __future__ import annotations

import datetime as _dt
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_fairmind import __version__, history, report
from pytest_fairmind.baseline import (
    HIGHER,
    LOWER,
    BaselineError,
    Directions,
    check_source,
    declarations,
    load_baseline,
    unused_notice,
)
from pytest_fairmind.context import context_tags, git_info
from pytest_fairmind.dispatch import log_session, pending_outcomes, provider_project
from pytest_fairmind.exceptions import FairmindWarning
from pytest_fairmind.gates import evaluate, failed_gates, parse_gate
from pytest_fairmind.history import atomic_write
from pytest_fairmind.records import plain
from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import ModelResult, SessionResult
from pytest_fairmind.summary import markdown, provider_lines, verdict_lines

if TYPE_CHECKING:
    from pytest_fairmind.plugin import FairmindState

_OK_CODES = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)


def _now() -> str:
    # Microseconds: history entries are named (and pruned, and `last` found) by start time.
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _make_plain(model: ModelResult) -> None:
    """Hooks may amend results with numpy values; the report and providers take plain Python."""
    model.metrics = {str(k): float(v) for k, v in model.metrics.items()}
    model.params = {str(k): plain(v) for k, v in model.params.items()}
    model.tags = {str(k): str(v) for k, v in model.tags.items()}
    model.groups = {str(scope): plain(rows) for scope, rows in model.groups.items()}


class FairmindController:
    """Collects payloads from test reports and runs the session-end pipeline."""

    def __init__(self, config: pytest.Config, state: FairmindState) -> None:
        self.config = config
        self.state = state
        self.marker_directions: list[tuple[str, str, str]] = []  # (direction, model, glob) from markers

    # -- collection of per-test data --------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.state.started = _now()
        if self.state.settings.baseline:  # an unreadable baseline file stops pytest before any test runs
            try:
                check_source(self.state.settings.baseline, workdir=str(self.config.invocation_params.dir))
            except BaselineError as exc:
                raise pytest.UsageError(f"--fairmind-baseline: {exc}") from None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from pytest_fairmind.plugin import PAYLOAD_ATTR

        payload = getattr(report, PAYLOAD_ATTR, None)
        self.state.collector.add_report(
            report.nodeid,
            report.when or "call",
            report.outcome,
            wasxfail=hasattr(report, "wasxfail"),
            payload=payload,
        )
        for item in (payload or {}).get("directions", ()):
            declared = (str(item[0]), str(item[1]), str(item[2]))
            if declared not in self.marker_directions:
                self.marker_directions.append(declared)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """xdist: a worker went down. Name it when it crashed: its finished tests' records arrived."""
        if error:
            worker = getattr(getattr(node, "gateway", None), "id", "?")
            reason = str(error).strip().splitlines()
            self.state.notices.append(
                f"xdist worker {worker} crashed ({reason[-1] if reason else 'no reason given'}); "
                "records of the tests it finished are included"
            )

    # -- session end ------------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        """Emit a FairmindWarning; under the user's ``error`` filter it fails the session cleanly."""
        try:
            warnings.warn(FairmindWarning(message), stacklevel=2)
        except FairmindWarning:
            self.state.errors.append(message)

    def _history_folder(self) -> Path:
        folder = Path(self.state.settings.history)
        return folder if folder.is_absolute() else self.config.rootpath / folder

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state, settings = self.state, self.state.settings
        models, collision_warnings = state.collector.build()
        marker_gates = state.collector.marker_gates()
        gate_exprs = [*settings.gates, *marker_gates]
        if not models and not gate_exprs and not settings.json_path and not settings.baseline:
            return
        project = settings.project or (
            provider_project(state.providers[0].name, None) if state.providers else "fairmind"
        )
        git = git_info(str(self.config.rootpath))
        result = SessionResult(
            id=state.session_id,
            project=project,
            started=state.started or _now(),
            git=git,
            models=models,
            context=context_tags(pytest_version=pytest.__version__, plugin_version=__version__, git=git),
        )
        state.result = result
        for model in models.values():
            self.config.hook.pytest_fairmind_model_result(result=model, session=result)
            _make_plain(model)
        gates = [parse_gate(e) for e in gate_exprs]
        baseline = None
        if any(g.tolerance is not None for g in gates):  # regression rules: read the baseline
            declared = [
                d for direction, model, glob in self.marker_directions
                for d in declarations([glob], direction, model=model)
            ]  # fmt: skip
            ini_declared = [
                *declarations(settings.lower_is_better, LOWER),
                *declarations(settings.higher_is_better, HIGHER),
            ]
            baseline = load_baseline(
                settings.baseline,
                project=project,
                history_folder=self._history_folder(),
                exclude_session=state.session_id,
                mlflow_uri=settings.mlflow_uri,
                mlflow_project=provider_project("mlflow", settings.project),
                workdir=str(self.config.invocation_params.dir),
                timeout=settings.timeout,
                directions=Directions.layered(declared, ini_declared),  # a marker's (one model) first
                strict=settings.strict,
            )
        elif settings.baseline:
            state.notices.append(unused_notice(settings.baseline))
        result.gates_not_evaluated = evaluate(gates, models, baseline=baseline)
        for message in collision_warnings:
            self._warn(message)
        if baseline is not None:
            state.notices.extend(baseline.notices())

        status = int(session.exitstatus)
        gates_failed = bool(failed_gates(models)) and settings.gate_action == "fail"
        strict_failure = settings.strict and (
            bool(result.gates_not_evaluated) or (baseline is not None and baseline.problems)
        )
        if (gates_failed or strict_failure or state.errors) and status in _OK_CODES:
            status = int(pytest.ExitCode.TESTS_FAILED)
        result.notices = [
            *state.notices,
            *(f"FairmindWarning turned into an error: {e}" for e in state.errors),
        ]
        result.exitstatus = status
        result.finished = _now()  # the tests' end; providers' runs end here too
        result.providers = pending_outcomes(state.providers)

        folder = self._history_folder()
        keep = settings.history_keep
        if keep > 0:
            try:  # saved before any provider is called: nothing is lost if one hangs or the job dies
                state.history_entry = history.save(folder, result, keep=keep)
            except OSError as exc:
                result.notices.append(f"could not save the session in {folder}: {exc}")

        if state.providers:
            result.providers = log_session(
                state.providers, result, timeout=settings.timeout, explicit_project=settings.project
            )
            provider_failed = not all(o.ok for o in result.providers.values())
            if settings.strict and provider_failed and status in _OK_CODES:
                status = int(pytest.ExitCode.TESTS_FAILED)
        result.exitstatus = status
        if state.history_entry is not None:
            try:
                history.save(folder, result, keep=keep)
            except OSError as exc:
                result.notices.append(f"could not update the history entry {state.history_entry}: {exc}")
        if settings.json_path:
            path = Path(settings.json_path)
            if not path.is_absolute():
                path = self.config.invocation_params.dir / path
            try:
                atomic_write(path, report.dumps(result))
            except OSError as exc:  # the report was asked for: its absence must not pass silently
                result.notices.append(f"could not write the report {settings.json_path}: {exc}")
                if status in _OK_CODES:
                    status = int(pytest.ExitCode.TESTS_FAILED)
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            try:
                with open(summary_file, "a", encoding="utf-8") as fh:
                    fh.write(redact_text(markdown(result)))
            except OSError as exc:
                result.notices.append(f"could not write GITHUB_STEP_SUMMARY: {exc}")
        self.config.hook.pytest_fairmind_logged(session=result)
        session.exitstatus = status

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.state.result
        if result is None:
            return
        settings = self.state.settings
        gates = len(settings.gates) + len(self.state.collector.marker_gates())
        terminalreporter.write_sep("-", f"fairmind: {len(result.models)} model(s), {gates} gate(s)")
        entry = None
        if self.state.history_entry is not None:
            try:
                entry = os.path.relpath(self.state.history_entry, self.config.invocation_params.dir)
            except ValueError:
                entry = str(self.state.history_entry)
        for line in verdict_lines(result, gate_action=settings.gate_action):
            failed = line.startswith("gate FAILED") or any(
                w in f" {line} " for w in (" FAIL ", " WORSE ", "FAIL:")
            )
            warning = line.startswith("warning:")
            terminalreporter.write_line(
                redact_text(line), red=failed, bold=failed, yellow=warning and not failed
            )
        for line in provider_lines(result, history_entry=entry):
            terminalreporter.write_line(redact_text(line), yellow="FAILED" in line)
        if settings.json_path:
            terminalreporter.write_line(f"report: {settings.json_path}")
