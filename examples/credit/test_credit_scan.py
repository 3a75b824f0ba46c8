"""Subgroup scan of both credit models: which intersection of sex and age band is treated worst?

The fairness tests name the groups to compare. The scan does not need to be told where to look:
it compares every sex, every age band and every (sex, age band) pair with everyone else, here on
the true positive rate (the share of applicants who would repay that the model approves), and
controls the false discoveries of testing 11 subgroups at once (Benjamini-Hochberg, docs/scan.md).

The marker's gates, checked at the end of the session for each model:

    scan/true_positive_rate.significant <= 0      (no subgroup treated differently beyond chance)
    scan/true_positive_rate.worst_ratio >= 0.8    (and no significant gap below four fifths)

``credit-mitigated`` passes both; ``credit-biased`` fails both, and the summary names its worst
subgroup: young women, approved at about 0.55 times the rate of everyone else who would repay.
"""

from __future__ import annotations

import pytest
from credit_models import Decisions

from pytest_fairmind import Fairmind

SCAN_GATES = [
    "scan/true_positive_rate.significant <= 0",
    "scan/true_positive_rate.worst_ratio >= 0.8",
]


@pytest.mark.fairmind(gates=SCAN_GATES)  # the model comes from the `decisions` parameter's marker
def test_subgroup_scan(fairmind: Fairmind, decisions: Decisions) -> None:
    data = decisions.data
    result = fairmind.scan(
        data["repaid"],
        decisions.approved,
        features=data[["sex", "age_band"]],
        metric="true_positive_rate",
    )
    print(result)  # the most significant subgroups (shown with -s, or when the test fails)
    # What a test should check: the scan saw every subgroup; fairness itself is the gates' call.
    assert result.subgroups_tested == 2 + 3 + 2 * 3
    assert not result.warnings
    if result.significant:
        worst = result.worst_subgroup
        assert worst is not None and worst["significant"]
        assert result.worst_ratio <= 1.0
