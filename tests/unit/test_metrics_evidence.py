"""Evidence payloads (metrics.evidence): what each assess() scope records for interval gates, and the
distributions redrawn from it."""

from __future__ import annotations

import json
import math
import zlib
from typing import Any

import numpy as np
import pytest
from helpers import strict_loads

from pytest_fairmind.metrics import assess
from pytest_fairmind.metrics.evidence import GRID_PROBS, MAX_REDRAW, distribution, distributions
from pytest_fairmind.metrics.intervals import METHOD


def _labels(n: int = 4000, groups: int = 3, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n)
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.75 - 0.05 * g, y, 1 - y)
    return {"y_true": y, "y_pred": p, "sensitive_features": g}


def _roundtrip(payload: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = strict_loads(json.dumps(payload))  # strict: no NaN or Infinity inside
    return loaded


def test_no_payload_without_n_boot() -> None:
    assert assess(**_labels(300)).evidence is None


def test_unweighted_labels_carry_cells() -> None:
    data = _labels()
    result = assess(**data, n_boot=300, min_group_size=5)
    payload = result.evidence
    assert payload is not None and payload["kind"] == "cells" and payload["version"] == 1
    assert payload["method"] == METHOD and payload["n_boot"] == 300 and payload["min_group_size"] == 5
    assert payload["keys"] == [f"sf0/{name}" for name in result.ci if not math.isnan(result.ci[name][0])]
    y, p, g = data["y_true"], data["y_pred"], data["sensitive_features"]
    expected = [
        [int(np.sum((g == k) & (y == t) & (p == q))) for t in (0, 1) for q in (0, 1)] for k in range(3)
    ]
    assert payload["cells"] == expected  # TN, FP, FN, TP per group, in the groups' order
    assert len(json.dumps(payload)) < 2500  # a few numbers per group
    assert _roundtrip(payload) == payload


def test_cells_redraw_is_exact_and_reproducible() -> None:
    payload = assess(**_labels(), n_boot=400).evidence
    assert payload is not None
    key = "sf0/equalized_odds_difference"
    seed = zlib.crc32(f"m\x00{key}".encode())
    a = distribution(payload, key, resolution=1 / 400, seed=seed)
    b = distribution(_roundtrip(payload), key, resolution=1 / 400, seed=seed)
    c = distribution(payload, key, resolution=1 / 400, seed=seed + 1)
    for bound in (0.0, 0.05, 0.1, 0.2):
        for side in ("le", "ge"):
            assert a.p_value(bound, side) == b.p_value(bound, side)
    assert a.one_sided(0.01, "le") == b.one_sided(0.01, "le")
    assert a.interval(0.9) != c.interval(0.9)  # another seed, other replicates
    assert a.n_boot == 400 and a.method == METHOD and a.resolution == pytest.approx(1 / 401)
    fine = distribution(payload, key, resolution=1e-4, seed=seed)
    assert fine.n_boot == 10_000 and fine.resolution == pytest.approx(1 / 10_001)
    assert distribution(payload, key, resolution=1e-9, seed=seed).n_boot == MAX_REDRAW


@pytest.mark.parametrize(
    "name", ["equalized_odds_difference", "demographic_parity_ratio", "accuracy", "f1_score_group_min"]
)
def test_one_sided_ends_are_the_recorded_interval(name: str) -> None:
    """one_sided((1 - ci) / 2) from a redraw equals the recorded ci within Monte-Carlo error."""
    result = assess(**_labels(), n_boot=2000, ci=0.9)
    assert result.evidence is not None
    dist = distribution(result.evidence, f"sf0/{name}", resolution=1 / 2001, seed=11)
    low, high = result.ci[name]
    tolerance = 0.08 * (high - low) + 1e-12
    assert dist.one_sided(0.05, "ge") == pytest.approx(low, abs=tolerance)
    assert dist.one_sided(0.05, "le") == pytest.approx(high, abs=tolerance)
    # The p-value at a recorded end is the level of that end (unless the end is the metric's own
    # limit: a ratio's upper end clamped at 1).
    assert dist.p_value(low, "le") == pytest.approx(0.05, abs=0.02)
    if not (name.endswith("_ratio") and high == 1.0):
        assert dist.p_value(high, "ge") == pytest.approx(0.05, abs=0.02)


def test_weighted_rows_and_scores_carry_a_grid() -> None:
    data = _labels(3000)
    rng = np.random.default_rng(3)
    score = np.clip(0.4 * data["y_true"] + rng.normal(0.3, 0.2, 3000), 0, 1)
    weighted = assess(**data, sample_weight=rng.uniform(0.5, 2, 3000), n_boot=300).evidence
    assert weighted is not None and weighted["kind"] == "grid"
    assert weighted["probs"] == list(GRID_PROBS) and len(GRID_PROBS) == 39
    mixed = assess(**data, y_score=score, n_boot=300).evidence
    assert mixed is not None and mixed["kind"] == "mixed"
    assert mixed["cells"]["kind"] == "cells" and mixed["grid"]["kind"] == "grid"
    assert "sf0/roc_auc_score_difference" in mixed["grid"]["quantiles"]
    assert "sf0/equalized_odds_difference" in mixed["cells"]["keys"]
    for payload in (weighted, mixed):
        assert _roundtrip(payload) == payload
    grid = mixed["grid"]
    for key, q in grid["quantiles"].items():
        assert len(q) == len(GRID_PROBS) and q == sorted(q), key
    for comp in grid["components"].values():
        assert len(comp["adjust"]) == len(GRID_PROBS) and 2 <= len(comp["quantiles"]) <= 3


@pytest.mark.parametrize("task", ["scores", "weighted", "regression", "multiclass"])
def test_grid_distribution_matches_the_recorded_interval(task: str) -> None:
    rng = np.random.default_rng(4)
    n = 3000
    g = rng.integers(0, 3, n)
    y = rng.integers(0, 2, n)
    if task == "scores":
        score = np.clip(0.4 * y + rng.normal(0.3, 0.2, n), 0, 1)
        result, name = assess(y, sensitive_features=g, y_score=score, n_boot=400), "roc_auc_score_difference"
    elif task == "weighted":
        p = np.where(rng.random(n) < 0.7, y, 1 - y)
        w = rng.uniform(0.5, 2, n)
        result, name = (
            assess(y, p, sensitive_features=g, sample_weight=w, n_boot=400),
            "equalized_odds_difference",
        )
    elif task == "regression":
        t = rng.normal(size=n)
        result = assess(
            t, t + rng.normal(0, 1 + 0.1 * g), sensitive_features=g, task="regression", n_boot=400
        )
        name = "mean_absolute_error_group_max"
    else:
        y3 = rng.integers(0, 3, n)
        p3 = np.where(rng.random(n) < 0.7, y3, rng.integers(0, 3, n))
        result = assess(y3, p3, sensitive_features=g, task="multiclass", per_class=True, n_boot=400)
        name = "class.1/true_positive_rate_difference"
    assert result.evidence is not None
    dist = distribution(result.evidence, f"sf0/{name}", resolution=1e-6, seed=0)
    assert dist.resolution == pytest.approx(max(GRID_PROBS[0], 1 / 401))
    low, high = result.ci[name]
    width = high - low
    assert dist.one_sided(0.025, "ge") == pytest.approx(low, abs=0.05 * width)
    assert dist.one_sided(0.025, "le") == pytest.approx(high, abs=0.05 * width)
    assert dist.p_value(high + width, "ge") == pytest.approx(GRID_PROBS[0])  # cannot resolve further
    assert dist.p_value(high + width, "le") == 1.0


def test_distributions_of_a_scope_equal_the_key_by_key_ones() -> None:
    data = _labels(2000)
    score = np.clip(0.3 * data["y_true"] + np.random.default_rng(5).random(2000) * 0.7, 0, 1)
    payload = assess(**data, y_score=score, n_boot=300).evidence
    assert payload is not None and payload["kind"] == "mixed"
    keys = ["sf0/equalized_odds_difference", "sf0/roc_auc_score_group_min", "sf0/no_such", "sf0/accuracy"]
    found = distributions(payload, keys, resolution=1 / 300, seed=9)
    assert list(found) == [k for k in keys if k != "sf0/no_such"]
    for key, dist in found.items():
        alone = distribution(_roundtrip(payload), key, resolution=1 / 300, seed=9)
        assert dist.interval(0.9) == alone.interval(0.9)
        assert dist.p_value(0.1, "le") == alone.p_value(0.1, "le")


def test_unknown_key_raises_key_error() -> None:
    payload = assess(**_labels(500), n_boot=50).evidence
    assert payload is not None
    with pytest.raises(KeyError):
        distribution(payload, "sf0/no_such_metric", resolution=0.01, seed=0)
    with pytest.raises(KeyError):
        distribution(payload, "other/equalized_odds_difference", resolution=0.01, seed=0)
