"""Two credit models trained on the biased historical decisions of :mod:`credit_data`.

- ``credit-biased``: logistic regression on the finances *and* sex and age, approving when the
  predicted probability is at least 0.5. It learns the loan officers' prejudice.
- ``credit-mitigated``: the same model without sex and age as inputs (not enough on its own:
  credit history length is a proxy for age), plus one decision threshold per sex x age band,
  chosen on the training data so that every group is approved at the same rate (post-processing
  for demographic parity, as fairlearn's ``ThresholdOptimizer`` does).

Whether group-specific thresholds are lawful for a lending decision depends on where you lend;
the example is about testing a model for bias, not legal advice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from credit_data import FEATURES
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def _inputs(data: pd.DataFrame, *, sensitive: bool) -> np.ndarray:
    columns = [np.log(data["income"]), data["debt_ratio"], data["history_years"], data["late_payments"]]
    if sensitive:
        columns += [(data["sex"] == "female").astype(float), data["age"].astype(float)]
    return np.column_stack(columns)


def _groups(data: pd.DataFrame) -> np.ndarray:
    return np.asarray(data["sex"] + " " + data["age_band"])


@dataclass
class CreditModel:
    """A fitted model and its decision rule: ``approve(data)`` gives 1 (approve) or 0 per row."""

    name: str
    pipeline: Pipeline
    uses_sensitive_features: bool
    thresholds: dict[str, float] = field(default_factory=dict)  # group -> threshold; empty: 0.5

    def score(self, data: pd.DataFrame) -> np.ndarray:
        """Predicted probability of repayment."""
        probabilities = self.pipeline.predict_proba(_inputs(data, sensitive=self.uses_sensitive_features))
        return np.asarray(probabilities[:, 1])

    def approve(self, data: pd.DataFrame) -> np.ndarray:
        scores = self.score(data)
        if not self.thresholds:
            return (scores >= 0.5).astype(int)
        cut = np.array([self.thresholds[g] for g in _groups(data)])
        return (scores >= cut).astype(int)

    @property
    def params(self) -> dict[str, object]:
        return {
            "estimator": "LogisticRegression",
            "features": ", ".join(FEATURES + (["sex", "age"] if self.uses_sensitive_features else [])),
            "mitigation": "per-group thresholds (demographic parity)" if self.thresholds else "none",
        }


def train_biased(train: pd.DataFrame) -> CreditModel:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    pipeline.fit(_inputs(train, sensitive=True), train["past_decision"])
    return CreditModel("credit-biased", pipeline, uses_sensitive_features=True)


def train_mitigated(train: pd.DataFrame) -> CreditModel:
    pipeline = make_pipeline(StandardScaler(), LogisticRegression())
    pipeline.fit(_inputs(train, sensitive=False), train["past_decision"])
    model = CreditModel("credit-mitigated", pipeline, uses_sensitive_features=False)
    scores, groups = model.score(train), _groups(train)
    # Approve every group at the rate the historical decisions approved applicants overall.
    rate = float(train["past_decision"].mean())
    model.thresholds = {g: float(np.quantile(scores[groups == g], 1.0 - rate)) for g in np.unique(groups)}
    return model


@dataclass
class Decisions:
    """One model's decisions on the held-out applicants."""

    model: CreditModel
    data: pd.DataFrame  # the held-out applicants, with the true outcome in ``repaid``
    approved: np.ndarray  # 1: approve, 0: decline
    scores: np.ndarray  # predicted probability of repayment
