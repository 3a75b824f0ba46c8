"""CI gates and regression rules: from expressions to results and the session's exit status.

- :mod:`~pytest_fairmind.gating.grammar`: parsing ``[MODEL:]METRIC OP NUMBER`` and
  ``[MODEL:]METRIC ~ TOLERANCE[%]`` into :class:`Gate` (docs/gates.md);
- :mod:`~pytest_fairmind.gating.directions`: which way is better for a metric;
- :mod:`~pytest_fairmind.gating.baseline`: comparing with a baseline, and what to say when there
  is none (docs/baseline.md);
- :mod:`~pytest_fairmind.gating.sources`: reading a baseline from a file, the history (``last``) or
  MLflow (:mod:`~pytest_fairmind.gating.mlflow_query`, in a child process);
- :mod:`~pytest_fairmind.gating.evaluate`: gates applied to each model's metrics;
- :mod:`~pytest_fairmind.gating.evidence`: interval gates (pass, fail or inconclusive on bootstrap
  evidence, Holm/Bonferroni across the session's family; docs/evidence.md);
- :mod:`~pytest_fairmind.gating.pipeline`: :func:`run`, the one pipeline of the plugin's session
  end and ``fairmind check``: gates + baseline + evidence + strict, inconclusive and gate-action
  policies -> exit status.

Pure (no pytest import).
"""

from __future__ import annotations

from pytest_fairmind.gating.baseline import Baseline
from pytest_fairmind.gating.evaluate import evaluate, failed_gates
from pytest_fairmind.gating.grammar import Gate, GateSyntaxError, parse_gate
from pytest_fairmind.gating.pipeline import GateRun, escalate, run
from pytest_fairmind.gating.sources import BaselineError, BaselineRequest, check_source, read_baseline

__all__ = [
    "Baseline",
    "BaselineError",
    "BaselineRequest",
    "Gate",
    "GateRun",
    "GateSyntaxError",
    "check_source",
    "escalate",
    "evaluate",
    "failed_gates",
    "parse_gate",
    "read_baseline",
    "run",
]
