"""The ``fairmind`` console script on a real ``pytest -n 2 --fairmind-evidence=interval`` session:
``check`` reuses the session's evidence policy (and its flags replace it), ``report`` writes HTML."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from helpers import run_fairmind, run_pytest, subprocess_env

pytest.importorskip("xdist")

SUITE = """
    import numpy as np
    import pytest

    @pytest.mark.fairmind(model="credit")
    @pytest.mark.parametrize("scope, n, rates", [("large", 3000, [0.5, 0.48]), ("small", 40, [0.55, 0.4])])
    def test_assess(fairmind, scope, n, rates):
        rng = np.random.default_rng(n)
        groups = np.repeat(["a", "b"], n)
        pred = (rng.random(2 * n) < np.repeat(rates, n)).astype(int)
        fairmind.assess(rng.integers(0, 2, 2 * n), pred, sensitive_features=groups, scope=scope, n_boot=300)
"""


def test_check_and_report_on_an_interval_session(tmp_path: Path) -> None:
    (tmp_path / "test_suite.py").write_text(textwrap.dedent(SUITE), encoding="utf-8")
    env = subprocess_env(tmp_path)
    session = run_pytest(
        tmp_path,
        "-n",
        "2",
        "--fairmind-evidence=interval",
        "--fairmind-json=fairness.json",
        "--fairmind-gate=demographic_parity_difference <= 0.1",
        env=env,
    )
    assert session.rc == 0, session.out  # large passes, small is inconclusive (warn)
    doc = json.loads((tmp_path / "fairness.json").read_text(encoding="utf-8"))
    outcomes = {g["key"]: g["outcome"] for g in doc["models"]["credit"]["gates"]}
    assert outcomes == {
        "large/demographic_parity_difference": "pass",
        "small/demographic_parity_difference": "inconclusive",
    }
    assert run_fairmind(tmp_path, "check", "fairness.json", env=env).rc == 0
    strict = run_fairmind(tmp_path, "check", "fairness.json", "--inconclusive", "fail", env=env)
    assert strict.rc == 1 and "INCONCLUSIVE" in strict.out
    points = run_fairmind(tmp_path, "check", "fairness.json", "--evidence", "point", env=env)
    small = doc["models"]["credit"]["metrics"]["small/demographic_parity_difference"]
    assert small > 0.1 and points.rc == 1  # on its point value the small scope fails: noise, not evidence
    assert run_fairmind(tmp_path, "check", "fairness.json", "--ci", "2", env=env).rc == 2
    pytest.importorskip("jinja2")
    page = run_fairmind(tmp_path, "report", "fairness.json", "--html", "fairness.html", env=env)
    assert page.rc == 0, page.out
    assert (tmp_path / "fairness.html").read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype")
