"""Option resolution: command line, then ini, then environment, then default (see docs/configuration.md).

Pure (no pytest import): the plugin and the ``fairmind`` command hand in what they read, and get
back validated :class:`Settings` or a :class:`SettingsError` naming the option.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_fairmind.gating.grammar import GateSyntaxError, parse_gate
from pytest_fairmind.gating.pipeline import GATE_ACTIONS
from pytest_fairmind.timeouts import clamp_timeout

T = TypeVar("T")

WANDB_MODES = ("online", "offline", "disabled")
EVIDENCE_MODES = ("point", "interval")
INCONCLUSIVE_ACTIONS = ("pass", "warn", "fail")
MULTIPLE_TESTING = ("holm", "bonferroni", "none")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
# W&B's own WANDB_MODE spellings that mean one of ours.
_WANDB_MODE_ALIASES = {"dryrun": "offline", "run": "online"}


def normalize_wandb_mode(text: str) -> str | None:
    """A W&B mode as one of :data:`WANDB_MODES` (``dryrun`` -> ``offline``...), or None when unknown."""
    mode = str(text).strip().lower()
    mode = _WANDB_MODE_ALIASES.get(mode, mode)
    return mode if mode in WANDB_MODES else None


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
    evidence: str = "point"  # "point" or "interval" (docs/evidence.md)
    inconclusive: str = "warn"  # what an inconclusive gate does: "pass", "warn" or "fail"
    multiple_testing: str = "holm"  # "holm", "bonferroni" or "none"
    ci: float = 0.95  # the family level of interval gates
    n_boot: int | None = None  # the fixture's default n_boot (None: assess's own default)
    junit_path: str | None = None
    html_path: str | None = None

    def gate_policy(self) -> dict[str, object]:
        """The gate policy the report stores for ``fairmind check`` to reuse."""
        return {
            "evidence": self.evidence,
            "inconclusive": self.inconclusive,
            "multiple_testing": self.multiple_testing,
            "ci": self.ci,
            "gate_action": self.gate_action,
            "strict": self.strict,
        }


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


#: The environment twin of ini ``fairmind_plots`` (charts cost half a second of matplotlib import and
#: about 0.1 s a chart in each provider process: a CI job nobody looks at the charts of skips them).
PLOTS_ENV = "FAIRMIND_PLOTS"


def plots_setting(ini: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """Whether providers draw per-group charts: ini ``fairmind_plots``, then ``FAIRMIND_PLOTS``."""
    return _Sources({}, ini, env).checked(
        lambda v: _parse_bool(v, "fairmind_plots"), True, "plots", PLOTS_ENV
    )


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


class _Sources:
    """The command line, the ini file and the environment, read in that order of precedence."""

    def __init__(self, cli: Mapping[str, Any], ini: Mapping[str, Any], env: Mapping[str, str]) -> None:
        self.cli, self.ini, self.env = cli, ini, env

    def get(self, name: str, *env_names: str) -> Any:
        return pick(self.cli.get(name), self.ini.get(name), self.env, env_names)

    def origin(self, name: str, *env_names: str) -> str:
        """Where a bad value came from, for the error (the option is named either way)."""
        if _present(self.cli.get(name)):
            return ""
        if _present(self.ini.get(name)):
            return f" (from ini fairmind_{name})"
        found = [e for e in env_names if self.env.get(e, "") != ""]
        return f" (from environment variable {found[0]})" if found else ""

    def checked(self, convert: Callable[[Any], T], default: T, name: str, *env_names: str) -> T:
        """``convert`` of the value found (``default`` when none), the error saying where it came from."""
        value = self.get(name, *env_names)
        if not _present(value):
            return default
        try:
            return convert(value)
        except SettingsError as exc:
            raise SettingsError(f"{exc}{self.origin(name, *env_names)}") from None


def resolve(cli: Mapping[str, Any], ini: Mapping[str, Any], env: Mapping[str, str]) -> Settings:
    """Resolve and validate every option. Keys of ``cli``/``ini`` are the names without prefix."""
    found = _Sources(cli, ini, env)
    keep, model = ini.get("history_keep"), ini.get("model")
    return Settings(
        providers=tuple(
            p for p in split_list(found.get("provider", "FAIRMIND_PROVIDER")) if p.lower() != "none"
        ),
        project=found.checked(_project, None, "project", "FAIRMIND_PROJECT"),
        mlflow_uri=found.get("mlflow_uri", "MLFLOW_TRACKING_URI") or None,
        wandb_mode=found.checked(_wandb_mode, None, "wandb_mode", "WANDB_MODE"),
        gates=_gates(cli, ini, env),
        gate_action=found.checked(
            lambda v: _choice(v, "--fairmind-gate-action", GATE_ACTIONS),
            "fail",
            "gate_action",
            "FAIRMIND_GATE_ACTION",
        ),
        baseline=found.get("baseline", "FAIRMIND_BASELINE") or None,
        json_path=found.get("json", "FAIRMIND_JSON") or None,
        timeout=found.checked(_timeout, 30.0, "timeout", "FAIRMIND_TIMEOUT"),
        strict=found.checked(
            lambda v: _parse_bool(v, "--fairmind-strict"), False, "strict", "FAIRMIND_STRICT"
        ),
        model=str(model).strip() or None if _present(model) else None,
        history=str(ini.get("history") or ".fairmind"),
        history_keep=_number(keep, "fairmind_history_keep", int, 0) if _present(keep) else 100,
        plots=plots_setting(ini, env),
        lower_is_better=tuple(_gate_lines(ini.get("lower_is_better"))),
        higher_is_better=tuple(_gate_lines(ini.get("higher_is_better"))),
        **_evidence_settings(found),
        junit_path=found.get("junit", "FAIRMIND_JUNIT") or None,
        html_path=found.get("html", "FAIRMIND_HTML") or None,
    )


def _evidence_settings(found: _Sources) -> dict[str, Any]:
    """The evidence-aware gate policy (docs/evidence.md)."""

    def choice(option: str, choices: Sequence[str]) -> Callable[[Any], str]:
        return lambda v: _choice(v, option, choices)

    return {
        "evidence": found.checked(
            choice("--fairmind-evidence", EVIDENCE_MODES), "point", "evidence", "FAIRMIND_EVIDENCE"
        ),
        "inconclusive": found.checked(
            choice("--fairmind-inconclusive", INCONCLUSIVE_ACTIONS),
            "warn",
            "inconclusive",
            "FAIRMIND_INCONCLUSIVE",
        ),
        "multiple_testing": found.checked(
            choice("fairmind_multiple_testing", MULTIPLE_TESTING),
            "holm",
            "multiple_testing",
            "FAIRMIND_MULTIPLE_TESTING",
        ),
        "ci": found.checked(_level, 0.95, "ci", "FAIRMIND_CI"),
        "n_boot": found.checked(
            lambda v: _number(v, "fairmind_n_boot", int, 0), None, "n_boot", "FAIRMIND_N_BOOT"
        ),
    }


def _level(value: Any) -> float:
    """``fairmind_ci``: a confidence level strictly between 0 and 1."""
    try:
        level = float(str(value).strip())
    except ValueError:
        raise SettingsError(f"fairmind_ci: expected a level between 0 and 1, got {value!r}") from None
    if not 0.0 < level < 1.0:
        raise SettingsError(f"fairmind_ci: expected a level between 0 and 1 (e.g. 0.95), got {value!r}")
    return level


def _timeout(value: Any) -> float:
    """``--fairmind-timeout``: seconds, clamped to what waits accept (``inf`` allowed)."""
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        raise SettingsError(f"--fairmind-timeout: expected a number of seconds, got {value!r}") from None
    try:
        return clamp_timeout(seconds)
    except ValueError as exc:
        raise SettingsError(f"--fairmind-timeout: {exc}") from None


def _project(value: Any) -> str:
    project = str(value).strip()
    if not project:
        raise SettingsError("--fairmind-project: the project name must not be empty")
    return project


def _wandb_mode(value: Any) -> str:
    mode = normalize_wandb_mode(str(value))
    if mode is None:
        return _choice(str(value).strip().lower(), "--fairmind-wandb-mode", WANDB_MODES)  # raises
    return mode


def _gates(cli: Mapping[str, Any], ini: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, ...]:
    """Command-line gates apply in addition to the ini's; ``FAIRMIND_GATES`` when neither gives any."""
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
    return tuple(gates)
