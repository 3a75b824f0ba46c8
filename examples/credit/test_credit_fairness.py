"""Bias tests of two credit-scoring models, by sex, by age band and by both.

Each test runs once per model (the ``decisions`` fixture). The tests check what a test should
(enough applicants per group, a sane model); whether a model is fair enough is decided by the
gates in ``pytest.ini`` at the end of the session, over every model and every scope:

    demographic_parity_ratio >= 0.8      (the four-fifths rule)
    equalized_odds_difference <= 0.2

``credit-biased`` fails them, ``credit-mitigated`` passes, and pytest exits with code 1.
"""

from __future__ import annotations

from credit_models import Decisions
from sklearn.metrics import roc_auc_score

from pytest_fairmind import Fairmind


def test_model_quality(fairmind: Fairmind, decisions: Decisions) -> None:
    """Ordinary performance metrics, recorded with the user's own numbers."""
    repaid = decisions.data["repaid"]
    accuracy = float((decisions.approved == repaid).mean())
    auc = float(roc_auc_score(repaid, decisions.scores))
    fairmind.record(
        {"accuracy": accuracy, "roc_auc": auc, "approval_rate": float(decisions.approved.mean())},
        scope="performance",
        params=decisions.model.params,
        tags={"team": "credit-risk"},
    )
    assert accuracy > 0.7


def test_fairness_by_sex(fairmind: Fairmind, decisions: Decisions) -> None:
    result = fairmind.assess(
        decisions.data["repaid"],
        decisions.approved,
        sensitive_features=decisions.data["sex"],  # a named Series: the scope is "sex"
        n_boot=200,  # 95% bootstrap intervals, recorded as <metric>.ci_low / .ci_high
    )
    assert {row["group"]["sex"] for row in result.by_group} == {"female", "male"}
    assert all(row["count"] >= 1000 for row in result.by_group)


def test_fairness_by_age_band(fairmind: Fairmind, decisions: Decisions) -> None:
    result = fairmind.assess(
        decisions.data["repaid"], decisions.approved, sensitive_features=decisions.data["age_band"]
    )
    assert len(result.by_group) == 3
    assert not result.warnings


def test_fairness_by_sex_and_age_band(fairmind: Fairmind, decisions: Decisions) -> None:
    """Intersectional groups: young women are the ones the historical decisions hurt most."""
    result = fairmind.assess(
        decisions.data["repaid"],
        decisions.approved,
        sensitive_features=decisions.data[["sex", "age_band"]],  # crossed: scope "sex.age_band"
        min_group_size=100,  # smaller groups stay in the table but not in the aggregates
    )
    assert len(result.by_group) == 6
