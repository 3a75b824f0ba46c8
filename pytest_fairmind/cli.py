"""The ``fairmind`` command: replay, check and status, outside a pytest session (SPEC section 8).

Exit codes: 0 success, 1 a gate or a provider failed, 2 bad usage or an unreadable file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pytest_fairmind import __version__, history, report
from pytest_fairmind.baseline import (
    CHECK_HINT,
    BaselineError,
    Directions,
    check_source,
    load_baseline,
    recorded_directions,
    unused_notice,
)
from pytest_fairmind.dispatch import log_session
from pytest_fairmind.gates import GateSyntaxError, evaluate, failed_gates, parse_gate
from pytest_fairmind.providers.base import Provider, ProviderRegistry, ProviderSettings
from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import SessionResult
from pytest_fairmind.settings import WANDB_MODES, SettingsError, split_list
from pytest_fairmind.summary import provider_lines, verdict_lines

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENTRY_POINT_GROUP = "pytest_fairmind.providers"


class UsageFailure(Exception):
    """Bad usage or an unreadable file: exit code 2."""


def _print(line: str = "") -> None:
    print(redact_text(line))


def registry() -> ProviderRegistry:
    """Built-in providers plus those of installed packages (entry point group
    ``pytest_fairmind.providers``: a callable taking the registry)."""
    from importlib.metadata import entry_points

    from pytest_fairmind.providers import register_builtin_providers

    reg = ProviderRegistry()
    register_builtin_providers(reg)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()(reg)
        except Exception as exc:
            print(f"fairmind: provider plugin {ep.name!r} failed to load: {exc}", file=sys.stderr)
    return reg


def _build(names: Sequence[str], settings: ProviderSettings, reg: ProviderRegistry) -> list[Provider]:
    built: list[Provider] = []
    for name in names:
        spec = reg.get(name)
        if spec is None:
            raise UsageFailure(f"unknown provider {name!r} (known: {', '.join(reg.names())})")
        missing = spec.missing_requirements()
        if missing:
            raise UsageFailure(f"provider {name!r} needs {', '.join(missing)}: {spec.install_hint()}")
        built.append(spec.factory(settings))
    return built


def pytest_ini_values(start: Path | None = None) -> dict[str, str]:
    """The ``fairmind_*`` values of the pytest configuration file that pytest would use from ``start``.

    Looks in ``pytest.ini``, ``pyproject.toml`` (``[tool.pytest.ini_options]``), ``tox.ini``
    (``[pytest]``) and ``setup.cfg`` (``[tool:pytest]``) of ``start`` and its parents, first match wins.
    """
    import iniconfig

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - pytest depends on tomli there
        import tomli as tomllib

    folder = (start or Path.cwd()).resolve()
    for directory in (folder, *folder.parents):
        for name, section in (("pytest.ini", "pytest"), ("pyproject.toml", None), ("tox.ini", "pytest"),
                              ("setup.cfg", "tool:pytest")):  # fmt: skip
            path = directory / name
            if not path.is_file():
                continue
            try:
                if section is None:
                    with open(path, "rb") as fh:
                        table = tomllib.load(fh).get("tool", {}).get("pytest", {}).get("ini_options")
                    if table is None:
                        continue
                    values = {k: "\n".join(v) if isinstance(v, list) else str(v) for k, v in table.items()}
                else:
                    parsed = iniconfig.IniConfig(str(path))
                    if section not in parsed:
                        if name == "pytest.ini":
                            return {}
                        continue
                    values = dict(parsed[section].items())
            except Exception:
                continue
            return {k[len("fairmind_") :]: v for k, v in values.items() if k.startswith("fairmind_")}
    return {}


def _history_folder(args: argparse.Namespace) -> Path:
    return Path(
        args.history
        or os.environ.get("FAIRMIND_HISTORY")
        or pytest_ini_values().get("history")
        or ".fairmind"
    )


def _session_paths(paths: Sequence[str], folder: Path) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        if raw == "last":
            entry = history.last(folder)
            if entry is None:
                raise UsageFailure(f"no session in the history folder {folder}")
            found.append(entry)
            continue
        path = Path(raw)
        if path.is_dir():
            entries = history.entries(path) or sorted(path.glob("*.json"))
            if not entries:
                raise UsageFailure(f"{path}: no saved sessions in this folder")
            found.extend(entries)
        elif path.is_file():
            found.append(path)
        else:
            raise UsageFailure(f"{path}: no such file")
    return found


def _load(path: Path) -> SessionResult:
    try:
        return report.load(str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageFailure(f"{path}: cannot read the session ({exc})") from None


def _is_history_entry(path: Path) -> bool:
    return path.parent.name == history.SESSIONS


def cmd_replay(args: argparse.Namespace) -> int:
    reg = registry()
    ini = pytest_ini_values()
    worst = EXIT_OK
    for path in _session_paths(args.paths, _history_folder(args)):
        session = _load(path)
        names = [n for n in split_list(args.provider) if n.lower() != "none"]
        if not args.provider:  # the providers that failed in the session
            names = [n for n, o in session.providers.items() if not o.ok]
            unknown = [n for n in names if n not in reg]
            for name in unknown:  # e.g. registered by a conftest: exists only inside pytest
                _print(
                    f"{path}: provider {name!r} failed in this session but is not installed as a "
                    f"package (known: {', '.join(reg.names())}); use --provider to choose others"
                )
                worst = EXIT_FAILED
            names = [n for n in names if n in reg]
        if not names:
            if not session.providers or all(o.ok for o in session.providers.values()):
                _print(
                    f"{path}: no provider failed in this session; nothing to replay (--provider forces one)"
                )
            continue
        project = args.project or session.project
        settings = ProviderSettings(
            project=project,
            mlflow_uri=args.mlflow_uri or ini.get("mlflow_uri") or None,
            wandb_mode=args.wandb_mode or ini.get("wandb_mode") or _wandb_mode_env(),
            timeout=args.timeout,
            workdir=os.getcwd(),
        )
        providers = _build(names, settings, reg)
        outcomes = log_session(providers, session, timeout=args.timeout, explicit_project=project)
        session.providers.update(outcomes)
        _print(f"{path}: session {session.id} ({len(session.models)} model(s))")
        for line in provider_lines(
            SessionResult(id=session.id, project=project, started="", providers=outcomes)
        ):
            _print(f"  {line}")
        if _is_history_entry(path):
            history.atomic_write(path, report.dumps(session))
        if not all(o.ok for o in outcomes.values()):
            worst = EXIT_FAILED
    return worst


def _wandb_mode_env() -> str | None:
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    mode = {"dryrun": "offline", "run": "online"}.get(mode, mode)
    return mode if mode in WANDB_MODES else None


def cmd_check(args: argparse.Namespace) -> int:
    folder = _history_folder(args)
    paths = _session_paths([args.path], folder)
    if len(paths) != 1:
        raise UsageFailure(f"{args.path}: {len(paths)} sessions; check takes one (a file or 'last')")
    path = paths[0]
    session = _load(path)
    exprs: list[str] = list(args.gate or [])
    if not exprs:  # the session's own gates
        for model in session.models.values():
            exprs.extend(g.expr for g in model.gates if g.expr not in exprs)
        exprs.extend(e for e in session.gates_not_evaluated if e not in exprs)
    try:
        gates = [parse_gate(e) for e in exprs]
    except GateSyntaxError as exc:
        raise UsageFailure(str(exc)) from None
    baseline = None
    if any(g.tolerance is not None for g in gates):
        if args.baseline:
            try:
                check_source(args.baseline)
            except BaselineError as exc:
                raise UsageFailure(f"--baseline: {exc}") from None
        # Directions: the flags, then those the session's own regression rules used.
        flags = Directions.of_globs(split_list(args.lower_is_better), split_list(args.higher_is_better))
        baseline = load_baseline(
            args.baseline,
            project=session.project,
            history_folder=folder,
            exclude_session=session.id,
            before=session.started,
            mlflow_uri=args.mlflow_uri,
            timeout=args.timeout,
            directions=Directions.layered(*flags.layers, recorded_directions(session)),
            strict=args.strict,
            hint=CHECK_HINT,
            no_source_reason="no --baseline given",
        )
    for model in session.models.values():
        model.gates = []
    session.gates_not_evaluated = evaluate(gates, session.models, baseline=baseline)
    session.notices = baseline.notices() if baseline is not None else []
    if args.baseline and baseline is None:
        session.notices.append(unused_notice(args.baseline))
    _print(f"fairmind check: {path} (session {session.id}, project {session.project}, {len(gates)} gate(s))")
    for line in verdict_lines(session):
        _print(line)
    failed = bool(failed_gates(session.models))
    strict_failure = args.strict and (
        bool(session.gates_not_evaluated) or (baseline is not None and baseline.problems)
    )
    if not exprs:
        _print("no gates: nothing to check")
    return EXIT_FAILED if failed or strict_failure else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    reg = registry()
    ini = pytest_ini_values()
    configured = [
        n
        for n in split_list(args.provider or ini.get("provider") or os.environ.get("FAIRMIND_PROVIDER"))
        if n != "none"
    ]
    unknown = [n for n in configured if n not in reg]
    if unknown:
        raise UsageFailure(f"unknown provider {unknown[0]!r} (known: {', '.join(reg.names())})")
    settings = ProviderSettings(
        project=args.project or ini.get("project") or os.environ.get("FAIRMIND_PROJECT") or "fairmind",
        mlflow_uri=args.mlflow_uri or ini.get("mlflow_uri") or None,
        wandb_mode=args.wandb_mode or ini.get("wandb_mode") or _wandb_mode_env(),
        timeout=args.timeout,
    )
    worst = EXIT_OK
    _print(f"pytest-fairmind {__version__}; configured providers: {', '.join(configured) or 'none'}")
    for name in reg.names():
        spec = reg.get(name)
        assert spec is not None
        is_configured = name in configured
        label = "configured" if is_configured else "not configured"
        missing = spec.missing_requirements()
        if missing:
            _print(f"{name}: not installed ({spec.install_hint()}); {label}")
            worst = EXIT_FAILED if is_configured else worst
            continue
        checked = True
        try:
            provider = spec.factory(settings)
            target = provider.target()
            check = getattr(provider, "check", None)
            checked = check is not None and getattr(provider, "can_check", True)
            problem = check(args.timeout) if check is not None and checked else None
        except Exception as exc:
            target, problem = "?", f"{type(exc).__name__}: {exc}"
        if not checked:
            state = "reachability not checked (the provider has no check)"
        else:
            state = "reachable" if problem is None else f"NOT reachable: {problem}"
        _print(f"{name}: installed, {label}, {state}; writes to {target}")
        if problem is not None and is_configured:
            worst = EXIT_FAILED
    return worst


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fairmind", description="pytest-fairmind outside a pytest session.")
    parser.add_argument("--version", action="version", version=f"pytest-fairmind {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, *, timeout: float) -> None:
        p.add_argument(
            "--mlflow-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, then sqlite mlflow.db)"
        )
        p.add_argument(
            "--timeout", type=float, default=timeout, help=f"seconds for all providers (default {timeout:g})"
        )
        p.add_argument("--history", help="history folder (default .fairmind)")

    replay = sub.add_parser("replay", help="log saved sessions to providers (idempotent)")
    replay.add_argument(
        "paths", nargs="+", metavar="PATH", help="report files, history entries, folders or 'last'"
    )
    replay.add_argument(
        "--provider", action="append", help="providers (default: those that failed in the session)"
    )
    replay.add_argument("--project", help="MLflow experiment / W&B project (default: the session's)")
    replay.add_argument("--wandb-mode", choices=WANDB_MODES)
    common(replay, timeout=30.0)
    replay.set_defaults(func=cmd_replay)

    check = sub.add_parser("check", help="evaluate gates on a saved session")
    check.add_argument("path", metavar="PATH", help="a report file, a history entry or 'last'")
    check.add_argument("--gate", action="append", help="gate expression (default: the session's own gates)")
    check.add_argument("--baseline", help="a session JSON file, 'last' or 'mlflow'")
    check.add_argument("--strict", action="store_true", help="unevaluated gates or missing baselines fail")
    check.add_argument(
        "--lower-is-better",
        action="append",
        metavar="GLOB",
        help="metrics where lower is better ([MODEL:]GLOB)",
    )
    check.add_argument(
        "--higher-is-better",
        action="append",
        metavar="GLOB",
        help="metrics where higher is better ([MODEL:]GLOB)",
    )
    common(check, timeout=30.0)
    check.set_defaults(func=cmd_check)

    status = sub.add_parser("status", help="which providers are installed, configured and reachable")
    status.add_argument("--provider", action="append", help="providers to check as configured")
    status.add_argument("--project")
    status.add_argument("--wandb-mode", choices=WANDB_MODES)
    common(status, timeout=5.0)
    status.set_defaults(func=cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help/--version
        return int(exc.code or 0)
    if args.timeout <= 0:
        print("fairmind: error: --timeout must be > 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        code: int = args.func(args)
    except (UsageFailure, SettingsError) as exc:
        print(f"fairmind: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
