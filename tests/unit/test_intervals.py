"""The interval method (metrics.intervals): extremum-aware percentile intervals and their coverage."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import rankdata

from pytest_fairmind.metrics import AGGREGATE_METRICS, assess, bootstrap, intervals, rates, table
from pytest_fairmind.metrics.intervals import Distribution, Sample

BINARY = table.BINARY


def _order_end(values: np.ndarray, alpha: float, side: str) -> float:
    """The reference one-sided end: the ceil((1 - alpha)(B + 1))-th order statistic."""
    v = np.sort(values)
    rank = min(len(v), max(1, math.ceil((1 - alpha) * (len(v) + 1) - 1e-9)))
    return float(v[rank - 1] if side == "le" else v[len(v) - rank])


def _tied_max(rng: np.random.Generator, b: int = 4000) -> Sample:
    comps = rng.normal(0.1, 0.02, size=(2, b))
    lowest = intervals.lowest_shares(comps, "le")
    return Sample("max", np.array([0.5, 0.5]), comps, comps.max(axis=0), 0.0, math.inf, lowest)


def _min_p_level(values: np.ndarray, alpha: float) -> float:
    """Reference Westfall-Young level: the alpha-quantile over replicates of the smallest share
    (k + 1) / (B + 1) at or below the replicate, over components."""
    b = values.shape[1]
    shares = np.vstack([(rankdata(v, method="max") + 1) / (b + 1) for v in values])
    return float(np.quantile(shares.min(axis=0), alpha))


def test_max_of_two_components_takes_min_p_low_and_componentwise_high() -> None:
    sample = _tied_max(np.random.default_rng(1))
    dist = Distribution.of(sample)
    alpha = 0.025
    gamma = _min_p_level(sample.values, alpha)
    assert gamma == pytest.approx(1 - math.sqrt(1 - alpha), rel=0.2)  # independent: ~ alpha / 2
    low = dist.one_sided(alpha, "ge")
    below = max(_order_end(c, gamma * 0.85, "ge") for c in sample.values)
    above = max(_order_end(c, gamma * 1.15, "ge") for c in sample.values)
    assert below <= low <= above
    high = max(_order_end(c, alpha, "le") for c in sample.values)
    assert dist.one_sided(alpha, "le") == pytest.approx(high)
    assert dist.interval(0.95) == pytest.approx((dist.one_sided(alpha, "ge"), high))
    # Both ends lie below the plain percentile ends of the max: the bias of a max is corrected.
    assert high < _order_end(sample.value, alpha, "le")
    assert low < _order_end(sample.value, alpha, "ge")


def test_correlated_components_need_less_adjustment() -> None:
    """Two identical components: min-p needs no correction (Bonferroni would halve the level)."""
    rng = np.random.default_rng(8)
    one = rng.normal(0.1, 0.02, 4000)
    both = np.vstack([one, one])
    sample = Sample(
        "max", np.array([0.5, 0.5]), both, one, 0.0, math.inf, intervals.lowest_shares(both, "le")
    )
    dist = Distribution.of(sample)
    assert dist.one_sided(0.025, "ge") == pytest.approx(_order_end(one, 0.025, "ge"), abs=2e-4)


def test_p_values_are_dual_to_the_ends() -> None:
    sample = _tied_max(np.random.default_rng(2))
    dist = Distribution.of(sample)
    for alpha in (0.01, 0.025, 0.1):
        low, high = dist.one_sided(alpha, "ge"), dist.one_sided(alpha, "le")
        # At the lower end the evidence against "metric <= bound" is just alpha (Bonferroni over 2).
        assert dist.p_value(low, "le") == pytest.approx(alpha, abs=3 / 4000)
        assert dist.p_value(low - 0.01, "le") < alpha < dist.p_value(low + 0.01, "le")
        assert dist.p_value(high, "ge") == pytest.approx(alpha, abs=3 / 4000)
    assert dist.p_value(-1.0, "le") == pytest.approx(1 / 4001)  # (0 + 1) / (B + 1): the resolution
    assert dist.p_value(1.0, "le") == 1.0
    assert math.isnan(dist.p_value(math.nan, "le"))
    with pytest.raises(ValueError, match="side"):
        dist.p_value(0.1, "lt")


def test_plain_statistic_is_the_percentile_interval() -> None:
    values = np.random.default_rng(3).normal(size=999)
    dist = Distribution.of(intervals.plain(values))
    assert dist.interval(0.9) == (_order_end(values, 0.05, "ge"), _order_end(values, 0.05, "le"))
    assert dist.n_boot == 999 and dist.resolution == pytest.approx(1 / 1000)
    nan = Distribution.of(intervals.plain(np.full(10, np.nan)))
    assert math.isnan(nan.p_value(0.0, "le")) and math.isnan(nan.one_sided(0.05, "le"))


def test_components_are_the_pairs_that_attain_the_extremum() -> None:
    """Two groups: a difference is |r0 - r1|, its components the two ordered pairs."""
    rng = np.random.default_rng(4)
    r = rng.normal(0.5, 0.05, size=(2000, 2))
    part = intervals.Part({"selection_rate": r}, np.ones(2, dtype=bool))
    aggregate = next(a for a in BINARY.aggregates if a.name == "demographic_parity_difference")
    value = np.abs(r[:, 0] - r[:, 1])
    sample = intervals.extremum(aggregate, [part], value)
    assert sample.extreme == "max" and len(sample.shares) == 2
    np.testing.assert_allclose(sample.shares, [0.5, 0.5], atol=0.05)
    pairs = {tuple(np.round(v[:3], 12)) for v in sample.values}
    assert pairs == {tuple(np.round(r[:3, 0] - r[:3, 1], 12)), tuple(np.round(r[:3, 1] - r[:3, 0], 12))}
    # A true difference of 0: the lower end is clamped to 0, the interval covers it.
    low, high = Distribution.of(sample).interval(0.95)
    assert low == 0.0 and high > 0.0


def test_one_dominant_component_gives_the_percentile_interval() -> None:
    rng = np.random.default_rng(5)
    r = np.column_stack([rng.normal(0.8, 0.01, 3000), rng.normal(0.5, 0.01, 3000)])
    part = intervals.Part({"selection_rate": r}, np.ones(2, dtype=bool))
    aggregate = next(a for a in BINARY.aggregates if a.name == "demographic_parity_difference")
    value = r[:, 0] - r[:, 1]
    dist = Distribution.of(intervals.extremum(aggregate, [part], value))
    assert len(dist.components) == 1
    assert dist.interval(0.95) == (_order_end(value, 0.025, "ge"), _order_end(value, 0.025, "le"))


def test_result_names_the_method() -> None:
    rng = np.random.default_rng(6)
    y, p, g = rng.integers(0, 2, 300), rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    result = assess(y, p, sensitive_features=g, n_boot=50)
    assert result.evidence is not None
    assert result.ci_method == intervals.METHOD == result.evidence["method"]
    assert set(result.ci) == set(AGGREGATE_METRICS)


# --------------------------------------------------------------------------------------------------
# The group set stays fixed in every task


def _small_group_data(rng: np.random.Generator) -> dict[str, Any]:
    # Group 2 holds 4 rows: 1.6% of resamples drop it entirely, many more leave a rate undefined.
    groups = np.array([0] * 200 + [1] * 200 + [2] * 4)
    y = rng.integers(0, 2, len(groups))
    y[-4:] = [0, 1, 0, 1]
    return {"groups": groups, "y": y, "pred": np.where(rng.random(len(groups)) < 0.8, y, 1 - y)}


def _agreement(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true == y_pred))


def _undefined_warned(result: Any, name: str) -> None:
    lines = [w for w in result.warnings if w.startswith("bootstrap:") and f" {name} " in w]
    assert lines, (name, result.warnings)
    low, high = result.ci[name]
    assert low <= result[name] + 1e-12 and result[name] - 1e-12 <= high


@pytest.mark.parametrize("task", ["labels", "weighted", "scores", "regression", "multiclass", "callable"])
def test_a_group_dropping_out_of_a_resample_is_counted_not_ignored(task: str) -> None:
    rng = np.random.default_rng(7)
    d = _small_group_data(rng)
    g, y, pred = d["groups"], d["y"], d["pred"]
    if task == "labels":
        _undefined_warned(assess(y, pred, sensitive_features=g, n_boot=300), "equal_opportunity_difference")
    elif task == "weighted":
        w = rng.uniform(0.5, 2.0, len(g))
        result = assess(y, pred, sensitive_features=g, sample_weight=w, n_boot=150)
        _undefined_warned(result, "equal_opportunity_difference")
    elif task == "scores":
        score = np.clip(0.5 * y + rng.normal(0.25, 0.2, len(g)), 0, 1)
        _undefined_warned(
            assess(y, sensitive_features=g, y_score=score, n_boot=150), "roc_auc_score_difference"
        )
    elif task == "regression":
        target = rng.normal(size=len(g))
        target[-4:] = [1.0, 1.0, 1.0, 2.0]  # a resample drawing only the 1.0s has a constant target
        result = assess(
            target, target + rng.normal(size=len(g)), sensitive_features=g, task="regression", n_boot=300
        )
        _undefined_warned(result, "r2_score_group_min")
    elif task == "multiclass":
        y3 = np.where(rng.random(len(g)) < 0.3, 2, y)
        result = assess(
            y3, np.where(rng.random(len(g)) < 0.8, y3, 0), sensitive_features=g, task="multiclass", n_boot=300
        )
        _undefined_warned(result, "equal_opportunity_difference")
    else:  # group 2 keeps 2 rows: 13% of resamples draw none of them
        metrics = {"agreement": _agreement}
        result = assess(y[:-2], pred[:-2], sensitive_features=g[:-2], metrics=metrics, n_boot=60)
        _undefined_warned(result, "agreement_difference")


def test_undefined_resamples_leave_the_aggregate_undefined() -> None:
    """The engine: a resample in which a compared group's rate is undefined gives NaN, not the
    aggregate over the other groups."""
    cells = np.array([[[50.0, 10, 10, 30], [40, 20, 20, 20], [5, 0, 0, 0]]])  # group 2: no positives
    rows = cells.sum(axis=-1)
    required = {"true_positive_rate": np.array([True, True, True])}
    stats = rates.statistics(BINARY, None, cells, rows, required=required)
    assert np.isnan(stats["equal_opportunity_difference"]).all()
    free = rates.statistics(BINARY, None, cells, rows)
    assert free["equal_opportunity_difference"][0] == pytest.approx(0.75 - 0.5)


# --------------------------------------------------------------------------------------------------
# Coverage (slow: 600 simulated data sets per case; 1000 in the measurement of docs/metrics.md)


def _population(sizes: list[float], base: list[float], tpr: list[float], fpr: list[float]) -> np.ndarray:
    share = np.asarray(sizes) / np.sum(sizes)
    return np.array(
        [
            [s * (1 - b) * (1 - f), s * (1 - b) * f, s * b * (1 - t), s * b * t]
            for s, b, t, f in zip(share, base, tpr, fpr, strict=True)
        ]
    )


CASES = {
    # Tied TPR and FPR gaps of 0.10 (the case percentile intervals cover in 85%).
    "tied gaps, 2 groups": _population([1, 1], [0.5, 0.5], [0.7, 0.8], [0.2, 0.3]),
    # Four unequal groups, TPR and FPR gaps both 0.10.
    "4 unequal groups": _population(
        [0.4, 0.3, 0.2, 0.1], [0.5, 0.4, 0.5, 0.6], [0.80, 0.75, 0.72, 0.70], [0.20, 0.25, 0.28, 0.30]
    ),
    # One gap clearly larger than the other.
    "distinct gaps": _population([1, 1], [0.5, 0.5], [0.6, 0.8], [0.2, 0.3]),
}


def _at_parity(name: str, value: float) -> bool:
    """A difference whose true value is 0, or a ratio of 1 (equal groups)."""
    return (name.endswith("_difference") and abs(value) < 1e-12) or (
        name.endswith("_ratio") and abs(value - 1) < 1e-12
    )


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_coverage_of_every_aggregate(case: str) -> None:
    """95% intervals cover the truth in >= 95% - 2.5 SE of 600 data sets (n = 2000), and each side
    misses in <= 2.5% + 2.5 SE (one-sided binomial tolerance): the error rate a gate relies on."""
    population = CASES[case]
    rng = np.random.default_rng(2026)
    truth = rates.evaluate(BINARY, population, np.ones(len(population)), None).values
    sims, n, level = 600, 2000, 0.95
    low_miss: dict[str, int] = {}
    high_miss: dict[str, int] = {}
    for _ in range(sims):
        cells = rng.multinomial(n, population.reshape(-1)).reshape(population.shape)
        point = rates.evaluate(BINARY, cells.astype(float), cells.sum(axis=-1), None)
        required = {c.name: ~np.isnan(point.rates[c.name]) for c in BINARY.between_columns}
        found = bootstrap.label_samples(BINARY, cells, bootstrap.CellCounts(), None, required, 400, rng)
        for name, sample in found.items():
            low, high = Distribution.of(sample).interval(level)
            t = float(truth[name])
            low_miss[name] = low_miss.get(name, 0) + (t < low)
            high_miss[name] = high_miss.get(name, 0) + (t > high)
    side_se = math.sqrt(0.025 * 0.975 / sims)
    two_se = math.sqrt(0.05 * 0.95 / sims)
    for name in found:
        if name == "count" or _at_parity(name, float(truth[name])):  # see below
            continue
        cover = 1 - (low_miss[name] + high_miss[name]) / sims
        assert cover >= level - 2.5 * two_se, (name, cover)
        assert low_miss[name] / sims <= 0.025 + 2.5 * side_se, (name, "low", low_miss[name] / sims)
        assert high_miss[name] / sims <= 0.025 + 2.5 * side_se, (name, "high", high_miss[name] / sims)
    for name in found:  # a true difference of 0 (a ratio of 1): each side still misses <= 5%
        if _at_parity(name, float(truth[name])):
            assert (low_miss[name] + high_miss[name]) / sims <= 0.05 + 2.5 * two_se, name
