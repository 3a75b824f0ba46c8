"""The provider interface: the one small contract every tracking backend implements.

A provider turns a :class:`~pytest_fairmind.result.SessionResult` into one run per model. It is
built from :class:`ProviderSettings` by the factory it registers through the
``pytest_fairmind_register_providers`` hook, and it must never raise into pytest: failures are
returned as ``ProviderOutcome(ok=False, error=...)``. The plugin calls :meth:`Provider.log` in a
thread of its own under the shared ``--fairmind-timeout`` budget and abandons it past that.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pytest_fairmind.result import ProviderOutcome, SessionResult


@dataclass(frozen=True)
class ProviderSettings:
    """Resolved configuration handed to provider factories (precedence already applied)."""

    project: str = "fairmind"
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
    description: str = ""
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
        """Make ``name`` usable in ``--fairmind-provider``. A later registration replaces an earlier one."""
        if not name or name == "none" or "," in name:
            raise ValueError(f"invalid provider name {name!r}")
        self._specs[name] = ProviderSpec(name, factory, tuple(requires), extra, description, install)

    def get(self, name: str) -> ProviderSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs
