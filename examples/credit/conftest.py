"""Fixtures of the credit example: the data and the two models, built once per session."""

from __future__ import annotations

import pandas as pd
import pytest
from credit_data import applicants
from credit_models import CreditModel, Decisions, train_biased, train_mitigated


@pytest.fixture(scope="session")
def train_set() -> pd.DataFrame:
    return applicants(20_000, seed=1)


@pytest.fixture(scope="session")
def holdout() -> pd.DataFrame:
    return applicants(10_000, seed=2)


@pytest.fixture(scope="session")
def credit_models(train_set: pd.DataFrame) -> dict[str, CreditModel]:
    models = [train_biased(train_set), train_mitigated(train_set)]
    return {model.name: model for model in models}


# Each test using `decisions` runs once per model. The marks name the model the test's fairness
# results belong to (and add a gate for that model), so `fairmind.assess(...)` needs no model=.
MODELS = [
    pytest.param(
        "credit-biased",
        marks=pytest.mark.fairmind(model="credit-biased", gates=["performance/roc_auc >= 0.75"]),
        id="biased",
    ),
    pytest.param(
        "credit-mitigated",
        marks=pytest.mark.fairmind(model="credit-mitigated", gates=["performance/roc_auc >= 0.75"]),
        id="mitigated",
    ),
]


@pytest.fixture(scope="session", params=MODELS)
def decisions(
    request: pytest.FixtureRequest, credit_models: dict[str, CreditModel], holdout: pd.DataFrame
) -> Decisions:
    model = credit_models[request.param]
    return Decisions(model, holdout, model.approve(holdout), model.score(holdout))
