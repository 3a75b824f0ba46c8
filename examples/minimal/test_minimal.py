"""Record fairness numbers you compute yourself with ``fairmind.record(...)``.

No numpy, pandas or scikit-learn: the "model" is a hand-written approval rule and the metrics
are plain Python. At session end the gate in ``pytest.ini`` (``approval_rate_ratio >= 0.8``)
checks the recorded ratio, and the verdict table shows the model's result.
"""

from __future__ import annotations

from pytest_fairmind import Fairmind

# (group, monthly income in k EUR, existing debt in k EUR)
APPLICANTS = [
    ("a", 3.1, 2.0), ("a", 2.2, 0.0), ("a", 4.0, 9.0), ("a", 2.8, 1.0), ("a", 1.9, 0.5),
    ("a", 3.6, 4.0), ("a", 2.5, 3.0), ("a", 5.2, 1.0), ("a", 2.9, 0.0), ("a", 1.5, 0.0),
    ("b", 2.7, 1.0), ("b", 3.3, 5.0), ("b", 2.1, 0.0), ("b", 4.4, 2.0), ("b", 1.8, 1.0),
    ("b", 2.6, 0.0), ("b", 3.9, 12.5), ("b", 2.4, 2.0), ("b", 3.0, 0.5), ("b", 1.7, 0.0),
]  # fmt: skip


def approve(income: float, debt: float) -> bool:
    """The model under test: a rule."""
    return income >= 2.0 and debt <= 3.0 * income


def test_approval_rates(fairmind: Fairmind) -> None:
    rates: dict[str, float] = {}
    for group in ("a", "b"):
        decisions = [approve(income, debt) for g, income, debt in APPLICANTS if g == group]
        rates[group] = sum(decisions) / len(decisions)
    ratio = min(rates.values()) / max(rates.values())
    fairmind.record(
        {
            "approval_rate": rates,  # nested: recorded as approval_rate.a and approval_rate.b
            "approval_rate_ratio": ratio,  # the gated metric
            "incomes": [income for _, income, _ in APPLICANTS],  # a sequence: .mean/.min/.max/.std/.count
        },
        params={"rule": "income >= 2.0 and debt <= 3 x income"},  # text: a param, not a metric
        tags={"owner": "credit-risk"},
    )
    assert len(rates) == 2


def test_score_spread_by_group(fairmind: Fairmind) -> None:
    """A second scope for the same model: keys become ``spread/<key>``."""
    for group in ("a", "b"):
        incomes = [income for g, income, _ in APPLICANTS if g == group]
        fairmind.record({f"income_range.{group}": max(incomes) - min(incomes)}, scope="spread")
