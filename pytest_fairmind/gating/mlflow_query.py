"""The ``mlflow`` baseline, asked in a child process (see docs/baseline.md).

``python -m pytest_fairmind.gating.mlflow_query URI EXPERIMENT EXCLUDE_SESSION`` prints one line,
``FAIRMIND-BASELINE {model: {key: value}}``: each model's metrics, each from the newest finished run
(tag ``fairmind.model``) that has it and did not fail a regression rule on it, the same rule as
the ``last`` source. Only runs whose verdict is ``fail`` can have failed one; their
``fairmind/result.json`` artifact says which keys.

Started by :mod:`pytest_fairmind.gating.sources` under a timeout, so the pytest process never
imports mlflow and MLflow's warnings never meet the user's filters. When the session's MLflow
provider has a warm child (it imported mlflow while the tests ran), :func:`bounded_query` runs
there instead, and no process is started for the query.
"""

from __future__ import annotations

import json
import sys
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

from pytest_fairmind import report
from pytest_fairmind.gating.baseline import merge_older, regressed_keys

PREFIX = "FAIRMIND-BASELINE "
_MAX_RUNS = 5000  # runs looked at, newest first
_MAX_DOWNLOADS = 50  # result.json artifacts read to find regressed keys
_PAGE = 1000


class _Query:
    def __init__(self, client: Any, exclude_session: str) -> None:
        self.client = client
        self.exclude_session = exclude_session
        self.downloads = 0
        self.values: dict[str, dict[str, float]] = {}

    def regressed(self, run_id: str, model: str) -> set[str]:
        """Keys this run's model failed a regression rule on (nothing once past the download cap)."""
        self.downloads += 1
        if self.downloads > _MAX_DOWNLOADS:
            return set()
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = self.client.download_artifacts(run_id, "fairmind/result.json", tmp)
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)["result"]
            return regressed_keys(report.model_from_dict(model, data))
        except Exception:  # no artifact, an unreadable one: nothing known to skip
            return set()

    def take(self, run: Any) -> None:
        tags = run.data.tags
        model = tags.get("fairmind.model")
        if not model or tags.get("fairmind.session") == self.exclude_session:
            return
        failed = tags.get("fairmind.verdict") == "fail"
        skip = self.regressed(run.info.run_id, model) if failed else set()
        merge_older(self.values.setdefault(model, {}), run.data.metrics, skip=skip)


def query(uri: str, experiment: str, exclude_session: str) -> dict[str, dict[str, float]]:
    """Each model's baseline values from the finished runs of ``experiment``, newest first."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    work = _Query(client, exclude_session)
    seen, token = 0, None
    while found is not None and seen < _MAX_RUNS:
        page = client.search_runs(
            [found.experiment_id],
            filter_string="attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC", "attributes.end_time DESC"],
            max_results=_PAGE,
            page_token=token,
        )
        for run in page:
            seen += 1
            work.take(run)
        token = page.token
        if not token:
            break
    return work.values


def bounded_query(
    uri: str, experiment: str, exclude_session: str, timeout: float
) -> dict[str, dict[str, float]]:
    """:func:`query` as a provider child runs it: no retries, no request longer than ``timeout``,
    nothing printed (the environment of the query process, set for the call only)."""
    from pytest_fairmind.providers.mlflow import client_environ, patched_environ, quiet_mlflow

    with patched_environ(client_environ(timeout, retries=0)), quiet_mlflow():
        return query(uri, experiment, exclude_session)


def main(argv: Sequence[str]) -> int:
    warnings.simplefilter("ignore")
    uri, experiment, exclude_session = argv
    print(PREFIX + json.dumps(query(uri, experiment, exclude_session)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
