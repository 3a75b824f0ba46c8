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
import functools
import importlib.util
import io
import json
import logging
import math
import os
import posixpath
import re
import sqlite3
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pytest_fairmind import locks
from pytest_fairmind.providers.base import ProviderSettings, budget_spent, fit_bytes, project_for
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
#: Who is writing the run, until when (see ``locks.writer_mark``): a run that is not finished is
#: deleted as abandoned only when its writer cannot be writing it any more.
TAG_WRITER = "fairmind.writer"
#: MLflow 3's UI opens an experiment without this tag on its GenAI overview; ours hold model runs.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
#: Where ``mlflow ui`` serves by default, and the query that opens an experiment on its runs (MLflow
#: 3.17's UI follows its GenAI / Model training switch, not the experiment's kind).
UI_DEFAULT_URL = "http://127.0.0.1:5000"
UI_RUNS_QUERY = "?workflowType=machine_learning"

ARTIFACT_DIR = "fairmind"
#: Bytes of a group table's file name before its extension: file systems allow 255 per name.
FILE_NAME_BYTES = 150

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
    """A file name for a scope: path separators and odd characters -> ``_``, at most
    :data:`FILE_NAME_BYTES` bytes in UTF-8 (a cut name ends in a hash of the scope), unique within
    ``taken`` (case-insensitively)."""
    base = _UNSAFE_FILE_CHARS.sub("_", name).strip(" ") or "_"
    if base in (".", ".."):
        base = base.replace(".", "_")
    base = fit_bytes(base, FILE_NAME_BYTES)
    candidate, n = base, 2
    while candidate.lower() in taken:
        candidate, n = f"{fit_bytes(base, FILE_NAME_BYTES - 8)}-{n}", n + 1
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
    secret_keys: list[str] = field(default_factory=list)  # left out: the name holds a secret

    def problems(self) -> list[str]:
        """What was left out, as the outcome's error reports it."""
        out = []
        for keys, what in (
            (self.skipped_keys, "key(s) MLflow cannot store were left out"),
            (self.secret_keys, "key(s) holding a secret value were left out (rename them)"),
        ):
            if keys:
                shown = ", ".join(keys[:5]) + (" ..." if len(keys) > 5 else "")
                out.append(f"{len(keys)} {what}: {shown}")
        return out


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
    """Tags, params and metrics of ``model``'s run, within MLflow's key and value limits.

    Values are redacted; keys are sent as they are, and a key that holds a secret (already
    marked ``***`` by the report codec, or equal to a secret of this environment) is left out:
    redacted, it would be another key, and one MLflow refuses."""
    secrets = secret_values() if secrets is None else secrets
    identity = {TAG_MODEL: model.name, TAG_SESSION: session.id, TAG_VERDICT: model.verdict}
    keys = _KeyFilter(secrets)
    tags = _payload_tags({**context_tags(session), **model.tags}, identity, secrets, keys)
    params, full, any_truncated = _payload_params(model.params, secrets, keys)
    metrics = _payload_metrics(model.metrics, keys)
    return RunPayload(
        run_name=model.name,
        identity_tags={k: _tag_text(v, secrets) for k, v in identity.items()},
        tags=tags,
        params=params,
        metrics=metrics,
        full_params=full if any_truncated else {},
        skipped_keys=keys.skipped,
        secret_keys=keys.secret,
    )


@dataclass
class _KeyFilter:
    """Which keys go into a run: valid for MLflow, and holding no secret."""

    secrets: list[str]
    skipped: list[str] = field(default_factory=list)
    secret: list[str] = field(default_factory=list)

    def keep(self, kind: str, key: str) -> bool:
        if "***" in key or any(s in key for s in self.secrets):
            self.secret.append(f"{kind} {redact_text(key, self.secrets)!r}")
            return False
        if not valid_key(key):
            self.skipped.append(f"{kind} {key!r}")
            return False
        return True


def _tag_text(value: object, secrets: list[str]) -> str:
    return truncate(redact_text(str(value), secrets), MAX_TAG_LENGTH, TAG_TRUNCATION_MARKER)[0]


def _payload_tags(
    given: Mapping[str, object], identity: Mapping[str, str], secrets: list[str], keys: _KeyFilter
) -> dict[str, str]:
    tags: dict[str, str] = {}
    for key, value in given.items():
        if key in identity or key == TAG_WRITER:
            continue  # ours win: the idempotence search relies on them
        if keys.keep("tag", key):
            tags[key] = _tag_text(value, secrets)
    return tags


def _payload_params(
    given: Mapping[str, Any], secrets: list[str], keys: _KeyFilter
) -> tuple[dict[str, str], dict[str, str], bool]:
    """(params as sent, full texts, whether any was truncated)."""
    params: dict[str, str] = {}
    full: dict[str, str] = {}
    any_truncated = False
    for key, raw in given.items():
        if not keys.keep("param", key):
            continue
        text = redact_text(param_text(raw), secrets)
        full[key] = text
        params[key], cut = truncate(text, MAX_PARAM_LENGTH, PARAM_TRUNCATION_MARKER)
        any_truncated = any_truncated or cut
    return params, full, any_truncated


def _payload_metrics(given: Mapping[str, float], keys: _KeyFilter) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, number in given.items():
        if keys.keep("metric", key):
            metrics[key] = float(number)  # NaN and +-inf included: MLflow stores them
    return metrics


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
    """Write ``result.json``, ``params.json`` (when truncated), ``gates.json`` (when gated),
    ``groups/<scope>.json`` with a chart per column family (``groups/<scope>.<family>.png``) and
    ``scans/<scope>.json``.

    Returns notes about charts that could not be drawn (never fatal).
    """
    from pytest_fairmind.report import SCHEMA, model_to_dict, session_header

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
    if model.gates:
        _write_json(os.path.join(folder, "gates.json"), gates_document(model))
    _write_scans(folder, model)
    return _write_groups(folder, model, model_doc, plots=plots)


def gates_document(model: ModelResult) -> dict[str, Any]:
    """``fairmind/gates.json``: the model's verdict and every field of every gate result
    (non-finite numbers as their words, ``"nan"``, ``"inf"``, ``"-inf"``)."""
    from pytest_fairmind.plots import gate_entry, plain

    gates = [plain(gate_entry(g), words=True) for g in model.gates]
    doc: dict[str, Any] = redact_obj({"model": model.name, "verdict": model.verdict, "gates": gates})
    return doc


def _write_scans(folder: str, model: ModelResult) -> None:
    """``scans/<scope>.json``: each scan entry as recorded, with its scope (non-finite numbers
    as their words)."""
    from pytest_fairmind.plots import plain

    scopes = [scope for scope, entry in model.scans.items() if entry]
    if not scopes:
        return
    os.makedirs(os.path.join(folder, "scans"), exist_ok=True)
    taken: set[str] = set()
    for scope in scopes:
        path = os.path.join(folder, "scans", safe_file_name(scope, taken) + ".json")
        _write_json(path, redact_obj({"scope": scope, **plain(model.scans[scope], words=True)}))


def _write_groups(folder: str, model: ModelResult, model_doc: Mapping[str, Any], *, plots: bool) -> list[str]:
    """``groups/<scope>.json`` and the scope's charts; returns notes about charts not drawn."""
    from pytest_fairmind.plots import group_charts_png, matplotlib_available, plain

    scopes = [scope for scope, rows in model.groups.items() if rows]
    if not scopes:
        return []
    notes: list[str] = []
    os.makedirs(os.path.join(folder, "groups"), exist_ok=True)
    draw = plots and matplotlib_available()
    taken: set[str] = set()
    for scope in scopes:
        base = os.path.join(folder, "groups", safe_file_name(scope, taken))
        _write_json(base + ".json", {"scope": scope, "rows": plain(model_doc["groups"][scope])})
        if draw:
            try:
                group_charts_png(scope, model.groups[scope], base, title=f"{model.name} / {scope}")
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


class StoreProblem(Exception):
    """The store cannot be used as it is; the message says why and how to repair it."""


class _Busy(Exception):
    """Another process is writing this model's run of this session."""


#: Words of errors that mean the store (server) cannot be reached any more: the next models would
#: fail alike, so the provider stops instead of trying each. Other errors stop only their model.
_UNREACHABLE = (
    "connection refused",
    "connection reset",
    "connection aborted",
    "remote end closed",
    "remotedisconnected",
    "max retries exceeded",
    "failed to establish",
    "broken pipe",
    "name or service not known",
    "timed out",
)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the store cannot be reached (rather than refusing one model's run)."""
    if isinstance(exc, (ConnectionError, TimeoutError, _OutOfTime)):
        return True
    lowered = str(exc).lower()
    return any(word in lowered for word in _UNREACHABLE)


# --------------------------------------------------------------------------- local store health

_ESSENTIAL_TABLES = frozenset({"experiments", "experiment_tags", "runs", "metrics", "params", "tags"})
_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"'](\w+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+)$", re.M)


@functools.lru_cache(maxsize=1)
def mlflow_schema() -> tuple[frozenset[str], str | None]:
    """(every schema revision the installed MLflow knows, its newest), read from its migration
    scripts without importing mlflow; (empty, None) when mlflow is not installed."""
    spec = importlib.util.find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return frozenset(), None
    folder = os.path.join(next(iter(spec.submodule_search_locations)), "store", "db_migrations", "versions")
    revisions: set[str] = set()
    parents: set[str] = set()
    try:
        names = os.listdir(folder)
    except OSError:
        return frozenset(), None
    for name in names:
        if not name.endswith(".py"):
            continue
        with contextlib.suppress(OSError), open(os.path.join(folder, name), encoding="utf-8") as fh:
            text = fh.read()
            rev, down = _REVISION.search(text), _DOWN_REVISION.search(text)
            if rev:
                revisions.add(rev.group(1))
            if down:
                parents.update(re.findall(r"[\"'](\w+)[\"']", down.group(1)))
    heads = revisions - parents
    return frozenset(revisions), (next(iter(heads)) if len(heads) == 1 else None)


def sqlite_store_problem(path: str) -> str | None:
    """What makes the SQLite store at ``path`` unusable, with how to repair it; None when it is
    fine or does not exist yet (the first session creates it).

    Read with the standard library only (no mlflow import): fit for ``fairmind status``. Finds
    what an interrupted or concurrent first use leaves (``_alembic_tmp_*`` tables, no or several
    schema versions, tables missing) and a schema this MLflow does not match."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return None
    uri = "sqlite:///" + path.replace(os.sep, "/")
    try:
        conn = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, timeout=5)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            versions = (
                [str(row[0]) for row in conn.execute("SELECT version_num FROM alembic_version")]
                if "alembic_version" in tables
                else []
            )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return _damaged(path, uri, f"it cannot be read as SQLite ({exc})", [])
    leftovers = sorted(t for t in tables if t.startswith("_alembic_tmp_"))
    if leftovers:
        return _damaged(path, uri, f"an interrupted schema migration left {', '.join(leftovers)}", leftovers)
    if not (tables - {"alembic_version"}) and not versions:
        return None  # empty: MLflow creates the schema on first use
    if len(versions) != 1:
        found = "no schema version" if not versions else f"{len(versions)} schema versions"
        return _damaged(path, uri, f"it has {found} (table alembic_version)", [])
    missing = sorted(_ESSENTIAL_TABLES - tables)
    if missing:
        return _damaged(path, uri, f"tables {', '.join(missing)} are missing", [])
    known, head = mlflow_schema()
    version = versions[0]
    if known and version not in known:
        return (
            f"the MLflow store {path} has schema {version}, unknown to this MLflow: a newer MLflow wrote it"
        )
    if head and version != head:
        return (
            f"the MLflow store {path} has an older schema ({version}, this MLflow needs {head}): "
            f"back it up, then run: mlflow db upgrade {uri}"
        )
    return None


def _damaged(path: str, uri: str, why: str, leftovers: list[str]) -> str:
    if leftovers:
        drop = "; ".join(f"DROP TABLE {t}" for t in leftovers)
        otherwise = f'else run: sqlite3 {path} "{drop}" && mlflow db upgrade {uri}'
    else:
        otherwise = "else restore it from a backup"
    return (
        f"the MLflow store {path} is damaged: {why}, as an interrupted or concurrent first use leaves "
        f"it. To repair it, back it up; if it holds no runs you need, delete it (the next session "
        f"creates a new one); {otherwise}"
    )


# --------------------------------------------------------------------------- the provider


class MlflowProvider:
    """Logs one MLflow run per model of a session (see the module docstring)."""

    name = "mlflow"

    def __init__(self, settings: ProviderSettings) -> None:
        self._settings = settings
        self._uri = resolve_tracking_uri(settings)
        self._opened: tuple[str, Any, str] | None = None  # (project, client, experiment id) of prepare()
        self._hard_deadline = math.inf  # the caller's deadline of the log() under way (monotonic)

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
        query = urllib.parse.urlencode({"experiment_name": project_for(self.name, self._settings.project)})
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
        if self._uri.startswith("sqlite:"):
            try:
                with locks.store_lock(path, timeout=2.0):  # not while another process migrates it
                    return sqlite_store_problem(path)
            except locks.LockTimeout:
                return f"{path}: another process is creating or migrating the store; try again"
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

    # ------------------------------------------------------------------ warm-up

    def warm_up(self) -> None:
        """Import what :meth:`log` needs (seconds on a loaded machine), touching no store."""
        with quiet_mlflow():
            import mlflow.entities
            import mlflow.tracking

            if self._uri.startswith("sqlite:"):
                import alembic.command  # migrations of a new store
                import mlflow.store.tracking.sqlalchemy_store

                del alembic
            del mlflow
            _silence_loggers()
        _warm_charts(self._settings.plots)

    def prepare(self, project: str, *, timeout: float) -> None:
        """Something was recorded: create (or migrate) a local store and the experiment now,
        while tests run, so that :meth:`log` only logs. A server is not contacted before the
        session ends. Never raises: :meth:`log` retries and reports."""
        if local_store_path(self._uri) is None or not self._uri.startswith("sqlite:"):
            return
        deadline = time.monotonic() + timeout
        environ = patched_environ(client_environ(timeout, retries=_FAIL_FAST_RETRIES))
        with contextlib.suppress(Exception), environ, quiet_mlflow():
            _silence_loggers()
            client, experiment_id = self._open(project, deadline)
            self._opened = (project, client, experiment_id)

    # ------------------------------------------------------------------ log

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        """One run per model of ``session``; never raises (failures are ``ok=False``)."""
        start = time.monotonic() - budget_spent()  # in a provider process: since the parent began
        # Finish a little before the parent's deadline so partial results are still reported.
        deadline = start + max(0.0, timeout - min(1.0, 0.05 * timeout))
        self._hard_deadline = start + timeout
        target = self.target()
        outcome = ProviderOutcome(ok=True, target=target)
        if not session.models:
            return outcome  # nothing to log: not even a connection
        try:
            with patched_environ(client_environ(timeout, retries=_FAIL_FAST_RETRIES)), quiet_mlflow():
                self._log(session, outcome, deadline, timeout)
        except _OutOfTime as exc:
            outcome.ok = False
            outcome.error = str(exc)
        except Exception as exc:
            outcome.ok = False
            outcome.error = short_error(exc, target)
        return outcome

    def _open(self, project: str, deadline: float) -> tuple[Any, str]:
        """(a client, the experiment id) of ``project``, the store created first if need be.

        A local SQLite store is created and migrated under its lock (``<store>.lock``): MLflow
        does not serialise that across processes, and concurrent first uses break the store. A
        damaged store is reported with how to repair it rather than handed to MLflow."""
        from mlflow import MlflowClient

        _silence_loggers()
        path = local_store_path(self._uri) if self._uri.startswith("sqlite:") else None
        if path is None:
            client = MlflowClient(tracking_uri=self._uri)
            return client, self._experiment_id(client, project)
        try:
            with locks.store_lock(path, timeout=max(0.0, deadline - time.monotonic())):
                problem = sqlite_store_problem(path)
                if problem:
                    raise StoreProblem(problem)
                client = MlflowClient(tracking_uri=self._uri)
                return client, self._experiment_id(client, project)  # the store is created here
        except locks.LockTimeout:
            raise _OutOfTime(
                f"{path}: another process kept the store locked (creating or migrating it) for the whole "
                "--fairmind-timeout; the session can be logged with `fairmind replay`"
            ) from None

    def _log(self, session: SessionResult, outcome: ProviderOutcome, deadline: float, timeout: float) -> None:
        import mlflow

        del mlflow
        _silence_loggers()
        # The import can take seconds on a loaded machine: requests get what is left after it.
        self._budget_requests(deadline, done=0, total=len(session.models))
        if self._opened is not None and self._opened[0] == session.project:
            _, client, experiment_id = self._opened
        else:
            client, experiment_id = self._open(session.project, deadline)
        os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(_RETRIES)  # reachable: allow one retry now
        existing = self._existing_runs(client, experiment_id, session.id)
        path = local_store_path(self._uri)
        store = _Store(
            client,
            self._uri,
            experiment_id,
            path,
            session.id,
            lock_path=path if self._uri.startswith("sqlite:") else None,
            deadline=deadline,
            writer=locks.writer_mark(timeout).text(),
            wait_limit=max(1.0, WAIT_SHARE * timeout),
        )
        if store.path is not None:
            # MLflow 3's UI picks an experiment's page by its workflow switch (GenAI by default),
            # whatever the experiment's kind: this link opens the runs.
            outcome.note = (
                f"view with: mlflow ui --backend-store-uri {self.target()}, then open "
                f"{UI_DEFAULT_URL}/#/experiments/{experiment_id}{UI_RUNS_QUERY}"
            )
        context = _RunContext(
            session, secret_values(), iso_to_millis(session.started), iso_to_millis(session.finished)
        )
        self._log_models(store, context, existing, outcome, deadline)

    def _log_models(
        self,
        store: _Store,
        context: _RunContext,
        existing: Mapping[str, list[Any]],
        outcome: ProviderOutcome,
        deadline: float,
    ) -> None:
        """One run per model while the budget lasts; what failed or was left out goes to ``outcome``."""
        problems: list[str] = []
        extra_notes: list[str] = []
        models = list(context.session.models.values())
        charts = _ChartBudget(self._settings.plots, deadline)
        for index, model in enumerate(models):
            self._budget_requests(deadline, done=index, total=len(models))
            plots = charts.draw(model, index, models)
            try:
                ref, model_problems, notes = self._log_model(
                    store, context, model, existing.get(model.name, []), plots=plots
                )
            except Exception as exc:
                problems.append(f"model {model.name!r}: {short_error(exc, self.target())}")
                if unreachable(exc):  # the next models would fail alike: stop, replay can finish
                    break
                continue  # one model's failure (a name, a value the store refuses) is its own
            outcome.runs[model.name] = ref
            problems.extend(f"model {model.name!r}: {p}" for p in model_problems)
            extra_notes.extend(f"model {model.name!r}: {n}" for n in notes)
        if charts.left_out:
            extra_notes.append(
                f"charts left out for {charts.left_out} model(s) to stay within the time budget"
            )
        if extra_notes:
            outcome.note = "; ".join(filter(None, [outcome.note, *extra_notes]))
        if problems:
            outcome.ok = False
            outcome.error = redact_text("; ".join(problems))
            if len(outcome.runs) < len(models):
                outcome.error += f" ({len(outcome.runs)} of {len(models)} models logged)"

    def _budget_requests(self, deadline: float, *, done: int, total: int) -> None:
        """Stop when the budget is spent, else cap each HTTP request at what is left of it."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise _OutOfTime(
                f"out of time (--fairmind-timeout) after {done} of {total} models; "
                "the rest can be logged with `fairmind replay`"
            )
        # MLflow takes whole seconds: rounded up while the request still ends by the caller's own
        # deadline (which kills this process), else down; never a second of the budget lost.
        seconds = math.ceil(left) if math.ceil(left) <= self._hard_deadline - time.monotonic() else int(left)
        os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, seconds))

    def _experiment_id(self, client: Any, name: str) -> str:
        """The experiment ``name``, created when missing; tagged as a model-development experiment
        (MLflow 3's UI then opens it on its runs, not on an empty GenAI overview)."""
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return str(client.create_experiment(name, tags={TAG_EXPERIMENT_KIND: EXPERIMENT_KIND}))
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
        if TAG_EXPERIMENT_KIND not in (experiment.tags or {}):
            # Created untagged (by hand, by an older version): tag it once. A kind set by someone
            # else is theirs to keep; a refusal (permissions) costs nothing but the UI's page.
            with contextlib.suppress(MlflowException):
                client.set_experiment_tag(experiment.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
        return str(experiment.experiment_id)

    def _existing_runs(self, client: Any, experiment_id: str, session_id: str) -> dict[str, list[Any]]:
        """Active runs of this session in the experiment, by model."""
        return _session_runs(client, experiment_id, session_id)

    def _log_model(
        self, store: _Store, context: _RunContext, model: ModelResult, known: list[Any], *, plots: bool
    ) -> tuple[RunRef, list[str], list[str]]:
        """Log one run; returns (its reference, problems that make the outcome fail, mere notes)."""
        done = store.finished(known)
        if done is not None:
            return done, [], []  # logged before (a replay): no artifact is even written
        payload = build_payload(context.session, model, context.secrets)
        client = store.client
        now_ms = int(time.time() * 1000)
        with tempfile.TemporaryDirectory(prefix="fairmind-mlflow-") as tmp:
            # Written before the run exists: a file the system refuses leaves no partial run.
            notes = write_artifacts(tmp, context.session, model, payload, plots=plots)
            claimed = store.claim(
                model.name,
                known,
                lambda: client.create_run(
                    store.experiment_id,
                    start_time=context.start_ms or now_ms,
                    tags={**payload.identity_tags, TAG_WRITER: store.writer},
                    run_name=payload.run_name,
                ),
            )
            if isinstance(claimed, RunRef):
                return claimed, [], []  # another process finished it meanwhile
            run_id: str = claimed.info.run_id
            try:
                stamp = context.end_ms or now_ms
                _send_batches(client, run_id, payload, stamp)
                self._upload(client, claimed, tmp)
                client.set_terminated(run_id, "FINISHED", end_time=max(stamp, context.start_ms or 0))
            except BaseException:
                with contextlib.suppress(Exception):
                    client.set_terminated(run_id, "FAILED")  # partial: replaced on the next log or replay
                raise
        return store.ref(run_id), payload.problems(), notes

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


def _warm_charts(plots: bool) -> None:
    """Import what drawing the per-group charts needs (matplotlib: about half a second)."""
    from pytest_fairmind.plots import matplotlib_available

    if plots and matplotlib_available():
        with contextlib.suppress(ImportError):
            import matplotlib.backends.backend_agg
            import matplotlib.figure

            del matplotlib


def _tag_filter(tag: str, value: str) -> str | None:
    """An MLflow filter for ``tag = value``, None when the value cannot be quoted in one."""
    quote = "'" if "'" not in value else '"'
    return f"tags.`{tag}` = {quote}{value}{quote}" if quote not in value else None


def _session_runs(
    client: Any, experiment_id: str, session_id: str, model: str | None = None
) -> dict[str, list[Any]]:
    """Active runs of ``session_id`` (and of ``model``, when given) in the experiment, by model."""
    from mlflow.entities import ViewType
    from mlflow.exceptions import MlflowException

    filters = [_tag_filter(TAG_SESSION, session_id), _tag_filter(TAG_MODEL, model) if model else None]
    filter_string = " and ".join(f for f in filters if f)
    runs: dict[str, list[Any]] = {}
    token: str | None = None
    while True:
        try:
            page = client.search_runs(
                [experiment_id],
                filter_string=filter_string,
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=token,
            )
        except MlflowException:
            if model is None or token is not None:
                raise
            return _session_runs(client, experiment_id, session_id)  # a name the filter cannot hold
        for run in page:
            if run.data.tags.get(TAG_SESSION) == session_id:
                runs.setdefault(run.data.tags.get(TAG_MODEL, ""), []).append(run)
        token = page.token
        if not token:
            return runs


@dataclass
class _ChartBudget:
    """Whether each model's charts are drawn: while the models left fit the budget at the pace
    so far (``plots.keep_charts``); after that runs are logged without them, and counted."""

    plots: bool
    deadline: float
    started: float = field(default_factory=time.monotonic)
    on: bool = True
    left_out: int = 0

    def draw(self, model: ModelResult, index: int, models: list[ModelResult]) -> bool:
        from pytest_fairmind.plots import keep_charts

        if not self.plots:
            return False
        now = time.monotonic()
        if self.on and index:
            self.on = keep_charts(self.deadline - now, now - self.started, index, len(models) - index)
        if not self.on and model.groups:
            self.left_out += 1
        return self.on


@dataclass
class _RunContext:
    """What every run of one session shares."""

    session: SessionResult
    secrets: list[str]
    start_ms: int | None
    end_ms: int | None


#: Run states of a run someone may still be writing (MLflow's RunStatus names).
_UNFINISHED = ("RUNNING", "SCHEDULED")
_WAIT_POLL = 0.5  # seconds between looks at a run another process is writing
#: The share of the budget one model may wait for another process writing its run, so that a
#: stuck writer of one model leaves time for the others.
WAIT_SHARE = 0.25


def being_written(run: Any) -> bool:
    """Whether ``run`` may still be written by its writer: not finished, and its writer mark
    (tag ``fairmind.writer``) names a process that can still be writing (``locks.writer_alive``).
    Anything else that is not ``FINISHED`` was abandoned: ``FAILED`` (its writer gave up), or
    ``RUNNING`` from a writer that died, ran out of its time, or left no mark (older versions)."""
    if run.info.status not in _UNFINISHED:
        return False
    return locks.writer_alive(locks.parse_writer(run.data.tags.get(TAG_WRITER)))


@dataclass
class _Store:
    """The experiment a session's runs go to, and how their references read."""

    client: Any
    uri: str
    experiment_id: str
    path: str | None  # the local store's file or folder, None for a server
    session_id: str = ""
    lock_path: str | None = None  # a local SQLite store: claims are made under its lock
    deadline: float = math.inf
    writer: str = ""  # this process's writer mark, tagged on every run it creates
    wait_limit: float = math.inf  # the longest wait for one model's run another process writes

    def ref(self, run_id: str, *, skipped: bool = False) -> RunRef:
        url = run_url(self.uri, self.experiment_id, run_id)
        return RunRef(id=run_id, url=url, path=self.path, skipped=skipped)

    def finished(self, runs: list[Any]) -> RunRef | None:
        """The model's finished run of this session (skipped), else None."""
        done = [r for r in runs if r.info.status == "FINISHED"]
        return self.ref(done[0].info.run_id, skipped=True) if done else None

    def claim(self, model: str, runs: list[Any], create: Callable[[], Any]) -> Any:
        """The model's run to write: ``create()``'s new run, after deleting the abandoned ones;
        or the reference of a run another process finished meanwhile (skipped).

        While another process is writing one (:func:`being_written`), waits for it to finish or
        die, up to :attr:`wait_limit` (then :class:`_Busy`): a run being written is never deleted
        and never logged twice. On a local store the look and the creation happen under the
        store's lock, so two processes cannot both find nothing and both create."""
        waiting_since: float | None = None
        while True:
            with self._claiming():
                if self.lock_path is not None:  # fresh, under the lock
                    found = _session_runs(self.client, self.experiment_id, self.session_id, model)
                    runs = found.get(model, [])
                done = self.finished(runs)
                if done is not None:
                    return done
                writing = [r for r in runs if being_written(r)]
                if not writing:
                    for abandoned in runs:
                        self.client.delete_run(abandoned.info.run_id)
                    return create()
            writer = locks.parse_writer(writing[0].data.tags.get(TAG_WRITER))
            waiting_since = time.monotonic() if waiting_since is None else waiting_since
            give_up = min(self.deadline, waiting_since + self.wait_limit)
            if time.monotonic() + _WAIT_POLL >= give_up:
                raise _Busy(
                    f"run {writing[0].info.run_id} is being written by another process "
                    f"({writer.describe() if writer else 'unknown'}); not logged twice: replay later"
                )
            time.sleep(_WAIT_POLL)
            if self.lock_path is None:
                runs = [self.client.get_run(r.info.run_id) for r in runs]

    def _claiming(self) -> contextlib.AbstractContextManager[None]:
        if self.lock_path is None:
            return contextlib.nullcontext()
        return locks.store_lock(self.lock_path, timeout=max(0.0, self.deadline - time.monotonic()))


def _send_batches(client: Any, run_id: str, payload: RunPayload, stamp: int) -> None:
    from mlflow.entities import Metric, Param, RunTag

    for batch in plan_batches(payload.metrics, payload.params, payload.tags):
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, stamp, 0) for k, v in batch.metrics],
            params=[Param(k, v) for k, v in batch.params],
            tags=[RunTag(k, v) for k, v in batch.tags],
        )


__all__ = [
    "MlflowProvider",
    "build_payload",
    "default_tracking_uri",
    "plan_batches",
    "resolve_tracking_uri",
    "run_url",
    "valid_key",
]
