"""The family logic of interval gates (``gating.evidence``): Holm / Bonferroni against statsmodels,
the three outcomes, ranges, NaN, point-gated keys, seeds, resolution notices, regression rules.

Distributions here are built from replicate arrays (:class:`gating.evidence.Replicates`), so the
family logic is tested apart from how the metrics side draws replicates.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from pytest_fairmind import gating
from pytest_fairmind.gating import evidence
from pytest_fairmind.result import FAIL, INCONCLUSIVE, PASS, ModelResult, SessionResult

KEY = "sex/demographic_parity_difference"


class FromReplicates:
    """A ``distribution`` function over test payloads ``{"keys": [...], "replicates": {key: [...]}}``,
    remembering each call's (key, resolution, seed)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []

    def __call__(
        self, payload: Mapping[str, Any], key: str, *, resolution: float, seed: int
    ) -> evidence.Distribution:
        self.calls.append((key, resolution, seed))
        return evidence.Replicates.of(payload["replicates"][key])


@dataclass(frozen=True)
class Coarse:
    """A distribution that cannot resolve below 0.01 (like a quantile grid)."""

    inner: evidence.Replicates
    n_boot: int = 99
    resolution: float = 0.01
    method: str = "grid"

    def p_value(self, bound: float, side: str) -> float:
        return self.inner.p_value(bound, side)

    def one_sided(self, alpha: float, side: str) -> float:
        return self.inner.one_sided(max(alpha, self.resolution), side)


def model(name: str, values: Mapping[str, float], replicates: Mapping[str, Sequence[float]]) -> ModelResult:
    payload = {"version": 1, "kind": "cells", "n_boot": 0, "keys": list(replicates), "replicates": replicates}
    return ModelResult(name, metrics=dict(values), evidence={"sex": payload} if replicates else {})


def spread(center: float, width: float, n: int = 999) -> list[float]:
    """``n`` replicates evenly over ``center +/- width``."""
    return list(np.linspace(center - width, center + width, n))


def run(models: dict[str, ModelResult], *exprs: str, **options: Any) -> gating.GateRun:
    options.setdefault("distribution", FromReplicates())
    return gating.run([gating.parse_gate(e) for e in exprs], models, evidence="interval", **options)


# ------------------------------------------------------------------ adjustment vs statsmodels


@pytest.mark.parametrize("method", ["holm", "bonferroni"])
@pytest.mark.parametrize("seed", range(6))
def test_adjustment_matches_statsmodels(method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 30))
    p = rng.beta(0.3, 1.0, m)  # many small p-values, so some are rejected
    p[: m // 4] = p[0]  # ties
    got = evidence.adjust(list(p), 0.05, method)
    reject, corrected, _, bonf_alpha = multipletests(p, alpha=0.05, method=method)
    assert [a.rejected for a in got] == list(reject)
    np.testing.assert_allclose([a.p_adjusted for a in got], corrected, rtol=1e-12)
    if method == "bonferroni":
        assert all(a.alpha == pytest.approx(bonf_alpha) for a in got)
    else:  # rank k of m (ascending p, ties in input order) is compared with 0.05 / (m - k + 1)
        order = sorted(range(m), key=lambda i: (p[i], i))
        for rank, index in enumerate(order, start=1):
            assert got[index].alpha == pytest.approx(0.05 / (m - rank + 1))


def test_holm_steps_down() -> None:
    """A p-value under its own Holm level is not rejected once a smaller one was not."""
    p = [0.03, 0.031, 0.04]  # levels 0.05/3, 0.05/2, 0.05/1
    got = evidence.adjust(p, 0.05, "holm")
    assert [a.rejected for a in got] == [False, False, False]
    assert got[2].p_value <= got[2].alpha  # under its level, still kept: Holm stops at the first
    assert list(multipletests(p, alpha=0.05, method="holm")[0]) == [False, False, False]


def test_none_compares_each_with_the_family_rate() -> None:
    got = evidence.adjust([0.01, 0.2], 0.05, "none")
    assert [(a.alpha, a.p_adjusted, a.rejected) for a in got] == [(0.05, 0.01, True), (0.05, 0.2, False)]


# ------------------------------------------------------------------ outcomes


@pytest.mark.parametrize(
    ("center", "expected"),
    [(0.02, PASS), (0.3, FAIL), (0.1, INCONCLUSIVE)],
)
def test_three_outcomes(center: float, expected: str) -> None:
    models = {"m": model("m", {KEY: center}, {KEY: spread(center, 0.05)})}
    gated = run(models, "demographic_parity_difference <= 0.1")
    [result] = models["m"].gates
    assert result.outcome == expected and result.evidence == "interval"
    assert result.alpha == pytest.approx(0.05) and result.p_adjusted == result.p_value  # one member
    dist = evidence.Replicates.of(spread(center, 0.05))
    assert result.p_value == pytest.approx(dist.p_value(0.1, "le"))
    assert result.ci_high == pytest.approx(dist.one_sided(0.05, "le"))  # the side the gate tests
    assert result.ci_low == pytest.approx(dist.one_sided(0.05, "ge"))  # the other, for context
    assert models["m"].verdict == {PASS: "pass", FAIL: "fail", INCONCLUSIVE: "inconclusive"}[expected]
    assert [g.key for _, g in gated.inconclusive] == ([KEY] if expected == INCONCLUSIVE else [])
    assert gated.family is not None and gated.family.size == 1


def test_an_endpoint_on_a_non_strict_bound_is_inside() -> None:
    at_bound = [0.0] * 500 + [0.1] * 499  # the upper end of the interval is exactly 0.1
    models = {"m": model("m", {KEY: 0.05}, {KEY: at_bound})}
    run(models, "demographic_parity_difference <= 0.1", "demographic_parity_difference < 0.1")
    outcomes = {g.expr: g.outcome for g in models["m"].gates}
    assert outcomes == {
        "demographic_parity_difference <= 0.1": PASS,
        "demographic_parity_difference < 0.1": INCONCLUSIVE,
    }


def test_a_range_is_two_members() -> None:
    ratio = "sex/demographic_parity_ratio"
    models = {"m": model("m", {ratio: 0.9}, {ratio: spread(0.9, 0.05)})}
    gated = run(models, "0.8 <= demographic_parity_ratio <= 1.25")
    [result] = models["m"].gates
    assert result.outcome == PASS and gated.family is not None and gated.family.size == 2
    dist = evidence.Replicates.of(spread(0.9, 0.05))
    # the interval at the family level; Holm over two members: the one closer to failing (the
    # lower bound) is compared with 0.05 / 2
    assert result.ci_low == pytest.approx(dist.one_sided(0.05, "ge"))
    assert result.ci_high == pytest.approx(dist.one_sided(0.05, "le"))
    assert result.p_value == pytest.approx(dist.p_value(0.8, "ge")) and result.alpha == pytest.approx(0.025)
    low = {"m": model("m", {ratio: 0.6}, {ratio: spread(0.6, 0.05)})}
    run(low, "0.8 <= demographic_parity_ratio <= 1.25")
    assert low["m"].gates[0].outcome == FAIL


def test_nan_fails_whether_value_or_replicates() -> None:
    other = "sex/equalized_odds_difference"
    models = {
        "m": model("m", {KEY: math.nan, other: 0.05}, {KEY: spread(0.05, 0.01), other: [math.nan] * 10})
    }
    gated = run(models, "demographic_parity_difference <= 0.1", "equalized_odds_difference <= 0.1")
    assert {g.key: g.outcome for g in models["m"].gates} == {KEY: FAIL, other: FAIL}
    assert all(g.p_value is None for g in models["m"].gates)
    assert gated.exitstatus == 1 and gated.family is not None and gated.family.size == 0


def test_keys_without_an_interval_are_gated_on_points_with_a_notice() -> None:
    models = {"m": model("m", {KEY: 0.3, "sex/accuracy": 0.9}, {KEY: spread(0.02, 0.01)})}
    gated = run(models, "demographic_parity_difference <= 0.1", "accuracy >= 0.8")
    by_key = {g.key: g for g in models["m"].gates}
    assert by_key["sex/accuracy"].evidence == "point" and by_key["sex/accuracy"].outcome == PASS
    assert by_key["sex/accuracy"].p_value is None
    assert by_key[KEY].evidence == "interval" and by_key[KEY].outcome == PASS  # replicates, not the point
    assert gated.family is not None and gated.family.point_gated == [("m", "sex/accuracy")]
    [notice] = [n for n in gated.notices if "no error control" in n]
    assert "m: sex/accuracy" in notice


def test_point_mode_ignores_payloads() -> None:
    models = {"m": model("m", {KEY: 0.3}, {KEY: spread(0.02, 0.01)})}
    distribution = FromReplicates()
    gated = gating.run([gating.parse_gate("demographic_parity_difference <= 0.1")], models,
                       distribution=distribution)  # fmt: skip
    assert models["m"].gates[0].outcome == FAIL and models["m"].gates[0].evidence == "point"
    assert distribution.calls == [] and gated.family is None


def test_seeds_and_resolution_passed_to_the_distribution() -> None:
    other = "sex/equalized_odds_difference"
    models = {
        name: model(name, {KEY: 0.02, other: 0.02}, {KEY: spread(0.02, 0.01), other: spread(0.02, 0.01)})
        for name in ("a", "b")
    }
    distribution = FromReplicates()
    run(models, "*_difference <= 0.1", "demographic_parity_difference <= 0.2", distribution=distribution,
        level=0.9)  # fmt: skip
    # 2 models x (2 keys + 1 key) members; one call per (model, key), at the smallest Holm level,
    # grouped by model and scope, seeded from (model, scope): a scope's keys share its resamples
    assert [(k, s) for k, _, s in distribution.calls] == [
        (k, zlib.crc32(f"{m}\x00sex".encode())) for m in ("a", "b") for k in (KEY, other)
    ]
    assert [r for _, r, _ in distribution.calls] == pytest.approx([0.1 / 6] * 4)
    assert evidence.seed_for("a", "sex") == zlib.crc32(b"a\x00sex")


def test_a_level_the_bootstrap_cannot_resolve_names_the_n_boot_that_would() -> None:
    coarse = Coarse(evidence.Replicates.of([0.3] * 99))  # clearly above the bound, but only 0.01 resolved

    def distribution(payload: Mapping[str, Any], key: str, *, resolution: float, seed: int) -> Coarse:
        return coarse

    keys = [f"s{i}/demographic_parity_difference" for i in range(20)]
    models = {"m": model("m", dict.fromkeys(keys, 0.3), {k: [0.3] for k in keys})}
    gated = run(models, "demographic_parity_difference <= 0.1", distribution=distribution)
    assert {g.outcome for g in models["m"].gates} == {INCONCLUSIVE}  # cannot fail at 0.05 / 20
    resolved = {"m": model("m", dict.fromkeys(keys, 0.3), {k: [0.3] * 400 for k in keys})}
    assert not [n for n in run(resolved, "demographic_parity_difference <= 0.1").notices if "resolve" in n]
    assert {g.outcome for g in resolved["m"].gates} == {FAIL}  # n_boot=400 does resolve it
    [line] = [n for n in gated.notices if "would resolve it" in n]
    assert line.startswith(
        "20 gate(s) inconclusive because their bootstrap resolves p-values only down to 0.01"
    )
    assert "(n_boot=99, grid) and the family needs 0.0025" in line and f"m: {keys[0]}" in line
    assert line.endswith("n_boot=400 would resolve it")
    assert evidence.needed_n_boot(0.0025) == 400 and 1 / (400 + 1) < 0.0025


def test_holm_levels_follow_the_p_value_order() -> None:
    keys = [f"s{i}/demographic_parity_difference" for i in range(4)]
    centers = [0.3, 0.105, 0.08, 0.0]
    models = {"m": model("m", dict(zip(keys, centers, strict=True)),
                         {k: spread(c, 0.05) for k, c in zip(keys, centers, strict=True)})}  # fmt: skip
    run(models, "demographic_parity_difference <= 0.1")
    by_key = {g.key: g for g in models["m"].gates}
    p = [by_key[k].p_value or 0.0 for k in keys]
    assert p == sorted(p) and None not in [by_key[k].p_value for k in keys]  # ascending p: ranks 1..4
    assert [by_key[k].alpha for k in keys] == pytest.approx([0.05 / 4, 0.05 / 3, 0.05 / 2, 0.05])
    assert [by_key[k].outcome for k in keys] == [FAIL, INCONCLUSIVE, INCONCLUSIVE, PASS]


def test_bonferroni_gives_every_member_the_same_level() -> None:
    keys = [f"s{i}/demographic_parity_difference" for i in range(4)]
    models = {"m": model("m", dict.fromkeys(keys, 0.0), {k: spread(0.0, 0.05) for k in keys})}
    run(models, "demographic_parity_difference <= 0.1", multiple_testing="bonferroni")
    assert [g.alpha for g in models["m"].gates] == pytest.approx([0.0125] * 4)


# ------------------------------------------------------------------ regression rules


def baseline_of(value: float) -> gating.Baseline:
    return gating.Baseline(source="b.json", models={"m": {KEY: value}}, description="b.json")


@pytest.mark.parametrize(("center", "expected"), [(0.1, PASS), (0.25, FAIL), (0.15, INCONCLUSIVE)])
def test_regression_rules_test_the_current_value_against_the_fixed_limit(
    center: float, expected: str
) -> None:
    models = {"m": model("m", {KEY: center}, {KEY: spread(center, 0.04)})}
    run(models, "demographic_parity_difference ~ 0.05", baseline=baseline_of(0.1))
    [result] = models["m"].gates
    dist = evidence.Replicates.of(spread(center, 0.04))
    assert result.rule == "regression" and result.evidence == "interval" and result.outcome == expected
    assert result.p_value == pytest.approx(dist.p_value(0.15, "le"))  # limit: baseline 0.1 + 0.05
    assert result.baseline == 0.1 and result.change == pytest.approx(center - 0.1)


def test_higher_is_better_regression_tests_the_lower_limit() -> None:
    ratio = "sex/demographic_parity_ratio"
    models = {"m": model("m", {ratio: 0.7}, {ratio: spread(0.7, 0.03)})}
    base = gating.Baseline(source="b.json", models={"m": {ratio: 0.9}}, description="b.json")
    run(models, "demographic_parity_ratio ~ 10%", baseline=base)
    [result] = models["m"].gates
    dist = evidence.Replicates.of(spread(0.7, 0.03))
    assert result.outcome == FAIL and result.p_value == pytest.approx(dist.p_value(0.81, "ge"))  # 0.9 - 10%
    assert (result.ci_low, result.ci_high) == pytest.approx(
        (dist.one_sided(0.05, "ge"), dist.one_sided(0.05, "le"))
    )


def test_a_regression_rule_without_a_baseline_value_stays_as_it_was() -> None:
    models = {"m": model("m", {KEY: 0.3}, {KEY: spread(0.3, 0.01)})}
    empty = gating.Baseline(source="b.json", models={}, description="b.json")
    run(models, "demographic_parity_difference ~ 0.05", baseline=empty)
    [result] = models["m"].gates
    assert result.bound == "no baseline" and result.evidence == "point" and result.outcome == PASS


# ------------------------------------------------------------------ payload lookup


def test_interval_keys_of_cells_grid_and_mixed_payloads() -> None:
    cells = {"kind": "cells", "keys": ["a/x"]}
    grid = {"kind": "grid", "probs": [0.5], "quantiles": {"a/y": [1.0]}}
    assert evidence.interval_keys({"kind": "mixed", "cells": cells, "grid": grid}) == {"a/x", "a/y"}
    result = ModelResult("m", evidence={"b": {"keys": ["a/x"]}, "a": cells})
    assert evidence.payload_for(result, "a/x") is cells  # its own scope first
    assert evidence.payload_for(result, "a/z") is None


def test_an_unreadable_payload_falls_back_to_points_with_a_notice() -> None:
    def broken(payload: Mapping[str, Any], key: str, *, resolution: float, seed: int) -> evidence.Replicates:
        raise ValueError("cells of unequal length")

    models = {"m": model("m", {KEY: 0.02}, {KEY: [0.0]})}
    gated = run(models, "demographic_parity_difference <= 0.1", distribution=broken)
    assert models["m"].gates[0].evidence == "point" and models["m"].gates[0].outcome == PASS
    assert any("unreadable (cells of unequal length)" in n for n in gated.notices)
    assert gated.family is not None and gated.family.point_gated == [("m", KEY)]


def test_bad_choices_are_refused() -> None:
    for bad in (
        {"evidence": "bayes"},
        {"inconclusive": "ignore"},
        {"multiple_testing": "bh"},
        {"level": 1.0},
    ):
        with pytest.raises(ValueError):
            gating.run([], {}, **bad)


def test_the_session_result_keeps_the_fields() -> None:
    """A decided result is plain data the report can carry (floats or None)."""
    models = {"m": model("m", {KEY: 0.02}, {KEY: spread(0.02, 0.01)})}
    run(models, "demographic_parity_difference <= 0.1")
    session = SessionResult(id="s", project="p", started="2026-01-01T00:00:00+00:00", models=models)
    [result] = session.models["m"].gates
    for name in ("ci_high", "p_value", "p_adjusted", "alpha"):
        assert isinstance(getattr(result, name), float)


class PerScope:
    """A ``distributions`` function (one replicate set per scope) over the test payloads."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], int]] = []

    def __call__(
        self, payload: Mapping[str, Any], keys: Sequence[str], *, resolution: float, seed: int
    ) -> dict[str, evidence.Distribution]:
        self.calls.append((list(keys), seed))
        held = payload["replicates"]
        return {k: evidence.Replicates.of(held[k]) for k in keys if k in held}


def test_one_draw_per_scope_when_the_metrics_side_offers_it() -> None:
    other = "sex/equalized_odds_difference"
    models = {
        name: model(name, {KEY: 0.02, other: 0.3}, {KEY: spread(0.02, 0.01), other: spread(0.3, 0.01)})
        for name in ("a", "b")
    }
    per_scope = PerScope()
    gated = gating.run([gating.parse_gate("*_difference <= 0.1")], models, evidence="interval",
                       distributions=per_scope)  # fmt: skip
    assert per_scope.calls == [([KEY, other], evidence.seed_for(m, "sex")) for m in ("a", "b")]
    assert {(n, g.key): g.outcome for n, m in models.items() for g in m.gates} == {
        ("a", KEY): PASS,
        ("a", other): FAIL,
        ("b", KEY): PASS,
        ("b", other): FAIL,
    }
    assert gated.family is not None and gated.family.size == 4


def test_a_key_the_scope_draw_leaves_out_is_gated_on_points() -> None:
    models = {"m": model("m", {KEY: 0.3}, {KEY: spread(0.3, 0.01)})}
    models["m"].evidence["sex"]["replicates"] = {}  # the payload lists the key, holds nothing for it
    gated = gating.run([gating.parse_gate("demographic_parity_difference <= 0.1")], models,
                       evidence="interval", distributions=PerScope())  # fmt: skip
    assert models["m"].gates[0].evidence == "point" and models["m"].gates[0].outcome == FAIL
    assert gated.family is not None and gated.family.point_gated == [("m", KEY)]


def test_no_pass_at_a_family_level_the_bootstrap_cannot_resolve() -> None:
    """Replicates far inside the bound, but too few to resolve the family level 0.05: inconclusive."""
    few = {"m": model("m", {KEY: 0.0}, {KEY: [0.0] * 9})}
    gated = run(few, "demographic_parity_difference <= 0.1")
    assert few["m"].gates[0].outcome == INCONCLUSIVE
    [line] = [n for n in gated.notices if "would resolve it" in n]
    assert "only down to 0.1 (n_boot=9, percentile)" in line and line.endswith("n_boot=20 would resolve it")
    enough = {"m": model("m", {KEY: 0.0}, {KEY: [0.0] * 20})}
    assert not [n for n in run(enough, "demographic_parity_difference <= 0.1").notices if "resolve" in n]
    assert enough["m"].gates[0].outcome == PASS


def test_passes_do_not_depend_on_the_holm_order() -> None:
    """Twenty gates with the same evidence: the same outcome and interval (passes are decided at
    the family level; only failures are adjusted)."""
    keys = [f"s{i}/demographic_parity_difference" for i in range(20)]
    models = {"m": model("m", dict.fromkeys(keys, 0.05), {k: spread(0.05, 0.04) for k in keys})}
    run(models, "demographic_parity_difference <= 0.1")
    assert {g.outcome for g in models["m"].gates} == {PASS}
    assert len({g.ci_high for g in models["m"].gates}) == 1
    assert len({g.alpha for g in models["m"].gates}) == 20  # Holm's levels still by rank
