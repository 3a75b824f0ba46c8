"""Baselines for regression rules (``METRIC ~ TOLERANCE[%]``): did a model get less fair?

Pure except for the ``mlflow`` source, which asks MLflow from a child process (bounded, quiet).
A baseline maps model -> metric key -> value, read from a session JSON file, the newest session of
the same project in the local history (``last``), or the newest finished run of each model in the
MLflow experiment (``mlflow``).

Direction is known for built-in metrics (``*_difference``: lower is better; ``*_ratio`` and
``accuracy``: higher is better) and declared for others (ini ``fairmind_lower_is_better`` /
``fairmind_higher_is_better``, fnmatch globs). A rule is never applied to a metric of unknown
direction: it is reported, naming the metric and how to declare it.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_fairmind import history, report
from pytest_fairmind.result import GateResult

if TYPE_CHECKING:
    from pytest_fairmind.gates import Gate

LOWER = "lower"
HIGHER = "higher"
_BUILTIN_DIRECTIONS = (("*_difference", LOWER), ("*_ratio", HIGHER), ("accuracy", HIGHER))
NO_BASELINE = "no baseline"


@dataclass
class Baseline:
    """Baseline metric values and the rules' bookkeeping for one evaluation."""

    source: str
    models: dict[str, dict[str, float]] = field(default_factory=dict)
    lower_is_better: tuple[str, ...] = ()
    higher_is_better: tuple[str, ...] = ()
    strict: bool = False
    found: bool = True  # False: the source had no baseline at all
    missing: list[str] = field(default_factory=list)  # "model: key" without a baseline value
    unknown_direction: list[str] = field(default_factory=list)  # "model: key"

    def direction(self, key: str) -> str | None:
        last = key.rpartition("/")[2]
        for patterns, direction in ((self.lower_is_better, LOWER), (self.higher_is_better, HIGHER)):
            if any(fnmatchcase(key, p) or fnmatchcase(last, p) for p in patterns):
                return direction
        for pattern, direction in _BUILTIN_DIRECTIONS:
            if fnmatchcase(last, pattern):
                return direction
        return None

    def compare(self, gate: Gate, model: str, key: str, value: float) -> GateResult | None:
        """The rule's result for one metric, or None when its direction is unknown."""
        assert gate.tolerance is not None
        direction = self.direction(key)
        if direction is None:
            self.unknown_direction.append(f"{model}: {key}")
            return None
        base = self.models.get(model, {}).get(key)
        if base is None or math.isnan(base):
            self.missing.append(f"{model}: {key}")
            return GateResult(gate.expr, key, value, NO_BASELINE, passed=not self.strict)
        allowed = gate.tolerance.allowed(base)
        if direction == LOWER:
            limit, op = base + allowed, "<="
            passed = value <= limit
        else:
            limit, op = base - allowed, ">="
            passed = value >= limit
        passed = passed and not math.isnan(value)
        bound = f"{op} {limit:.6g} (baseline {base:.6g}, tolerance {gate.tolerance})"
        change = value - base if math.isfinite(value) and math.isfinite(base) else math.nan
        return GateResult(gate.expr, key, value, bound, passed, baseline=base, change=change)

    def notices(self) -> list[str]:
        lines: list[str] = []
        if not self.found:
            lines.append(f"baseline {self.source}: not found (first run?); regression rules have no baseline")
        elif self.missing:
            shown = ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else "")
            lines.append(
                f"baseline {self.source}: no baseline value for {len(self.missing)} metric(s): {shown}"
            )
        for item in self.unknown_direction:
            lines.append(
                f"regression rule not evaluated for {item}: direction unknown; declare it in the ini "
                "file with fairmind_lower_is_better or fairmind_higher_is_better (fnmatch globs)"
            )
        return lines

    @property
    def problems(self) -> bool:
        """Something ``--fairmind-strict`` turns into a failure."""
        return not self.found or bool(self.missing) or bool(self.unknown_direction)


def _from_session(path: Path) -> dict[str, dict[str, float]]:
    session = report.load(str(path))
    return {name: dict(model.metrics) for name, model in session.models.items()}


def load_baseline(
    source: str,
    *,
    project: str,
    history_folder: Path,
    exclude_session: str | None = None,
    mlflow_uri: str | None = None,
    workdir: str | None = None,
    timeout: float = 30.0,
    lower_is_better: Sequence[str] = (),
    higher_is_better: Sequence[str] = (),
    strict: bool = False,
) -> Baseline:
    """Read the baseline named by ``source`` (a path, ``last`` or ``mlflow``); never raises."""
    baseline = Baseline(
        source=source,
        lower_is_better=tuple(lower_is_better),
        higher_is_better=tuple(higher_is_better),
        strict=strict,
    )
    try:
        if source == "last":
            entry = history.last(history_folder, project=project, exclude_id=exclude_session)
            if entry is None:
                baseline.found = False
            else:
                baseline.source = f"last ({entry.name})"
                baseline.models = _from_session(entry)
        elif source == "mlflow":
            baseline.models = _from_mlflow(project, mlflow_uri, workdir or os.getcwd(), timeout)
            baseline.found = bool(baseline.models)
        else:
            path = Path(source)
            if not path.is_file():
                baseline.found = False
            else:
                baseline.models = _from_session(path)
    except (OSError, ValueError, KeyError, subprocess.SubprocessError) as exc:
        baseline.found = False
        baseline.source = f"{source} ({exc})"
    return baseline


_MLFLOW_QUERY = """
import json, sys, warnings
warnings.simplefilter("ignore")
from mlflow.tracking import MlflowClient
uri, project = sys.argv[1], sys.argv[2]
client = MlflowClient(tracking_uri=uri)
exp = client.get_experiment_by_name(project)
out = {}
if exp is not None:
    runs = client.search_runs([exp.experiment_id], filter_string="attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1000)
    for run in runs:
        model = run.data.tags.get("fairmind.model")
        if model and model not in out:
            out[model] = run.data.metrics
print("FAIRMIND-BASELINE " + json.dumps(out))
"""


def _from_mlflow(project: str, uri: str | None, workdir: str, timeout: float) -> dict[str, dict[str, float]]:
    """The newest finished run of each model in the experiment, asked from a child process."""
    from pytest_fairmind.isolation import CHILD_ENV

    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{os.path.join(workdir, 'mlflow.db')}"
    env = {
        **os.environ,
        **CHILD_ENV,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(max(1, int(timeout))),
    }
    done = subprocess.run(
        [sys.executable, "-c", _MLFLOW_QUERY, uri, project],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=workdir,
        check=False,
    )
    for line in done.stdout.splitlines():
        if line.startswith("FAIRMIND-BASELINE "):
            data = json.loads(line.partition(" ")[2])
            return {m: {k: float(v) for k, v in metrics.items()} for m, metrics in data.items()}
    raise ValueError(f"MLflow did not answer: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
