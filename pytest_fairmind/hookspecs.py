"""Hooks pytest-fairmind adds to pytest (registered with ``pytest_addhooks``).

Implement them in a ``conftest.py`` or a plugin, like any pytest hook. See ``docs/hooks.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_fairmind.providers.base import ProviderRegistry
    from pytest_fairmind.result import ModelResult, SessionResult


@pytest.hookspec
def pytest_fairmind_register_providers(registry: ProviderRegistry) -> None:
    """Register providers with ``registry.register(name, factory, requires=..., extra=...)``.

    Called once at configure time, in the aggregating process only (the xdist controller, or the
    only process; never in a worker). ``factory(settings)`` is called only when the provider is
    selected (``--fairmind-provider``). The built-in
    ``mlflow`` and ``wandb`` providers are registered through this hook too.
    """


@pytest.hookspec
def pytest_fairmind_model_result(result: ModelResult, session: SessionResult) -> None:
    """Amend one model's aggregated ``result`` in place before gates are evaluated and it is logged.

    Called in the aggregating process only, once per model. Metrics added here are gated, saved
    and logged like recorded ones.
    """


@pytest.hookspec
def pytest_fairmind_logged(session: SessionResult) -> None:
    """Called after every provider finished (or was abandoned), in the aggregating process.

    ``session.providers`` maps provider name to its :class:`~pytest_fairmind.result.ProviderOutcome`
    (``ok``, ``error``, ``runs``: model -> run reference).
    """
