"""The bad-input matrix: every input a test may pass by mistake has a defined outcome, either a
clear error to the test that caused it (naming the key or argument) or a documented conversion,
and never an INTERNALERROR or a broken session for the other tests."""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import MlflowStore, read_runs, run_pytest, runs_of, write

# Each inner test either records (conversions, checked in the report) or asserts the error the
# plugin raises (checked inside the session, where the exception happens).
MATRIX = r"""
import numpy as np
import pytest
from pytest_fairmind.records import RecordError

pytestmark = pytest.mark.fairmind(model="m")

def raises(match, fn, *args, **kwargs):
    with pytest.raises(ValueError, match=match) as info:
        fn(*args, **kwargs)
    return info

def test_nonfinite(fairmind):
    fairmind.record({"nan": float("nan"), "inf": float("inf"), "ninf": -float("inf"),
                     "np_nan": np.float64("nan")})

def test_bool_and_none_are_params(fairmind):
    fairmind.record({"flag": True, "np_flag": np.bool_(False), "nothing": None, "text": "x"})

def test_numpy_scalars_and_arrays(fairmind):
    fairmind.record({"f32": np.float32(0.5), "i64": np.int64(3), "u8": np.uint8(7),
                     "zero_d": np.array(2.5), "arr": np.arange(4), "empty": np.array([]),
                     "matrix": np.ones((2, 3)), "lst": [1, 2.5, np.float64(3)], "tup": (), "frac": 0.25})

def test_pandas_values(fairmind):
    pd = pytest.importorskip("pandas")
    fairmind.record({"series": pd.Series([1.0, 2.0, 6.0]), "frame": pd.DataFrame({"a": [1, 2], "b": [3, 4]}),
                     "series_mean": pd.Series([1.0, 2.0]).mean()})
    raises(r"value of 'labels' is a Series", fairmind.record, {"labels": pd.Series(["a", "b"])})

def test_numpy_params(fairmind):
    fairmind.record({}, params={"p_float": np.float64(1.5), "p_int": np.int32(2), "p_arr": np.arange(3),
                                "p_nan": float("nan"), "p_none": None, "p_bool": np.bool_(True)})

def test_deeply_nested(fairmind):
    deep = leaf = {}
    for _ in range(2000):
        leaf["x"] = {}
        leaf = leaf["x"]
    leaf["v"] = 1.0
    info = raises(r"metric key 'x\.x\.x.*has 4001 characters; at most 250", fairmind.record, deep)
    assert isinstance(info.value, RecordError)
    shallow = leaf = {}
    for _ in range(100):  # 100 levels: a 201-character key, stored
        leaf["x"] = {}
        leaf = leaf["x"]
    leaf["v"] = 1.0
    fairmind.record(shallow)

def test_ten_thousand_keys(fairmind):
    fairmind.record({f"k{i:05d}": i / 10_000 for i in range(10_000)}, model="wide")

def test_huge_string(fairmind):
    fairmind.record({}, params={"blob": "x" * 1_000_000})

def test_int_keys_become_text(fairmind):
    fairmind.record({"per_class": {0: 0.1, 1: 0.9}})

@pytest.mark.parametrize("key", [(1, 2), 1.5, True, None, b"bytes"], ids=repr)
def test_other_keys_are_refused(fairmind, key):
    raises(r"key .* keys must be str", fairmind.record, {key: 1.0})

@pytest.mark.parametrize("key", ["a<b", "a=b", "a,b", "a:b", "a\nb", "a|b", "/lead", "trail/", "a//b",
                                 "a/../b", "", "k" * 251])
def test_keys_mlflow_refuses(fairmind, key):
    info = raises("key", fairmind.record, {key: 1.0})
    if key:
        assert repr(key[:40]) in str(info.value), str(info.value)  # the error names the key

def test_longest_key_is_fine(fairmind):
    fairmind.record({"k" * 250: 1.0})

@pytest.mark.parametrize("model", ["modèle-ß-模型", "team/model:v2", " spaced "])
def test_odd_model_names(fairmind, model):
    fairmind.record({"accuracy": 0.5}, model=model)

@pytest.mark.parametrize("model", ["", "   ", "a\tb", 3, "m" * 251])
def test_bad_model_names(fairmind, model):
    raises("model", fairmind.record, {"accuracy": 0.5}, model=model)

def test_values_that_are_neither(fairmind):
    raises(r"value of 'o' is a object", fairmind.record, {"o": object()})
    raises(r"value of 'c' is a complex", fairmind.record, {"c": 1 + 2j})
    raises(r"value of 'mixed' is a list", fairmind.record, {"mixed": [1, "a"]})
    raises(r"value of 'strs' is a ndarray", fairmind.record, {"strs": np.array(["a"])})
    raises(r"metrics must be a mapping", fairmind.record, [("a", 1)])
    raises(r"tag 't' has a NoneType value", fairmind.record, {}, tags={"t": None})
    raises(r"'both' is recorded both as a metric and as a param", fairmind.record, {"both": 1.0},
           params={"both": "x"})

def test_recorded_twice_in_one_test_last_wins(fairmind):
    fairmind.record({"twice": 1.0})
    fairmind.record({"twice": 2.0})

def test_collision_a(fairmind):
    fairmind.record({"shared": 1.0})

def test_collision_b(fairmind):
    fairmind.record({"shared": 2.0})

def test_length_mismatch(fairmind):
    raises("y_pred has 4 rows but y_true has 3", fairmind.assess, [1, 0, 1], [0, 0, 0, 0],
           sensitive_features=["a", "a", "b", "b"])
    raises("sensitive feature 'sf0' has 3 rows but y_true has 4", fairmind.assess, [1, 0, 1, 0],
           [0, 0, 0, 0], sensitive_features=["a", "a", "b"])
    raises("y_true contains missing values", fairmind.assess, [1, float("nan")], [1, 0],
           sensitive_features=["a", "b"])

def test_single_group(fairmind):
    fairmind.assess([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=["a"] * 4, scope="single")

def test_all_equal_predictions(fairmind):
    fairmind.assess([1, 0, 1, 0], [0, 0, 0, 0], sensitive_features=["a", "a", "b", "b"], scope="flat")

def test_uncaught_error_fails_only_this_test(fairmind):
    fairmind.record({"a:b": 1.0})
"""


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, dict[str, Any], float]:
    """One session over the whole matrix (a subprocess: plain pytest, as users run it)."""
    folder = tmp_path_factory.mktemp("matrix")
    write(folder, "test_matrix.py", MATRIX)
    start = time.monotonic()
    result = run_pytest(folder, "-rf", "-W", "default", "--fairmind-json=report.json")
    seconds = time.monotonic() - start
    return result, result.report(), seconds


def test_the_matrix_session_is_sane(matrix: tuple[Any, dict[str, Any], float]) -> None:
    result, report, seconds = matrix
    assert result.rc == 1, result.out  # exactly one test fails: the one that does not catch its error
    assert "INTERNALERROR" not in result.out
    assert "FAILED test_matrix.py::test_uncaught_error_fails_only_this_test - " in result.out
    assert "RecordError: metric key 'a:b' contains ':'" in result.out
    assert " 1 failed, " in result.out
    assert seconds < 60, seconds  # 10k keys, 1 MB strings and 2000 levels stay cheap
    outcomes = {t["nodeid"].split("::")[1]: t["outcome"] for t in report["models"]["m"]["tests"]}
    assert outcomes["test_uncaught_error_fails_only_this_test"] == "failed"
    assert report["models"]["m"]["verdict"] == "fail"  # a failed test of the model
    assert json.loads(json.dumps(report)) == report


def test_nonfinite_values_are_kept_as_words(matrix: tuple[Any, dict[str, Any], float]) -> None:
    _, report, _ = matrix
    model = report["models"]["m"]
    for key in ("nan", "inf", "ninf", "np_nan"):
        assert model["metrics"][key] is None
    assert {k: model["nonfinite"][k] for k in ("nan", "inf", "ninf", "np_nan")} == {
        "nan": "nan",
        "inf": "inf",
        "ninf": "-inf",
        "np_nan": "nan",
    }


def test_documented_conversions(matrix: tuple[Any, dict[str, Any], float]) -> None:
    _, report, _ = matrix
    metrics, params = report["models"]["m"]["metrics"], report["models"]["m"]["params"]
    assert {k: params[k] for k in ("flag", "np_flag", "nothing", "text")} == {
        "flag": True,
        "np_flag": False,
        "nothing": None,
        "text": "x",
    }
    assert metrics["f32"] == 0.5 and metrics["i64"] == 3.0 and metrics["u8"] == 7.0
    assert metrics["zero_d"] == 2.5 and metrics["frac"] == 0.25
    assert {k: metrics[f"arr.{k}"] for k in ("mean", "min", "max", "count")} == {
        "mean": 1.5,
        "min": 0.0,
        "max": 3.0,
        "count": 4.0,
    }
    assert metrics["arr.std"] == pytest.approx(math.sqrt(1.25))  # population std
    assert metrics["empty.count"] == 0.0 and "empty.mean" not in metrics
    assert metrics["tup.count"] == 0.0
    assert metrics["matrix.count"] == 6.0 and metrics["matrix.std"] == 0.0
    assert metrics["lst.mean"] == pytest.approx(6.5 / 3)
    assert {k: params[k] for k in ("p_float", "p_int", "p_arr", "p_nan", "p_none", "p_bool")} == {
        "p_float": 1.5,
        "p_int": 2,
        "p_arr": "[0 1 2]",
        "p_nan": "nan",
        "p_none": None,
        "p_bool": True,
    }
    assert metrics["per_class.0"] == 0.1 and metrics["per_class.1"] == 0.9
    # pandas Series/DataFrames are numeric sequences too (when pandas is installed)
    if "series.mean" in metrics:
        assert metrics["series.mean"] == 3.0 and metrics["series.count"] == 3.0
        assert metrics["frame.count"] == 4.0 and metrics["frame.max"] == 4.0
        assert metrics["series_mean"] == 1.5
    assert metrics["x." * 100 + "v"] == 1.0
    assert metrics["k" * 250] == 1.0
    assert params["blob"] == "x" * 1_000_000
    assert len(report["models"]["wide"]["metrics"]) == 10_000


def test_model_names_are_free_text(matrix: tuple[Any, dict[str, Any], float]) -> None:
    _, report, _ = matrix
    assert {"modèle-ß-模型", "team/model:v2", " spaced "} <= set(report["models"])


def test_records_twice_and_collisions(matrix: tuple[Any, dict[str, Any], float]) -> None:
    result, report, _ = matrix
    model = report["models"]["m"]
    assert model["metrics"]["twice"] == 2.0  # same test: the last record wins, silently
    assert [c["key"] for c in model["collisions"]] == ["shared"]
    assert model["collisions"][0]["values"] == [
        {"nodeid": "test_matrix.py::test_collision_a", "value": 1.0},
        {"nodeid": "test_matrix.py::test_collision_b", "value": 2.0},
    ]
    assert model["metrics"]["shared"] == 2.0  # the node id sorting last wins
    assert "FairmindWarning: model 'm': metric 'shared' was recorded with different values" in result.out
    assert "twice" not in "".join(c["key"] for c in model["collisions"])


def test_assess_edge_cases(matrix: tuple[Any, dict[str, Any], float]) -> None:
    """A single group and all-equal predictions: recorded as the plain function computes them
    (NaN where a ratio is 0/0, as null + nonfinite in the report), never an error."""
    from pytest_fairmind import assess

    _, report, _ = matrix
    model = report["models"]["m"]
    cases = {
        "single": assess([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features=["a"] * 4),
        "flat": assess([1, 0, 1, 0], [0, 0, 0, 0], sensitive_features=["a", "a", "b", "b"]),
    }
    for scope, result in cases.items():
        for key, value in result.metrics().items():
            recorded = model["metrics"][f"{scope}/{key}"]
            if math.isnan(value):
                assert recorded is None and model["nonfinite"][f"{scope}/{key}"] == "nan"
            else:
                assert recorded == value, (scope, key)
    assert model["metrics"]["single/accuracy"] == 0.75
    assert len(model["groups"]["single"]) == 1
    assert model["metrics"]["flat/selection_rate"] == 0.0
    assert model["nonfinite"]["flat/demographic_parity_ratio"] == "nan"  # 0/0


NUMPY_UNDER_XDIST = """
import numpy as np
import pytest

@pytest.mark.parametrize("i", range(4))
def test_numpy(fairmind, i):
    fairmind.record({"f32": np.float32(0.5) + i, "arr": np.arange(i + 1), "flag": np.bool_(i % 2),
                     "nan": np.float64("nan")}, model=f"m{i}", params={"p": np.int64(i)})
"""


def test_numpy_values_cross_xdist_as_plain_values(tmp_path: Path) -> None:
    pytest.importorskip("xdist")
    write(tmp_path, "test_np.py", NUMPY_UNDER_XDIST)
    plain = run_pytest(tmp_path, "--fairmind-json=plain.json")
    assert plain.rc == 0, plain.out
    dist = run_pytest(tmp_path, "-n", "2", "--fairmind-json=dist.json")
    assert dist.rc == 0, dist.out
    assert "INTERNALERROR" not in dist.out
    assert dist.report("dist.json")["models"] == plain.report("plain.json")["models"]
    assert dist.report("dist.json")["models"]["m3"]["metrics"]["arr.count"] == 4.0


ODD_MODELS_TO_PROVIDERS = """
import pytest

@pytest.mark.parametrize("model", ["modèle-ß-模型", "team/model:v2"])
def test_odd(fairmind, model):
    fairmind.record({"accuracy": 0.5, "nan": float("nan"), "inf": float("inf")}, model=model,
                    params={"blob": "y" * 1_000_000, "flag": True, "none": None})
    fairmind.assess([1, 0, 1, 0], [1, 0, 0, 0], sensitive_features={"grp/a": ["a", "a", "b", "b"]},
                    model=model)
"""


def test_odd_names_and_huge_values_reach_the_providers(tmp_path: Path, mlflow_store: MlflowStore) -> None:
    """Unicode and '/' model names, 1 MB params, NaN and inf, a scope with '/': MLflow and W&B
    (offline) log every model, with no error."""
    write(tmp_path, "test_odd.py", ODD_MODELS_TO_PROVIDERS)
    uri = mlflow_store(tmp_path)
    result = run_pytest(
        tmp_path,
        "--fairmind-provider=mlflow,wandb",
        f"--fairmind-mlflow-uri={uri}",
        "--fairmind-wandb-mode=offline",
        "--fairmind-timeout=120",
        "--fairmind-json=report.json",
    )
    assert result.rc == 0, result.out
    providers = result.report()["providers"]
    for name in ("mlflow", "wandb"):
        assert providers[name]["ok"], (name, providers[name])
        assert set(providers[name]["runs"]) == {"modèle-ß-模型", "team/model:v2"}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = runs_of(uri, "fairmind")
    assert sorted(r.info.run_name for r in runs) == ["modèle-ß-模型", "team/model:v2"]
    for run in runs:
        assert run.data.params["flag"] == "True" and run.data.params["none"] == "None"
        assert run.data.params["blob"].endswith("...[truncated, full value in fairmind/params.json]")
        assert math.isnan(run.data.metrics["nan"])
        assert run.data.metrics["grp/a/accuracy"] == 0.75

    wandb_runs = read_runs(str(tmp_path / "wb" / "wandb"))
    assert sorted(wandb_runs) == ["modèle-ß-模型", "team/model:v2"]
    for run in wandb_runs.values():
        assert run.config["blob"] == "y" * 1_000_000
        assert run.metrics["inf"] == math.inf
