"""Session-end time of the W&B provider against a bare ``wandb.init/finish`` loop (goal: <= 1.3x).

Both sides log the same offline runs (name, group, config, tags, summary, one table per scope,
the gate table and, with charts, one image per scope and column family: rates, accuracy, impact
ratio) with the same wandb settings, each in a fresh interpreter:

* fairmind: ``IsolatedProvider("wandb", ...).log(session)``, exactly what the plugin does at session
  end (child process, session handed over as JSON, skip checks, redaction, teardown);
* bare: a script that imports wandb and loops over the models itself.

    python benchmarks/bench_wandb.py            # 50 models, 5 rounds per side
    python benchmarks/bench_wandb.py --quick    # 10 models, 1 round

Rounds alternate which side goes first. The ratio is taken on the fastest round of each side (the
least disturbed by other load on the machine); medians and CPU seconds (user + system of the whole
process tree, wandb-core included) are printed beside it, as CPU time is what load disturbs least.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.result import GateResult, ModelResult, SessionResult

IMPL = "pytest_fairmind.providers.wandb:WandbProvider"
GOAL = 1.3

BARE = textwrap.dedent(
    """
    import json, os, sys, tempfile
    import wandb
    from pytest_fairmind.plots import group_charts_png

    spec = json.load(open(sys.argv[1]))
    root, plots = spec["root"], spec["plots"]
    scratch = tempfile.mkdtemp()
    for m in spec["models"]:
        run = wandb.init(
            project=spec["project"], name=m["name"], group=spec["session"], job_type="fairness",
            config=m["params"], tags=m["tags"], id=m["id"], reinit="create_new", dir=root, mode="offline",
            settings=wandb.Settings(
                console="off", silent=True, quiet=True, disable_git=True, disable_code=True,
                save_code=False, disable_job_creation=True, x_disable_stats=True, x_disable_meta=True,
                x_disable_machine_info=True, x_save_requirements=False,
            ),
        )
        media = {}
        for i, (scope, rows) in enumerate(m["groups"].items()):
            columns = ["sex", *(k for k in rows[0] if k not in ("group", "ci"))]
            data = [[r["group"]["sex"], *(r.get(c) for c in columns[1:])] for r in rows]
            media[f"{scope}/by_group"] = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
            if plots:
                base = os.path.join(scratch, f"{m['name']}-{i}")
                for family, png in group_charts_png(scope, rows, base, title=f"{m['name']}: {scope}"):
                    media[f"{scope}/by_group_chart.{family}"] = wandb.Image(png)
        gates = m["gates"]
        media["fairmind/gates"] = wandb.Table(
            columns=list(gates[0]), data=[list(g.values()) for g in gates], allow_mixed_types=True
        )
        run.log(media)
        run.summary.update(
            {**m["metrics"], "fairmind.verdict": m["verdict"], "fairmind.session": spec["session"]}
        )
        run.finish()
    wandb.teardown()
    """
)


def make_session(n_models: int, session_id: str) -> SessionResult:
    models = {}
    for i in range(n_models):
        name = f"model-{i:03d}"
        metrics = {
            f"{scope}/{metric}": 0.01 * (i % 50) + 0.1 * k
            for k, metric in enumerate(
                (
                    "demographic_parity_difference",
                    "demographic_parity_ratio",
                    "equalized_odds_difference",
                    "equalized_odds_ratio",
                    "accuracy",
                    "selection_rate",
                )
            )
            for scope in ("sex", "race")
        }
        groups = {
            scope: [
                {
                    "group": {"sex": g},
                    "count": 100 + j,
                    "selection_rate": 0.3 + 0.1 * j,
                    "true_positive_rate": 0.7,
                    "false_positive_rate": 0.1 * j,
                    "accuracy": 0.8,
                    "impact_ratio": (0.3 + 0.1 * j) / 0.5,
                    "ci": {"selection_rate": [0.25 + 0.1 * j, 0.35 + 0.1 * j]},
                }
                for j, g in enumerate(("A", "B", "C"))
            ]
            for scope in ("sex", "race")
        }
        models[name] = ModelResult(
            name=name,
            metrics=metrics,
            params={"threshold": "0.5", "family": "gbm", "calibrated": True},
            tags={"team": "risk"},
            groups=groups,
            gates=[
                GateResult(
                    "sex/demographic_parity_difference<=0.2",
                    "sex/demographic_parity_difference",
                    0.1,
                    "<=0.2",
                    "pass",
                    evidence="interval",
                    ci_low=0.0,
                    ci_high=0.18,
                    p_value=0.01,
                    p_adjusted=0.02,
                    alpha=0.025,
                ),
                GateResult("accuracy>=0.7", "accuracy", 0.8, ">=0.7", "pass"),
            ],
            verdict="pass" if i % 3 else "fail",
        )
    return SessionResult(
        id=session_id, project="fairmind-bench", started="2026-01-01T00:00:00+00:00", models=models
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sandbox(tmp: str) -> dict[str, str]:
    env = {
        "WANDB_DIR": os.path.join(tmp, "wb"),
        "WANDB_DATA_DIR": os.path.join(tmp, "data"),
        "WANDB_CACHE_DIR": os.path.join(tmp, "cache"),
        "WANDB_CONFIG_DIR": os.path.join(tmp, "config"),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_ERROR_REPORTING": "false",
    }
    os.makedirs(env["WANDB_DIR"], exist_ok=True)
    return env


def time_fairmind(n_models: int, plots: bool, tag: str) -> tuple[float, float]:
    # Imported here, after pytest_fairmind.providers: importing isolation first hits an import cycle.
    from pytest_fairmind.isolation import IsolatedProvider

    with tempfile.TemporaryDirectory(prefix="bench-wandb-") as tmp:
        saved = dict(os.environ)
        os.environ.update(_sandbox(tmp))
        try:
            provider = IsolatedProvider(
                "wandb", IMPL, ProviderSettings(wandb_mode="offline", plots=plots, workdir=tmp)
            )
            session = make_session(n_models, f"bench-{tag}")
            cpu = _children_cpu()
            started = time.perf_counter()
            outcome = provider.log(session, timeout=600)
            elapsed = time.perf_counter() - started
            cpu = _children_cpu() - cpu
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if not outcome.ok or len(outcome.runs) != n_models:
            raise SystemExit(f"fairmind run failed: {outcome.error}")
        return elapsed, cpu


def time_bare(n_models: int, plots: bool, tag: str) -> tuple[float, float]:
    from pytest_fairmind.plots import gate_entry
    from pytest_fairmind.providers.wandb import run_id, run_tags

    session = make_session(n_models, f"bench-{tag}")
    with tempfile.TemporaryDirectory(prefix="bench-wandb-") as tmp:
        env = {**os.environ, **_sandbox(tmp)}
        spec = {
            "root": env["WANDB_DIR"],
            "plots": plots,
            "project": session.project,
            "session": session.id,
            "models": [
                {
                    "name": m.name,
                    "id": run_id(session.id, m.name),
                    "params": m.params,
                    "tags": run_tags(m),
                    "metrics": {k: (v if math.isfinite(v) else None) for k, v in m.metrics.items()},
                    "verdict": m.verdict,
                    "groups": m.groups,
                    "gates": [gate_entry(g) for g in m.gates],
                }
                for m in session.models.values()
            ],
        }
        spec_path = os.path.join(tmp, "spec.json")
        with open(spec_path, "w", encoding="utf-8") as fh:
            json.dump(spec, fh)
        cpu = _children_cpu()
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", BARE, spec_path], env=env, capture_output=True, text=True
        )
        elapsed = time.perf_counter() - started
        cpu = _children_cpu() - cpu
        if proc.returncode != 0:
            raise SystemExit(f"bare loop failed:\n{proc.stderr[-2000:]}")
        return elapsed, cpu


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10 models, one round")
    parser.add_argument("--models", type=int, default=None, help="models per session (default 50)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per side (default 5)")
    args = parser.parse_args()
    n_models = args.models or (10 if args.quick else 50)
    rounds = args.rounds or (1 if args.quick else 5)

    print(f"W&B offline, {n_models} models, {rounds} round(s) per side, goal <= {GOAL}x (fastest rounds)")
    header = f"{'scenario':<16} {'fairmind':>9} {'bare loop':>10} {'ratio':>6}"
    print(f"{header}   {'wall medians':>17}   {'CPU (fairmind / bare)':>23}")
    worst = 0.0
    for plots in (False, True):
        ours: list[tuple[float, float]] = []
        bare: list[tuple[float, float]] = []
        for r in range(rounds):
            # Alternate the order so neither side always runs on a warmer disk cache.
            if r % 2:
                bare.append(time_bare(n_models, plots, f"b{r}"))
                ours.append(time_fairmind(n_models, plots, f"f{r}"))
            else:
                ours.append(time_fairmind(n_models, plots, f"f{r}"))
                bare.append(time_bare(n_models, plots, f"b{r}"))
        mine, theirs = min(w for w, _ in ours), min(w for w, _ in bare)
        ratio = mine / theirs
        worst = max(worst, ratio)
        label = "tables + charts" if plots else "tables"
        medians = (
            f"{statistics.median(w for w, _ in ours):.2f}s / {statistics.median(w for w, _ in bare):.2f}s"
        )
        cpu_ours, cpu_bare = min(c for _, c in ours), min(c for _, c in bare)
        cpu = f"{cpu_ours:.2f}s / {cpu_bare:.2f}s {cpu_ours / cpu_bare:.2f}x"
        print(f"{label:<16} {mine:>8.2f}s {theirs:>9.2f}s {ratio:>5.2f}x   {medians:>17}   {cpu:>23}")
    print("ok" if worst <= GOAL else f"over the goal ({worst:.2f}x > {GOAL}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
