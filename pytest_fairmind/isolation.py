"""Run a provider in a child process: bounded in time, killable, and quiet.

Why a process and not a thread: a stalled HTTP request or a ``wandb-core`` that will not stop
cannot be interrupted from a thread, and MLflow/SQLAlchemy/wandb warnings raised in our process
would meet the user's ``-W error`` filters. A child process has its own warning filters and stdout
(MLflow's "View run" lines go nowhere), its whole process group is killed at the deadline, and
its command line carries no secret (W&B records the command line of the process it runs in).

The child reads a payload file (provider implementation, settings, the session as a report
dict) and writes a :class:`ProviderOutcome` as JSON to an outcome file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

from pytest_fairmind.redact import redact_text
from pytest_fairmind.result import ProviderOutcome, RunRef, SessionResult

if TYPE_CHECKING:  # imported lazily: pytest_fairmind.providers imports this module
    from pytest_fairmind.providers.base import Provider, ProviderSettings

#: Environment for provider children: no telemetry, no warnings, no interactive prompts.
CHILD_ENV = {
    "PYTHONWARNINGS": "ignore",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "WANDB_SILENT": "true",
    "WANDB_CONSOLE": "off",
    "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true",
    "WANDB_DISABLE_STATS": "true",
    "PYTHONUNBUFFERED": "1",
}


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class IsolatedProvider:
    """A provider whose ``log`` runs ``impl`` (``"module:Class"``) in a child process.

    ``impl`` is built from the same :class:`ProviderSettings`; its constructor must be cheap
    (no import of the tracking library) because ``target()`` is answered in this process.
    """

    def __init__(self, name: str, impl: str, settings: ProviderSettings) -> None:
        self.name = name
        self._impl_path = impl
        self._settings = settings
        self._impl: Provider = _load(impl)(settings)
        self._running: set[subprocess.Popen[bytes]] = set()

    def cancel(self) -> None:
        """Kill the provider processes of :meth:`log` calls still running (Ctrl-C at session end)."""
        for proc in list(self._running):
            _kill_group(proc, only_leftovers=True)

    def target(self) -> str:
        return self._impl.target()

    @property
    def can_check(self) -> bool:
        """Whether the implementation has a reachability check (``fairmind status``)."""
        return callable(getattr(self._impl, "check", None))

    def check(self, timeout: float) -> str | None:
        """Reachability (for ``fairmind status``): None when fine, else what is wrong."""
        check = getattr(self._impl, "check", None)
        return None if check is None else check(timeout)

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        from pytest_fairmind.report import session_to_dict

        target = self.target()
        with tempfile.TemporaryDirectory(prefix="fairmind-") as tmp:
            payload_path = os.path.join(tmp, "payload.json")
            outcome_path = os.path.join(tmp, "outcome.json")
            log_path = os.path.join(tmp, "child.log")
            payload = {
                "impl": self._impl_path,
                "settings": dataclasses.asdict(self._settings),
                "session": session_to_dict(session),
                "timeout": timeout,
            }
            with open(payload_path, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
            env = {**os.environ, **CHILD_ENV}
            deadline = time.monotonic() + timeout
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "pytest_fairmind.isolation", payload_path, outcome_path],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self._settings.workdir,
                    start_new_session=True,  # its own process group, so wandb-core dies with it
                )
                self._running.add(proc)
                try:
                    proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    _kill_group(proc)
                    return ProviderOutcome(
                        ok=False,
                        error=f"timed out after {timeout:.3g} s (--fairmind-timeout); abandoned",
                        target=target,
                    )
                except BaseException:
                    _kill_group(proc)
                    raise
                finally:
                    self._running.discard(proc)
                    # Whatever the child left behind in its group (wandb-core) goes too.
                    _kill_group(proc, only_leftovers=True)
            if os.path.exists(outcome_path):
                with open(outcome_path, encoding="utf-8") as fh:
                    outcome = outcome_from_dict(json.load(fh))
                outcome.target = outcome.target or target
                return outcome
            with open(log_path, encoding="utf-8", errors="replace") as fh:
                tail = fh.read()[-2000:].strip().splitlines()
            reason = tail[-1] if tail else f"exit code {proc.returncode}"
            return ProviderOutcome(
                ok=False, error=redact_text(f"provider process died: {reason}"), target=target
            )


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux ``/proc``; elsewhere none are found).

    Needed because wandb starts ``wandb-core`` in a session of its own, out of reach of a
    process-group kill.
    """
    children: dict[int, list[int]] = {}
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]
    except OSError:
        return []
    for entry in entries:
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s descendants, then its process group (``pid`` leads one)."""
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def _kill_group(proc: subprocess.Popen[bytes], *, only_leftovers: bool = False) -> None:
    if proc.poll() is None:
        kill_tree(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    if not only_leftovers:
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)


def outcome_to_dict(outcome: ProviderOutcome) -> dict[str, Any]:
    return dataclasses.asdict(outcome)


def outcome_from_dict(data: dict[str, Any]) -> ProviderOutcome:
    runs = {model: RunRef(**ref) for model, ref in (data.get("runs") or {}).items()}
    return ProviderOutcome(
        ok=bool(data.get("ok")),
        error=data.get("error"),
        runs=runs,
        target=data.get("target"),
        note=data.get("note"),
    )


def _watch_parent(timeout: float, workdir: str) -> None:
    """End this child's process group if pytest died (SIGTERM, kill) or the budget is long gone.

    The parent normally kills us at the deadline; this covers the parent dying first, so no
    provider process or wandb-core is left behind. The saved history is what gets replayed.
    A dead parent cannot remove its temporary folder (``workdir``): the watchdog does.
    """
    import shutil
    import threading

    parent = os.getppid()
    deadline = time.monotonic() + timeout + 5.0

    def watch() -> None:
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.2)
        if os.getppid() != parent:
            shutil.rmtree(workdir, ignore_errors=True)
        kill_tree(os.getpid())

    threading.Thread(target=watch, name="fairmind-watchdog", daemon=True).start()


def _bound_life(parent: int, timeout: float, workdir: str) -> None:
    """Kernel-level limits on this child's life, for when the watchdog thread cannot run (a C call
    holding the GIL blocks every Python thread and signal handler).

    * Linux: pytest's death sends us SIGTERM (``PR_SET_PDEATHSIG``), handled like the watchdog:
      remove the temporary folder, end the group. Blocked socket reads are interrupted for it.
    * ``alarm``: SIGALRM without a handler terminates the process in the kernel, GIL or not,
      10 s after the budget (the parent normally kills us at the budget).
    """

    def on_term(signum: int, frame: object) -> None:
        # Not conditional on getppid(): the death signal fires when the *thread* that started us
        # exits, and while pytest's other threads are still exiting we may be reparented to one
        # of them, so our parent pid looks unchanged. Nobody sends us SIGTERM but a dying pytest
        # (the parent kills with SIGKILL), so the folder is nobody's any more.
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
        kill_tree(os.getpid())

    signal.signal(signal.SIGTERM, on_term)
    if hasattr(signal, "alarm"):
        signal.alarm(max(1, math.ceil(timeout + 10.0)))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # pytest died before we got here
        on_term(signal.SIGTERM, None)


def _child_main(payload_path: str, outcome_path: str) -> int:
    import warnings

    warnings.simplefilter("ignore")
    from pytest_fairmind.providers.base import ProviderSettings
    from pytest_fairmind.report import session_from_dict

    parent = os.getppid()
    with open(payload_path, encoding="utf-8") as fh:
        payload = json.load(fh)
    # The settings hold the tracking URI, credentials included: keep them on disk no longer.
    with contextlib.suppress(OSError):
        os.unlink(payload_path)
    workdir = os.path.dirname(os.path.abspath(outcome_path))
    _bound_life(parent, float(payload["timeout"]), workdir)
    _watch_parent(float(payload["timeout"]), workdir)
    settings = ProviderSettings(**payload["settings"])
    session = session_from_dict(payload["session"])
    try:
        provider: Provider = _load(payload["impl"])(settings)
        outcome = provider.log(session, timeout=float(payload["timeout"]))
    except Exception as exc:  # the provider broke its contract; report, never crash
        outcome = ProviderOutcome(ok=False, error=redact_text(f"{type(exc).__name__}: {exc}"))
    if os.getppid() != parent:  # pytest died meanwhile: nobody reads the outcome; leave nothing
        import shutil

        shutil.rmtree(os.path.dirname(os.path.abspath(outcome_path)), ignore_errors=True)
        return 0
    tmp = outcome_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(outcome_to_dict(outcome), fh)
    os.replace(tmp, outcome_path)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], sys.argv[2]))
