"""Where a baseline comes from: ``--fairmind-baseline`` / ``fairmind check --baseline SOURCE``.

- a session JSON file (a ``--fairmind-json`` report or a history entry);
- ``last``: the local history. Each metric's baseline is its value in the newest earlier session
  of the same project that recorded it with a finite value and did not fail a regression rule
  on it, so rerunning a regressed build does not make the regression the new baseline, and a run
  of a few tests (``-k``) does not hide the other metrics' baselines;
- ``mlflow``: the finished runs of each model (tag ``fairmind.model``) in the experiment named
  after the project, newest first, by the same rule as ``last`` (so in practice the newest
  finished run), asked from a child process under a timeout
  (:mod:`pytest_fairmind.gating.mlflow_query`: the pytest process never imports mlflow, and
  MLflow's warnings never meet the user's filters).

Pure except for the ``mlflow`` source (no pytest import). See docs/baseline.md.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pytest_fairmind import history, report
from pytest_fairmind.gating.baseline import PYTEST_STRICT, Baseline, merge_older, regressed_keys
from pytest_fairmind.gating.directions import PYTEST_HINT, Directions
from pytest_fairmind.timeouts import clamp_timeout

LAST = "last"
MLFLOW = "mlflow"
_FLOAT_MAX = sys.float_info.max  # what MLflow's SQL stores keep for +-inf

Values = dict[str, dict[str, float]]  # model -> metric key -> value


class WarmProcess(Protocol):
    """A process that runs a function for us with mlflow imported: the MLflow provider's warm
    child (:meth:`pytest_fairmind.isolation.IsolatedProvider.call`)."""

    def call(self, function: str, args: Sequence[Any], *, timeout: float) -> Any: ...


class BaselineError(ValueError):
    """A baseline source that cannot work at all (an unreadable file, mlflow not installed)."""


class _Unavailable(Exception):
    """The source has nothing at all; the message says why."""


@dataclass(frozen=True)
class BaselineRequest:
    """Where to read the baseline of one evaluation of regression rules, and what to say about it.

    ``exclude_session`` (the session being checked) is never its own baseline; with ``last``,
    ``before`` (that session's start time) also leaves out newer sessions.
    """

    source: str | None  # a path, ``last`` or ``mlflow``; None: no source given
    project: str
    history_folder: Path
    exclude_session: str | None = None
    before: str | None = None
    mlflow_uri: str | None = None
    mlflow_project: str | None = None  # the MLflow experiment; None: ``project``
    workdir: str | None = None  # relative paths and SQLite URIs are anchored here (None: cwd)
    timeout: float = 30.0
    #: The session's MLflow provider, when its warm process logs to the same store: the
    #: ``mlflow`` source asks there (mlflow imported already) instead of in a process of its own.
    mlflow_process: WarmProcess | None = None
    directions: Directions = field(default_factory=Directions)
    hint: str = PYTEST_HINT  # how to declare a direction, for the summary
    no_source_reason: str = "no --fairmind-baseline given"
    strict_flag: str = PYTEST_STRICT  # how the summary names strict mode


def resolve_path(source: str, workdir: str | None) -> Path:
    path = Path(source).expanduser()
    return path if path.is_absolute() or workdir is None else Path(workdir) / path


#: What :func:`classify_baseline` makes of a ``--fairmind-baseline`` value.
KEYWORD, FILE, FIRST_RUN = "keyword", "file", "first-run"
_KEYWORDS = (LAST, MLFLOW)


def _path_like(value: str) -> bool:
    """A value that names a file: it has a path separator or ends in ``.json``."""
    separators = {"/", os.sep, *([os.altsep] if os.altsep else [])}
    return any(sep in value for sep in separators) or value.lower().endswith(".json")


def classify_baseline(value: str, workdir: str | None = None) -> str:
    """What a baseline source is: ``"keyword"`` (``last``, ``mlflow``), ``"file"`` (an existing
    file) or ``"first-run"`` (a path-like value, with a path separator or ending in ``.json``, that
    does not exist yet: no baseline, a notice).

    :class:`BaselineError` for a folder, and for a bare word that is neither a keyword nor an
    existing file (a typo such as ``lastt`` would otherwise turn regression checks off), with the
    closest keyword or file name as a suggestion.
    """
    text = str(value).strip()
    if text in _KEYWORDS:
        return KEYWORD
    path = resolve_path(text, workdir)
    if path.is_dir():
        raise BaselineError(f"{text}: a folder; expected a session JSON file, 'last' or 'mlflow'")
    if path.exists():
        return FILE
    if _path_like(text):
        return FIRST_RUN
    raise BaselineError(
        f"{text!r} is not 'last', 'mlflow' or an existing file{_suggestion(text, workdir)} "
        f"(a report file that does not exist yet, for a first run, is written as a path: ./{text}.json)"
    )


def _suggestion(text: str, workdir: str | None) -> str:
    """``; did you mean 'last'?``: the closest keyword, else the closest JSON file of the folder
    (by name or by name without ``.json``)."""
    close = difflib.get_close_matches(text.lower(), _KEYWORDS, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    folder = Path(workdir) if workdir is not None else Path.cwd()
    try:
        names = sorted(p.name for p in folder.glob("*.json") if p.is_file())[:1000]
    except OSError:
        names = []
    by_text = {**{n[: -len(".json")]: n for n in names}, **{n: n for n in names}}
    close = difflib.get_close_matches(text, list(by_text), n=1, cutoff=0.6)
    return f"; did you mean {by_text[close[0]]!r}?" if close else ""


def check_source(source: str, *, workdir: str | None = None) -> None:
    """Fail early (``BaselineError``) for a source that cannot work: a bare word that is not a
    keyword or a file (:func:`classify_baseline`), an existing file that is not a pytest-fairmind
    report, or ``mlflow`` without mlflow installed. A path that does not exist yet is fine: that
    is the first run (no baseline)."""
    kind = classify_baseline(source, workdir)
    if kind == FIRST_RUN:
        return
    if source == MLFLOW:
        if importlib.util.find_spec("mlflow") is None:
            raise BaselineError("the mlflow baseline needs mlflow: pip install 'pytest-fairmind[mlflow]'")
        return
    if kind == FILE:
        try:
            report.load(str(resolve_path(source, workdir)))
        except (OSError, ValueError) as exc:
            raise BaselineError(f"{source}: not a readable pytest-fairmind report ({exc})") from None


def read_baseline(request: BaselineRequest, *, strict: bool = False) -> Baseline:
    """The baseline named by ``request.source``; never raises (a source with nothing to offer
    gives a baseline that is not ``available``, saying why)."""
    baseline = Baseline(
        source=request.source,
        directions=request.directions,
        strict=strict,
        hint=request.hint,
        strict_flag=request.strict_flag,
    )
    source = request.source
    try:
        if not source:
            raise _Unavailable(request.no_source_reason)
        if source == LAST:
            baseline.models, baseline.description = _read_last(request)
        elif source == MLFLOW:
            baseline.models, baseline.description = _read_mlflow(request)
        else:
            baseline.models, baseline.description = _read_file(source, request.workdir)
    except _Unavailable as exc:
        baseline.available, baseline.reason = False, str(exc)
    except subprocess.TimeoutExpired:
        baseline.available = False
        baseline.reason = f"{source}: MLflow did not answer within {request.timeout:g} s"
    except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError) as exc:
        baseline.available, baseline.reason = False, f"{source}: {exc}"
    return baseline


# --------------------------------------------------------------------------- a file


def _read_file(source: str, workdir: str | None) -> tuple[Values, str]:
    path = resolve_path(source, workdir)
    if not path.is_file():
        raise _Unavailable(f"{source}: no such file")
    session = report.load(str(path))
    return {
        name: dict(model.metrics) for name, model in session.models.items()
    }, f"{source} (session {session.id})"


# --------------------------------------------------------------------------- last


def _read_last(request: BaselineRequest) -> tuple[Values, str]:
    folder = request.history_folder
    values, used = _from_history(folder, request.project, request.exclude_session, request.before)
    if not used:
        raise _Unavailable(f"no earlier session of project {request.project!r} in {folder}: first run?")
    return values, f"last ({used} earlier session(s) in {folder})"


def _history_entries(folder: Path) -> list[Path]:
    """History entries, newest first; within one second (entry names) the last written wins."""

    def order(path: Path) -> tuple[str, float]:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = 0.0
        return path.name.partition("-")[0], mtime

    return sorted(history.entries(folder), key=order, reverse=True)


def _from_history(
    folder: Path, project: str, exclude_session: str | None, before: str | None
) -> tuple[Values, int]:
    """Each metric's newest usable value in earlier sessions of ``project``; and how many sessions."""
    limit = history.stamp(before) if before else None
    values: Values = {}
    used = 0
    for path in _history_entries(folder):
        if exclude_session and path.stem.endswith(exclude_session):
            continue
        if limit is not None and path.name.partition("-")[0] > limit:
            continue  # newer than the session being checked
        try:
            session = report.load(str(path))
        except (OSError, report.ReportError):
            continue  # a foreign or corrupt file in the history folder
        if session.project != project or session.id == exclude_session:
            continue
        used += 1
        for name, model in session.models.items():
            merge_older(values.setdefault(name, {}), model.metrics, skip=regressed_keys(model))
    return values, used


# --------------------------------------------------------------------------- mlflow


def _read_mlflow(request: BaselineRequest) -> tuple[Values, str]:
    experiment = request.mlflow_project or request.project
    workdir = request.workdir or os.getcwd()
    uri = _mlflow_uri(request.mlflow_uri, workdir)
    from pytest_fairmind.providers.mlflow import local_store_path

    store = local_store_path(uri) if uri.startswith("sqlite:") else None  # anchored: absolute
    # a store that does not exist has no run, and asking MLflow would create it (seconds of migrations)
    values = {} if store and not os.path.exists(store) else _from_mlflow(request, experiment, uri, workdir)
    if not values:
        raise _Unavailable(f"no finished run in the MLflow experiment {experiment!r}: first run?")
    return values, f"mlflow (experiment {experiment!r})"


def _mlflow_uri(uri: str | None, workdir: str) -> str:
    """The tracking URI exactly as the MLflow provider resolves it (relative SQLite paths anchored)."""
    from pytest_fairmind.providers.base import ProviderSettings
    from pytest_fairmind.providers.mlflow import resolve_tracking_uri

    return resolve_tracking_uri(ProviderSettings(mlflow_uri=uri, workdir=workdir))


def _from_mlflow(request: BaselineRequest, experiment: str, uri: str, workdir: str) -> Values:
    """Each model's baseline from its finished runs in the experiment: asked in the MLflow
    provider's warm process when there is one, else in a process of its own; all within
    ``request.timeout``."""
    deadline = time.monotonic() + request.timeout
    refused = _refused(uri, request.timeout)
    if refused:  # no need to spend seconds importing mlflow to learn it
        raise ValueError(f"MLflow did not answer: {refused}")
    args = [uri, experiment, request.exclude_session or ""]
    data = None
    if request.mlflow_process is not None:
        data = _ask_warm(request.mlflow_process, args, _left(deadline))
    if data is None:
        data = _ask_process(args, workdir, _left(deadline))
    return {m: {k: _from_store(float(v)) for k, v in metrics.items()} for m, metrics in data.items()}


def _left(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _ask_warm(
    process: WarmProcess, args: list[str], timeout: float
) -> Mapping[str, Mapping[str, float]] | None:
    """The query run in ``process`` (mlflow imported already: no second import); None when that
    process is gone, for a process of its own to ask."""
    from pytest_fairmind.isolation import CallFailed, NotWarm

    function = "pytest_fairmind.gating.mlflow_query:bounded_query"
    try:
        answer = process.call(function, [*args, timeout], timeout=timeout)
    except NotWarm:
        return None
    except TimeoutError:
        raise subprocess.TimeoutExpired(function, timeout) from None
    except CallFailed as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[0]
        raise ValueError(f"MLflow did not answer: {first}") from None
    data: Mapping[str, Mapping[str, float]] = answer
    return data


def _ask_process(args: list[str], workdir: str, timeout: float) -> Mapping[str, Mapping[str, float]]:
    """The query in a child process of its own (:mod:`pytest_fairmind.gating.mlflow_query`)."""
    from pytest_fairmind.gating.mlflow_query import PREFIX
    from pytest_fairmind.isolation import CHILD_ENV
    from pytest_fairmind.redact import redact_text

    env = {
        **os.environ,
        **CHILD_ENV,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout))),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest_fairmind.gating.mlflow_query", *args],
        capture_output=True,
        text=True,
        timeout=clamp_timeout(timeout),
        env=env,
        cwd=workdir,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith(PREFIX):
            data: Mapping[str, Mapping[str, float]] = json.loads(line[len(PREFIX) :])
            return data
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise ValueError(f"MLflow did not answer: {redact_text(last)}")


def _refused(uri: str, timeout: float) -> str | None:
    """Why a tracking server cannot be asked at all, when its port refuses connections (nothing
    listens: a server that is down, a wrong port); None otherwise: any other answer, a slow one,
    or a proxy in the way is for MLflow's client to judge."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return None  # MLflow's requests go through the proxy, not to the host
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=max(0.1, min(1.0, 0.1 * timeout))):
            return None
    except ConnectionRefusedError:
        return f"connection refused by {host}:{port}"
    except (OSError, ValueError):  # a timeout, no such host, a bad port: MLflow's own error says it
        return None


def _from_store(value: float) -> float:
    """MLflow's SQL stores keep +-inf as +-float max: read them back as infinities."""
    if value >= _FLOAT_MAX:
        return math.inf
    if value <= -_FLOAT_MAX:
        return -math.inf
    return value
