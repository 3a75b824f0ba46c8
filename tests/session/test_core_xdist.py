"""Records travel on test reports: the same results with ``-n 2``, ``-p no:xdist`` and without xdist."""

from __future__ import annotations

import os
from typing import Any

import pytest
from helpers import (
    REPORT,
    load_report,
    outcomes,
    provider_log,
    providers_conftest,
    run_with_report,
)

pytest.importorskip("xdist")

SUITE_A = """
    import numpy as np
    import pytest

    pytestmark = pytest.mark.fairmind(model="credit", gates=["accuracy >= 0.5"])

    @pytest.mark.parametrize("fold", range(4))
    def test_fold(fairmind, fold):
        fairmind.record({"fold": {str(fold): {"accuracy": np.float32(0.6 + fold / 10)}},
                         "scores": np.arange(fold + 1, dtype=np.int64),
                         "calibrated": np.bool_(fold % 2 == 0)},
                        scope="sex", params={"seed": np.int64(fold)}, tags={"fold": str(fold)})

    def test_shared(fairmind):
        fairmind.record({"shared": np.float64(1.0), "accuracy": 0.7})

    def test_failing(fairmind):
        fairmind.record({"late": 1})
        assert False

    @pytest.mark.xfail(reason="known")
    def test_xfail(fairmind):
        assert False
"""

SUITE_B = """
    import math
    import numpy as np
    import pytest

    def test_other_model(fairmind):
        metrics = {"demographic_parity_ratio": np.float64(0.75), "nan": math.nan}
        fairmind.record(metrics, model="fraud", scope="age")

    def test_collision(fairmind):
        fairmind.record({"shared": 2.0}, model="credit")

    @pytest.mark.skip(reason="no data")
    @pytest.mark.fairmind(model="fraud")
    def test_skipped(fairmind):
        pass
"""


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "models": doc["models"],
        "gates_not_evaluated": doc["gates_not_evaluated"],
        "exitstatus": doc["session"]["exitstatus"],
    }


def test_identical_results_with_and_without_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_a=SUITE_A, test_b=SUITE_B)
    gates = ["--fairmind-gate=demographic_parity_ratio>=0.8", "--fairmind-gate=nothing<1"]
    serial, serial_doc = run_with_report(pytester, "-p", "no:xdist", *gates)
    parallel, parallel_doc = run_with_report(pytester, "-n", "2", *gates)
    serial.assert_outcomes(passed=7, failed=1, skipped=1, xfailed=1, warnings=8)
    parallel.assert_outcomes(passed=7, failed=1, skipped=1, xfailed=1, warnings=8)
    assert serial.ret == parallel.ret == 1
    assert _comparable(parallel_doc) == _comparable(serial_doc)
    credit = parallel_doc["models"]["credit"]
    assert credit["metrics"]["shared"] == 2.0  # test_b.py::test_collision sorts last
    assert credit["metrics"]["sex/fold.3.accuracy"] == pytest.approx(0.9)
    assert credit["metrics"]["sex/scores.count"] == 4.0
    assert credit["params"]["sex/seed"] == 3
    assert sorted(c["key"] for c in credit["collisions"]) == [
        "fold", "sex/calibrated", "sex/scores.count", "sex/scores.max", "sex/scores.mean", "sex/scores.std",
        "sex/seed", "shared",
    ]  # fmt: skip
    # gates are evaluated once, on the aggregated results
    assert [g["key"] for g in credit["gates"]].count("accuracy") == 1
    assert len(parallel_doc["models"]["fraud"]["gates"]) == 1
    assert outcomes(parallel_doc, "fraud")["test_b.py::test_skipped"] == "skipped"
    assert parallel_doc["gates_not_evaluated"] == ["nothing<1"]
    for result in (serial, parallel):
        result.stdout.fnmatch_lines(
            ["*gate FAILED: fraud: age/demographic_parity_ratio = 0.75, bound >= 0.8*"]
        )


def test_only_the_controller_builds_providers_and_logs(pytester: pytest.Pytester) -> None:
    providers_conftest(pytester)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("i", range(6))
        def test_rec(fairmind, i):
            fairmind.record({f"k{i}": i}, model="m")
        """
    )
    result, doc = run_with_report(pytester, "-n", "2", "--fairmind-provider=probe")
    result.assert_outcomes(passed=6)
    factory_lines = (pytester.path / "factory.log").read_text().splitlines()
    assert factory_lines == [f"probe {os.getpid()}"]  # built once, in this (the controller) process
    calls = provider_log(pytester, "probe")
    assert len(calls) == 1
    assert calls[0]["pid"] == os.getpid()
    assert sorted(calls[0]["models"]["m"]["metrics"]) == [f"k{i}" for i in range(6)]
    assert doc["providers"]["probe"]["runs"]["m"]["id"] == "probe-0"
    header = [line for line in result.stdout.lines if line.startswith("fairmind:")]
    assert len(header) == 1  # workers print no header


def test_worker_killed_mid_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_crash="""
        import os
        import pathlib
        import pytest

        pytestmark = pytest.mark.fairmind(model="m")

        def _ran(name):
            folder = pathlib.Path("ran") / os.environ["PYTEST_XDIST_WORKER"]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).touch()

        @pytest.mark.parametrize("i", range(8))
        def test_finished(fairmind, i):
            fairmind.record({f"finished{i}": i})
            _ran(f"finished{i}")

        def test_zz_crash(fairmind):
            fairmind.record({"lost": 1})
            worker = os.environ["PYTEST_XDIST_WORKER"]
            assert list((pathlib.Path("ran") / worker).iterdir()), "the worker finished no test before"
            pathlib.Path(f"crashed-{worker}").touch()
            os._exit(1)
        """,
    )
    result, doc = run_with_report(pytester, "-n", "2")
    result.assert_outcomes(passed=8, failed=1)
    assert result.ret == 1
    crashed = [p.name.partition("-")[2] for p in pytester.path.glob("crashed-*")]
    assert len(crashed) == 1, result.stdout.str()
    worker = crashed[0]
    finished_there = sorted(p.name for p in (pytester.path / "ran" / worker).iterdir())
    assert finished_there
    metrics = doc["models"]["m"]["metrics"]
    # every finished test's records arrived, those of the worker that died included
    assert set(metrics) == {f"finished{i}" for i in range(8)}
    assert set(finished_there) <= set(metrics)
    assert "lost" not in metrics  # the crashed test's own report never arrived
    assert outcomes(doc, "m")["test_crash.py::test_zz_crash"] == "failed"  # as pytest reports it
    assert doc["models"]["m"]["verdict"] == "fail"
    # the summary names the lost worker
    lost = [line for line in result.stdout.lines if line.startswith(f"xdist worker {worker} crashed")]
    assert len(lost) == 1, result.stdout.str()
    assert any(line.startswith(f"xdist worker {worker} crashed") for line in doc["notices"])


def test_runs_when_xdist_is_not_installed(
    pytester: pytest.Pytester, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Simulated with an ``xdist`` package that cannot be imported, and plugin autoload off."""
    blocker = tmp_path_factory.mktemp("no_xdist")
    (blocker / "xdist").mkdir()
    (blocker / "xdist" / "__init__.py").write_text("raise ImportError('xdist is not installed here')\n")
    pytester.makepyfile(
        """
        import importlib.util
        import sys

        def test_rec(fairmind):
            fairmind.record({"acc": 0.9}, model="m")
            try:
                import xdist  # noqa: F401
            except ImportError:
                pass
            else:
                raise AssertionError("xdist importable")
        """
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(blocker), os.environ.get("PYTHONPATH")])))
        mp.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        result = pytester.runpytest_subprocess(
            "-p", "pytest_fairmind.plugin", "--fairmind-gate=acc>=0.95", f"--fairmind-json={REPORT}"
        )
    result.assert_outcomes(passed=1)
    assert result.ret == 1  # the gate failed
    doc = load_report(pytester.path / REPORT)
    assert doc["models"]["m"]["metrics"] == {"acc": 0.9}
    result.stdout.fnmatch_lines(["gate FAILED: m: acc = 0.9, bound >= 0.95*"])
