"""MLflow provider speed, side by side in one run.

    python benchmarks/bench_mlflow.py            # 50 models x 200 metrics + 20 params, SQLite + server
    python benchmarks/bench_mlflow.py --quick    # 1 repeat, the per-call baseline on a fifth of the models
    python benchmarks/bench_mlflow.py --no-server
    python benchmarks/bench_mlflow.py --artifacts  # group tables, gates, scans, charts (in-process)

Every contender runs in a fresh interpreter against a fresh SQLite store:

- ``bare``       a plain ``MlflowClient`` loop: create_run, one log_batch, set_terminated per model,
- ``fairmind``   ``MlflowProvider.log`` on the session (what the provider child process does:
                 experiment lookup, idempotence search, batches, ``fairmind/result.json``, ...),
- ``isolated``   the same through ``IsolatedProvider`` (what the plugin does: payload file, child
                 process with its own imports, outcome file),
- ``per-call``   create_run, one log_metric / log_param per value, set_terminated per model.

Two times per contender, each the best of the repeats (noise only ever adds time):

- ``store ready``: from the moment mlflow is imported and the store's schema exists until the last
  run is finished. This isolates the logging strategy; the targets of issue 4 apply here
  (fairmind <= 1.5x bare, >= 10x faster than per-call).
- ``from scratch``: what a session end really costs, a fresh process importing mlflow and creating
  the store (about 3 s on a quiet machine, the same for everyone) plus the logging. For ``bare``,
  ``fairmind`` and ``per-call`` the fresh process's wall time; for ``isolated`` the time pytest
  waits in ``IsolatedProvider.log`` (its own process never imports mlflow: the child does).

CPU time of the process tree is shown too: on a shared machine it moves far less than wall time.
With ``--quick`` the per-call contender logs a fifth of the models and its logging time is scaled
up (it is linear in the models).

Against a real ``mlflow server`` the HTTP requests per model are counted from its access log.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the server helpers of the tests (tests/helpers.py)

CHILD_ENV = {"PYTHONWARNINGS": "ignore", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
IMPL = "pytest_fairmind.providers.mlflow:MlflowProvider"


def build_session(n_models: int, n_metrics: int, n_params: int) -> Any:
    """What `fairmind.record` produces: metrics and params only (no group tables, no charts)."""
    from pytest_fairmind.result import ModelResult, SessionResult

    session = SessionResult(
        id=f"bench-{os.getpid()}-{time.time_ns()}",
        project="bench",
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:01:00+00:00",
    )
    for m in range(n_models):
        name = f"model_{m:03d}"
        session.models[name] = ModelResult(
            name=name,
            metrics={f"scope_{i % 5}/metric_{i:03d}": (m * 1000 + i) / 997 for i in range(n_metrics)},
            params={f"param_{i:02d}": f"value-{m}-{i}" for i in range(n_params)},
        )
    return session


# --------------------------------------------------------------------------- children


def child(mode: str, uri: str, n_models: int, n_metrics: int, n_params: int) -> dict[str, float]:
    """One contender, inside its fresh interpreter: returns its setup and logging times."""
    t0 = time.perf_counter()
    session = build_session(n_models, n_metrics, n_params)
    from pytest_fairmind.isolation import IsolatedProvider
    from pytest_fairmind.providers.base import ProviderSettings
    from pytest_fairmind.providers.mlflow import MlflowProvider

    settings = ProviderSettings(project="bench", mlflow_uri=uri)
    if mode == "isolated":
        # What pytest waits for at session end: its process never imports mlflow; the provider's
        # child does, and creates the store.
        t1 = time.perf_counter()
        outcome = IsolatedProvider("mlflow", IMPL, settings).log(session, timeout=600)
        t2 = time.perf_counter()
        if not outcome.ok or len(outcome.runs) != n_models:
            raise SystemExit(f"provider failed: {outcome.error}")
        return {"setup": t1 - t0, "log": t2 - t1}

    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=uri)
    if uri.startswith("sqlite:"):
        client.search_experiments(max_results=1)  # creates the store's schema: fixed cost, not timed
    t1 = time.perf_counter()
    if mode == "fairmind":
        outcome = MlflowProvider(settings).log(session, timeout=600)
        if not outcome.ok or len(outcome.runs) != n_models:
            raise SystemExit(f"provider failed: {outcome.error}")
    else:
        experiment = client.get_experiment_by_name("bench")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment("bench")
        stamp = int(time.time() * 1000)
        for model in session.models.values():
            run_id = client.create_run(experiment_id, run_name=model.name).info.run_id
            if mode == "bare":
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, stamp, 0) for k, v in model.metrics.items()],
                    params=[Param(k, str(v)) for k, v in model.params.items()],
                )
            else:
                for k, v in model.metrics.items():
                    client.log_metric(run_id, k, v, timestamp=stamp)
                for k, v in model.params.items():
                    client.log_param(run_id, k, str(v))
            client.set_terminated(run_id)
    t2 = time.perf_counter()
    return {"setup": t1 - t0, "log": t2 - t1}


def run_child(mode: str, uri: str | None, n_models: int, n_metrics: int, n_params: int) -> dict[str, float]:
    """One contender in a fresh interpreter and a fresh store; wall and CPU time measured from here."""
    with tempfile.TemporaryDirectory(prefix="fairmind-bench-") as tmp:
        store = uri or f"sqlite:///{tmp}/mlflow.db"
        cmd = [sys.executable, __file__, "--child", mode, store, str(n_models), str(n_metrics), str(n_params)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, cwd=tmp, env={**os.environ, **CHILD_ENV}, capture_output=True, text=True, check=False
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    # The isolated provider's own child is included: it is waited for inside this process tree.
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


# --------------------------------------------------------------------------- report


def best(results: list[dict[str, float]], key: str) -> float:
    return min(r[key] for r in results)


def sqlite_part(args: argparse.Namespace) -> None:
    n, k, p = args.models, args.metrics, args.params
    per_call_models = max(1, n // 5) if args.quick else n
    scale = n / per_call_models
    print(f"SQLite store, {n} models x {k} metrics + {p} params, best of {args.repeat} (fresh process each)")
    rows: dict[str, list[dict[str, float]]] = {"bare": [], "fairmind": [], "isolated": [], "per-call": []}
    for _ in range(args.repeat):  # interleaved, so drifting load hits every contender alike
        for mode in ("bare", "fairmind", "isolated"):
            rows[mode].append(run_child(mode, None, n, k, p))
    for _ in range(1 if args.quick else min(2, args.repeat)):
        got = run_child("percall", None, per_call_models, k, p)
        # Only the logging part grows with the models; setup is paid once whatever their number.
        rows["per-call"].append(
            {
                "setup": got["setup"],
                "log": got["log"] * scale,
                "wall": got["wall"] + got["log"] * (scale - 1),
                "cpu": got["cpu"] if scale == 1 else math.nan,  # setup and logging CPU cannot be told apart
            }
        )

    for name, results in rows.items():
        for r in results:
            # From scratch: a fresh process importing mlflow and creating the store, as the provider
            # child does at session end. For `isolated` it is the time pytest waits in log().
            r["scratch"] = r["log"] if name == "isolated" else r["wall"]
    bare_log, bare_scratch = best(rows["bare"], "log"), best(rows["bare"], "scratch")
    print(f"  {'':<11}{'store ready':>19}  {'from scratch':>18}")
    print(f"  {'contender':<11}{'logging s':>10}{'vs bare':>9}  {'s':>9}{'vs bare':>9}{'cpu s':>8}")
    for name, results in rows.items():
        log, scratch, cpu = (best(results, key) for key in ("log", "scratch", "cpu"))
        ready = "        -        -" if name == "isolated" else f"{log:>10.2f}{log / bare_log:>9.2f}"
        note = f"   (x{scale:g} of {per_call_models} models)" if name == "per-call" and scale != 1 else ""
        cpu_text = f"{cpu:>8.2f}" if math.isfinite(cpu) else f"{'-':>8}"
        print(f"  {name:<11}{ready}  {scratch:>9.2f}{scratch / bare_scratch:>9.2f}{cpu_text}{note}")
    fm_log, iso_scratch = best(rows["fairmind"], "log"), best(rows["isolated"], "scratch")
    pc_log, pc_scratch = best(rows["per-call"], "log"), best(rows["per-call"], "scratch")
    print(
        f"  fairmind / bare      store ready {fm_log / bare_log:.2f}, "
        f"from scratch (isolated) {iso_scratch / bare_scratch:.2f}   (target <= 1.5)"
    )
    print(
        f"  per-call / fairmind  store ready {pc_log / fm_log:.1f}x, "
        f"from scratch (isolated) {pc_scratch / iso_scratch:.1f}x   (target >= 10)"
    )


def server_part(args: argparse.Namespace) -> None:
    from helpers import start_mlflow_server, stop_mlflow_server

    n, k, p = args.models, args.metrics, args.params
    with tempfile.TemporaryDirectory(prefix="fairmind-bench-server-") as tmp:
        print("starting mlflow server ...", flush=True)
        server = start_mlflow_server(Path(tmp))
        try:
            print(f"mlflow server {server.uri}, {n} models x {k} metrics + {p} params")
            for mode in ("bare", "fairmind"):
                mark = server.mark()
                result = run_child(mode, server.uri, n, k, p)
                requests = server.requests_since(mark, settle=1.0)
                counts: dict[str, int] = {}
                for method, path, _status in requests:
                    endpoint = f"{method} {path.split('?')[0]}"
                    if "/mlflow-artifacts/artifacts/" in endpoint:
                        endpoint = f"{method} /api/2.0/mlflow-artifacts/artifacts/<run>/..."
                    counts[endpoint] = counts.get(endpoint, 0) + 1
                per_run = sum(
                    c for e, c in counts.items() if "/runs/search" not in e and "/experiments/" not in e
                )
                print(
                    f"  {mode:<9} logging {result['log']:.2f} s, {len(requests)} HTTP requests: "
                    f"{per_run / n:.2f} per model + {len(requests) - per_run} per session"
                )
                for endpoint, count in sorted(counts.items(), key=lambda kv: -kv[1]):
                    print(f"      {count:>5}  {endpoint}")
        finally:
            stop_mlflow_server(server.proc)


ARTIFACT_MODELS = 10


def artifacts_session(n_models: int) -> Any:
    """Models as ``assess`` and ``scan`` leave them: two crossed group tables (binary labels: three
    chart families), three gates with interval fields, a scan."""
    from pytest_fairmind.result import GateResult

    session = build_session(n_models, 50, 5)
    rows = [
        {"group": {"sex": s, "age": a}, "count": 100 + 10 * i, "selection_rate": 0.3 + 0.05 * i,
         "true_positive_rate": 0.7, "false_positive_rate": 0.1, "false_negative_rate": 0.3,
         "true_negative_rate": 0.9, "accuracy": 0.8, "balanced_accuracy": 0.8, "precision": 0.7,
         "recall": 0.7, "f1": 0.7, "zero_one_loss": 0.2, "impact_ratio": (0.3 + 0.05 * i) / 0.55,
         "ci": {"selection_rate": [0.25 + 0.05 * i, 0.35 + 0.05 * i]}}
        for i, (s, a) in enumerate((s, a) for s in ("F", "M") for a in ("<30", "30-60", ">60"))
    ]  # fmt: skip
    scan_rows = [
        {"conditions": {"sex": "F", "age": "<30"}, "count": 120, "value": 0.2, "complement_value": 0.5,
         "ratio": 0.4, "difference": -0.3, "p_value": 1e-6, "q_value": 1e-5, "significant": True}
    ] * 10  # fmt: skip
    for model in session.models.values():
        model.groups = {"sex.age": rows, "test/sex.age": rows}
        model.gates = [
            GateResult(f"g{i}<=0.1", f"scope_0/metric_{i:03d}", 0.05, "<=0.1", "pass", evidence="interval",
                       ci_low=0.0, ci_high=0.08, p_value=0.001, p_adjusted=0.003, alpha=0.0167)
            for i in range(3)
        ]  # fmt: skip
        model.scans = {"scan": {"metric": "selection_rate", "subgroups_tested": 11, "rows": scan_rows}}
    return session


def artifacts_part(args: argparse.Namespace) -> None:
    """Group tables, gates and scans with and without charts, against the bare loop, in one store."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    from pytest_fairmind.plots import chart_families
    from pytest_fairmind.providers.base import ProviderSettings
    from pytest_fairmind.providers.mlflow import MlflowProvider

    n = ARTIFACT_MODELS
    with tempfile.TemporaryDirectory(prefix="fairmind-bench-artifacts-") as tmp:
        os.chdir(tmp)
        uri = f"sqlite:///{tmp}/mlflow.db"
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)  # the schema: not timed
        experiment_id = client.create_experiment("bare")
        times: dict[str, float] = {}
        for repeat in range(args.repeat):
            t0 = time.perf_counter()
            session = artifacts_session(n)
            for model in session.models.values():
                run_id = client.create_run(experiment_id, run_name=model.name).info.run_id
                client.log_batch(
                    run_id,
                    metrics=[Metric(k, v, 0, 0) for k, v in model.metrics.items()],
                    params=[Param(k, str(v)) for k, v in model.params.items()],
                )
                client.set_terminated(run_id)
            times["bare"] = min(times.get("bare", math.inf), time.perf_counter() - t0)
            for plots in (False, True):
                session = artifacts_session(n)
                session.id += f"-{repeat}-{plots}"
                settings = ProviderSettings(project="bench", mlflow_uri=uri, plots=plots, workdir=tmp)
                t0 = time.perf_counter()
                outcome = MlflowProvider(settings).log(session, timeout=600)
                elapsed = time.perf_counter() - t0
                if not outcome.ok:
                    raise SystemExit(f"provider failed: {outcome.error}")
                key = "charts" if plots else "tables"
                times[key] = min(times.get(key, math.inf), elapsed)
    charts = n * 2 * len(chart_families(artifacts_session(1).models["model_000"].groups["sex.age"]))
    print(f"Artifacts, {n} models x 2 crossed group tables + 3 gates + a scan, best of {args.repeat}")
    print(f"  bare log_batch loop (no artifacts)    {times['bare']:.2f} s")
    print(
        f"  provider, tables/gates/scans          {times['tables']:.2f} s  "
        f"{times['tables'] / times['bare']:.2f}x bare"
    )
    print(
        f"  provider, + {charts} charts (3 families)   {times['charts']:.2f} s  "
        f"{times['charts'] / times['tables']:.2f}x without charts, "
        f"{(times['charts'] - times['tables']) / charts * 1000:.0f} ms a chart"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        mode, uri, n, k, p = sys.argv[2], sys.argv[3], *map(int, sys.argv[4:7])
        print(json.dumps(child(mode, uri, n, k, p)))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 repeat, per-call baseline on a fifth of the models"
    )
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--metrics", type=int, default=200)
    parser.add_argument("--params", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=None, help="repeats per contender (default 3, quick 1)")
    parser.add_argument("--no-server", action="store_true", help="skip the real-server part")
    parser.add_argument(
        "--artifacts", action="store_true", help="only the group tables, gates, scans and charts part"
    )
    args = parser.parse_args()
    args.repeat = args.repeat or (1 if args.quick else 3)
    if args.artifacts:
        artifacts_part(args)
        return
    sqlite_part(args)
    artifacts_part(args)
    if not args.no_server:
        server_part(args)


if __name__ == "__main__":
    main()
