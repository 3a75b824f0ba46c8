"""Logging a session to its providers: in parallel, isolated, under one shared time budget.

Pure (no pytest import). Each provider runs in a thread of its own, so one provider's failure or
stall never stops another; past the deadline a provider is abandoned and reported as failed. The
built-in providers also run their work in a child process (``isolation``) that is killed at the
deadline, so nothing of theirs outlives the session.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
import time
from collections.abc import Mapping, Sequence

from pytest_fairmind.providers.base import Provider
from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import ProviderOutcome, RunRef, SessionResult

#: Each provider's own project variable, used when no project was given to pytest-fairmind.
PROVIDER_PROJECT_ENV = {"mlflow": "MLFLOW_EXPERIMENT_NAME", "wandb": "WANDB_PROJECT"}

PENDING_ERROR = "not logged: the session ended before this provider finished"
INTERRUPTED_ERROR = "interrupted (Ctrl-C) while logging; abandoned"


def provider_project(name: str, explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """The project a provider logs to: the explicit one, else the provider's own env, else ``fairmind``."""
    if explicit:
        return explicit
    env = os.environ if env is None else env
    own = PROVIDER_PROJECT_ENV.get(name)
    return (env.get(own) if own else None) or "fairmind"


def pending_outcomes(providers: Sequence[Provider]) -> dict[str, ProviderOutcome]:
    """What the history says before logging: every provider failed until it says otherwise."""
    return {p.name: ProviderOutcome(ok=False, error=PENDING_ERROR, target=_target(p)) for p in providers}


def _target(provider: Provider) -> str | None:
    try:
        return redact_text(provider.target())
    except Exception:
        return None


def log_session(
    providers: Sequence[Provider],
    session: SessionResult,
    *,
    timeout: float,
    explicit_project: str | None = None,
) -> dict[str, ProviderOutcome]:
    """Log ``session`` to every provider within ``timeout`` seconds in total; never raises."""
    deadline = time.monotonic() + timeout
    outcomes: dict[str, ProviderOutcome] = {}

    def run(provider: Provider) -> None:
        try:
            project = provider_project(provider.name, explicit_project)
            # A copy each: a provider that changes what it was given changes nothing for the
            # report, the history or the other providers.
            own = copy.deepcopy(session)
            own.project = project
            outcome = provider.log(own, timeout=max(0.0, deadline - time.monotonic()))
        except BaseException as exc:  # a provider that breaks its contract still cannot break pytest
            # (SystemExit included: raised in a thread it would end the thread silently and the
            # provider would be reported as timed out).
            outcome = ProviderOutcome(ok=False, error=_describe(exc))
        outcome = _checked(outcome)
        outcome.target = outcome.target or _target(provider)
        outcomes[provider.name] = outcome

    threads = [
        threading.Thread(target=run, args=(p,), name=f"fairmind-{p.name}", daemon=True) for p in providers
    ]
    for thread in threads:
        thread.start()
    unfinished = f"timed out after {timeout:g} s (--fairmind-timeout); abandoned"
    try:
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + 0.5)  # isolation kills at the deadline
    except KeyboardInterrupt:
        # Ctrl-C (or a CI cancel) while logging: abandon the providers still running, so the
        # session ends now with its history entry saying what to replay.
        unfinished = INTERRUPTED_ERROR
        for provider in providers:
            if provider.name not in outcomes:
                _cancel(provider)
    final = dict(outcomes)  # a thread finishing from now on changes nothing
    for provider in providers:
        if provider.name not in final:
            final[provider.name] = ProviderOutcome(ok=False, error=unfinished, target=_target(provider))
    return {p.name: final[p.name] for p in providers}


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _text(value: object) -> str | None:
    return None if value is None else redact_text(value if isinstance(value, str) else str(value))


def _checked(outcome: object) -> ProviderOutcome:
    """The outcome as the report can store it: plain types, secrets redacted; a malformed one
    (not a ProviderOutcome, runs that are not RunRefs...) becomes a failure saying so."""
    if not isinstance(outcome, ProviderOutcome):
        return ProviderOutcome(ok=False, error=f"provider returned {type(outcome).__name__}")
    try:
        runs: dict[str, RunRef] = {}
        for model, ref in dict(outcome.runs or {}).items():
            if not isinstance(ref, RunRef):
                raise TypeError(f"run of {model!r} is a {type(ref).__name__}, not a RunRef")
            runs[str(model)] = RunRef(
                id=str(ref.id), url=_text(ref.url), path=_text(ref.path), skipped=bool(ref.skipped)
            )
        ok = bool(outcome.ok)
        return ProviderOutcome(
            ok=ok,
            error=_text(outcome.error) or (None if ok else "failed (the provider gave no reason)"),
            runs=runs,
            target=_text(outcome.target),
            note=_text(outcome.note),
        )
    except Exception as exc:
        return ProviderOutcome(ok=False, error=f"provider returned a malformed outcome: {_describe(exc)}")


def _cancel(provider: Provider) -> None:
    cancel = getattr(provider, "cancel", None)
    if cancel is not None:
        with contextlib.suppress(Exception):
            cancel()
