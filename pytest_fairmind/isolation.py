"""Run a provider in a child process: bounded in time, killable, quiet, and warm when asked.

Why a process and not a thread: a stalled HTTP request or a ``wandb-core`` that will not stop
cannot be interrupted from a thread, and MLflow/SQLAlchemy/wandb warnings raised in our process
would meet the user's ``-W error`` filters. A child process has its own warning filters and stdout
(MLflow's "View run" lines go nowhere), its whole process group is killed at the deadline, and
its command line carries no secret (W&B records the command line of the process it runs in).

The child gets its orders as JSON lines on stdin: ``init`` (provider implementation and settings,
credentials included: they never touch the disk), optionally ``prepare`` (something was recorded:
create the store), then ``log`` (the session, as a report document in a file of the child's
folder). It writes a :class:`ProviderOutcome` as JSON to an outcome file and exits. Before
``log``, a warm child also takes ``call`` orders (:meth:`IsolatedProvider.call`): it runs a
function where the tracking library is imported already and writes what it returned to an
answer file (the ``mlflow`` baseline is asked this way in the MLflow provider's child).

:meth:`IsolatedProvider.warm_up` starts the child at session start, so that it imports the
tracking library while the tests run; without it, :meth:`IsolatedProvider.log` starts a child
and sends all three orders at once.

Every child has a folder of its own (payload, outcome, log) which is also its ``TMPDIR``: what
the tracking library leaves in temporary folders (wandb's media and artifact staging, its service
socket, our chart scratch) is removed with it when the child ends, however it ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import IO, Any, NoReturn

from pytest_fairmind import procs
from pytest_fairmind.providers.base import BUDGET_START_ENV, Provider, ProviderSettings, budget_spent
from pytest_fairmind.redact import redact_text
from pytest_fairmind.report import dumps, loads, provider_from_dict, provider_to_dict
from pytest_fairmind.result import ProviderOutcome, SessionResult

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

#: Names a child's folder in its environment, inherited by whatever it starts (wandb-core): what
#: is still running with it after the child ended is killed (:func:`end_leftovers`).
FOLDER_VAR = "FAIRMIND_PROVIDER_FOLDER"

#: How long a warm child that is no longer needed gets to exit on its own before it is killed.
_CLOSE_GRACE = 2.0


class NotWarm(Exception):
    """:meth:`IsolatedProvider.call` found no warm child to run in (none started, or it died)."""


class CallFailed(Exception):
    """The function of :meth:`IsolatedProvider.call` raised; the message is its error, redacted."""


def _write_whole(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader polling for the file sees all of it or none
    (a file of the child's own folder: no fsync, the folder goes with the child)."""
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)


def _load(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


class IsolatedProvider:
    """A provider whose ``log`` runs ``impl`` (``"module:Class"``) in a child process.

    ``impl`` is built from the same :class:`ProviderSettings`; its constructor must be cheap
    (no import of the tracking library) because ``target()`` is answered in this process. It may
    have ``warm_up()`` (import the library, touch nothing) and ``prepare(project, *, timeout)``
    (create the store and the experiment), run in the child before ``log``.
    """

    def __init__(self, name: str, impl: str, settings: ProviderSettings) -> None:
        self.name = name
        self._impl_path = impl
        self._settings = settings
        self._impl: Provider = _load(impl)(settings)
        self._running: set[_Child] = set()
        self._warm: _Child | None = None
        self._lock = threading.Lock()
        self._calls = 0
        self.warm_error: str | None = None  # why warm_up() started nothing (log starts a child then)

    def cancel(self) -> None:
        """Kill the provider processes of :meth:`log` calls still running and remove their folders
        now (Ctrl-C at session end: pytest may exit before the logging thread gets to it)."""
        for child in list(self._running):
            child.finish()

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

    # ------------------------------------------------------------------ warm-up

    def warm_up(self) -> None:
        """Start the child now: it imports the tracking library while the tests run and waits
        for :meth:`log`. Call it from the main thread (the child's death signal is bound to the
        thread that starts it). Never raises: :meth:`log` then starts a child of its own."""
        with self._lock:
            if self._warm is not None:
                return
            try:
                child = _Child.start(self._settings.workdir)
            except OSError as exc:
                self.warm_error = f"provider process not started: {exc}"
                return
            if child.send({"op": "init", **self._init_order(warm=True)}):
                self._warm = child
            else:
                self.warm_error = "provider process gone at once"
                child.finish()

    def prepare(self, project: str) -> None:
        """Something was recorded: the warm child may create the store and experiment now."""
        with self._lock:
            if self._warm is not None:
                self._warm.send({"op": "prepare", "project": project, "timeout": self._settings.timeout})

    def call(self, function: str, args: Sequence[Any], *, timeout: float) -> Any:
        """``function(*args)`` (``"module:name"``, JSON in and out) run in the warm child, after
        its earlier orders: where the tracking library is imported already, and the store ready.

        :class:`NotWarm` when there is no warm child; :class:`CallFailed` when the function
        raised; :class:`TimeoutError` when it did not answer within ``timeout`` seconds (the child
        is then ended: :meth:`log` starts a fresh one)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            child = self._warm
            if child is None or child.proc.poll() is not None:
                raise NotWarm(self.warm_error or "no warm provider process")
            self._calls += 1
            answer = os.path.join(child.folder, f"answer-{self._calls}.json")
            sent = child.send({"op": "call", "function": function, "args": list(args), "answer": answer})
        if not sent:
            raise NotWarm("provider process gone")
        while not os.path.exists(answer):
            if child.proc.poll() is not None and not os.path.exists(answer):
                raise NotWarm("provider process died")
            if time.monotonic() >= deadline:
                with self._lock:
                    if self._warm is child:
                        self._warm = None
                child.finish()
                raise TimeoutError(f"no answer within {timeout:g} s")
            time.sleep(0.01)
        with open(answer, encoding="utf-8") as fh:
            reply = json.load(fh)
        with contextlib.suppress(OSError):
            os.unlink(answer)
        if "error" in reply:
            raise CallFailed(reply["error"])
        return reply["value"]

    def close(self) -> None:
        """End a warm child that will not log (nothing recorded, the session interrupted)."""
        with self._lock:
            child, self._warm = self._warm, None
        if child is not None:
            child.close_input()
            child.wait(time.monotonic() + _CLOSE_GRACE)
            child.finish()

    # ------------------------------------------------------------------ log

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        started = time.time()
        deadline = time.monotonic() + timeout
        target = self.target()
        with self._lock:
            child, self._warm = self._warm, None
        if child is not None and child.proc.poll() is not None:
            child.finish()  # died while waiting (an import error...): a fresh one says why
            child = None
        try:
            if child is None:
                child = _Child.start(self._settings.workdir)
                child.send({"op": "init", **self._init_order(warm=False)})
        except OSError as exc:
            return ProviderOutcome(ok=False, error=redact_text(f"provider process not started: {exc}"))
        self._running.add(child)
        try:
            child.write_payload(session)
            child.send({"op": "log", "timeout": timeout, "started": started})
            returncode = child.wait(deadline)
            if returncode is None:
                child.kill()
                return ProviderOutcome(
                    ok=False,
                    error=f"timed out after {timeout:.3g} s (--fairmind-timeout); abandoned",
                    target=target,
                )
            outcome = child.outcome(returncode)
            outcome.target = outcome.target or target
            return outcome
        finally:
            self._running.discard(child)
            child.finish()

    def _init_order(self, *, warm: bool) -> dict[str, Any]:
        return {"impl": self._impl_path, "settings": dataclasses.asdict(self._settings), "warm": warm}


class _Child:
    """One provider child process, its folder and its order pipe, seen from the parent."""

    def __init__(self, folder: str, proc: subprocess.Popen[bytes], orders: IO[bytes]) -> None:
        self.folder = folder
        self.proc = proc
        self._orders: IO[bytes] | None = orders
        self.payload = os.path.join(folder, "payload.json")
        self.outcome_path = os.path.join(folder, "outcome.json")
        self.log_path = os.path.join(folder, "child.log")
        self._finished = False
        self._finishing = threading.Lock()

    @classmethod
    def start(cls, workdir: str) -> _Child:
        folder = tempfile.mkdtemp(prefix="fairmind-")
        try:
            tmp = os.path.join(folder, "tmp")
            os.mkdir(tmp)
            env = {**os.environ, **CHILD_ENV, FOLDER_VAR: folder, "TMPDIR": tmp, "TEMP": tmp, "TMP": tmp}
            # Orders go through a pipe of their own: stdin stays /dev/null, so a library that
            # prompts (wandb without a key) reads EOF instead of waiting on us.
            read_end, write_end = os.pipe()
            try:
                with open(os.path.join(folder, "child.log"), "wb") as log:
                    proc = subprocess.Popen(
                        [sys.executable, "-m", "pytest_fairmind.isolation", folder, str(read_end)],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        cwd=workdir,
                        pass_fds=(read_end,),
                        start_new_session=True,  # its own process group, so wandb-core dies with it
                    )
            except BaseException:
                os.close(write_end)
                raise
            finally:
                os.close(read_end)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(folder, proc, os.fdopen(write_end, "wb"))

    def send(self, order: dict[str, Any]) -> bool:
        """Write one order line; False when the child is gone (its pipe is closed)."""
        if self._orders is None:
            return False
        try:
            self._orders.write((json.dumps(order) + "\n").encode("utf-8"))
            self._orders.flush()
        except (OSError, ValueError):
            return False
        return True

    def close_input(self) -> None:
        orders, self._orders = self._orders, None
        if orders is not None:
            with contextlib.suppress(OSError):
                orders.close()

    def write_payload(self, session: SessionResult) -> None:
        _write_whole(self.payload, dumps(session))  # the one codec: strict JSON, the GC paused

    def wait(self, deadline: float) -> int | None:
        """The child's exit code, or None when it is still running at ``deadline``."""
        try:
            return self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return None

    def outcome(self, returncode: int) -> ProviderOutcome:
        """What the child wrote, or why it wrote nothing (the last line of its output)."""
        if os.path.exists(self.outcome_path):
            with open(self.outcome_path, encoding="utf-8") as fh:
                return provider_from_dict(json.load(fh))
        with open(self.log_path, encoding="utf-8", errors="replace") as fh:
            tail = fh.read()[-2000:].strip().splitlines()
        reason = tail[-1] if tail else f"exit code {returncode}"
        return ProviderOutcome(ok=False, error=redact_text(f"provider process died: {reason}"))

    def kill(self) -> None:
        _kill_group(self.proc)

    def finish(self) -> None:
        """After the child ended (or to end it): kill whatever it left running, remove its folder."""
        with self._finishing:
            if self._finished:
                return
            self._finished = True
            self.close_input()
            _kill_group(self.proc)
            end_leftovers(self.folder)
            shutil.rmtree(self.folder, ignore_errors=True)


def end_leftovers(folder: str) -> None:
    """Kill the processes a child with ``folder`` started that outlived it: wandb-core runs in a
    session of its own and is reparented when the child dies, out of reach of a group kill."""
    procs.kill(procs.carrying(FOLDER_VAR, folder))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        procs.kill_tree(proc.pid)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(timeout=5)


# --------------------------------------------------------------------------- the child


class _Life:
    """The child's bounds: its parent's life always, and once it logs, a deadline."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.parent = os.getppid()
        self.deadline = math.inf  # monotonic; none while warm and waiting

    def start_logging(self, timeout: float) -> None:
        timeout = max(0.0, timeout - budget_spent())
        self.deadline = time.monotonic() + timeout + 5.0
        if hasattr(signal, "alarm"):
            # SIGALRM without a handler terminates the process in the kernel, GIL or not, 10 s
            # after the budget (the parent normally kills us at the budget).
            signal.alarm(max(1, math.ceil(timeout + 10.0)))

    def orphaned(self) -> bool:
        return os.getppid() != self.parent

    def die(self) -> None:
        """Pytest is gone or the budget long spent: end what we started, remove the folder, end."""
        procs.kill(procs.descendants(os.getpid()))
        end_leftovers(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)
        procs.kill_tree(os.getpid())


def _bound_life(life: _Life) -> None:
    """End this child when pytest dies (SIGTERM, kill) or the budget is long gone.

    * A watchdog thread polls the parent pid and the deadline.
    * Linux: pytest's death sends us SIGTERM (``PR_SET_PDEATHSIG``), for when the watchdog thread
      cannot run (a C call holding the GIL blocks every Python thread); blocked reads are
      interrupted for it. Nobody else sends us SIGTERM (the parent kills with SIGKILL).
    * Once logging, ``alarm`` ends the process whatever it is doing (see :meth:`_Life.start_logging`).
    """

    def on_term(signum: int, frame: object) -> None:
        # Not conditional on getppid(): the death signal fires when the *thread* that started us
        # exits, and while pytest's other threads are still exiting we may be reparented to one
        # of them, so our parent pid looks unchanged.
        life.die()

    signal.signal(signal.SIGTERM, on_term)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    def watch() -> None:
        while not life.orphaned() and time.monotonic() < life.deadline:
            time.sleep(0.2)
        life.die()

    threading.Thread(target=watch, name="fairmind-watchdog", daemon=True).start()
    if life.orphaned():  # pytest died before we got here
        life.die()


def _orders(stream: IO[bytes]) -> Any:
    """The parent's orders, one JSON object a line, until it closes the pipe."""
    for line in stream:
        with contextlib.suppress(ValueError):
            order = json.loads(line)
            if isinstance(order, dict):
                yield order


def _child_main(folder: str, orders_fd: int) -> int:
    import warnings

    warnings.simplefilter("ignore")
    life = _Life(folder)
    _bound_life(life)
    provider: Any = None
    for order in _orders(os.fdopen(orders_fd, "rb")):
        op = order.get("op")
        if op == "init":
            settings = ProviderSettings(**order["settings"])
            try:
                provider = _load(order["impl"])(settings)
            except Exception as exc:
                provider = _Broken(exc)
            if order.get("warm"):
                _optional(provider, "warm_up")
        elif op == "prepare" and provider is not None:
            _optional(provider, "prepare", str(order["project"]), timeout=float(order["timeout"]))
        elif op == "call":
            _answer(order)
        elif op == "log" and provider is not None:
            # The budget started in the parent (when the child started, for a cold one); we may
            # read the order late (busy importing, or preparing the store): providers count from
            # that moment (``budget_spent``), the alarm too.
            timeout = float(order["timeout"])
            os.environ[BUDGET_START_ENV] = str(float(order.get("started", time.time())))
            life.start_logging(timeout)
            return _log(provider, life, timeout)
    return 0  # the parent closed the pipe: not needed


def _optional(provider: Any, method: str, *args: Any, **kwargs: Any) -> None:
    """Call ``provider.<method>`` when it has one; a failure there is for :meth:`log` to report."""
    call = getattr(provider, method, None)
    if callable(call):
        with contextlib.suppress(Exception):
            call(*args, **kwargs)


def _answer(order: dict[str, Any]) -> None:
    """Run a ``call`` order's function; write ``{"value": ...}`` or ``{"error": ...}``."""
    try:
        reply: dict[str, Any] = {"value": _load(str(order["function"]))(*order.get("args", ()))}
        text = json.dumps(reply)
    except Exception as exc:
        text = json.dumps({"error": redact_text(f"{type(exc).__name__}: {exc}")})
    _write_whole(str(order["answer"]), text)


class _Broken:
    """Stands in for a provider whose constructor raised: its log reports that."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def log(self, session: SessionResult, *, timeout: float) -> ProviderOutcome:
        raise self.exc


def _log(provider: Any, life: _Life, timeout: float) -> NoReturn:
    payload = os.path.join(life.folder, "payload.json")
    outcome_path = os.path.join(life.folder, "outcome.json")
    try:
        with open(payload, encoding="utf-8") as fh:
            session = loads(fh.read())
        with contextlib.suppress(OSError):
            os.unlink(payload)
        outcome = provider.log(session, timeout=timeout)
    except Exception as exc:  # the provider broke its contract; report, never crash
        outcome = ProviderOutcome(ok=False, error=redact_text(f"{type(exc).__name__}: {exc}"))
    if life.orphaned():  # pytest died meanwhile: nobody reads the outcome; leave nothing
        life.die()
    _write_whole(outcome_path, json.dumps(provider_to_dict(outcome)))
    # Done: the parent reads the outcome once we have exited. Tearing down an interpreter that
    # imported mlflow or wandb takes a good part of a second and writes nothing that matters (the
    # providers finish their runs and wandb's service within log()), so skip it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], int(sys.argv[2])))
