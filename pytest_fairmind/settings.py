"""Option resolution: command line, then ini, then environment, then default (SPEC section 2).

Pure (no pytest import): the plugin and the ``fairmind`` command hand in what they read, and get
back validated :class:`Settings` or a :class:`SettingsError` naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_fairmind.gates import GateSyntaxError, parse_gate

T = TypeVar("T")

WANDB_MODES = ("online", "offline", "disabled")
GATE_ACTIONS = ("fail", "warn")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
# W&B's own WANDB_MODE spellings that mean one of ours.
_WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}


class SettingsError(ValueError):
    """A bad option value; the message names the option."""


@dataclass(frozen=True)
class Settings:
    """Everything the plugin was configured with, validated."""

    providers: tuple[str, ...] = ()
    project: str | None = None  # explicit project; None: each provider's own env, then "fairmind"
    mlflow_uri: str | None = None
    wandb_mode: str | None = None
    gates: tuple[str, ...] = ()
    gate_action: str = "fail"
    baseline: str | None = None
    json_path: str | None = None
    timeout: float = 30.0
    strict: bool = False
    model: str | None = None
    history: str = ".fairmind"
    history_keep: int = 100
    plots: bool = True
    lower_is_better: tuple[str, ...] = ()  # metric globs, for regression rules
    higher_is_better: tuple[str, ...] = ()


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def pick(cli: Any, ini: Any, env: Mapping[str, str], env_names: Sequence[str]) -> Any:
    """The first value that is set: command line, ini, then the environment variables in order."""
    for value in (cli, ini):
        if _present(value):
            return value
    for name in env_names:
        if env.get(name, "") != "":
            return env[name]
    return None


def _parse_bool(value: Any, option: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingsError(f"{option}: expected true or false, got {value!r}")


def _choice(value: Any, option: str, choices: Sequence[str]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise SettingsError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")
    return text


def split_list(values: Any) -> list[str]:
    """``"a,b"``, ``["a", "b,c"]`` or ini lines -> ``["a", "b", "c"]`` (blanks dropped)."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    out: list[str] = []
    for item in items:
        for part in str(item).replace("\n", ",").split(","):
            part = part.strip()
            if part and part not in out:
                out.append(part)
    return out


def _gate_lines(values: Any) -> list[str]:
    if values is None:
        return []
    items = values.splitlines() if isinstance(values, str) else list(values)
    return [line.strip() for line in items if line.strip() and not line.strip().startswith("#")]


def _number(value: Any, option: str, kind: Callable[[str], T], minimum: float) -> T:
    try:
        number = kind(str(value).strip())
    except ValueError:
        raise SettingsError(f"{option}: expected a number, got {value!r}") from None
    if not math.isfinite(float(number)) or float(number) < minimum:  # type: ignore[arg-type]
        raise SettingsError(f"{option}: expected a number >= {minimum:g}, got {value!r}")
    return number


def resolve(cli: Mapping[str, Any], ini: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Resolve and validate every option. Keys of ``cli``/``ini`` are the names without prefix."""

    def get(name: str, *env_names: str) -> Any:
        return pick(cli.get(name), ini.get(name), env, env_names)

    def origin(name: str, *env_names: str) -> str:
        """Where a bad value came from, for the error (the option is named either way)."""
        if _present(cli.get(name)):
            return ""
        if _present(ini.get(name)):
            return f" (from ini fairmind_{name})"
        found = [e for e in env_names if env.get(e, "") != ""]
        return f" (from environment variable {found[0]})" if found else ""

    def checked(convert: Callable[[], T], name: str, *env_names: str) -> T:
        try:
            return convert()
        except SettingsError as exc:
            raise SettingsError(f"{exc}{origin(name, *env_names)}") from None

    providers = split_list(get("provider", "FAIRMIND_PROVIDER"))
    providers = [p for p in providers if p.lower() != "none"]

    project = get("project", "FAIRMIND_PROJECT")
    if project is not None:
        project = str(project).strip()
        if not project:
            raise SettingsError(
                "--fairmind-project: the project name must not be empty"
                + origin("project", "FAIRMIND_PROJECT")
            )

    wandb_mode = get("wandb_mode", "WANDB_MODE")
    if wandb_mode is not None:
        text = str(wandb_mode).strip().lower()
        wandb_mode = checked(
            lambda: _choice(_WANDB_MODE_ALIASES.get(text, text), "--fairmind-wandb-mode", WANDB_MODES),
            "wandb_mode",
            "WANDB_MODE",
        )

    # Command-line gates apply in addition to the ini's (SPEC section 2).
    ini_gates = _gate_lines(ini.get("gates"))
    gates = [*ini_gates, *(cli.get("gate") or [])]
    from_env = not gates
    if from_env:
        gates = _gate_lines(env.get("FAIRMIND_GATES"))
    for expr in gates:
        try:
            parse_gate(expr)
        except GateSyntaxError as exc:
            where = (
                " (from environment variable FAIRMIND_GATES)"
                if from_env
                else " (from ini fairmind_gates)"
                if expr in ini_gates
                else ""
            )
            raise SettingsError(f"--fairmind-gate: {exc}{where}") from None

    gate_action = get("gate_action", "FAIRMIND_GATE_ACTION")
    timeout = get("timeout", "FAIRMIND_TIMEOUT")
    strict = get("strict", "FAIRMIND_STRICT")
    keep = ini.get("history_keep")
    plots = ini.get("plots")
    model = ini.get("model")
    return Settings(
        providers=tuple(providers),
        project=project,
        mlflow_uri=get("mlflow_uri", "MLFLOW_TRACKING_URI") or None,
        wandb_mode=wandb_mode,
        gates=tuple(gates),
        gate_action=checked(
            lambda: _choice(gate_action, "--fairmind-gate-action", GATE_ACTIONS),
            "gate_action",
            "FAIRMIND_GATE_ACTION",
        )
        if gate_action
        else "fail",
        baseline=get("baseline", "FAIRMIND_BASELINE") or None,
        json_path=get("json", "FAIRMIND_JSON") or None,
        timeout=checked(
            lambda: _number(timeout, "--fairmind-timeout", float, 0.001), "timeout", "FAIRMIND_TIMEOUT"
        )
        if timeout is not None
        else 30.0,
        strict=checked(lambda: _parse_bool(strict, "--fairmind-strict"), "strict", "FAIRMIND_STRICT")
        if strict is not None
        else False,
        model=str(model).strip() or None if _present(model) else None,
        history=str(ini.get("history") or ".fairmind"),
        history_keep=_number(keep, "fairmind_history_keep", int, 0) if _present(keep) else 100,
        plots=_parse_bool(plots, "fairmind_plots") if _present(plots) else True,
        lower_is_better=tuple(_gate_lines(ini.get("lower_is_better"))),
        higher_is_better=tuple(_gate_lines(ini.get("higher_is_better"))),
    )
