"""Group-fairness metrics for binary classifiers: fairlearn's definitions, computed in one pass.

Every metric here is a function of the per-group confusion cells (groups x {TN, FP, FN, TP}), so
:func:`assess` factorises each sensitive feature once, folds features and labels into one integer
code per row (mixed radix) and counts all cells with ``np.bincount``. Bootstrap intervals reuse the
same fact: a row bootstrap of unweighted data is a multinomial resample of those cell counts.

Modules, in pipeline order: ``inputs`` (arguments to arrays), ``features`` (sensitive features to
codes), ``labels`` (``pos_label`` rules), ``counting`` (the one counting pass), ``table`` (the
metrics as data), ``rates`` (the table evaluated), ``messages`` (warnings), ``bootstrap``
(replicates), ``intervals`` (the interval method), ``evidence`` (payloads for interval gates),
``result`` (:class:`FairnessResult`) and ``pipeline`` (:func:`assess`). Definitions:
docs/metrics.md.

pandas is imported only when the caller passed pandas objects (or calls ``to_pandas()``).
"""

from __future__ import annotations

from pytest_fairmind.metrics.inputs import GroupLabel
from pytest_fairmind.metrics.pipeline import assess
from pytest_fairmind.metrics.result import FairnessResult
from pytest_fairmind.metrics.table import AGGREGATE_METRICS, GROUP_METRICS

__all__ = [
    "AGGREGATE_METRICS",
    "GROUP_METRICS",
    "FairnessResult",
    "GroupLabel",
    "assess",
]
