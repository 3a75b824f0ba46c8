"""Weights & Biases provider: one run per model, grouped by session (SPEC section 7).

Built-in providers run in a child process (:mod:`pytest_fairmind.isolation`), so the constructor
is cheap and never imports wandb: the parent builds one only to answer :meth:`WandbProvider.target`.

What a run holds: project = the session's project, name = model, group = session id,
``job_type="fairness"``, config = params, tags = verdict and record tags as ``key:value``,
summary = every metric plus ``fairmind.verdict`` and ``fairmind.session``, one ``wandb.Table`` per
group scope (and a chart image when matplotlib is installed). The run id is derived from
(session id, model), so a replay or ``wandb sync`` never makes a second run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import netrc
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.redact import redact_text, redact_uri, secret_values
from pytest_fairmind.result import GroupRow, ModelResult, ProviderOutcome, RunRef, SessionResult

DEFAULT_BASE_URL = "https://api.wandb.ai"
MODES = ("online", "offline", "disabled")
_MODE_ALIASES = {"dryrun": "offline", "run": "online"}
TAG_MAX_LENGTH = 64  # W&B rejects longer tags
PROJECT_MAX_LENGTH = 128
PROJECT_FORBIDDEN = "/\\#?%:"
#: Written into an offline run directory once the run is finished: a directory without it was
#: cut at the deadline and is logged again (same run id) rather than skipped.
COMPLETE_MARKER = ".fairmind-complete"
#: Per-group stat columns, in this order, after one column per sensitive feature.
GROUP_STATS = ("count", "selection_rate", "true_positive_rate", "false_positive_rate", "accuracy")


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
    mode = _MODE_ALIASES.get(text, text)
    if mode not in MODES:
        raise ValueError(f"unknown W&B mode {text!r} (expected one of {', '.join(MODES)})")
    return mode


def wandb_root(settings: ProviderSettings, environ: Mapping[str, str] | None = None) -> str:
    """The directory wandb writes under (``$WANDB_DIR``, else the pytest working directory)."""
    env = os.environ if environ is None else environ
    return os.path.abspath(env.get("WANDB_DIR") or settings.workdir)


def wandb_dir(root: str) -> str:
    """``<root>/wandb``, or ``<root>/.wandb`` when that exists (wandb's own rule)."""
    dot = os.path.join(root, ".wandb")
    return dot if os.path.isdir(dot) else os.path.join(root, "wandb")


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
    """The time this provider may take; counted from process start in a young (isolation) process.

    The parent's deadline started when it spawned us, so a child that counted from :meth:`log`
    would overrun it by its own start-up time. A slice is kept back for teardown.
    """

    def __init__(self, timeout: float) -> None:
        now = time.monotonic()
        age = _process_age()
        start = now - age if age is not None and age < timeout else now
        # Kept back for teardown, writing the outcome and interpreter exit after the watchdog fired.
        self.deadline = start + timeout - min(2.0, max(0.5, 0.2 * timeout))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def _process_age() -> float | None:
    """Seconds since this process started (Linux ``/proc``), None elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rpartition(")")[2].split()
        with open("/proc/uptime", encoding="ascii") as fh:
            uptime = float(fh.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def core_pids(parent: int | None = None) -> list[int]:
    """``wandb-core`` processes started by ``parent`` (default: this process); Linux only.

    wandb starts wandb-core in a session of its own, so killing our process group misses it.
    """
    parent = os.getpid() if parent is None else parent
    pids = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                    stat = fh.read()
            except OSError:
                continue
            comm = stat[stat.find("(") + 1 : stat.rfind(")")]
            fields = stat.rpartition(")")[2].split()
            if comm == "wandb-core" and len(fields) > 1 and fields[1] == str(parent):
                pids.append(int(entry))
    return pids


def _kill_core() -> None:
    for pid in core_pids():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _finite_or_none(value: Any) -> Any:
    """A stat cell: NaN/inf (or their report words, after a JSON round trip) become empty cells."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return None
    return value


def _table_data(rows: list[GroupRow]) -> tuple[list[str], list[list[Any]]]:
    """Columns (one per feature, then the stats) and rows of a per-group table."""
    features: list[str] = []
    extra: list[str] = []
    for row in rows:
        for feature in row.get("group") or {}:
            if feature not in features:
                features.append(feature)
        for key in row:
            if key != "group" and key not in GROUP_STATS and key not in extra:
                extra.append(key)
    stats = [s for s in GROUP_STATS if any(s in row for row in rows)] + extra
    # A feature named like a stat column ("count") must not make a duplicate column.
    names = [f"group.{f}" if f in stats else f for f in features]
    data = [
        [*((row.get("group") or {}).get(f) for f in features), *(_finite_or_none(row.get(s)) for s in stats)]
        for row in rows
    ]
    return [*names, *stats], data


def keep_charts(remaining: float, spent: float, done: int, left: int) -> bool:
    """Whether to go on drawing charts after ``done`` models took ``spent`` seconds.

    A chart costs more than the run itself (~0.12 s CPU each, a run ~0.05 s): when the ``left``
    models would not fit in the ``remaining`` budget at this pace (with a margin), the runs are
    kept and the charts dropped.
    """
    return done == 0 or remaining > 1.5 * (spent / done) * left


def _charts_available() -> bool:
    from pytest_fairmind.plots import matplotlib_available

    return matplotlib_available()


def _redact_params(params: Mapping[str, Any], secrets: list[str]) -> dict[str, Any]:
    return {
        redact_text(k, secrets): redact_text(v, secrets) if isinstance(v, str) else v
        for k, v in params.items()
    }


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
        # ProviderSettings carries "fairmind" when nothing was given; W&B's own variable comes next.
        project = self._settings.project
        if project == "fairmind":
            project = os.environ.get("WANDB_PROJECT") or project
        return project

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
        root = wandb_root(self._settings)
        os.makedirs(root, exist_ok=True)
        # At the deadline, wandb-core is killed so a blocked init/finish returns at once and
        # nothing of wandb outlives this call (the parent's group kill does not reach wandb-core).
        watchdog = threading.Timer(max(0.0, budget.remaining()), _kill_core)
        watchdog.daemon = True
        watchdog.start()
        runs: dict[str, RunRef] = {}
        errors: list[str] = []
        secrets = secret_values()  # once: every string sent to W&B goes through these
        charts = self._settings.plots and _charts_available()
        chartless = 0
        started = time.monotonic()
        try:
            with tempfile.TemporaryDirectory(prefix="fairmind-wandb-") as scratch:
                for index, (name, model) in enumerate(session.models.items()):
                    left = len(session.models) - index
                    if budget.remaining() <= 0:
                        errors.append(f"time budget ({timeout:g} s) exhausted; {left} model(s) not logged")
                        break
                    if charts and index:
                        charts = keep_charts(budget.remaining(), time.monotonic() - started, index, left)
                    if not charts and self._settings.plots and model.groups:
                        chartless += 1
                    try:
                        runs[name] = self._log_model(
                            wandb, session, model, mode, root, scratch, budget, secrets, charts
                        )
                    except Exception as exc:
                        errors.append(f"model {name!r}: {_describe(exc, budget, timeout, mode)}")
                        if isinstance(exc, _InitFailed):
                            # Same server, same credentials: the next models would fail alike.
                            left = len(session.models) - index - 1
                            if left:
                                errors.append(f"{left} more model(s) not attempted")
                            break
        finally:
            watchdog.cancel()
            # teardown calls sys.exit with wandb-core's exit code when the watchdog killed it.
            with contextlib.suppress(Exception, SystemExit):
                wandb.teardown()
            _kill_core()  # teardown stops it; this only matters if teardown failed
        notes = []
        if mode == "offline":
            notes.append(f"uploadable with: wandb sync {wandb_dir(root)}/offline-run-*")
        if chartless and _charts_available():
            notes.append(f"charts left out for {chartless} model(s) to stay within the time budget")
        note = "; ".join(notes) or None
        return ProviderOutcome(
            ok=not errors, error=redact_text("; ".join(errors)) if errors else None, runs=runs, note=note
        )

    def _log_model(
        self,
        wandb: Any,
        session: SessionResult,
        model: ModelResult,
        mode: str,
        root: str,
        scratch: str,
        budget: _Budget,
        secrets: list[str],
        charts: bool,
    ) -> RunRef:
        rid = run_id(session.id, model.name)
        if mode == "offline":
            existing = _offline_run_dirs(wandb_dir(root), rid)
            complete = [d for d in existing if os.path.exists(os.path.join(d, COMPLETE_MARKER))]
            if complete:
                return RunRef(id=rid, path=complete[-1], skipped=True)
            for partial in existing:  # our own run, cut at a deadline: log it again in full
                shutil.rmtree(partial, ignore_errors=True)
        remaining = max(1.0, budget.remaining())
        settings = wandb.Settings(
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
        try:
            run = wandb.init(
                project=session.project,
                entity=os.environ.get("WANDB_ENTITY") or None,
                name=redact_text(model.name, secrets),
                group=redact_text(session.id, secrets),
                job_type="fairness",
                config=_redact_params(model.params, secrets),
                tags=run_tags(model, secrets),
                notes=_notes(session, secrets),
                id=rid,
                # Online, the run id doubles as the existence check: a run that is already there
                # is resumed, not duplicated, and skipped below when it is complete.
                resume="allow" if mode == "online" else None,
                reinit="create_new",
                dir=root,
                mode=mode,
                settings=settings,
            )
        except Exception as exc:
            raise _InitFailed(exc) from exc
        finished = False
        try:
            url = getattr(run, "url", None) if mode == "online" else None
            path = None if mode == "online" else run.settings.sync_dir
            if mode == "online" and run.resumed and "fairmind.verdict" in run.summary:
                run.finish()
                finished = True
                return RunRef(id=rid, url=url, skipped=True)
            self._write(wandb, run, session, model, scratch, secrets, charts)
            run.finish()
            finished = True
            if path is not None:
                Path(path, COMPLETE_MARKER).write_text(f"{session.id}\n{model.name}\n", encoding="utf-8")
            return RunRef(id=rid, url=url, path=path)
        finally:
            if not finished:
                with contextlib.suppress(Exception):
                    run.finish(exit_code=1)

    def _write(
        self,
        wandb: Any,
        run: Any,
        session: SessionResult,
        model: ModelResult,
        scratch: str,
        secrets: list[str],
        charts: bool,
    ) -> None:
        from pytest_fairmind.plots import group_chart_png

        media: dict[str, Any] = {}
        for number, (scope, rows) in enumerate(model.groups.items()):
            key = f"{scope}/by_group"
            if key in model.metrics:  # a metric of that name keeps its key; the table moves aside
                key = f"fairmind.by_group/{scope}"
            columns, data = _table_data(rows)
            media[key] = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
            if charts:
                png = os.path.join(scratch, f"{_safe_file(model.name)}-{number}.png")
                with contextlib.suppress(Exception):  # a chart is a nice-to-have, never a failure
                    if group_chart_png(scope, rows, png, title=f"{model.name}: {scope}"):
                        media[f"{key}_chart"] = wandb.Image(png, caption=f"{model.name}: {scope}")
        if media:
            run.log(media)  # one step holding every table and chart
        summary: dict[str, Any] = dict(model.metrics)
        summary["fairmind.verdict"] = model.verdict
        summary["fairmind.session"] = redact_text(session.id, secrets)
        run.summary.update(summary)


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


def _describe(exc: BaseException, budget: _Budget, timeout: float, mode: str) -> str:
    if budget.remaining() <= 0:
        where = f" waiting for {redact_uri(base_url())}" if mode == "online" else ""
        what = "wandb.init" if isinstance(exc, _InitFailed) else "wandb"
        text = f"{what} gave up at the time budget ({timeout:g} s, --fairmind-timeout){where}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:500]


def _safe_file(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:80] or "model"
