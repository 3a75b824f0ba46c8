"""The provider interface: the one small contract every tracking backend implements.

A provider turns a :class:`~pytest_fairmind.result.SessionResult` into one run per model. It is
built from :class:`ProviderSettings` by the factory it registers through the
``pytest_fairmind_register_providers`` hook, and it must never raise into pytest: failures are
returned as ``ProviderOutcome(ok=False, error=...)``. The plugin calls :meth:`Provider.log` in a
thread of its own under the shared ``--fairmind-timeout`` budget and abandons it past that.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import ProviderOutcome, SessionResult

#: The project when none was given and the provider's own variable is unset.
DEFAULT_PROJECT = "fairmind"

#: Each provider's own project variable, used when no project was given to pytest-fairmind.
PROVIDER_PROJECT_ENV = {"mlflow": "MLFLOW_EXPERIMENT_NAME", "wandb": "WANDB_PROJECT"}


def project_for(provider: str | None, explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The project ``provider`` logs to: ``explicit``, else the provider's own environment variable
    (``MLFLOW_EXPERIMENT_NAME``, ``WANDB_PROJECT``), else ``fairmind`` (see docs/providers.md)."""
    if explicit:
        return explicit
    env = os.environ if environ is None else environ
    own = PROVIDER_PROJECT_ENV.get(provider or "")
    return (env.get(own) if own else None) or DEFAULT_PROJECT


#: Set by ``isolation`` in a provider process: the epoch time at which the budget of the ``log``
#: call began in the parent, so that a provider counts the time its order took to arrive.
BUDGET_START_ENV = "FAIRMIND_BUDGET_STARTED"


def budget_spent() -> float:
    """Seconds of the ``log`` budget already spent when the provider's ``log`` was called: in a
    provider process, the time since the parent started the budget; elsewhere 0."""
    try:
        started = float(os.environ[BUDGET_START_ENV])
    except (KeyError, ValueError):
        return 0.0
    return max(0.0, time.time() - started)


def fit_bytes(text: str, limit: int) -> str:
    """``text`` whose UTF-8 encoding takes at most ``limit`` bytes (file systems count bytes: 255
    per file name). A shortened text ends with ``-`` and 8 hex digits of a hash of the whole, so two
    long names that share their beginning stay apart."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text
    digest = hashlib.sha256(raw).hexdigest()[:8]
    head = raw[: max(0, limit - 9)].decode("utf-8", "ignore")  # whole characters only
    return f"{head}-{digest}"


@dataclass(frozen=True)
class ProviderSettings:
    """Resolved configuration handed to provider factories (precedence already applied)."""

    project: str | None = None  # None: not given; each provider resolves it with project_for()
    mlflow_uri: str | None = None  # None: MLflow's own default (sqlite mlflow.db in cwd)
    wandb_mode: str | None = None  # None: online with an API key, else offline
    plots: bool = True
    timeout: float = 30.0
    workdir: str = field(default_factory=os.getcwd)


@runtime_checkable
class Provider(Protocol):
    """A tracking backend. ``name`` is what users pass to ``--fairmind-provider``."""

    name: str

    def target(self) -> str:
        """Where runs go, for the report header and ``fairmind status`` (credentials redacted)."""
        ...

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        """Log one run per model of ``session`` within ``timeout`` seconds; never raise.

        A (session id, model) pair that already has a run is skipped (``RunRef.skipped``), so
        replaying a saved session is idempotent.
        """
        ...


ProviderFactory = Callable[[ProviderSettings], Provider]


@dataclass(frozen=True)
class ProviderSpec:
    """A registered provider: how to build it and what it needs installed."""

    name: str
    factory: ProviderFactory
    requires: tuple[str, ...] = ()
    extra: str | None = None  # the pytest-fairmind extra that installs ``requires``
    install: str | None = None  # pip requirement to suggest instead (third-party providers)

    def missing_requirements(self) -> list[str]:
        """Import names of required packages that are not installed (checked without importing)."""
        return [mod for mod in self.requires if importlib.util.find_spec(mod) is None]

    def install_hint(self) -> str:
        """What to run to get the missing requirements."""
        if self.install:
            return f"pip install '{self.install}'"
        if self.extra:
            return f"pip install 'pytest-fairmind[{self.extra}]'"
        return "pip install " + " ".join(self.missing_requirements() or self.requires)


class ProviderBuildError(ValueError):
    """A selected provider cannot be built: unknown, not installed, or its factory failed.

    The message names the provider; callers add their own prefix (``--fairmind-provider: ``)."""


class ProviderRegistry:
    """Providers known to this session, filled by ``pytest_fairmind_register_providers``."""

    def __init__(self) -> None:
        self._specs: dict[str, ProviderSpec] = {}

    def register(
        self,
        name: str,
        factory: ProviderFactory,
        *,
        requires: Sequence[str] = (),
        extra: str | None = None,
        description: str = "",
        install: str | None = None,
    ) -> None:
        """Make ``name`` usable in ``--fairmind-provider``. A later registration replaces an earlier one.

        ``description`` is accepted for third-party providers written against docs/hooks.md and
        not stored."""
        del description
        if not name or name == "none" or "," in name:
            raise ValueError(f"invalid provider name {name!r}")
        self._specs[name] = ProviderSpec(name, factory, tuple(requires), extra, install)

    def get(self, name: str) -> ProviderSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def build(self, names: Sequence[str], settings: ProviderSettings) -> list[Provider]:
        """One provider per name, in order, each from its factory; :class:`ProviderBuildError`
        for an unknown name, missing requirements or a factory that raised (message redacted)."""
        built: list[Provider] = []
        for name in names:
            spec = self._specs.get(name)
            if spec is None:
                known = ", ".join(["none", *self.names()])
                raise ProviderBuildError(f"unknown provider {name!r} (known: {known})")
            missing = spec.missing_requirements()
            if missing:
                raise ProviderBuildError(
                    f"provider {name!r} needs {', '.join(missing)}: {spec.install_hint()}"
                )
            try:
                built.append(spec.factory(settings))
            except Exception as exc:
                raise ProviderBuildError(f"provider {name!r}: {redact_text(str(exc))}") from None
        return built


def safe_target(provider: Provider) -> str:
    """Where ``provider`` writes, redacted; a ``target()`` that raises says so instead of raising."""
    try:
        return redact_text(str(provider.target()))
    except Exception as exc:
        return redact_text(f"target unknown: {type(exc).__name__}: {exc}")
