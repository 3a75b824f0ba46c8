"""Built-in providers and the registry they share with third-party ones."""

from __future__ import annotations

from pytest_fairmind.providers.base import (
    Provider,
    ProviderBuildError,
    ProviderFactory,
    ProviderRegistry,
    ProviderSettings,
    project_for,
    safe_target,
)

__all__ = [
    "Provider",
    "ProviderBuildError",
    "ProviderRegistry",
    "ProviderSettings",
    "project_for",
    "register_builtin_providers",
    "safe_target",
]


def _isolated(name: str, impl: str) -> ProviderFactory:
    def factory(settings: ProviderSettings) -> Provider:
        from pytest_fairmind.isolation import IsolatedProvider

        return IsolatedProvider(name, impl, settings)

    return factory


def register_builtin_providers(registry: ProviderRegistry) -> None:
    """Register ``mlflow`` and ``wandb``; each logs from a child process (see ``isolation``)."""
    registry.register(
        "mlflow",
        _isolated("mlflow", "pytest_fairmind.providers.mlflow:MlflowProvider"),
        requires=("mlflow",),
        extra="mlflow",
    )
    registry.register(
        "wandb",
        _isolated("wandb", "pytest_fairmind.providers.wandb:WandbProvider"),
        requires=("wandb",),
        extra="wandb",
    )


# A hook implementation by name (pytest takes `pytest_*` functions of registered plugins without a
# marker), so that provider child processes importing this package need not import pytest.
def pytest_fairmind_register_providers(registry: ProviderRegistry) -> None:
    register_builtin_providers(registry)
