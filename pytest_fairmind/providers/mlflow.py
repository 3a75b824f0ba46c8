"""The MLflow provider: one run per model per session, in the experiment named after the project.

Built by :class:`~pytest_fairmind.isolation.IsolatedProvider` in the pytest process (only to
answer :meth:`MlflowProvider.target`, so the constructor imports nothing heavy) and again in the
provider child process, where :meth:`MlflowProvider.log` imports mlflow and does the work.

Per model: ``create_run`` (run name = model, identity tags), ``log_batch`` in chunks within
MLflow's per-request limits, the ``fairmind/`` artifacts in one upload, ``set_terminated``.
Against a server that is 4 HTTP requests per model for a ``record``-only model with up to
~1000 metrics, plus 2-3 per session (experiment lookup or creation, idempotence search).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import posixpath
import re
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.redact import redact_obj, redact_text, redact_uri, secret_values
from pytest_fairmind.result import ModelResult, ProviderOutcome, RunRef, SessionResult

# MLflow's limits (mlflow.utils.validation), copied so the pytest process need not import mlflow.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_BYTES = 900_000  # the server refuses log-batch bodies over 1 MB; headroom for JSON framing
MAX_KEY_LENGTH = 250
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000

PARAM_TRUNCATION_MARKER = "...[truncated, full value in fairmind/params.json]"
TAG_TRUNCATION_MARKER = "...[truncated, full value in fairmind/result.json]"

TAG_MODEL = "fairmind.model"
TAG_SESSION = "fairmind.session"
TAG_VERDICT = "fairmind.verdict"

ARTIFACT_DIR = "fairmind"

FILE_STORE_REFUSED = "MLflow 3 refuses file stores unless MLFLOW_ALLOW_FILE_STORE=true; use a sqlite:/// URI"

# Names MLflow accepts for metrics, params and tags (colons only off Windows).
_VALID_KEY = re.compile(r"^[/\w.\- ]*$" if os.name == "nt" else r"^[/\w.\- :]*$")
_UNSAFE_FILE_CHARS = re.compile(r"[^\w.\- ]")
_FAIL_FAST_RETRIES = 0  # the first request: an unreachable server fails at once
_RETRIES = 1  # afterwards one retry absorbs a transient 5xx/429 without a retry storm


# --------------------------------------------------------------------------- URIs


def default_tracking_uri(workdir: str) -> str:
    """MLflow 3's own default, made absolute: ``sqlite:///<workdir>/mlflow.db``."""
    path = os.path.abspath(os.path.join(workdir, "mlflow.db")).replace(os.sep, "/")
    return "sqlite:///" + path


def resolve_tracking_uri(settings: ProviderSettings, environ: Mapping[str, str] | None = None) -> str:
    """``settings.mlflow_uri``, else ``MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`.

    A relative SQLite path is anchored at ``settings.workdir`` so the pytest process and the
    provider child agree on the file whatever their working directories.
    """
    env = os.environ if environ is None else environ
    uri = settings.mlflow_uri or env.get("MLFLOW_TRACKING_URI") or default_tracking_uri(settings.workdir)
    if uri.startswith("sqlite:///"):
        path, sep, query = uri[len("sqlite:///") :].partition("?")
        if path and path != ":memory:" and not os.path.isabs(path):
            absolute = os.path.abspath(os.path.join(settings.workdir, path)).replace(os.sep, "/")
            uri = "sqlite:///" + absolute + sep + query
    return uri


def is_http_uri(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).scheme.lower() in ("http", "https")


def local_store_path(uri: str) -> str | None:
    """The file or folder of a local store (SQLite file, ``file:`` store, plain path), else None."""
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :].partition("?")[0]
        return None if path in ("", ":memory:") else path
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "file":
        return urllib.parse.unquote(parts.path)
    if not parts.scheme or (os.name == "nt" and len(parts.scheme) == 1):  # a path (C:\ on Windows)
        return os.path.abspath(uri)
    return None


def run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    """``<uri>/#/experiments/<id>/runs/<id>`` for tracking servers (credentials redacted), else None."""
    if not is_http_uri(uri):
        return None
    return f"{redact_uri(uri).rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


# --------------------------------------------------------------------------- payload building


def valid_key(key: str) -> bool:
    """Whether MLflow stores ``key`` as a metric, param or tag name (same rules as MLflow's)."""
    if not key or len(key) > MAX_KEY_LENGTH or not _VALID_KEY.match(key):
        return False
    norm = posixpath.normpath(key)
    return norm == key and norm != "." and not norm.startswith("..") and not norm.startswith("/")


def truncate(value: str, limit: int, marker: str) -> tuple[str, bool]:
    """``value`` cut to ``limit`` characters with a visible ``marker`` at the end; (text, truncated)."""
    if len(value) <= limit:
        return value, False
    return value[: limit - len(marker)] + marker, True


def param_text(value: Any) -> str:
    """A param value as MLflow stores it: ``str()`` of it (None -> ``"None"``)."""
    return value if isinstance(value, str) else str(value)


def safe_file_name(name: str, taken: set[str]) -> str:
    """A file name for a scope: path separators and odd characters -> ``_``, unique within ``taken``."""
    base = _UNSAFE_FILE_CHARS.sub("_", name).strip(" ") or "_"
    if base in (".", ".."):
        base = base.replace(".", "_")
    base = base[:150]
    candidate, n = base, 2
    while candidate.lower() in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate.lower())
    return candidate


def iso_to_millis(text: str | None) -> int | None:
    """ISO 8601 (``Z`` allowed; naive means local time) -> epoch milliseconds, None when unparsable."""
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(stamp.timestamp() * 1000)


@dataclass
class RunPayload:
    """What goes into one model's run, prepared without mlflow (unit-testable, cheap)."""

    run_name: str
    identity_tags: dict[str, str]  # sent with create_run so a partial run is still findable
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    full_params: dict[str, str] = field(default_factory=dict)  # only when some were truncated
    skipped_keys: list[str] = field(default_factory=list)


def context_tags(session: SessionResult) -> dict[str, str]:
    """Session-level tags: pytest/CI context and git, also under MLflow's own git tag names
    (``mlflow.source.git.*``) so that its UI shows commit and branch."""
    tags = {str(k): str(v) for k, v in session.context.items() if v is not None}
    git = session.git or {}
    for field_name in ("commit", "branch"):
        if git.get(field_name):
            tags.setdefault(f"git.{field_name}", str(git[field_name]))
            tags[f"mlflow.source.git.{field_name}"] = str(git[field_name])
    if git.get("dirty") is not None:
        tags.setdefault("git.dirty", str(bool(git["dirty"])).lower())
    tags.setdefault("mlflow.source.name", "pytest-fairmind")
    return tags


def build_payload(session: SessionResult, model: ModelResult, secrets: list[str] | None = None) -> RunPayload:
    """Tags, params and metrics of ``model``'s run, within MLflow's key and value limits."""
    secrets = secret_values() if secrets is None else secrets
    identity = {TAG_MODEL: model.name, TAG_SESSION: session.id, TAG_VERDICT: model.verdict}
    skipped: list[str] = []

    tags: dict[str, str] = {}
    for key, value in {**context_tags(session), **model.tags}.items():
        if key in identity:
            continue  # ours win: the idempotence search relies on them
        if not valid_key(key):
            skipped.append(f"tag {key!r}")
            continue
        text, _ = truncate(redact_text(str(value), secrets), MAX_TAG_LENGTH, TAG_TRUNCATION_MARKER)
        tags[key] = text
    identity = {
        k: truncate(redact_text(v, secrets), MAX_TAG_LENGTH, TAG_TRUNCATION_MARKER)[0]
        for k, v in identity.items()
    }

    params: dict[str, str] = {}
    full: dict[str, str] = {}
    any_truncated = False
    for key, raw in model.params.items():
        if not valid_key(key):
            skipped.append(f"param {key!r}")
            continue
        text = redact_text(param_text(raw), secrets)
        full[key] = text
        params[key], cut = truncate(text, MAX_PARAM_LENGTH, PARAM_TRUNCATION_MARKER)
        any_truncated = any_truncated or cut

    metrics: dict[str, float] = {}
    for key, number in model.metrics.items():
        if not valid_key(key):
            skipped.append(f"metric {key!r}")
            continue
        metrics[key] = float(number)  # NaN and +-inf included: MLflow stores them

    return RunPayload(
        run_name=model.name,
        identity_tags=identity,
        tags=tags,
        params=params,
        metrics=metrics,
        full_params=full if any_truncated else {},
        skipped_keys=skipped,
    )


@dataclass
class Batch:
    """One ``log_batch`` request: key/value pairs, turned into MLflow entities at send time."""

    metrics: list[tuple[str, float]] = field(default_factory=list)
    params: list[tuple[str, str]] = field(default_factory=list)
    tags: list[tuple[str, str]] = field(default_factory=list)
    size: int = 0

    def entities(self) -> int:
        return len(self.metrics) + len(self.params) + len(self.tags)


def _json_len(text: str) -> int:
    # JSON with ASCII escapes is never shorter than what goes on the wire.
    return len(json.dumps(text))


def plan_batches(
    metrics: Mapping[str, float],
    params: Mapping[str, str],
    tags: Mapping[str, str],
    *,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[Batch]:
    """Chunks within 1000 metrics / 100 params / 100 tags / 1000 entities / ``max_bytes`` each.

    Each batch takes what it can of the tags, then the params, then fills up with metrics, so
    the common case (a few hundred metrics, a few dozen params) is a single request.
    """
    queues: list[tuple[str, list[tuple[str, Any, int]], int]] = [
        ("tags", [(k, v, _json_len(k) + _json_len(v) + 20) for k, v in tags.items()], MAX_TAGS_PER_BATCH),
        (
            "params",
            [(k, v, _json_len(k) + _json_len(v) + 20) for k, v in params.items()],
            MAX_PARAMS_PER_BATCH,
        ),
        ("metrics", [(k, v, _json_len(k) + 80) for k, v in metrics.items()], MAX_METRICS_PER_BATCH),
    ]
    positions = [0, 0, 0]
    batches: list[Batch] = []
    while any(pos < len(queue) for pos, (_, queue, _) in zip(positions, queues, strict=True)):
        batch = Batch()
        for i, (kind, queue, limit) in enumerate(queues):
            items: list[Any] = getattr(batch, kind)
            while (
                positions[i] < len(queue) and len(items) < limit and batch.entities() < MAX_ENTITIES_PER_BATCH
            ):
                key, value, size = queue[positions[i]]
                if batch.entities() and batch.size + size > max_bytes:
                    break
                items.append((key, value))
                batch.size += size
                positions[i] += 1
        batches.append(batch)
    return batches


def write_artifacts(
    folder: str,
    session: SessionResult,
    model: ModelResult,
    payload: RunPayload,
    *,
    plots: bool,
) -> list[str]:
    """Write ``result.json``, ``params.json`` (when truncated) and ``groups/<scope>.json|png``.

    Returns notes about charts that could not be drawn (never fatal).
    """
    from pytest_fairmind.plots import group_chart_png, matplotlib_available
    from pytest_fairmind.report import SCHEMA, model_to_dict, session_header

    notes: list[str] = []
    model_doc = model_to_dict(model)
    doc = {
        "schema": SCHEMA,
        "session": session_header(session),
        "model": model.name,
        "result": model_doc,
    }
    _write_json(os.path.join(folder, "result.json"), redact_obj(doc))
    if payload.full_params:
        _write_json(os.path.join(folder, "params.json"), payload.full_params)
    groups = {scope: rows for scope, rows in model_doc["groups"].items() if rows}
    if groups:
        os.makedirs(os.path.join(folder, "groups"), exist_ok=True)
        draw = plots and matplotlib_available()
        taken: set[str] = set()
        for scope, rows in groups.items():
            base = os.path.join(folder, "groups", safe_file_name(scope, taken))
            _write_json(base + ".json", {"scope": scope, "rows": rows})
            if draw:
                try:
                    group_chart_png(
                        scope, rows, base + ".png", title=f"{model.name} / {scope}: per-group rates"
                    )
                except Exception as exc:  # a chart is a nicety; the run matters
                    notes.append(f"chart for scope {scope!r} not drawn: {type(exc).__name__}: {exc}")
    return notes


def _write_json(path: str, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, ensure_ascii=False, allow_nan=False)


# --------------------------------------------------------------------------- errors and environment


def short_error(exc: BaseException, target: str) -> str:
    """One readable line for the summary, secrets redacted."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "MLFLOW_ALLOW_FILE_STORE" in text:
        return f"{target}: {FILE_STORE_REFUSED}"
    if "connection refused" in lowered:
        return f"cannot reach {target}: connection refused"
    if (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or "getaddrinfo" in lowered
    ):
        return f"cannot reach {target}: host not found"
    if "timed out" in lowered or ("timeout" in lowered and "api request" in lowered):
        return f"no answer from {target}: timed out"
    line = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    if len(line) > 300:
        line = line[:297] + "..."
    return redact_text(f"{type(exc).__name__}: {line}" if type(exc).__name__ not in line else line)


@contextlib.contextmanager
def patched_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the block and restore the previous values after it."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def client_environ(budget: float, *, retries: int = _RETRIES) -> dict[str, str]:
    """MLflow client settings for a bounded, quiet, offline-safe log (all read per request by mlflow)."""
    return {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0",
        # An int for mlflow; a request never outlives the budget left (the parent kills us anyway).
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(budget))),
        "MLFLOW_HTTP_RESPECT_RETRY_AFTER_HEADER": "false",
        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
        # Usage telemetry off: a session on a machine without network must never wait on it.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
    }


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """No warnings, no "View run" lines, no INFO logs from mlflow/alembic while in the block."""
    loggers = [logging.getLogger(name) for name in ("mlflow", "alembic", "sqlalchemy", "urllib3")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _silence_loggers() -> None:
    # mlflow configures its loggers when imported, so this runs after the import.
    for name in ("mlflow", "alembic", "sqlalchemy", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _OutOfTime(Exception):
    pass


# --------------------------------------------------------------------------- the provider


class MlflowProvider:
    """Logs one MLflow run per model of a session (see the module docstring)."""

    name = "mlflow"

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._uri = resolve_tracking_uri(settings)

    @property
    def tracking_uri(self) -> str:
        """The resolved URI, credentials included (never print it: use :meth:`target`)."""
        return self._uri

    def target(self) -> str:
        return redact_uri(self._uri)

    # ------------------------------------------------------------------ check

    def check(self, timeout: float) -> str | None:
        """None when the store is usable, else a short reason (for ``fairmind status``)."""
        try:
            if is_http_uri(self._uri):
                return self._check_http(timeout)
            path = local_store_path(self._uri)
            if path is not None:
                return self._check_local(path)
            return self._check_with_client(timeout)
        except Exception as exc:
            return short_error(exc, self.target())

    def _check_http(self, timeout: float) -> str | None:
        parts = urllib.parse.urlsplit(self._uri)
        host = parts.netloc.rpartition("@")[2]
        base = urllib.parse.urlunsplit(parts._replace(netloc=host)).rstrip("/")
        query = urllib.parse.urlencode({"experiment_name": self._settings.project})
        request = urllib.request.Request(f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}")
        user = urllib.parse.unquote(parts.username or "") or os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = urllib.parse.unquote(parts.password or "") or os.environ.get("MLFLOW_TRACKING_PASSWORD")
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        if user and password:
            import base64

            basic = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request.add_header("Authorization", f"Basic {basic}")
        elif token:
            request.add_header("Authorization", f"Bearer {token}")
        context = None
        if parts.scheme == "https" and os.environ.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true":
            import ssl

            context = ssl._create_unverified_context()
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                response.read(1)
            return None
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the experiment does not exist yet: created on first log
                return None
            if exc.code in (401, 403):
                return (
                    f"{self.target()}: not authorised (HTTP {exc.code}); check MLFLOW_TRACKING_* credentials"
                )
            return f"{self.target()}: HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            return short_error(exc.reason if isinstance(exc.reason, BaseException) else exc, self.target())
        except OSError as exc:
            return short_error(exc, self.target())

    def _check_local(self, path: str) -> str | None:
        if not self._uri.startswith("sqlite:"):
            if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
                return f"{self.target()}: {FILE_STORE_REFUSED}"
            folder = path
        else:
            folder = os.path.dirname(path) or "."
            if os.path.exists(path) and not os.access(path, os.W_OK):
                return f"{path}: not writable"
        existing = os.path.abspath(folder)
        while not os.path.exists(existing):  # mlflow creates missing folders: check the nearest one
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            return f"{existing}: not a folder"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"{existing}: folder not writable"
        return None

    def _check_with_client(self, timeout: float) -> str | None:
        # Other stores (databricks, postgresql://...): one cheap API call, bounded by a thread.
        box: dict[str, str | None] = {}

        def probe() -> None:
            try:
                with patched_environ(client_environ(timeout, retries=0)), quiet_mlflow():
                    from mlflow import MlflowClient

                    _silence_loggers()
                    MlflowClient(tracking_uri=self._uri).search_experiments(max_results=1)
                box["error"] = None
            except Exception as exc:
                box["error"] = short_error(exc, self.target())

        thread = threading.Thread(target=probe, name="fairmind-mlflow-check", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            return f"no answer from {self.target()} within {timeout:g} s"
        return box.get("error")

    # ------------------------------------------------------------------ log

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        """One run per model of ``session``; never raises (failures are ``ok=False``)."""
        start = time.monotonic()
        # Finish a little before the parent's deadline so partial results are still reported.
        deadline = start + max(0.0, timeout - min(1.0, 0.05 * timeout))
        target = self.target()
        outcome = ProviderOutcome(ok=True, target=target)
        if not session.models:
            return outcome  # nothing to log: not even a connection
        try:
            with patched_environ(client_environ(timeout, retries=_FAIL_FAST_RETRIES)), quiet_mlflow():
                self._log(session, outcome, deadline)
        except _OutOfTime as exc:
            outcome.ok = False
            outcome.error = str(exc)
        except Exception as exc:
            outcome.ok = False
            outcome.error = short_error(exc, target)
        return outcome

    def _log(self, session: SessionResult, outcome: ProviderOutcome, deadline: float) -> None:
        from mlflow import MlflowClient

        _silence_loggers()
        # The import can take seconds on a loaded machine: requests get what is left after it.
        self._budget_requests(deadline, done=0, total=len(session.models))
        client = MlflowClient(tracking_uri=self._uri)
        experiment_id = self._experiment_id(client, session.project)
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(_RETRIES)  # reachable: allow one retry now
        existing = self._existing_runs(client, experiment_id, session.id)

        store_path = local_store_path(self._uri)
        if store_path is not None:
            outcome.note = f"view with: mlflow ui --backend-store-uri {self.target()}"
        secrets = secret_values()
        start_ms = iso_to_millis(session.started)
        end_ms = iso_to_millis(session.finished)
        problems: list[str] = []
        extra_notes: list[str] = []
        models = list(session.models.values())
        for index, model in enumerate(models):
            self._budget_requests(deadline, done=index, total=len(models))
            finished = [r for r in existing.get(model.name, []) if r.info.status == "FINISHED"]
            if finished:
                run_id = finished[0].info.run_id
                outcome.runs[model.name] = RunRef(
                    id=run_id, url=run_url(self._uri, experiment_id, run_id), path=store_path, skipped=True
                )
                continue
            for partial in existing.get(model.name, []):
                # Left by a provider process killed mid-log: replace it, keep one run per model.
                client.delete_run(partial.info.run_id)
            try:
                run_id, model_problems, notes = self._log_model(
                    client, experiment_id, session, model, secrets, start_ms=start_ms, end_ms=end_ms
                )
            except Exception as exc:
                problems.append(f"model {model.name!r}: {short_error(exc, self.target())}")
                outcome.ok = False
                outcome.error = "; ".join(problems) + f" ({len(outcome.runs)} of {len(models)} models logged)"
                return  # a store that fails once would fail the rest: stop, replay can finish
            outcome.runs[model.name] = RunRef(
                id=run_id, url=run_url(self._uri, experiment_id, run_id), path=store_path
            )
            problems.extend(f"model {model.name!r}: {p}" for p in model_problems)
            extra_notes.extend(f"model {model.name!r}: {n}" for n in notes)
        if extra_notes:
            outcome.note = "; ".join(filter(None, [outcome.note, *extra_notes]))
        if problems:
            outcome.ok = False
            outcome.error = redact_text("; ".join(problems))

    @staticmethod
    def _budget_requests(deadline: float, *, done: int, total: int) -> None:
        """Stop when the budget is spent, else cap each HTTP request at what is left of it."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime(
                f"out of time (--fairmind-timeout) after {done} of {total} models; "
                "the rest can be logged with `fairmind replay`"
            )
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, int(left)))  # mlflow wants an int

    def _experiment_id(self, client: Any, name: str) -> str:
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return str(client.create_experiment(name))
            except MlflowException:
                # Another process (an xdist run next door, a replay) created it first.
                experiment = client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage != "active":
            raise RuntimeError(
                f"experiment {name!r} is deleted in MLflow; restore it "
                f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) "
                "or choose another --fairmind-project"
            )
        return str(experiment.experiment_id)

    def _existing_runs(self, client: Any, experiment_id: str, session_id: str) -> dict[str, list[Any]]:
        """Active runs of this session in the experiment, by model."""
        from mlflow.entities import ViewType

        quote = "'" if "'" not in session_id else '"'
        exact = quote not in session_id
        filter_string = f"tags.`{TAG_SESSION}` = {quote}{session_id}{quote}" if exact else ""
        runs: dict[str, list[Any]] = {}
        token: str | None = None
        while True:
            page = client.search_runs(
                [experiment_id],
                filter_string=filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
            for run in page:
                if run.data.tags.get(TAG_SESSION) == session_id:
                    runs.setdefault(run.data.tags.get(TAG_MODEL, ""), []).append(run)
            token = page.token
            if not token:
                return runs

    def _log_model(
        self,
        client: Any,
        experiment_id: str,
        session: SessionResult,
        model: ModelResult,
        secrets: list[str],
        *,
        start_ms: int | None,
        end_ms: int | None,
    ) -> tuple[str, list[str], list[str]]:
        """Log one run; returns (run id, problems that make the outcome fail, mere notes)."""
        from mlflow.entities import Metric, Param, RunTag

        payload = build_payload(session, model, secrets)
        problems: list[str] = []
        notes: list[str] = []
        if payload.skipped_keys:
            shown = ", ".join(payload.skipped_keys[:5]) + (" ..." if len(payload.skipped_keys) > 5 else "")
            problems.append(f"{len(payload.skipped_keys)} key(s) MLflow cannot store were left out: {shown}")
        now_ms = int(time.time() * 1000)
        run = client.create_run(
            experiment_id,
            start_time=start_ms or now_ms,
            tags=payload.identity_tags,
            run_name=payload.run_name,
        )
        run_id: str = run.info.run_id
        try:
            stamp = end_ms or now_ms
            for batch in plan_batches(payload.metrics, payload.params, payload.tags):
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, stamp, 0) for k, v in batch.metrics],
                    params=[Param(k, v) for k, v in batch.params],
                    tags=[RunTag(k, v) for k, v in batch.tags],
                )
            with tempfile.TemporaryDirectory(prefix="fairmind-mlflow-") as tmp:
                notes.extend(write_artifacts(tmp, session, model, payload, plots=self._settings.plots))
                self._upload(client, run, tmp)
            client.set_terminated(run_id, "FINISHED", end_time=max(stamp, start_ms or 0))
        except BaseException:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, "FAILED")  # partial: replaced on the next log or replay
            raise
        return run_id, problems, notes

    def _upload(self, client: Any, run: Any, folder: str) -> None:
        """Upload ``folder`` as ``fairmind/``; straight to the artifact repository (saves a get_run)."""
        try:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
            from mlflow.utils import uri as mlflow_uri

            add_profile: Any = mlflow_uri.add_databricks_profile_info_to_artifact_uri  # untyped in mlflow
            repo: Any = get_artifact_repository(
                add_profile(run.info.artifact_uri, self._uri), tracking_uri=self._uri
            )
        except Exception:  # internals moved in some mlflow version: the public, slower path
            client.log_artifacts(run.info.run_id, folder, ARTIFACT_DIR)
            return
        repo.log_artifacts(folder, ARTIFACT_DIR)


__all__ = [
    "MlflowProvider",
    "build_payload",
    "default_tracking_uri",
    "plan_batches",
    "resolve_tracking_uri",
    "run_url",
    "valid_key",
]
