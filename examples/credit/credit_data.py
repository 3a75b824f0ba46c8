"""Synthetic credit applications with a known, planted bias (no downloads: seeded numpy).

Every applicant has a true outcome, ``repaid`` (1: would repay a loan), that depends only on their
finances: income, debt ratio, length of credit history and late payments. Sex and age hardly
matter for repayment here (women earn slightly less on average, younger applicants have shorter
credit histories), so a fair model approves every group at similar rates.

The bias is in the labels a model learns from. ``past_decision`` is what loan officers decided
in the past, and they turned down creditworthy applicants unfairly: 30% of the women who would
have repaid, and 25% of the applicants under 25 who would have repaid (both, for young women).
A model trained on those decisions learns the prejudice; tests measure it against ``repaid``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

#: How often past decisions turned down a creditworthy applicant, by who they were.
REJECTED_WOMEN = 0.30
REJECTED_UNDER_25 = 0.25

FEATURES = ["income", "debt_ratio", "history_years", "late_payments"]
SENSITIVE = ["sex", "age"]


def applicants(n: int, *, seed: int) -> pd.DataFrame:
    """``n`` applications: finances, ``sex``, ``age``, ``age_band``, ``repaid`` and ``past_decision``."""
    rng = np.random.default_rng(seed)
    female = rng.random(n) < 0.45
    age = rng.integers(18, 76, n)
    income = rng.lognormal(np.log(42.0) + 0.03 * (age >= 25) - 0.03 * female, 0.45, n)  # k EUR / year
    debt_ratio = rng.beta(2.0, 5.0, n)
    history_years = np.clip(age - 18 - rng.integers(0, 6, n), 0, None).astype(float)
    late_payments = rng.poisson(0.6 + 0.8 * debt_ratio)
    solvency = (
        1.2 * np.log(income / 40.0)
        - 3.0 * debt_ratio
        + 0.005 * np.minimum(history_years, 20.0)
        - 0.5 * late_payments
        + rng.normal(0.0, 0.8, n)
        + 1.4
    )
    repaid = (solvency > 0).astype(int)
    turned_down = np.where(female, REJECTED_WOMEN, 0.0) + np.where(age < 25, REJECTED_UNDER_25, 0.0)
    past_decision = np.where((repaid == 1) & (rng.random(n) < turned_down), 0, repaid)
    columns: dict[str, Any] = {
        "sex": np.where(female, "female", "male"),
        "age": age,
        "age_band": np.select([age < 25, age < 60], ["18-24", "25-59"], "60+"),
        "income": income.round(1),
        "debt_ratio": debt_ratio.round(3),
        "history_years": history_years,
        "late_payments": late_payments,
        "repaid": repaid,
        "past_decision": past_decision,
    }
    return pd.DataFrame(columns)
