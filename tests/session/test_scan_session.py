"""``fairmind.scan`` in a session: recorded keys, the report's ``scans``, gates on the scan keys, the
summary's scan line, and the same results with ``-n 2``."""

from __future__ import annotations

import json
import math
import textwrap
from typing import Any

import pytest
from helpers import REPORT, gate_results, run_with_report

from pytest_fairmind.report import load
from pytest_fairmind.subgroup_scan import scan
from pytest_fairmind.summary import verdict_lines

#: The data of the inner sessions, also run here to compute what the session must hold.
DATA = textwrap.dedent(
    """
    import numpy as np

    def planted(seed, biased):
        rng = np.random.default_rng(seed)
        n = 20_000
        sex = np.array(["female", "male"])[rng.integers(0, 2, n)]
        band = np.array(["18-24", "25-59", "60+"])[rng.integers(0, 3, n)]
        worse = (sex == "female") & (band == "18-24") if biased else np.zeros(n, dtype=bool)
        y_pred = (rng.random(n) < np.where(worse, 0.35, 0.5)).astype(int)
        return rng.integers(0, 2, n), y_pred, {"sex": sex, "band": band}
    """
)

TESTS = textwrap.dedent(
    """
    import pytest
    from scan_data import planted

    GATES = ["scan/selection_rate.significant <= 0", "scan/selection_rate.worst_ratio >= 0.8"]

    @pytest.mark.fairmind(model="biased", gates=GATES)
    def test_biased(fairmind):
        y_true, y_pred, features = planted(1, True)
        result = fairmind.scan(y_true, y_pred, features=features)
        assert result.significant > 0

    @pytest.mark.fairmind(model="fair", gates=GATES)
    def test_fair(fairmind):
        y_true, y_pred, features = planted(2, False)
        fairmind.scan(y_true, y_pred, features=features, metric="accuracy", scope="audit", top=3)
    """
)


def expected(seed: int, biased: bool, **kwargs: Any) -> Any:
    namespace: dict[str, Any] = {}
    exec(DATA, namespace)  # the inner sessions' data, built the same way
    y_true, y_pred, features = namespace["planted"](seed, biased)
    return scan(y_true, y_pred, features=features, **kwargs)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(scan_data=DATA, test_inner_scan=TESTS)  # not test_scan: tests/unit has one
    return pytester


def _roundtrip(data: Any) -> Any:
    return json.loads(json.dumps(data))


def check_session(doc: dict[str, Any]) -> None:
    biased, fair = expected(1, True), expected(2, False, metric="accuracy", scope="audit", top=3)
    for name, result in (("biased", biased), ("fair", fair)):
        model = doc["models"][name]
        assert model["scans"] == {result.scope: _roundtrip(result.report_entry())}
        for key, value in result.metrics().items():
            assert math.isclose(model["metrics"][key], value, rel_tol=1e-12), key
    assert biased.significant > 0 and biased.worst_ratio < 0.8
    assert fair.significant == 0
    failed = {g["key"] for g in gate_results(doc, "biased") if not g["passed"]}
    assert failed == {"scan/selection_rate.significant", "scan/selection_rate.worst_ratio"}
    # The fair model's scan recorded under its own scope and metric: the gates' keys match nothing there.
    assert gate_results(doc, "fair") == []


def test_scan_records_keys_and_table_and_is_gated(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = project.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result, doc = run_with_report(project, "-p", "no:xdist")
    assert result.ret == 1, result.stdout.str()  # the biased model's scan gates fail
    result.assert_outcomes(passed=2)
    check_session(doc)
    # The terminal shows the summary's scan lines, one per model.
    session = load(str(project.path / REPORT))
    scan_lines = [line for line in verdict_lines(session) if line.startswith("scan:")]
    assert [line.split(":")[1].strip() for line in scan_lines] == ["biased", "fair"]
    assert "worst significant subgroup sex=female & band=18-24" in scan_lines[0]
    tested = doc["models"]["fair"]["scans"]["audit"]["subgroups_tested"]
    assert scan_lines[1] == f"scan: fair: no significant subgroup among {tested} tested"
    output = result.stdout.str()
    markdown = step_summary.read_text(encoding="utf-8")
    for line in scan_lines:
        assert line in output
        assert f"- {line}\n" in markdown  # the job summary has the same lines


@pytest.mark.slow  # an inner xdist session: ~10 s on a loaded machine
def test_scan_results_are_the_same_with_xdist(project: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result, doc = run_with_report(project, "-n", "2")
    assert result.ret == 1, result.stdout.str()
    check_session(doc)


def test_scan_error_fails_the_test_naming_the_argument(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import numpy as np

        def test_bad(fairmind):
            fairmind.scan(np.zeros(100, int), np.zeros(100, int), features={"a": np.arange(100) % 3},
                          metric="precision", model="m")
        """
    )
    result = pytester.runpytest("-p", "no:xdist")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ValueError: metric must be one of selection_rate*"])
