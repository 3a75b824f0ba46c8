"""Logging a session to its providers: in parallel, isolated, under one shared time budget.

Pure (no pytest import). Each provider runs in a thread of its own, so one provider's failure or
stall never stops another; past the deadline a provider is abandoned and reported as failed. The
built-in providers also run their work in a child process (``isolation``) that is killed at the
deadline, so nothing of theirs outlives the session.

:func:`start_providers` starts those child processes at session start (they import the tracking
library while the tests run, and create the store once something was recorded), so that the
session end only logs.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import threading
import time
from collections.abc import Sequence

from pytest_fairmind.isolation import IsolatedProvider
from pytest_fairmind.providers.base import Provider, project_for, safe_target
from pytest_fairmind.redact import redact_text
from pytest_fairmind.report import provider_from_dict, provider_to_dict
from pytest_fairmind.result import ProviderOutcome, RunRef, SessionResult

PENDING_ERROR = "not logged: the session ended before this provider finished"
INTERRUPTED_ERROR = "interrupted (Ctrl-C) while logging; abandoned"


def pending_outcomes(providers: Sequence[Provider]) -> dict[str, ProviderOutcome]:
    """What the history says before logging: every provider failed until it says otherwise."""
    return {p.name: ProviderOutcome(ok=False, error=PENDING_ERROR, target=safe_target(p)) for p in providers}


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
            project = project_for(provider.name, explicit_project)
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
        outcome.target = outcome.target or safe_target(provider)
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
            final[provider.name] = ProviderOutcome(ok=False, error=unfinished, target=safe_target(provider))
    return {p.name: final[p.name] for p in providers}


class ProviderSession:
    """Providers started at session start (see :func:`start_providers`).

    ``recorded()`` when the first record arrives, ``log()`` at session end (or ``close()`` when
    nothing will be logged). Every method is safe to call any number of times and never raises.
    """

    def __init__(self, providers: Sequence[Provider], explicit_project: str | None) -> None:
        self.providers = list(providers)
        self._explicit_project = explicit_project
        self._recorded = False
        self._closed = False

    def recorded(self) -> None:
        """Something was recorded: providers may create their store and experiment now (a
        provider touches no store before this, so a session that records nothing creates none)."""
        if self._recorded or self._closed:
            return
        self._recorded = True
        for provider in self.providers:
            _call(provider, "prepare", project_for(provider.name, self._explicit_project))

    def log(self, session: SessionResult, *, timeout: float) -> dict[str, ProviderOutcome]:
        """:func:`log_session` with the started providers; the children are ended after it."""
        try:
            return log_session(
                self.providers, session, timeout=timeout, explicit_project=self._explicit_project
            )
        finally:
            self.close()

    def warm_process(self, name: str) -> IsolatedProvider | None:
        """The started provider ``name`` when it runs in a child process of ours, which can run a
        function for us (:meth:`IsolatedProvider.call`); None once closed, or for a third-party
        provider."""
        if self._closed:
            return None
        for provider in self.providers:
            if provider.name == name and isinstance(provider, IsolatedProvider):
                return provider
        return None

    def close(self) -> None:
        """End the providers' children that were started and did not log."""
        if self._closed:
            return
        self._closed = True
        for provider in self.providers:
            _call(provider, "close")


def start_providers(providers: Sequence[Provider], *, explicit_project: str | None = None) -> ProviderSession:
    """Warm the providers up now, in the main thread at session start: each built-in provider's
    child process starts and imports its tracking library while the tests run (third-party
    providers have nothing to warm up and are left alone). Call it only in the process that logs
    (never in an xdist worker) and not for ``--collect-only``: nothing is started then."""
    for provider in providers:
        _call(provider, "warm_up")
    return ProviderSession(providers, explicit_project)


def _call(provider: Provider, method: str, *args: object) -> None:
    call = getattr(provider, method, None)
    if callable(call):
        with contextlib.suppress(Exception):
            call(*args)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _checked(outcome: object) -> ProviderOutcome:
    """The outcome as the report stores it (through the report's codec: plain types), secrets
    redacted; a malformed one (not a ProviderOutcome, runs that are not RunRefs...) becomes a
    failure saying so."""
    if not isinstance(outcome, ProviderOutcome):
        return ProviderOutcome(ok=False, error=f"provider returned {type(outcome).__name__}")
    try:
        runs = dict(outcome.runs or {})
        for model, ref in runs.items():
            if not isinstance(ref, RunRef):
                raise TypeError(f"run of {model!r} is a {type(ref).__name__}, not a RunRef")
        plain = provider_to_dict(dataclasses.replace(outcome, runs=runs))
    except Exception as exc:
        return ProviderOutcome(ok=False, error=f"provider returned a malformed outcome: {_describe(exc)}")
    clean = provider_from_dict(plain)
    for ref in clean.runs.values():
        ref.url, ref.path = _redacted(ref.url), _redacted(ref.path)
    clean.error = _redacted(clean.error) or (None if clean.ok else "failed (the provider gave no reason)")
    clean.target, clean.note = _redacted(clean.target), _redacted(clean.note)
    return clean


def _redacted(text: str | None) -> str | None:
    return None if text is None else redact_text(text)


def _cancel(provider: Provider) -> None:
    _call(provider, "cancel")
