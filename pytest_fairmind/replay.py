"""Where ``fairmind replay`` logs a saved session: each provider's recorded target (see docs/cli.md).

A session's report holds, for every provider it used, where that provider wrote
(``providers.<name>.target``: the MLflow tracking URI as the provider resolved it, the W&B mode and
folder or server and project), with credentials redacted. Replay sends each provider back there,
in this order of precedence: the command's own flags, then the recorded target, then the
environment, then the ini file, then the provider's default. Credentials are never saved: a
recorded URI whose credentials were redacted gets them again from the environment
(``MLFLOW_TRACKING_URI`` holding the same URI with credentials, or MLflow's own
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD``/``MLFLOW_TRACKING_TOKEN``).

Pure (no pytest import, no provider library import).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.redact import REDACTED, redact_uri
from pytest_fairmind.result import SessionResult
from pytest_fairmind.settings import normalize_wandb_mode, plots_setting

#: MLflow's own credential variables: a server's credentials when the URI carries none.
MLFLOW_CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")

# The W&B provider's target texts (providers/wandb.py ``WandbProvider.target``).
_WANDB_OFFLINE = re.compile(r"^offline: (?P<dir>.+)$")
_WANDB_ONLINE = re.compile(r"^online: (?P<url>\S+) \((?P<entity>.*)/(?P<project>[^/()]*)\)$")
_WANDB_DISABLED = "disabled"
_DEFAULT_ENTITY = "<default entity>"
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S*$")


@dataclass(frozen=True)
class ReplayOptions:
    """What the command line of ``fairmind replay`` says (None: not given)."""

    project: str | None = None
    mlflow_uri: str | None = None
    wandb_mode: str | None = None
    timeout: float = 30.0
    workdir: str = field(default_factory=os.getcwd)


@dataclass
class ReplayTarget:
    """Where one provider replays one session, and what to say about it."""

    project: str
    settings: ProviderSettings
    environ: dict[str, str] = field(default_factory=dict)  # variables set while it logs
    notes: list[str] = field(default_factory=list)  # lines for the output
    problem: str | None = None  # it cannot replay: why (the provider is not called)


def replay_target(
    name: str,
    session: SessionResult,
    options: ReplayOptions,
    *,
    ini: Mapping[str, str],
    environ: Mapping[str, str],
) -> ReplayTarget:
    """Where provider ``name`` replays ``session``: flags, recorded target, environment, ini, default."""
    outcome = session.providers.get(name)
    recorded = outcome.target if outcome is not None else None
    target = ReplayTarget(project=options.project or session.project, settings=ProviderSettings())
    mlflow_uri = options.mlflow_uri
    wandb_mode = options.wandb_mode
    if name == "mlflow" and mlflow_uri is None and recorded:
        mlflow_uri = _recorded_mlflow_uri(recorded, target, environ=environ, ini=ini, workdir=options.workdir)
    if name == "wandb" and recorded:
        wandb_mode = _recorded_wandb(recorded, target, wandb_mode, explicit_project=options.project)
    if mlflow_uri is None:
        mlflow_uri = environ.get("MLFLOW_TRACKING_URI") or ini.get("mlflow_uri") or None
    if wandb_mode is None:
        wandb_mode = normalize_wandb_mode(environ.get("WANDB_MODE", "")) or ini.get("wandb_mode") or None
    target.settings = ProviderSettings(
        project=target.project,
        mlflow_uri=mlflow_uri,
        wandb_mode=wandb_mode,
        timeout=options.timeout,
        workdir=options.workdir,
        plots=plots_setting(ini, environ),
    )
    return target


def _recorded_mlflow_uri(
    recorded: str, target: ReplayTarget, *, environ: Mapping[str, str], ini: Mapping[str, str], workdir: str
) -> str | None:
    """The tracking URI the session used, from its recorded (redacted) form."""
    if not _URI.match(recorded) and not os.path.isabs(recorded):
        target.problem = (
            f"cannot tell from the saved session where it logged (target {recorded!r}); pass --mlflow-uri"
        )
        return None
    if REDACTED not in recorded:
        return recorded
    # Credentials were redacted: the same URI with them, from the environment or the ini file.
    for origin, candidate in (
        ("MLFLOW_TRACKING_URI", environ.get("MLFLOW_TRACKING_URI")),
        ("ini fairmind_mlflow_uri", ini.get("mlflow_uri")),
    ):
        if candidate and _same_uri(candidate, recorded, workdir):
            target.notes.append(f"credentials of {recorded} from {origin}")
            return candidate
    parts = urlsplit(recorded)
    userinfo, _, host = parts.netloc.rpartition("@")
    if userinfo != REDACTED or REDACTED in host or REDACTED in recorded.replace(parts.netloc, "", 1):
        target.problem = f"the saved target {recorded} is redacted beyond its credentials; pass --mlflow-uri"
        return None
    bare = urlunsplit(parts._replace(netloc=host))
    if not any(environ.get(var) for var in MLFLOW_CREDENTIAL_VARS):
        target.notes.append(
            f"the session's tracking URI carried credentials, which are never saved: replaying to {bare}; "
            "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN), "
            "or MLFLOW_TRACKING_URI with the credentials, or pass --mlflow-uri"
        )
    return bare


def _same_uri(candidate: str, recorded: str, workdir: str) -> bool:
    """Whether ``candidate`` is the recorded URI with its credentials (resolved as the provider
    resolves it: a relative SQLite path is anchored at ``workdir``)."""
    from pytest_fairmind.providers.mlflow import resolve_tracking_uri

    resolved = resolve_tracking_uri(ProviderSettings(mlflow_uri=candidate, workdir=workdir), environ={})
    return redact_uri(resolved) == recorded or redact_uri(candidate) == recorded


def _recorded_wandb(
    recorded: str, target: ReplayTarget, mode: str | None, *, explicit_project: str | None
) -> str | None:
    """The W&B mode the session used (unless ``mode`` is given), and the folder or server it wrote
    to as variables for the replay (the recorded target wins over the environment)."""
    offline = _WANDB_OFFLINE.match(recorded)
    online = _WANDB_ONLINE.match(recorded)
    if offline:
        if mode in (None, "offline"):
            run_dir = offline.group("dir")
            target.environ["WANDB_DIR"] = os.path.dirname(run_dir.rstrip("/\\")) or run_dir
        return mode or "offline"
    if online:
        if mode in (None, "online"):
            url = online.group("url")
            if REDACTED not in url:
                target.environ["WANDB_BASE_URL"] = url
            entity = online.group("entity")
            if entity and entity != _DEFAULT_ENTITY and REDACTED not in entity:
                target.environ["WANDB_ENTITY"] = entity
            if explicit_project is None and online.group("project"):
                target.project = online.group("project")
        return mode or "online"
    if recorded.startswith(_WANDB_DISABLED):
        return mode or "disabled"
    return mode


@contextlib.contextmanager
def environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set (provider children inherit it), restored after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
