"""Baselines for regression rules (``[MODEL:]METRIC ~ TOLERANCE[%]``): did a model get less fair?

A rule says "this metric may get worse than the baseline by at most TOLERANCE" (absolute, or ``%``
of ``|baseline|``). A :class:`Baseline` maps model -> metric key -> value, read from

- a session JSON file (a ``--fairmind-json`` report or a history entry);
- ``last``: the local history. Each metric's baseline is its value in the newest earlier session
  of the same project that recorded it with a finite value and did not fail a regression rule
  on it, so rerunning a regressed build does not make the regression the new baseline, and a run
  of a few tests (``-k``) does not hide the other metrics' baselines;
- ``mlflow``: the finished runs of each model (tag ``fairmind.model``) in the experiment named
  after the project, newest first, by the same rule as ``last`` (so in practice the newest
  finished run), asked from a child process under a timeout (the pytest process never imports
  mlflow, and MLflow's warnings never meet the user's filters).

"Worse" needs a direction. It is known for built-in metrics (``*_difference``: lower is better;
``*_ratio`` and ``accuracy``: higher is better; their ``.ci_low`` / ``.ci_high`` bounds alike) and
declared for others (ini ``fairmind_lower_is_better`` / ``fairmind_higher_is_better``, the marker's
``lower_is_better=`` / ``higher_is_better=``, ``fairmind check --lower-is-better``). A rule is never
applied to a metric of unknown direction: the summary names the metric and how to declare it.

A missing baseline (first run, new model, new metric, NaN baseline) gives the gate result
``bound == "no baseline"``: passed, with a warning line in the summary; failed under
``--fairmind-strict``. Pure except for the ``mlflow`` source (no pytest import).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_fairmind import history, report
from pytest_fairmind.result import GateResult, SessionResult

if TYPE_CHECKING:
    from pytest_fairmind.gates import Gate

LOWER = "lower"
HIGHER = "higher"
LAST = "last"
MLFLOW = "mlflow"
NO_BASELINE = "no baseline"
_BUILTIN_DIRECTIONS = (("*_difference", LOWER), ("*_ratio", HIGHER), ("accuracy", HIGHER))
_CI_SUFFIXES = (".ci_low", ".ci_high")
_FLOAT_MAX = sys.float_info.max  # what MLflow's SQL stores keep for +-inf
_SHOWN = 5

#: How to declare a direction, as said in the pytest summary and by ``fairmind check``.
PYTEST_HINT = (
    "declare its direction with the ini option fairmind_lower_is_better or fairmind_higher_is_better "
    "(fnmatch globs, [MODEL:]GLOB), or lower_is_better=/higher_is_better= on the fairmind marker"
)
CHECK_HINT = "declare its direction with --lower-is-better GLOB or --higher-is-better GLOB"


class BaselineError(ValueError):
    """A baseline source that cannot work at all (an unreadable file, mlflow not installed)."""


# --------------------------------------------------------------------------- directions


@dataclass(frozen=True)
class Declaration:
    """``pattern`` (a key or fnmatch glob, matched like gate metrics) is ``direction``-is-better."""

    pattern: str
    direction: str
    model: str | None = None  # None: every model

    def matches(self, model: str, key: str) -> bool:
        if self.model is not None and self.model != model and not fnmatchcase(model, self.model):
            return False
        if key == self.pattern or fnmatchcase(key, self.pattern):
            return True
        return "/" not in self.pattern and fnmatchcase(key.rpartition("/")[2], self.pattern)


def declarations(globs: Iterable[str], direction: str, *, model: str | None = None) -> list[Declaration]:
    """``[MODEL:]GLOB`` texts -> declarations; ``model`` applies when a text names none."""
    if direction not in (LOWER, HIGHER):
        raise ValueError(f"direction must be {LOWER!r} or {HIGHER!r}, not {direction!r}")
    out: list[Declaration] = []
    for raw in globs:
        text, own_model = str(raw).strip(), model
        if ":" in text:
            prefix, _, text = text.rpartition(":")
            own_model, text = prefix.strip() or model, text.strip()
        if text:
            out.append(Declaration(text, direction, own_model))
    return out


@dataclass(frozen=True)
class Directions:
    """Declared directions in layers (the first layer with a match decides), then the built-ins."""

    layers: tuple[tuple[Declaration, ...], ...] = ()

    @classmethod
    def layered(cls, *layers: Iterable[Declaration]) -> Directions:
        """Directions from ``layers``, most specific first (empty layers dropped)."""
        return cls(tuple(t for t in (tuple(layer) for layer in layers) if t))

    @classmethod
    def of_globs(cls, lower: Iterable[str] = (), higher: Iterable[str] = ()) -> Directions:
        """One layer of ``[MODEL:]GLOB`` declarations (ini options, ``fairmind check`` flags)."""
        return cls.layered([*declarations(lower, LOWER), *declarations(higher, HIGHER)])

    def lookup(self, model: str, key: str) -> tuple[str | None, str]:
        """(``"lower"``/``"higher"``, "") or (None, why it is unknown)."""
        for layer in self.layers:
            found = {d.direction for d in layer if d.matches(model, key)}
            if len(found) == 1:
                return found.pop(), ""
            if found:
                return None, "declared both lower and higher is better"
        name = key.rpartition("/")[2]
        for suffix in _CI_SUFFIXES:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        for pattern, direction in _BUILTIN_DIRECTIONS:
            if fnmatchcase(name, pattern):
                return direction, ""
        return None, "direction unknown"


def recorded_directions(session: SessionResult) -> list[Declaration]:
    """The directions a saved session's regression rules used (report field ``direction``)."""
    out: list[Declaration] = []
    for name, model in session.models.items():
        for gate in model.gates:
            if gate.direction in (LOWER, HIGHER):
                decl = Declaration(_escape(gate.key), gate.direction, _escape(name))
                if decl not in out:
                    out.append(decl)
    return out


def _escape(text: str) -> str:
    """``text`` as an fnmatch pattern that matches only itself."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


# --------------------------------------------------------------------------- the baseline


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def _listing(items: list[str]) -> str:
    return ", ".join(items[:_SHOWN]) + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


@dataclass
class Baseline:
    """Baseline values plus the bookkeeping of one evaluation of regression rules."""

    source: str | None  # as configured; None: no baseline source was given
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    description: str = ""  # where the values came from, for the summary
    available: bool = True  # False: the source had nothing at all (see ``reason``)
    reason: str = ""  # why it is not available
    directions: Directions = field(default_factory=Directions)
    strict: bool = False
    hint: str = PYTEST_HINT
    missing: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, key) -> why
    undirected: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)  # expr -> ...

    def value(self, model: str, key: str) -> tuple[float | None, str]:
        """The finite baseline value of ``key``, or (None, why there is none)."""
        if not self.available:
            return None, self.reason or NO_BASELINE
        metrics = self.models.get(model)
        if metrics is None:
            return None, "new model: not in the baseline"
        if key not in metrics:
            return None, "new metric: not in the baseline"
        value = metrics[key]
        if not math.isfinite(value):
            return None, f"the baseline value is {_fmt(value)}"
        return value, ""

    def compare(self, gate: Gate, model: str, key: str, value: float) -> GateResult | None:
        """The rule's result for one metric of one model, or None when its direction is unknown."""
        tolerance = gate.tolerance
        assert tolerance is not None, "compare() takes regression rules only"
        direction, why = self.directions.lookup(model, key)
        if direction is None:
            self.undirected.setdefault(gate.expr, {})[(model, key)] = why
            return None
        base, why = self.value(model, key)
        if base is None:
            self.missing.setdefault((model, key), why)
            return GateResult(gate.expr, key, value, NO_BASELINE, not self.strict, direction=direction)
        allowed = tolerance.allowed(base)
        if direction == LOWER:
            limit, op = base + allowed, "<="
            passed = value <= limit
        else:
            limit, op = base - allowed, ">="
            passed = value >= limit
        # The boundary is allowed: 0.7 -> 0.8 with tolerance 0.1 passes despite float rounding.
        passed = not math.isnan(value) and (passed or math.isclose(value, limit, rel_tol=1e-9, abs_tol=1e-12))
        bound = f"{op} {_fmt(limit)} (baseline {_fmt(base)}, tolerance {tolerance}, {direction} is better)"
        change = value - base if math.isfinite(value) else None
        return GateResult(
            gate.expr, key, value, bound, passed, baseline=base, change=change, direction=direction
        )

    @property
    def problems(self) -> bool:
        """What ``--fairmind-strict`` turns into a failure: a missing baseline, an unknown direction."""
        return bool(self.missing) or bool(self.undirected)

    def notices(self) -> list[str]:
        """Summary lines: missing baselines (warnings) and rules not applied for want of a direction."""
        lines: list[str] = []
        consequence = (
            "these regression rules FAILED (--fairmind-strict)"
            if self.strict
            else "not compared, not a failure (it is with --fairmind-strict)"
        )
        if self.missing and not self.available:
            items = [f"{m}: {k}" for m, k in self.missing]
            lines.append(
                f"warning: no baseline ({self.reason}) for {len(items)} metric(s): {_listing(items)}; "
                f"{consequence}"
            )
        elif self.missing:
            by_reason: dict[str, list[str]] = {}
            for (m, k), why in self.missing.items():
                by_reason.setdefault(why, []).append(f"{m}: {k}")
            parts = "; ".join(f"{_listing(items)} ({why})" for why, items in by_reason.items())
            lines.append(
                f"warning: no baseline value in {self.description} for {len(self.missing)} metric(s): "
                f"{parts}; {consequence}"
            )
        for expr, found in self.undirected.items():
            by_reason = {}
            for (m, k), why in found.items():
                by_reason.setdefault(why, []).append(f"{m}: {k}")
            for why, items in by_reason.items():
                failing = " (fails the session: --fairmind-strict)" if self.strict else ""
                lines.append(
                    f"regression rule not applied to {_listing(items)}: {why} [{expr}]{failing}; {self.hint}"
                )
        return lines


def unused_notice(source: str) -> str:
    """The summary line for a baseline source that no regression rule uses."""
    return (
        f"baseline {source!r} given but no regression rule uses it "
        "(add one such as 'equalized_odds_difference ~ 0.02')"
    )


# --------------------------------------------------------------------------- sources


def resolve_path(source: str, workdir: str | None) -> Path:
    path = Path(source).expanduser()
    return path if path.is_absolute() or workdir is None else Path(workdir) / path


def check_source(source: str, *, workdir: str | None = None) -> None:
    """Fail early (``BaselineError``) for a source that cannot work: an existing file that is not a
    pytest-fairmind report, or ``mlflow`` without mlflow installed. A file that does not exist yet
    is fine: that is the first run (no baseline)."""
    if source == LAST:
        return
    if source == MLFLOW:
        if importlib.util.find_spec("mlflow") is None:
            raise BaselineError("the mlflow baseline needs mlflow: pip install 'pytest-fairmind[mlflow]'")
        return
    path = resolve_path(source, workdir)
    if path.is_dir():
        raise BaselineError(f"{source}: a folder; expected a session JSON file, 'last' or 'mlflow'")
    if path.exists():
        try:
            report.load(str(path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise BaselineError(f"{source}: not a readable pytest-fairmind report ({exc})") from None


def load_baseline(
    source: str | None,
    *,
    project: str,
    history_folder: Path,
    exclude_session: str | None = None,
    before: str | None = None,
    mlflow_uri: str | None = None,
    mlflow_project: str | None = None,
    workdir: str | None = None,
    timeout: float = 30.0,
    directions: Directions | None = None,
    strict: bool = False,
    hint: str = PYTEST_HINT,
    no_source_reason: str = "no --fairmind-baseline given",
) -> Baseline:
    """Read the baseline named by ``source`` (a path, ``last`` or ``mlflow``); never raises.

    ``exclude_session`` (the session being checked) is never its own baseline; with ``last``,
    ``before`` (that session's start time) also leaves out newer sessions.
    """
    baseline = Baseline(source=source, directions=directions or Directions(), strict=strict, hint=hint)

    def unavailable(reason: str) -> Baseline:
        baseline.available, baseline.reason = False, reason
        return baseline

    if not source:
        return unavailable(no_source_reason)
    try:
        if source == LAST:
            models, used = _from_history(history_folder, project, exclude_session, before)
            if not used:
                return unavailable(
                    f"no earlier session of project {project!r} in {history_folder}: first run?"
                )
            baseline.models = models
            baseline.description = f"last ({used} earlier session(s) in {history_folder})"
        elif source == MLFLOW:
            experiment = mlflow_project or project
            uri = _mlflow_uri(mlflow_uri, workdir)
            baseline.models = _from_mlflow(experiment, uri, workdir or os.getcwd(), timeout, exclude_session)
            baseline.description = f"mlflow (experiment {experiment!r})"
            if not baseline.models:
                return unavailable(f"no finished run in the MLflow experiment {experiment!r}: first run?")
        else:
            path = resolve_path(source, workdir)
            if not path.is_file():
                return unavailable(f"{source}: no such file")
            session = report.load(str(path))
            baseline.models = {name: dict(model.metrics) for name, model in session.models.items()}
            baseline.description = f"{source} (session {session.id})"
    except subprocess.TimeoutExpired:
        return unavailable(f"{source}: MLflow did not answer within {timeout:g} s")
    except (OSError, ValueError, KeyError, TypeError, subprocess.SubprocessError) as exc:
        return unavailable(f"{source}: {exc}")
    return baseline


def _regressed(session: SessionResult, model: str, key: str) -> bool:
    """Whether ``key`` of ``model`` failed a regression rule against a real baseline in ``session``."""
    result = session.models.get(model)
    return result is not None and any(
        "~" in g.expr and g.key == key and not g.passed and g.baseline is not None for g in result.gates
    )


def _history_entries(folder: Path) -> list[Path]:
    """History entries, newest first; within one second (entry names) the last written wins."""

    def order(path: Path) -> tuple[str, float]:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = 0.0
        return path.name.partition("-")[0], mtime

    return sorted(history.entries(folder), key=order, reverse=True)


def _stamp(started: str) -> str:
    return "".join(c for c in started if c.isdigit())[:20]


def _from_history(
    folder: Path, project: str, exclude_session: str | None, before: str | None
) -> tuple[dict[str, dict[str, float]], int]:
    """Each metric's newest usable value in earlier sessions of ``project``; and how many sessions."""
    limit = _stamp(before) if before else None
    values: dict[str, dict[str, float]] = {}
    used = 0
    for path in _history_entries(folder):
        if exclude_session and path.stem.endswith(exclude_session):
            continue
        if limit is not None and path.name.partition("-")[0] > limit:
            continue  # newer than the session being checked
        try:
            session = report.load(str(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if session.project != project or session.id == exclude_session:
            continue
        used += 1
        for name, model in session.models.items():
            known = values.setdefault(name, {})
            for key, value in model.metrics.items():
                have = known.get(key)
                if have is not None and (math.isfinite(have) or not math.isfinite(value)):
                    continue  # a newer value is already known (a finite one beats NaN)
                if not _regressed(session, name, key):
                    known[key] = value
    return values, used


#: Run in a child process: each model's metrics, each from the newest finished run that has it
#: and did not fail a regression rule on it (the same rule as ``last``). Only runs whose verdict
#: is ``fail`` can have failed one; their ``fairmind/result.json`` artifact says which keys.
_MLFLOW_QUERY = """
import json, math, os, sys, tempfile, warnings
warnings.simplefilter("ignore")
from mlflow.tracking import MlflowClient
uri, project, exclude = sys.argv[1], sys.argv[2], sys.argv[3]
client = MlflowClient(tracking_uri=uri)
exp = client.get_experiment_by_name(project)
out, downloads, token, seen = {}, 0, None, 0


def regressed(run_id):
    global downloads
    downloads += 1
    if downloads > 50:
        return set()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(run_id, "fairmind/result.json", tmp)
            with open(path, encoding="utf-8") as fh:
                gates = json.load(fh)["result"]["gates"]
    except Exception:
        return set()
    return {g["key"] for g in gates
            if "~" in g["expr"] and not g["passed"] and g.get("baseline") is not None}


while exp is not None and seen < 5000:
    page = client.search_runs(
        [exp.experiment_id],
        filter_string="attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC", "attributes.end_time DESC"],
        max_results=1000,
        page_token=token,
    )
    for run in page:
        seen += 1
        tags = run.data.tags
        model = tags.get("fairmind.model")
        if not model or tags.get("fairmind.session") == exclude:
            continue
        skip = regressed(run.info.run_id) if tags.get("fairmind.verdict") == "fail" else set()
        known = out.setdefault(model, {})
        for key, value in run.data.metrics.items():
            have = known.get(key)
            if have is not None and (math.isfinite(have) or not math.isfinite(value)):
                continue
            if key not in skip:
                known[key] = value
    token = page.token
    if not token:
        break
print("FAIRMIND-BASELINE " + json.dumps(out))
"""


def _mlflow_uri(uri: str | None, workdir: str | None) -> str:
    """The tracking URI exactly as the MLflow provider resolves it (relative SQLite paths anchored)."""
    from pytest_fairmind.providers.base import ProviderSettings
    from pytest_fairmind.providers.mlflow import resolve_tracking_uri

    return resolve_tracking_uri(ProviderSettings(mlflow_uri=uri, workdir=workdir or os.getcwd()))


def _from_mlflow(
    project: str, uri: str, workdir: str, timeout: float, exclude_session: str | None
) -> dict[str, dict[str, float]]:
    """Each model's baseline from its finished runs in the experiment, asked from a child process."""
    from pytest_fairmind.isolation import CHILD_ENV
    from pytest_fairmind.redact import redact_text

    env = {
        **os.environ,
        **CHILD_ENV,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout))),
    }
    done = subprocess.run(
        [sys.executable, "-c", _MLFLOW_QUERY, uri, project, exclude_session or ""],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=workdir,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("FAIRMIND-BASELINE "):
            data: Mapping[str, Mapping[str, float]] = json.loads(line.partition(" ")[2])
            return {m: {k: _from_store(float(v)) for k, v in metrics.items()} for m, metrics in data.items()}
    last = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise ValueError(f"MLflow did not answer: {redact_text(last)}")


def _from_store(value: float) -> float:
    """MLflow's SQL stores keep +-inf as +-float max: read them back as infinities."""
    if value >= _FLOAT_MAX:
        return math.inf
    if value <= -_FLOAT_MAX:
        return -math.inf
    return value
