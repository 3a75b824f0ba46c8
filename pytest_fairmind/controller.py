"""The aggregating side of the plugin (the xdist controller, or the only process).

Registered as a plugin object only where results are aggregated, so workers never build results
or call providers (as xdist's own ``DSession`` lives only in the controller). At session end:
build one result per model, let hooks amend it, gate it (:func:`pytest_fairmind.gating.run`),
save it in the history, log it to the providers, write the report and the CI job summary.
A collection-only session (``--collect-only``) does none of it; an interrupted one (Ctrl-C,
exit status 2) does all of it, every model's verdict ``interrupted`` (see docs/report.md).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_fairmind import __version__, gating, history, report, spool
from pytest_fairmind.aggregate import CollisionWarning
from pytest_fairmind.context import context_tags, git_info
from pytest_fairmind.dispatch import ProviderSession, log_session, pending_outcomes, start_providers
from pytest_fairmind.exceptions import FairmindWarning
from pytest_fairmind.gating.directions import HIGHER, LOWER, Directions, declarations
from pytest_fairmind.gating.evaluate import not_evaluated_hint
from pytest_fairmind.gating.pipeline import strict_line
from pytest_fairmind.history import atomic_write
from pytest_fairmind.providers.base import project_for
from pytest_fairmind.records import plain
from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import INTERRUPTED, ModelResult, SessionResult
from pytest_fairmind.state import PAYLOAD_ATTR, FairmindState
from pytest_fairmind.summary import (
    FAIL,
    INCONCLUSIVE,
    WARN,
    gates_heading,
    markdown,
    not_evaluated_line,
    provider_parts,
    verdict_parts,
)

#: xdist's ``when`` of the report it makes for a test that crashed its worker.
_CRASHED_WHEN = "???"
INTERRUPTED_NOTICE = (
    "session interrupted (exit status 2): the results are partial; every model's verdict is 'interrupted'"
)


def _now() -> str:
    # Microseconds: history entries are named (and pruned, and `last` found) by start time.
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="microseconds")


def _make_plain(model: ModelResult) -> None:
    """Hooks may amend results with numpy values; the report and providers take plain Python."""
    metrics = model.metrics
    if not all(type(k) is str and type(v) is float for k, v in metrics.items()):
        model.metrics = {str(k): float(v) for k, v in metrics.items()}
    model.params = {str(k): plain(v) for k, v in model.params.items()}
    model.tags = {str(k): str(v) for k, v in model.tags.items()}
    model.groups = {str(scope): plain(rows) for scope, rows in model.groups.items()}
    model.scans = {str(scope): plain(entry) for scope, entry in model.scans.items()}
    model.evidence = {str(scope): plain(payload) for scope, payload in model.evidence.items()}


class FairmindController:
    """Collects payloads from test reports and runs the session-end pipeline."""

    def __init__(self, config: pytest.Config, state: FairmindState) -> None:
        self.config = config
        self.state = state
        self._strict_reasons: list[str] = []  # why --fairmind-strict failed the session
        self._report_written = False
        self._readable_written: list[tuple[str, str]] = []  # (what, path) of JUnit/HTML files written
        self._started: ProviderSession | None = None  # providers warmed up at session start

    # -- collection of per-test data --------------------------------------------------------------

    def pytest_sessionstart(self) -> None:
        self.state.started = _now()
        if self.state.settings.baseline:  # an unreadable baseline file stops pytest before any test runs
            try:
                gating.check_source(self.state.settings.baseline, workdir=self._workdir)
            except gating.BaselineError as exc:
                raise pytest.UsageError(f"--fairmind-baseline: {exc}") from None
        if self.state.providers and not self.config.option.collectonly:
            # the providers' children import their library (and, once something is recorded,
            # create the store) while the tests run, so that the session end only logs
            self._started = start_providers(
                self.state.providers, explicit_project=self.state.settings.project
            )

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: hand each worker the spool folder where it notes the models its tests record for."""
        if self.state.spool_folder is None:
            self.state.spool_folder = spool.make_folder()
        node.workerinput[spool.WORKERINPUT_KEY] = str(self.state.spool_folder)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == _CRASHED_WHEN:
            self._lost_test(report)
        payload = getattr(report, PAYLOAD_ATTR, None)
        if isinstance(payload, str):  # from an xdist worker (plugin.pytest_runtest_makereport)
            payload = json.loads(payload)
        if payload and payload.get("records") and self._started is not None:
            self._started.recorded()  # once: the first record lets providers create their store
        self.state.collector.add_report(
            report.nodeid,
            report.when or "call",
            report.outcome,
            wasxfail=hasattr(report, "wasxfail"),
            payload=payload,
        )

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

    def _lost_test(self, report: pytest.TestReport) -> None:
        """xdist's report of a test that crashed its worker: keep the test for the models it
        recorded for (its records died with the worker), and name it in the summary."""
        folder = self.state.spool_folder
        models = spool.models_of(folder, report.nodeid) if folder is not None else []
        data = self.state.collector.add_crash(report.nodeid, models)
        if data is None:
            return
        worker = getattr(getattr(getattr(report, "node", None), "gateway", None), "id", "?")
        names = [*data.models, *(m for m in data.default_models if m not in data.models)]
        which = ", ".join(repr(m) for m in names) or "no model"
        self.state.notices.append(
            f"lost test {report.nodeid} (model {which}): it crashed xdist worker {worker}; "
            "it counts as failed and what it recorded is lost"
        )

    # -- session end ------------------------------------------------------------------------------

    @property
    def _workdir(self) -> str:
        return str(self.config.invocation_params.dir)

    def _warn(self, warning: CollisionWarning) -> None:
        """Emit a FairmindWarning pointing at the test it is about; under the user's ``error``
        filter it fails the session cleanly."""
        data = self.state.collector.tests.get(warning.nodeid)
        location = data.location if data is not None else None
        try:
            if location is None:
                warnings.warn(FairmindWarning(warning.message), stacklevel=2)
            else:
                warnings.warn_explicit(FairmindWarning(warning.message), FairmindWarning, *location)
        except FairmindWarning:
            self.state.errors.append(warning.message)

    def _history_folder(self) -> Path:
        folder = Path(self.state.settings.history)
        return folder if folder.is_absolute() else self.config.rootpath / folder

    def _gates(self) -> list[gating.Gate]:
        """The configured gates (ini, command line, environment), then the marks'."""
        configured = [gating.parse_gate(e) for e in self.state.settings.gates]
        return [*configured, *self.state.collector.marker_gates()]

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        try:
            if self._records_session(session):
                self._finish(session)
        finally:
            self._cleanup()

    def _records_session(self, session: pytest.Session) -> bool:
        """Whether this session is gated, saved and logged: not when it only collected tests, nor
        after a usage error (no test ran)."""
        if self.config.option.collectonly:
            return False
        return int(session.exitstatus) != pytest.ExitCode.USAGE_ERROR

    def _finish(self, session: pytest.Session) -> None:
        state = self.state
        models, collisions = state.collector.build()
        gates = self._gates()
        settings = state.settings
        asked = settings.json_path or settings.junit_path or settings.html_path or settings.baseline
        if not models and not gates and not asked:
            return
        interrupted = int(session.exitstatus) == pytest.ExitCode.INTERRUPTED
        result = state.result = self._session_result(models)
        for model in models.values():
            self.config.hook.pytest_fairmind_model_result(result=model, session=result)
            _make_plain(model)
        gated = gating.run(
            gates,
            models,
            baseline=self._baseline_request(result.project),
            strict=settings.strict,
            gate_action=settings.gate_action,
            exitstatus=int(session.exitstatus),
            **self._evidence_policy(),
        )
        result.gates_not_evaluated = gated.not_evaluated
        if interrupted:
            for model in models.values():
                model.verdict = INTERRUPTED
            state.notices.insert(0, INTERRUPTED_NOTICE)
        for warning in collisions:
            self._warn(warning)
        state.notices.extend(gated.notices)
        # a typo's hint ("did you mean ...?") is kept in the report, not only printed
        for expr in gated.not_evaluated:
            if not_evaluated_hint(expr, models) is not None:
                state.notices.append(not_evaluated_line(expr, result))
        status = gating.escalate(gated.exitstatus) if state.errors else gated.exitstatus
        self._strict_reasons = list(gated.strict_reasons)
        self._set_notices(result)
        result.exitstatus = status
        result.finished = _now()  # the tests' end; providers' runs end here too
        result.providers = pending_outcomes(state.providers)
        text = self._save_history(result)  # before any provider is called: nothing is lost if one hangs
        if state.providers:  # what they did changes the session: encode it again
            status = self._log(result, status)
            self._set_notices(result)
            result.exitstatus = status
            text = None
            if state.history_entry is not None:
                text = self._save_history(result)
        status = self._write_report(result, status, text)
        status = self._write_readable_reports(result, status)
        self._write_step_summary(result)
        self.config.hook.pytest_fairmind_logged(session=result)
        session.exitstatus = status

    def _evidence_policy(self) -> dict[str, Any]:
        settings = self.state.settings
        return {
            "evidence": settings.evidence,
            "inconclusive": settings.inconclusive,
            "multiple_testing": settings.multiple_testing,
            "level": settings.ci,
        }

    def _set_notices(self, result: SessionResult) -> None:
        """The session's notices, then warnings turned into errors, then why strict mode failed."""
        state = self.state
        strict = [strict_line(self._strict_reasons)] if self._strict_reasons else []
        result.notices = [
            *state.notices,
            *(f"FairmindWarning turned into an error: {e}" for e in state.errors),
            *strict,
        ]

    def _cleanup(self) -> None:
        """After the session end, whatever happened: started providers that did not log end, and
        the xdist spool goes. Also at unconfigure, for a session that never reached its end."""
        started, self._started = self._started, None
        if started is not None:
            started.close()
        folder, self.state.spool_folder = self.state.spool_folder, None
        if folder is not None:
            spool.remove_folder(folder)

    def pytest_unconfigure(self) -> None:
        self._cleanup()

    def _session_result(self, models: dict[str, ModelResult]) -> SessionResult:
        providers = self.state.providers
        git = git_info(str(self.config.rootpath))
        return SessionResult(
            id=self.state.session_id,
            project=project_for(providers[0].name if providers else None, self.state.settings.project),
            started=self.state.started or _now(),
            git=git,
            models=models,
            context=context_tags(pytest_version=pytest.__version__, plugin_version=__version__, git=git),
            settings=self.state.settings.gate_policy(),
        )

    def _baseline_request(self, project: str) -> gating.BaselineRequest:
        settings = self.state.settings
        marked = self.state.collector.marker_directions()
        declared = [
            *declarations(settings.lower_is_better, LOWER),
            *declarations(settings.higher_is_better, HIGHER),
        ]
        return gating.BaselineRequest(
            settings.baseline,
            project=project,
            history_folder=self._history_folder(),
            exclude_session=self.state.session_id,
            mlflow_uri=settings.mlflow_uri,
            mlflow_project=project_for("mlflow", settings.project),
            workdir=self._workdir,
            timeout=settings.timeout,
            # the provider logs to the same store and experiment (same settings): ask it there
            mlflow_process=self._started.warm_process("mlflow") if self._started is not None else None,
            directions=Directions.layered(marked, declared),  # a marker's (one model) first
        )

    def _save_history(self, result: SessionResult) -> str | None:
        """Write (or rewrite) the session's history entry; a failure is a notice. Returns the text
        written, for the report to reuse (None when nothing was written)."""
        keep = self.state.settings.history_keep
        if keep <= 0:
            return None
        folder = self._history_folder()
        text = report.dumps(result)
        try:
            self.state.history_entry = history.save(folder, result, keep=keep, text=text)
        except OSError as exc:
            entry = self.state.history_entry
            what = (
                f"update the history entry {entry}" if entry is not None else f"save the session in {folder}"
            )
            self.state.notices.append(f"could not {what}: {exc}")  # kept when notices are rebuilt
            self._set_notices(result)
            return None
        return text

    def _log(self, result: SessionResult, status: int) -> int:
        """Log to the providers; under ``--fairmind-strict`` a failed provider fails the session."""
        settings = self.state.settings
        if not self.state.providers:
            return status
        if self._started is not None:
            result.providers = self._started.log(result, timeout=settings.timeout)
        else:
            result.providers = log_session(
                self.state.providers, result, timeout=settings.timeout, explicit_project=settings.project
            )
        failed = [name for name, o in result.providers.items() if not o.ok]
        if settings.strict and failed:
            self._strict_reasons.append(f"provider(s) failed: {', '.join(failed)}")
            return gating.escalate(status)
        return status

    def _write_report(self, result: SessionResult, status: int, text: str | None = None) -> int:
        """``--fairmind-json``: the report was asked for, so its absence must not pass silently.
        ``text`` is the session as the history entry has it, when that is still current."""
        json_path = self.state.settings.json_path
        if not json_path:
            return status
        path = self._output_path(json_path)
        try:
            atomic_write(path, report.dumps(result) if text is None else text)
        except OSError as exc:
            result.notices.append(f"could not write the report {json_path}: {exc}")
            return gating.escalate(status)
        self._report_written = True
        return status

    def _output_path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.config.invocation_params.dir / path

    def _write_readable_reports(self, result: SessionResult, status: int) -> int:
        """``--fairmind-junit`` and ``--fairmind-html`` (docs/reports.md): asked for, so a file that
        could not be written fails the session, as the JSON report does."""
        settings = self.state.settings
        if settings.junit_path:
            from pytest_fairmind.junit import write_junit

            try:
                write_junit(
                    self._output_path(settings.junit_path),
                    result,
                    gate_action=settings.gate_action,
                    inconclusive=settings.inconclusive,
                    strict_reasons=self._strict_reasons,
                )
                self._readable_written.append(("JUnit report", settings.junit_path))
            except OSError as exc:
                result.notices.append(f"could not write the JUnit report {settings.junit_path}: {exc}")
                status = gating.escalate(status)
        if settings.html_path:
            try:
                from pytest_fairmind.html import write_html  # needs Jinja2: the `html` extra

                write_html(self._output_path(settings.html_path), result, self._history_folder())
                self._readable_written.append(("HTML report", settings.html_path))
            except (OSError, ImportError) as exc:
                result.notices.append(f"could not write the HTML report {settings.html_path}: {exc}")
                status = gating.escalate(status)
        return status

    def _write_step_summary(self, result: SessionResult) -> None:
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if not summary_file:
            return
        try:
            with open(summary_file, "a", encoding="utf-8") as fh:
                fh.write(redact_text(markdown(result, gate_action=self.state.settings.gate_action)))
        except OSError as exc:
            result.notices.append(f"could not write GITHUB_STEP_SUMMARY: {exc}")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.state.result
        if result is None:
            return
        settings = self.state.settings
        counts = {
            "from_options": len(dict.fromkeys(settings.gates)),
            "from_markers": len(self.state.collector.marker_gates()),
        }
        terminalreporter.write_sep("-", f"fairmind: {gates_heading(result, **counts)}")
        for part in verdict_parts(result, gate_action=settings.gate_action):
            failed = part.style == FAIL
            terminalreporter.write_line(
                redact_text(part.text),
                red=failed,
                bold=failed,
                yellow=part.style == WARN,
                purple=part.style == INCONCLUSIVE,  # its own colour: neither failed nor fine
            )
        for part in provider_parts(result, history_entry=self._entry_text()):
            terminalreporter.write_line(redact_text(part.text), yellow=part.style == WARN)
        if self._report_written:  # else a notice above said why it is not there
            terminalreporter.write_line(f"report: {settings.json_path}")
        for what, path in self._readable_written:
            terminalreporter.write_line(f"{what}: {path}")

    def _entry_text(self) -> str | None:
        """The history entry as the user would type it (relative to where pytest was started)."""
        entry = self.state.history_entry
        if entry is None:
            return None
        try:
            return os.path.relpath(entry, self.config.invocation_params.dir)
        except ValueError:
            return str(entry)
