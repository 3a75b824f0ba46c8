"""Weights & Biases provider: one run per model, grouped by session (see docs/providers.md).

Built-in providers run in a child process (:mod:`pytest_fairmind.isolation`), so the constructor
is cheap and never imports wandb: the parent builds one only to answer :meth:`WandbProvider.target`.

What a run holds: project = the session's project, name = model, group = session id,
``job_type="fairness"``, config = params, tags = verdict and record tags as ``key:value``,
summary = every metric plus ``fairmind.verdict`` and ``fairmind.session``, one ``wandb.Table`` per
group scope (and a chart image per column family when matplotlib is installed), one per subgroup
scan (``scans/<scope>``) and the gate results (``fairmind/gates``). The run id is derived from
(session id, model), so a replay or ``wandb sync`` never makes a second run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import netrc
import os
import re
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_fairmind import locks, procs
from pytest_fairmind.plots import keep_charts
from pytest_fairmind.providers.base import ProviderSettings, budget_spent, fit_bytes, project_for
from pytest_fairmind.redact import REDACTED, redact_obj, redact_text, redact_uri, secret_values
from pytest_fairmind.result import GroupRow, ModelResult, ProviderOutcome, RunRef, SessionResult
from pytest_fairmind.settings import WANDB_MODES, normalize_wandb_mode

DEFAULT_BASE_URL = "https://api.wandb.ai"
TAG_MAX_LENGTH = 64  # W&B rejects longer tags
PROJECT_MAX_LENGTH = 128
PROJECT_FORBIDDEN = "/\\#?%:"
#: Written into an offline run directory once the run is finished: a directory without it was
#: cut at the deadline and is logged again (same run id) rather than skipped.
COMPLETE_MARKER = ".fairmind-complete"
#: Bytes of one ``/``-separated part of a table's key: wandb names the table's file after the key's
#: last part (plus ``_<step>_<20-digit id>.table.json``) and stages it under the whole key, and
#: file systems allow 255 bytes per name.
KEY_PART_BYTES = 150
#: The share of the budget one model may wait for another process writing the same run.
WAIT_SHARE = 0.25
#: Where a session's extra tables go in a run: the gate results, and each scan as ``scans/<scope>``.
GATES_KEY = "fairmind/gates"
SCANS_PREFIX = "scans"


def validate_project(project: str) -> str | None:
    """Why ``project`` is not a valid W&B project name, or None when it is."""
    if not project.strip():
        return "W&B project name is empty"
    if len(project) > PROJECT_MAX_LENGTH:
        return f"W&B project name {project!r} is longer than {PROJECT_MAX_LENGTH} characters"
    bad = sorted({c for c in project if c in PROJECT_FORBIDDEN})
    if bad:
        return (
            f"W&B project name {project!r} contains {' '.join(bad)}; "
            f"W&B forbids any of {' '.join(PROJECT_FORBIDDEN)} (set --fairmind-project)"
        )
    return None


def run_id(session_id: str, model: str) -> str:
    """Deterministic W&B run id of one (session, model) pair: replays reuse it."""
    digest = hashlib.sha256(f"{session_id}\0{model}".encode()).hexdigest()
    return f"fm-{digest[:24]}"


def fit_tag(tag: str) -> str:
    """``tag`` within W&B's 64 characters; a shortened tag ends with ``…`` so it reads as cut."""
    if len(tag) <= TAG_MAX_LENGTH:
        return tag
    return tag[: TAG_MAX_LENGTH - 1] + "…"


def run_tags(model: ModelResult, secrets: list[str] | None = None) -> list[str]:
    """The verdict, then the model's record tags as ``key:value``, deduplicated, each at most 64 chars."""
    tags: list[str] = []
    for tag in (model.verdict, *(f"{k}:{v}" for k, v in model.tags.items())):
        fitted = fit_tag(redact_text(tag, secrets))
        if fitted and fitted not in tags:
            tags.append(fitted)
    return tags


def base_url(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return (env.get("WANDB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


def api_key_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether wandb would find credentials, checked as wandb 0.31 does but without network.

    ``WANDB_API_KEY`` or ``WANDB_IDENTITY_TOKEN_FILE`` in the environment, else a ``.netrc`` entry
    (``$NETRC``, ``~/.netrc`` or ``~/_netrc``) for the host of ``WANDB_BASE_URL``.
    """
    env = os.environ if environ is None else environ
    return bool(env.get("WANDB_IDENTITY_TOKEN_FILE") or api_key(env))


def api_key(environ: Mapping[str, str] | None = None) -> str | None:
    """The API key wandb would use for ``WANDB_BASE_URL``: ``WANDB_API_KEY``, else ``.netrc``."""
    env = os.environ if environ is None else environ
    if env.get("WANDB_API_KEY"):
        return env["WANDB_API_KEY"]
    host = urlsplit(base_url(env)).netloc
    candidates = [env["NETRC"]] if env.get("NETRC") else ["~/.netrc", "~/_netrc"]
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if host and path.is_file():
            try:
                creds = netrc.netrc(str(path)).authenticators(host)
            except (netrc.NetrcParseError, OSError):
                return None
            return creds[2] if creds and creds[2] else None
    return None


def resolve_mode(configured: str | None, environ: Mapping[str, str] | None = None) -> str:
    """``online``/``offline``/``disabled``: the configured mode, else ``WANDB_MODE``, else by API key."""
    env = os.environ if environ is None else environ
    text = (configured or env.get("WANDB_MODE") or "").strip().lower()
    if not text:
        return "online" if api_key_configured(env) else "offline"
    mode = normalize_wandb_mode(text)
    if mode is None:
        raise ValueError(f"unknown W&B mode {text!r} (expected one of {', '.join(WANDB_MODES)})")
    return mode


def wandb_root(settings: ProviderSettings, environ: Mapping[str, str] | None = None) -> str:
    """The directory wandb writes under (``$WANDB_DIR``, else the pytest working directory)."""
    env = os.environ if environ is None else environ
    return os.path.abspath(env.get("WANDB_DIR") or settings.workdir)


def wandb_dir(root: str) -> str:
    """``<root>/wandb``, or ``<root>/.wandb`` when that exists (wandb's own rule)."""
    dot = os.path.join(root, ".wandb")
    return dot if os.path.isdir(dot) else os.path.join(root, "wandb")


def run_lock_path(directory: str, rid: str) -> str:
    """The lock held while run ``rid`` is written (see ``locks.exclusive``): a hidden file of the
    wandb folder, removed again when the run is done."""
    return os.path.join(directory, f".fairmind-{rid}.lock")


def _offline_run_dirs(directory: str, rid: str) -> list[str]:
    if not os.path.isdir(directory):
        return []
    suffix = f"-{rid}"
    return sorted(
        os.path.join(directory, name)
        for name in os.listdir(directory)
        if name.startswith("offline-run-") and name.endswith(suffix)
    )


class _Budget:
    """The time this provider may take, counted from when the caller's budget began (in a provider
    process, before the process started or while it was busy: ``budget_spent``). A slice is kept
    back for teardown."""

    def __init__(self, timeout: float) -> None:
        start = time.monotonic() - budget_spent()
        # Kept back for teardown, writing the outcome and interpreter exit after the watchdog fired.
        self.deadline = start + timeout - min(2.0, max(0.5, 0.2 * timeout))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _kill_core() -> None:
    procs.kill(procs.children_named(os.getpid(), "wandb-core"))


def _table_data(rows: list[GroupRow]) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of a per-group table: one column per feature, ``class`` (multiclass),
    ``count``, then every other field in the order the rows first give it, each value column
    followed by ``<column>.ci_low`` and ``<column>.ci_high`` when some row has its interval."""
    from pytest_fairmind.plots import ROW_FIELDS, finite_or_none, interval

    features: dict[str, None] = {}
    fields: dict[str, None] = {}
    for row in rows:
        features.update(dict.fromkeys(row.get("group") or {}))
        fields.update(dict.fromkeys(k for k in row if k not in ROW_FIELDS))
    head = [k for k in ("class", "count") if any(k in row for row in rows)]
    stats: list[tuple[str, str | None, int]] = [(k, k, -1) for k in head]
    for name in fields:
        stats.append((name, name, -1))
        if any(interval(row, name) is not None for row in rows):
            stats.extend([(f"{name}.ci_low", name, 0), (f"{name}.ci_high", name, 1)])
    titles = [title for title, _, _ in stats]
    # A feature named like a stat column ("count") must not make a duplicate column.
    names = [f"group.{f}" if f in titles else f for f in features]

    def cell(row: GroupRow, column: str | None, end: int) -> Any:
        if end < 0:
            return finite_or_none(row.get(column or ""))
        pair = interval(row, column or "")
        return None if pair is None else pair[end]

    data = [
        [*((row.get("group") or {}).get(f) for f in features), *(cell(row, c, e) for _, c, e in stats)]
        for row in rows
    ]
    return [*names, *titles], data


def scan_table_data(entry: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A scan's table (``plots.SCAN_COLUMNS``): the conditions as text, then the numbers."""
    from pytest_fairmind.plots import SCAN_COLUMNS, conditions_text, finite_or_none

    data = [
        [conditions_text(row.get("conditions")), *(finite_or_none(row.get(c)) for c in SCAN_COLUMNS[1:])]
        for row in entry.get("rows") or []
    ]
    return list(SCAN_COLUMNS), data


def gate_table_data(model: ModelResult) -> tuple[list[str], list[list[Any]]]:
    """The gate table: every field of every gate result, as in MLflow's ``fairmind/gates.json``."""
    from pytest_fairmind.plots import finite_or_none, gate_entry

    entries = [gate_entry(g) for g in model.gates]
    columns = list(entries[0]) if entries else []
    return columns, [[finite_or_none(entry[c]) for c in columns] for entry in entries]


def _charts_available() -> bool:
    from pytest_fairmind.plots import matplotlib_available

    return matplotlib_available()


def leaks(key: str, secrets: list[str]) -> bool:
    """Whether a key holds a secret: marked ``***`` by the report codec, or equal to one of
    ``secrets``. Such a key is left out (redacted it would be another key), never sent."""
    return REDACTED in key or any(s in key for s in secrets)


def fit_key(key: str) -> str:
    """``key`` with each ``/``-separated part at most :data:`KEY_PART_BYTES` bytes in UTF-8 (a
    cut part ends in a hash of it): what wandb can turn into file names."""
    return "/".join(fit_bytes(part, KEY_PART_BYTES) for part in key.split("/"))


def _free_key(preferred: str, fallback: str, model: ModelResult) -> str:
    """``preferred`` as a media key, or ``fallback`` when a metric of the model owns that key
    (the metric keeps it; the table moves aside)."""
    key = fit_key(preferred)
    return fit_key(fallback) if key in model.metrics else key


def _config(params: Mapping[str, Any], secrets: list[str], left_out: list[str]) -> dict[str, Any]:
    """The run's config: params with their values redacted; a key holding a secret is left out."""
    config: dict[str, Any] = {}
    for key, value in params.items():
        if leaks(key, secrets):
            left_out.append(f"param {redact_text(key, secrets)!r}")
            continue
        config[key] = redact_text(value, secrets) if isinstance(value, str) else value
    return config


def _notes(session: SessionResult, secrets: list[str]) -> str:
    lines = [f"pytest-fairmind session {session.id}"]
    if session.git:
        git = ", ".join(f"{k}={v}" for k, v in session.git.items() if v is not None)
        lines.append(f"git: {git}")
    lines.extend(f"{k}: {v}" for k, v in sorted(session.context.items()))
    return redact_text("\n".join(lines), secrets)


class WandbProvider:
    """The ``wandb`` provider (``--fairmind-provider=wandb``)."""

    name = "wandb"

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings

    def _project(self) -> str:
        return project_for(self.name, self._settings.project)

    def target(self) -> str:
        try:
            mode = resolve_mode(self._settings.wandb_mode)
        except ValueError as exc:
            return f"invalid: {exc}"
        if mode == "disabled":
            return "disabled (nothing is logged)"
        if mode == "offline":
            return f"offline: {wandb_dir(wandb_root(self._settings))}"
        entity = os.environ.get("WANDB_ENTITY") or "<default entity>"
        return f"online: {redact_uri(base_url())} ({entity}/{self._project()})"

    def check(self, timeout: float) -> str | None:
        """For ``fairmind status``: None when runs can be written, else why not (no wandb import).

        Online: one GraphQL ``viewer`` query with the API key, as wandb authenticates.
        Offline: the wandb folder (or its nearest existing parent) is writable.
        """
        try:
            mode = resolve_mode(self._settings.wandb_mode)
        except ValueError as exc:
            return str(exc)
        if mode == "disabled":
            return None
        problem = validate_project(self._project())
        if problem:
            return problem
        if mode == "offline":
            existing = wandb_dir(wandb_root(self._settings))
            while not os.path.exists(existing):
                existing = os.path.dirname(existing)
            if not os.access(existing, os.W_OK | os.X_OK):
                return f"{existing}: not writable"
            return None
        return _check_online(timeout)

    def warm_up(self) -> None:
        """Import wandb (a second or more) while the tests run; nothing is written or started."""
        with contextlib.suppress(ValueError):
            if resolve_mode(self._settings.wandb_mode) == "disabled":
                return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import wandb

            del wandb
        if self._settings.plots and _charts_available():
            with contextlib.suppress(ImportError):
                import matplotlib.backends.backend_agg
                import matplotlib.figure

                del matplotlib

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        target = redact_text(self.target())
        # wandb's error reporting flushes to the server at interpreter exit, for up to 30 s when
        # the server stalls; W&B usage analytics are not ours to send anyway.
        saved = os.environ.get("WANDB_ERROR_REPORTING")
        os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # wandb's warnings must not meet the user's -W error
                outcome = self._log(session, timeout)
        except Exception as exc:  # never raise into pytest
            outcome = ProviderOutcome(ok=False, error=redact_text(f"{type(exc).__name__}: {exc}"))
        finally:
            if saved is None:
                os.environ.pop("WANDB_ERROR_REPORTING", None)
        outcome.target = outcome.target or target
        return outcome

    def _log(self, session: SessionResult, timeout: float) -> ProviderOutcome:
        budget = _Budget(timeout)
        ready = self._preflight(session)
        if isinstance(ready, ProviderOutcome):
            return ready
        wandb, mode = ready
        root = wandb_root(self._settings)
        os.makedirs(root, exist_ok=True)
        # At the deadline, wandb-core is killed so a blocked init/finish returns at once and
        # nothing of wandb outlives this call (the parent's group kill does not reach wandb-core).
        watchdog = threading.Timer(max(0.0, budget.remaining()), _kill_core)
        watchdog.daemon = True
        watchdog.start()
        try:
            with tempfile.TemporaryDirectory(prefix="fairmind-wandb-") as scratch:
                batch = _Batch(wandb, session, mode, root, scratch, budget, timeout, secret_values())
                self._log_models(batch)
        finally:
            watchdog.cancel()
            # teardown calls sys.exit with wandb-core's exit code when the watchdog killed it.
            with contextlib.suppress(Exception, SystemExit):
                wandb.teardown()
            _kill_core()  # teardown stops it; this only matters if teardown failed
        return batch.outcome()

    def _preflight(self, session: SessionResult) -> tuple[Any, str] | ProviderOutcome:
        """(the wandb module, the mode) when there is something to log, else the outcome already."""
        try:
            mode = resolve_mode(self._settings.wandb_mode)
        except ValueError as exc:
            return ProviderOutcome(ok=False, error=str(exc))
        if mode == "disabled":
            return ProviderOutcome(ok=True, note="W&B mode is disabled: nothing was logged")
        problem = validate_project(session.project)
        if problem:
            return ProviderOutcome(ok=False, error=problem)
        if not session.models:
            return ProviderOutcome(ok=True)  # nothing to log: do not even start wandb
        try:
            import wandb
        except ImportError:
            return ProviderOutcome(
                ok=False, error="wandb is not installed: pip install 'pytest-fairmind[wandb]'"
            )
        return wandb, mode

    def _log_models(self, batch: _Batch) -> None:
        """One run per model while the budget lasts; charts go first when time runs short."""
        models = batch.session.models
        charts = self._settings.plots and _charts_available()
        started = time.monotonic()
        for index, (name, model) in enumerate(models.items()):
            left = len(models) - index
            if batch.budget.remaining() <= 0:
                batch.errors.append(
                    f"time budget ({batch.timeout:g} s) exhausted; {left} model(s) not logged"
                )
                return
            if charts and index:
                charts = keep_charts(batch.budget.remaining(), time.monotonic() - started, index, left)
            if not charts and self._settings.plots and model.groups:
                batch.chartless += 1
            try:
                batch.runs[name] = self._log_model(batch, model, charts)
            except Exception as exc:
                batch.errors.append(f"model {name!r}: {_describe(exc, batch)}")
                if isinstance(exc, _InitFailed):
                    # Same server, same credentials: the next models would fail alike.
                    if left > 1:
                        batch.errors.append(f"{left - 1} more model(s) not attempted")
                    return

    def _log_model(self, batch: _Batch, model: ModelResult, charts: bool) -> RunRef:
        """One run, written under the run's lock: another process writing the same run (a replay
        of the same session) is waited for, and its folder is never taken for a partial one."""
        rid = run_id(batch.session.id, model.name)
        directory = wandb_dir(batch.root)
        os.makedirs(directory, exist_ok=True)
        try:
            wait = min(batch.budget.remaining(), max(1.0, WAIT_SHARE * batch.timeout))
            with locks.exclusive(run_lock_path(directory, rid), timeout=max(0.0, wait)):
                return self._log_model_locked(batch, model, charts, rid)
        except locks.LockTimeout:
            raise RuntimeError(
                f"run {rid} is being written by another process; not logged twice: replay later"
            ) from None

    def _log_model_locked(self, batch: _Batch, model: ModelResult, charts: bool, rid: str) -> RunRef:
        if batch.mode == "offline":
            done = _complete_offline_run(wandb_dir(batch.root), rid)
            if done is not None:
                return done
        run = _init_run(batch, model, rid)
        finished = False
        try:
            online = batch.mode == "online"
            url = getattr(run, "url", None) if online else None
            path = None if online else run.settings.sync_dir
            if online and run.resumed and "fairmind.verdict" in run.summary:
                run.finish()
                finished = True
                return RunRef(id=rid, url=url, skipped=True)
            self._write(batch, run, model, charts)
            run.finish()
            finished = True
            if path is not None:
                Path(path, COMPLETE_MARKER).write_text(
                    f"{batch.session.id}\n{model.name}\n", encoding="utf-8"
                )
            return RunRef(id=rid, url=url, path=path)
        finally:
            if not finished:
                with contextlib.suppress(Exception):
                    run.finish(exit_code=1)

    def _write(self, batch: _Batch, run: Any, model: ModelResult, charts: bool) -> None:
        """The model's tables (groups, scans, gates) and charts in one step, then its summary."""
        media = self._group_media(batch, model, charts)
        media.update(self._scan_media(batch, model))
        if model.gates:
            columns, data = gate_table_data(model)
            key = _free_key(GATES_KEY, "fairmind.gates", model)
            media[key] = batch.wandb.Table(columns=columns, data=redact_obj(data), allow_mixed_types=True)
        if media:
            run.log(media)  # one step holding every table and chart
        summary: dict[str, Any] = {}
        for key, value in model.metrics.items():
            if leaks(key, batch.secrets):
                batch.secret_keys.append(f"metric {redact_text(key, batch.secrets)!r}")
            else:
                summary[key] = value
        summary["fairmind.verdict"] = model.verdict
        summary["fairmind.session"] = redact_text(batch.session.id, batch.secrets)
        run.summary.update(summary)

    def _group_media(self, batch: _Batch, model: ModelResult, charts: bool) -> dict[str, Any]:
        """``<scope>/by_group`` tables, and ``<scope>/by_group_chart.<family>`` images."""
        from pytest_fairmind.plots import group_charts_png

        wandb = batch.wandb
        media: dict[str, Any] = {}
        for number, (scope, rows) in enumerate(model.groups.items()):
            if leaks(scope, batch.secrets):
                batch.secret_keys.append(f"group table {redact_text(scope, batch.secrets)!r}")
                continue
            key = _free_key(f"{scope}/by_group", f"fairmind.by_group/{scope}", model)
            columns, data = _table_data(rows)
            media[key] = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
            if charts:
                base = os.path.join(batch.scratch, f"{_safe_file(model.name)}-{number}")
                with contextlib.suppress(Exception):  # a chart is a nice-to-have, never a failure
                    for family, png in group_charts_png(scope, rows, base, title=f"{model.name}: {scope}"):
                        caption = f"{model.name}: {scope} ({family.replace('_', ' ')})"
                        media[fit_key(f"{key}_chart.{family}")] = wandb.Image(png, caption=caption)
        return media

    def _scan_media(self, batch: _Batch, model: ModelResult) -> dict[str, Any]:
        """One ``scans/<scope>`` table per subgroup scan."""
        media: dict[str, Any] = {}
        for scope, entry in model.scans.items():
            if leaks(scope, batch.secrets):
                batch.secret_keys.append(f"scan table {redact_text(scope, batch.secrets)!r}")
                continue
            columns, data = scan_table_data(entry)
            key = _free_key(f"{SCANS_PREFIX}/{scope}", f"fairmind.scans/{scope}", model)
            media[key] = batch.wandb.Table(columns=columns, data=redact_obj(data), allow_mixed_types=True)
        return media


@dataclass
class _Batch:
    """One :meth:`WandbProvider.log` call: what every run needs, and what the runs gave."""

    wandb: Any
    session: SessionResult
    mode: str
    root: str
    scratch: str
    budget: _Budget
    timeout: float
    secrets: list[str]  # every string sent to W&B goes through these
    runs: dict[str, RunRef] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    chartless: int = 0
    secret_keys: list[str] = field(default_factory=list)  # left out: the name holds a secret

    def outcome(self) -> ProviderOutcome:
        if self.secret_keys:
            shown = ", ".join(self.secret_keys[:5]) + (" ..." if len(self.secret_keys) > 5 else "")
            self.errors.append(
                f"{len(self.secret_keys)} key(s) holding a secret value were left out (rename them): {shown}"
            )
            self.secret_keys = []
        notes = []
        if self.mode == "offline":
            notes.append(f"uploadable with: wandb sync {wandb_dir(self.root)}/offline-run-*")
        if self.chartless and _charts_available():
            notes.append(f"charts left out for {self.chartless} model(s) to stay within the time budget")
        return ProviderOutcome(
            ok=not self.errors,
            error=redact_text("; ".join(self.errors)) if self.errors else None,
            runs=self.runs,
            note="; ".join(notes) or None,
        )


def _complete_offline_run(directory: str, rid: str) -> RunRef | None:
    """Our finished offline run of ``rid`` (skipped), else None; a partial one is removed first.

    Called under the run's lock (:func:`run_lock_path`): a folder without the completion marker
    is then one whose writer is gone (the kernel released its lock when it died)."""
    existing = _offline_run_dirs(directory, rid)
    complete = [d for d in existing if os.path.exists(os.path.join(d, COMPLETE_MARKER))]
    if complete:
        return RunRef(id=rid, path=complete[-1], skipped=True)
    for partial in existing:  # our own run, cut at a deadline: log it again in full
        shutil.rmtree(partial, ignore_errors=True)
    return None


def _run_settings(wandb: Any, remaining: float) -> Any:
    """wandb settings for a quiet run that records nothing of the machine and ends in time."""
    return wandb.Settings(
        console="off",
        silent=True,
        quiet=True,
        disable_git=True,
        disable_code=True,
        save_code=False,
        disable_job_creation=True,
        x_disable_stats=True,
        # No environment record: it holds the command line, which may carry a password.
        x_disable_meta=True,
        x_disable_machine_info=True,
        x_save_requirements=False,
        init_timeout=remaining,
        x_service_wait=remaining,
        finish_timeout=remaining,
        finish_timeout_raises=True,
    )


def _init_run(batch: _Batch, model: ModelResult, rid: str) -> Any:
    """``wandb.init`` of ``model``'s run; :class:`_InitFailed` when it fails."""
    secrets = batch.secrets
    try:
        return batch.wandb.init(
            project=batch.session.project,
            entity=os.environ.get("WANDB_ENTITY") or None,
            name=redact_text(model.name, secrets),
            group=redact_text(batch.session.id, secrets),
            job_type="fairness",
            config=_config(model.params, secrets, batch.secret_keys),
            tags=run_tags(model, secrets),
            notes=_notes(batch.session, secrets),
            id=rid,
            # Online, the run id doubles as the existence check: a run that is already there
            # is resumed, not duplicated, and skipped when it is complete.
            resume="allow" if batch.mode == "online" else None,
            reinit="create_new",
            dir=batch.root,
            mode=batch.mode,
            settings=_run_settings(batch.wandb, max(1.0, batch.budget.remaining())),
        )
    except Exception as exc:
        raise _InitFailed(exc) from exc


def _check_online(timeout: float) -> str | None:
    url = redact_uri(base_url())
    key = api_key()
    request = urllib.request.Request(
        base_url() + "/graphql",
        data=json.dumps({"query": "query { viewer { id } }"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    if key:
        token = base64.b64encode(f"api:{key}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return f"{url}: API key rejected (HTTP {exc.code})" if key else f"{url}: no API key configured"
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            return f"{url}: no answer within {timeout:g} s"
        return redact_text(f"{url}: {reason}")
    if not (isinstance(body, dict) and (body.get("data") or {}).get("viewer")):
        return (
            f"{url}: not authorised (no viewer for this API key)" if key else f"{url}: no API key configured"
        )
    return None


class _InitFailed(Exception):
    """``wandb.init`` failed: wrong credentials, no network, a stalled server."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"wandb.init failed: {type(cause).__name__}: {cause}")


def _describe(exc: BaseException, batch: _Batch) -> str:
    if batch.budget.remaining() <= 0:
        where = f" waiting for {redact_uri(base_url())}" if batch.mode == "online" else ""
        what = "wandb.init" if isinstance(exc, _InitFailed) else "wandb"
        text = f"{what} gave up at the time budget ({batch.timeout:g} s, --fairmind-timeout){where}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:500]


def _safe_file(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "model"
