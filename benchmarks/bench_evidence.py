"""Benchmark of interval gates at session end: ``gating.run(..., evidence="interval")`` against the
same gates on point values (``evidence="point"``), on the same aggregated results.

The case of the speed target: 50 interval gates, payloads recorded by ``assess(n_boot=2000)``, 10
groups per gate. Two layouts: 10 models x 5 gated keys of one scope each (the target's case: a
scope's gates share one resample set), and 50 models x 1 gated key (50 resample sets, for scale).
Each contender runs on fresh copies of the results (gating attaches results in place), measured
in turns, best of several runs; the copies are made outside the timing. The target is the time
interval gates add: <= 1 s.

Run: ``python benchmarks/bench_evidence.py`` (``--n-boot N``, ``--groups G``, ``--repeat R``;
``--quick`` for fewer repeats).
"""

from __future__ import annotations

import argparse
import copy
import gc
import time
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from pytest_fairmind import gating
from pytest_fairmind.metrics import assess
from pytest_fairmind.result import ModelResult

TARGET_ADDED_S = 1.0
KEYS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "selection_rate_ratio",
)
GATES = (
    "demographic_parity_difference <= 0.1",
    "demographic_parity_ratio >= 0.8",
    "equalized_odds_difference <= 0.2",
    "equal_opportunity_difference <= 0.2",
    "selection_rate_ratio >= 0.8",
)


def model(name: str, keys: Sequence[str], groups: int, n_boot: int, seed: int) -> ModelResult:
    """A model with one scope recorded by ``assess`` (``groups`` groups of 2000 rows)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([f"g{i}" for i in range(groups)], 2000)
    y = rng.integers(0, 2, labels.size)
    pred = (rng.random(labels.size) < np.repeat(rng.uniform(0.4, 0.5, groups), 2000)).astype(int)
    result = assess(y, pred, sensitive_features={"sex": labels}, n_boot=n_boot)
    metrics = {f"sex/{k}": float(v) for k, v in result.metrics().items() if isinstance(v, (int, float))}
    payload = result.evidence
    assert payload is not None and all(f"sex/{k}" in payload["keys"] for k in keys)
    return ModelResult(name, metrics=metrics, evidence={"sex": payload})


def layout(models: int, per_model: int, groups: int, n_boot: int) -> tuple[dict[str, ModelResult], list[str]]:
    found = {f"m{i}": model(f"m{i}", KEYS[:per_model], groups, n_boot, i) for i in range(models)}
    return found, list(GATES[:per_model])


def timed(base: dict[str, ModelResult], gates: list[gating.Gate], evidence: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        models = copy.deepcopy(base)
        gc.collect()
        start = time.perf_counter()
        gating.run(gates, models, evidence=evidence)
        best = min(best, time.perf_counter() - start)
    return best


def side_by_side(contenders: dict[str, Callable[[], float]], repeat: int) -> dict[str, float]:
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(repeat):
        for name, fn in contenders.items():
            best[name] = min(best[name], fn())
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeat = 2 if args.quick else args.repeat
    print(f"interval gates at session end: 50 gates, n_boot={args.n_boot}, {args.groups} groups per gate")
    for models, per_model in ((10, 5), (50, 1)):
        base, exprs = layout(models, per_model, args.groups, args.n_boot)
        gates = [gating.parse_gate(e) for e in exprs]
        check = copy.deepcopy(base)
        run = gating.run(gates, check, evidence="interval")
        assert run.family is not None and run.family.size == 50, run.family
        outcomes: dict[str, int] = {}
        for m in check.values():
            for g in m.gates:
                outcomes[g.outcome] = outcomes.get(g.outcome, 0) + 1
        contenders: dict[str, Callable[[], float]] = {
            "point": partial(timed, base, gates, "point", 1),
            "interval": partial(timed, base, gates, "interval", 1),
        }
        best = side_by_side(contenders, repeat)
        added = best["interval"] - best["point"]
        if per_model > 1:  # the target's case: one resample set per scope, shared by its gates
            verdict = "ok" if added <= TARGET_ADDED_S else "OVER TARGET"
            target = f"target <= {TARGET_ADDED_S:g} s: {verdict}"
        else:
            target = f"{models} resample sets, none shared: outside the target"
        print(
            f"  {models} models x {per_model} key(s): point {best['point'] * 1e3:.1f} ms, "
            f"interval {best['interval'] * 1e3:.1f} ms, added {added:.3f} s ({target}); "
            f"interval / point = {best['interval'] / best['point']:.1f}x; outcomes {outcomes}"
        )


if __name__ == "__main__":
    main()
