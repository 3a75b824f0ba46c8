"""The ``fairmind`` command: replay, check, report and status, outside a pytest session (see docs/cli.md).

Exit codes: 0 success, 1 a gate or a provider failed, 2 bad usage or an unreadable file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_fairmind import __version__, gating, history, report
from pytest_fairmind.dispatch import log_session
from pytest_fairmind.gating.baseline import recorded_baseline
from pytest_fairmind.gating.directions import CHECK_HINT, Directions, recorded_directions
from pytest_fairmind.gating.evidence import EVIDENCE_MODES, INCONCLUSIVE_ACTIONS, MULTIPLE_TESTING
from pytest_fairmind.gating.pipeline import strict_line
from pytest_fairmind.locks import LockTimeout, lock_entry
from pytest_fairmind.providers.base import ProviderBuildError, ProviderRegistry, ProviderSettings, project_for
from pytest_fairmind.redact import redact_text
from pytest_fairmind.replay import ReplayOptions, ReplayTarget, environ_set, replay_target
from pytest_fairmind.result import ProviderOutcome, SessionResult
from pytest_fairmind.settings import (
    WANDB_MODES,
    SettingsError,
    normalize_wandb_mode,
    pick,
    plots_setting,
    split_list,
)
from pytest_fairmind.summary import provider_lines, verdict_lines
from pytest_fairmind.timeouts import clamp_timeout

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: How ``fairmind check`` names strict mode in what it prints.
CHECK_STRICT = "--strict"
#: How much longer than its own budget a replay waits for another replay of the same entry.
_LOCK_MARGIN_S = 60.0
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


def _notice(line: str) -> None:
    """A line about the command's own work (a skipped file...), on stderr."""
    print(f"fairmind: {redact_text(line)}", file=sys.stderr)


def _known_project(ini: Mapping[str, str]) -> str | None:
    """The project when the configuration names one (ini ``fairmind_project``, ``FAIRMIND_PROJECT``)."""
    project = pick(None, ini.get("project"), os.environ, ["FAIRMIND_PROJECT"])
    return str(project).strip() or None if project else None


def _last(folder: Path, project: str | None) -> Path:
    """``last``: the newest readable session (of ``project`` when known); unreadable ones are
    passed over with a notice."""
    passed_over: list[Path] = []

    def skipped(path: Path, why: str) -> None:
        passed_over.append(path)
        _notice(f"skipped {path}: cannot read the session ({why})")

    found = history.newest(folder, project=project, on_skip=skipped)
    if found is None:
        of = f" of project {project!r}" if project else ""
        unreadable = f" ({len(passed_over)} unreadable file(s) skipped)" if passed_over else ""
        raise UsageFailure(f"no session{of} in the history folder {folder}{unreadable}")
    return found[0]


def _session_paths(paths: Sequence[str], folder: Path, project: str | None) -> list[Path]:
    """The files named by ``paths``; a folder gives its entries. A path that does not exist is
    bad usage (before anything is done)."""
    found: list[Path] = []
    for raw in paths:
        if raw == "last":
            found.append(_last(folder, project))
            continue
        path = Path(raw)
        if path.is_dir():
            entries = history.entries(path) or sorted(
                p for p in path.glob("*.json") if not p.name.startswith(".")
            )
            if not entries:
                raise UsageFailure(f"{path}: no saved sessions in this folder")
            found.extend(entries)
        elif path.is_file():
            found.append(path)
        else:
            raise UsageFailure(f"{path}: no such file")
    return found


def _read(path: Path) -> SessionResult:
    """The session in ``path``; :class:`UsageFailure` (one line) when it cannot be read."""
    try:
        return report.load(str(path))
    except (OSError, report.ReportError) as exc:
        raise UsageFailure(f"{path}: cannot read the session ({exc})") from None


def _is_history_entry(path: Path) -> bool:
    return path.parent.name == history.SESSIONS


def cmd_replay(args: argparse.Namespace) -> int:
    reg = registry()
    ini = pytest_ini_values()
    forced = [n for n in split_list(args.provider) if n.lower() != "none"]
    unknown = [n for n in forced if n not in reg]
    if unknown:
        raise UsageFailure(f"unknown provider {unknown[0]!r} (known: {', '.join(['none', *reg.names()])})")
    try:
        plots_setting(ini, os.environ)  # a bad value is a usage error before anything is replayed
    except SettingsError as exc:
        raise UsageFailure(str(exc)) from None
    options = ReplayOptions(
        project=args.project,
        mlflow_uri=args.mlflow_uri,
        wandb_mode=args.wandb_mode,
        timeout=args.timeout,
        workdir=os.getcwd(),
    )
    worst, skipped = EXIT_OK, 0
    for path in _session_paths(args.paths, _history_folder(args), _known_project(ini)):
        try:
            # Replays of one entry exclude each other: the second reads what the first logged.
            with lock_entry(str(path), timeout=options.timeout + _LOCK_MARGIN_S):
                code = _replay_one(path, reg, forced, options, ini, forced_given=bool(args.provider))
        except UsageFailure as exc:  # this file cannot be read: the others are still replayed
            _notice(f"skipped {exc}")
            skipped += 1
            continue
        except LockTimeout as exc:
            _print(f"{path}: not replayed: {exc}")
            code = EXIT_FAILED
        worst = max(worst, code)
    if skipped:
        _notice(f"{skipped} file(s) skipped: they could not be read")
        return EXIT_USAGE
    return worst


def _replay_one(
    path: Path,
    reg: ProviderRegistry,
    forced: list[str],
    options: ReplayOptions,
    ini: Mapping[str, str],
    *,
    forced_given: bool,
) -> int:
    """Replay the session in ``path`` (read again under its lock); its exit code."""
    session = _read(path)
    worst = EXIT_OK
    names = list(forced)
    if not forced_given:  # the providers that failed in the session
        names = [n for n, o in session.providers.items() if not o.ok]
        for name in [n for n in names if n not in reg]:  # e.g. registered by a conftest
            _print(
                f"{path}: provider {name!r} failed in this session but is not installed as a "
                f"package (known: {', '.join(reg.names())}); use --provider to choose others"
            )
            worst = EXIT_FAILED
        names = [n for n in names if n in reg]
    if not names:
        if not session.providers or all(o.ok for o in session.providers.values()):
            _print(f"{path}: no provider failed in this session; nothing to replay (--provider forces one)")
        return worst
    targets = {n: replay_target(n, session, options, ini=ini, environ=os.environ) for n in names}
    outcomes = _log_to_targets(session, reg, targets, options.timeout)
    session.providers.update(outcomes)
    _print(f"{path}: session {session.id} ({len(session.models)} model(s))")
    for name, target in targets.items():
        for note in target.notes:
            _print(f"  {name}: {note}")
    for line in provider_lines(
        SessionResult(id=session.id, project=session.project, started="", providers=outcomes)
    ):
        _print(f"  {line}")
    if _is_history_entry(path):
        history.atomic_write(path, report.dumps(session))
    if not all(o.ok for o in outcomes.values()):
        worst = EXIT_FAILED
    return worst


def _log_to_targets(
    session: SessionResult, reg: ProviderRegistry, targets: Mapping[str, ReplayTarget], timeout: float
) -> dict[str, ProviderOutcome]:
    """Each provider logs ``session`` to its target; providers of one project log together, in
    parallel, all within one ``timeout``."""
    deadline = time.monotonic() + timeout
    outcomes: dict[str, ProviderOutcome] = {}
    by_project: dict[str, list[str]] = {}
    for name, target in targets.items():
        if target.problem is not None:
            outcomes[name] = ProviderOutcome(ok=False, error=target.problem)
        else:
            by_project.setdefault(target.project, []).append(name)
    environ = {k: v for t in targets.values() if t.problem is None for k, v in t.environ.items()}
    with environ_set(environ):
        for project, names in by_project.items():
            providers = []
            for name in names:
                try:
                    providers.extend(reg.build([name], targets[name].settings))
                except ProviderBuildError as exc:
                    outcomes[name] = ProviderOutcome(ok=False, error=str(exc))
            left = max(0.001, deadline - time.monotonic())
            outcomes.update(log_session(providers, session, timeout=left, explicit_project=project))
    return {n: outcomes[n] for n in targets}


def _wandb_mode_env() -> str | None:
    return normalize_wandb_mode(os.environ.get("WANDB_MODE", ""))


def cmd_check(args: argparse.Namespace) -> int:
    folder = _history_folder(args)
    paths = _session_paths([args.path], folder, _known_project(pytest_ini_values()))
    if len(paths) != 1:
        raise UsageFailure(f"{args.path}: {len(paths)} sessions; check takes one (a file or 'last')")
    path = paths[0]
    session = _read(path)
    exprs = _check_gates(args, session)
    try:
        gates = [gating.parse_gate(e) for e in exprs]
    except gating.GateSyntaxError as exc:
        where = "" if args.gate else f"{path}: cannot read the session (one of its gates: "
        raise UsageFailure(f"{where}{exc})" if where else str(exc)) from None
    if args.baseline:
        try:
            gating.check_source(args.baseline)
        except gating.BaselineError as exc:
            raise UsageFailure(f"--baseline: {exc}") from None
    # Directions: the flags, then those the session's own regression rules used.
    flags = Directions.of_globs(split_list(args.lower_is_better), split_list(args.higher_is_better))
    directions = Directions.layered(*flags.layers, recorded_directions(session))
    baseline: gating.BaselineRequest | gating.Baseline | None = None
    if not args.baseline:  # the session's own rules against the baselines it was compared with
        baseline = recorded_baseline(
            session.models,
            directions=directions,
            strict=args.strict,
            hint=CHECK_HINT,
            strict_flag=CHECK_STRICT,
        )
    if baseline is None:
        baseline = gating.BaselineRequest(
            args.baseline,
            project=session.project,
            history_folder=folder,
            exclude_session=session.id,
            before=session.started,
            mlflow_uri=args.mlflow_uri,
            timeout=args.timeout,
            directions=directions,
            hint=CHECK_HINT,
            no_source_reason="no --baseline given",
            strict_flag=CHECK_STRICT,
        )
    for model in session.models.values():
        model.gates = []
    gated = gating.run(gates, session.models, baseline=baseline, strict=args.strict, **_policy(args, session))
    session.gates_not_evaluated, session.notices = gated.not_evaluated, gated.notices
    _print(f"fairmind check: {path} (session {session.id}, project {session.project}, {len(gates)} gate(s))")
    for line in verdict_lines(session):
        _print(line)
    if gated.strict_reasons:
        _print(strict_line(gated.strict_reasons))
    if not exprs:
        _print("no gates: nothing to check")
    return gated.exitstatus


def _choice(given: str | None, recorded: object, choices: Sequence[str], default: str) -> str:
    if given is not None:
        return given
    return recorded if isinstance(recorded, str) and recorded in choices else default


def _policy(args: argparse.Namespace, session: SessionResult) -> dict[str, Any]:
    """The evidence policy of ``gating.run``: the flags, then the settings the session ran with
    (the report's ``settings``), then the defaults; a recorded value that is not valid is passed over."""
    recorded = session.settings
    level = recorded.get("ci")
    if args.ci is not None:
        level = args.ci
    elif not (isinstance(level, (int, float)) and not isinstance(level, bool) and 0 < level < 1):
        level = 0.95
    return {
        "evidence": _choice(args.evidence, recorded.get("evidence"), EVIDENCE_MODES, "point"),
        "inconclusive": _choice(
            args.inconclusive, recorded.get("inconclusive"), INCONCLUSIVE_ACTIONS, "warn"
        ),
        "multiple_testing": _choice(
            args.multiple_testing, recorded.get("multiple_testing"), MULTIPLE_TESTING, "holm"
        ),
        "level": float(level),
    }


def _level(text: str) -> float:
    """``--ci``: a confidence level strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a level strictly between 0 and 1, got {text!r}")
    return value


def cmd_report(args: argparse.Namespace) -> int:
    """``fairmind report PATH|last --html OUT``: the self-contained HTML page (docs/reports.md)."""
    from pytest_fairmind.html.command import report_command

    return report_command(args.path, args.html, args.history, os.getcwd())


def _check_gates(args: argparse.Namespace, session: SessionResult) -> list[str]:
    """The gates to check: ``--gate``, else the session's own (evaluated or not)."""
    exprs: list[str] = list(args.gate or [])
    if not exprs:
        for model in session.models.values():
            exprs.extend(g.expr for g in model.gates if g.expr not in exprs)
        exprs.extend(e for e in session.gates_not_evaluated if e not in exprs)
    return exprs


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
    project = pick(args.project, ini.get("project"), os.environ, ["FAIRMIND_PROJECT"])
    settings = ProviderSettings(
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
            provider = spec.factory(replace(settings, project=project_for(name, project)))
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


def _evidence_options(check: argparse.ArgumentParser) -> None:
    """``fairmind check``'s evidence policy (docs/evidence.md); each defaults to the session's."""
    check.add_argument(
        "--evidence",
        choices=EVIDENCE_MODES,
        help="gate point values or bootstrap evidence (default: the session's, else point)",
    )
    check.add_argument(
        "--inconclusive",
        choices=INCONCLUSIVE_ACTIONS,
        help="what an inconclusive gate does (default: the session's, else warn)",
    )
    check.add_argument(
        "--multiple-testing",
        choices=MULTIPLE_TESTING,
        help="adjustment across interval gates (default: the session's, else holm)",
    )
    check.add_argument(
        "--ci",
        type=_level,
        metavar="LEVEL",
        help="family level of interval gates (default: the session's, else 0.95)",
    )


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
    _evidence_options(check)
    common(check, timeout=30.0)
    check.set_defaults(func=cmd_check)

    html = sub.add_parser("report", help="write a saved session as one self-contained HTML file")
    html.add_argument("path", metavar="PATH", help="a report file, a history entry or 'last'")
    html.add_argument("--html", required=True, metavar="OUT", help="the HTML file to write")
    html.add_argument("--history", help="history folder, for the trends (default .fairmind)")
    html.set_defaults(func=cmd_report)

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
    try:  # inf and 1e10 mean "no practical limit"; what waits accept is the most it can be
        if getattr(args, "timeout", None) is not None:  # ``report`` has no providers to wait for
            args.timeout = clamp_timeout(args.timeout)
    except ValueError:
        print(
            f"fairmind: error: --timeout must be > 0 seconds (inf: no limit), got {args.timeout!r}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        code: int = args.func(args)
    except (UsageFailure, SettingsError) as exc:
        print(f"fairmind: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
