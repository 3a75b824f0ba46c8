"""Built-in providers and the registry they share with third-party ones."""

from __future__ import annotations

from pytest_fairmind.providers.base import Provider, ProviderFactory, ProviderRegistry, ProviderSettings

__all__ = ["Provider", "ProviderRegistry", "ProviderSettings", "register_builtin_providers"]


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
        description="MLflow tracking (embedded SQLite store by default)",
    )
    registry.register(
        "wandb",
        _isolated("wandb", "pytest_fairmind.providers.wandb:WandbProvider"),
        requires=("wandb",),
        extra="wandb",
        description="Weights & Biases (offline without an API key)",
    )


# A hook implementation by name (pytest takes `pytest_*` functions of registered plugins without a
# marker), so that provider child processes importing this package need not import pytest.
def pytest_fairmind_register_providers(registry: ProviderRegistry) -> None:
    register_builtin_providers(registry)
