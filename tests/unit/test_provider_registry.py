"""The provider registry, the one project resolver and the one safe-target helper (pure)."""

from __future__ import annotations

import pytest

from pytest_fairmind.providers import register_builtin_providers
from pytest_fairmind.providers.base import (
    Provider,
    ProviderBuildError,
    ProviderRegistry,
    ProviderSettings,
    project_for,
    safe_target,
)
from pytest_fairmind.result import ProviderOutcome, SessionResult


class _Named:
    def __init__(self, name: str, settings: ProviderSettings) -> None:
        self.name = name
        self.settings = settings

    def target(self) -> str:
        return f"{self.name}-target"

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        return ProviderOutcome(ok=True)


class _NoTarget(_Named):
    def target(self) -> str:
        raise RuntimeError("https://user:hunter22@example.org is down")


def _registry() -> ProviderRegistry:
    registry = ProviderRegistry()
    registry.register("alpha", lambda s: _Named("alpha", s))
    registry.register("beta", lambda s: _Named("beta", s))
    return registry


# -- project_for ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "explicit", "environ", "expected"),
    [
        ("mlflow", "bias", {"MLFLOW_EXPERIMENT_NAME": "exp"}, "bias"),
        ("mlflow", None, {"MLFLOW_EXPERIMENT_NAME": "exp", "WANDB_PROJECT": "wb"}, "exp"),
        ("wandb", None, {"MLFLOW_EXPERIMENT_NAME": "exp", "WANDB_PROJECT": "wb"}, "wb"),
        ("wandb", "", {"WANDB_PROJECT": "wb"}, "wb"),
        ("mlflow", None, {"MLFLOW_EXPERIMENT_NAME": ""}, "fairmind"),
        ("mlflow", None, {}, "fairmind"),
        ("jsonl", None, {"MLFLOW_EXPERIMENT_NAME": "exp", "WANDB_PROJECT": "wb"}, "fairmind"),
        (None, None, {"MLFLOW_EXPERIMENT_NAME": "exp", "WANDB_PROJECT": "wb"}, "fairmind"),
        (None, "given", {}, "given"),
    ],
)
def test_project_for_explicit_then_provider_env_then_default(
    provider: str | None, explicit: str | None, environ: dict[str, str], expected: str
) -> None:
    assert project_for(provider, explicit, environ) == expected


def test_project_for_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    assert project_for("wandb", None) == "from-env"
    assert project_for("mlflow", None) == "fairmind"


def test_provider_settings_project_defaults_to_not_given() -> None:
    settings = ProviderSettings()
    assert settings.project is None
    assert project_for("mlflow", settings.project, {}) == "fairmind"


# -- ProviderRegistry.build -------------------------------------------------------------------------


def test_build_returns_providers_in_the_order_asked_with_the_settings_given() -> None:
    settings = ProviderSettings(project="p", timeout=3.0)
    built = _registry().build(["beta", "alpha"], settings)
    assert [p.name for p in built] == ["beta", "alpha"]
    assert all(isinstance(p, Provider) for p in built)
    assert all(p.settings is settings for p in built if isinstance(p, _Named))
    assert _registry().build([], settings) == []


def test_build_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ProviderBuildError) as info:
        _registry().build(["alpha", "gamma"], ProviderSettings())
    assert str(info.value) == "unknown provider 'gamma' (known: none, alpha, beta)"
    assert isinstance(info.value, ValueError)


def test_build_missing_requirement_suggests_the_install() -> None:
    registry = ProviderRegistry()
    registry.register("ext", lambda s: _Named("ext", s), requires=("no_such_module_fm",), extra="ext")
    registry.register("third", lambda s: _Named("third", s), requires=("no_such_module_fm",), install="fm-x")
    with pytest.raises(ProviderBuildError, match=r"^provider 'ext' needs no_such_module_fm: ") as info:
        registry.build(["ext"], ProviderSettings())
    assert str(info.value).endswith("pip install 'pytest-fairmind[ext]'")
    with pytest.raises(ProviderBuildError) as info:
        registry.build(["third"], ProviderSettings())
    assert str(info.value) == "provider 'third' needs no_such_module_fm: pip install 'fm-x'"


def test_build_factory_error_is_named_and_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FM_UNIT_TOKEN", "s3cr3t-value")

    def factory(settings: ProviderSettings) -> Provider:
        raise RuntimeError("cannot reach https://me:pw1234@host with s3cr3t-value")

    registry = ProviderRegistry()
    registry.register("broken", factory)
    with pytest.raises(ProviderBuildError) as info:
        registry.build(["broken"], ProviderSettings())
    assert str(info.value) == "provider 'broken': cannot reach https://***@host with ***"
    assert info.value.__cause__ is None


def test_builtin_providers_are_registered_without_importing_them() -> None:
    registry = ProviderRegistry()
    register_builtin_providers(registry)
    assert registry.names() == ["mlflow", "wandb"]
    spec = registry.get("mlflow")
    assert spec is not None and spec.requires == ("mlflow",) and spec.extra == "mlflow"


def test_register_refuses_reserved_names_and_replaces_earlier_ones() -> None:
    registry = _registry()
    for bad in ("", "none", "a,b"):
        with pytest.raises(ValueError, match="invalid provider name"):
            registry.register(bad, lambda s: _Named("x", s))
    registry.register("alpha", lambda s: _Named("alpha2", s), description="accepted, not stored")
    assert [p.name for p in registry.build(["alpha"], ProviderSettings())] == ["alpha2"]
    assert "alpha" in registry and "gamma" not in registry


# -- safe_target ------------------------------------------------------------------------------------


def test_safe_target_is_the_target_redacted() -> None:
    class Secretive(_Named):
        def target(self) -> str:
            return "https://user:pass1234@mlflow.example/"

    assert safe_target(_Named("a", ProviderSettings())) == "a-target"
    assert safe_target(Secretive("s", ProviderSettings())) == "https://***@mlflow.example/"


def test_safe_target_never_raises() -> None:
    text = safe_target(_NoTarget("n", ProviderSettings()))
    assert text == "target unknown: RuntimeError: https://***@example.org is down"
