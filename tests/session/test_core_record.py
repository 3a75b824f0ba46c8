"""SPEC section 3: the ``fairmind`` fixture and ``record(...)``."""

from __future__ import annotations

import importlib.util
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from helpers import (
    outcomes,
    run_with_report,
)

from pytest_fairmind import Fairmind
from pytest_fairmind.records import MAX_KEY_LENGTH, RecordError, make_record

PLAIN_TYPES = (str, int, float, bool, type(None))


def _assert_plain(value: Any, path: str = "record") -> None:
    """Nothing numpy (or any other non-builtin type) anywhere in a record."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{path}: key {key!r}"
            _assert_plain(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _assert_plain(item, f"{path}[{i}]")
    else:
        assert type(value) in PLAIN_TYPES, f"{path}: {type(value).__module__}.{type(value).__name__}"


# --- flattening and value kinds (pure) -----------------------------------------------------------


def test_nested_mappings_are_flattened_with_dots() -> None:
    record = make_record({"a": {"b": {"c": 1.5}, "d": 2}, "e": 3}, model="m")
    assert record["metrics"] == {"a.b.c": 1.5, "a.d": 2.0, "e": 3.0}
    assert record["params"] == {}
    assert record["model"] == "m"


@pytest.mark.parametrize(
    "value",
    [
        3,
        0.25,
        np.float64(0.25),
        np.float32(0.5),
        np.float16(0.5),
        np.int64(7),
        np.int8(-3),
        np.uint16(9),
        np.array(0.75),  # 0-d array
        Fraction(1, 4),
    ],
    ids=repr,
)
def test_numbers_become_plain_float_metrics(value: Any) -> None:
    record = make_record({"x": value}, model="m")
    assert list(record["metrics"]) == ["x"]
    got = record["metrics"]["x"]
    assert type(got) is float
    assert got == float(value)
    assert record["params"] == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (np.bool_(True), True),
        ("a text", "a text"),
        (np.str_("np text"), "np text"),
        (None, None),
    ],
    ids=repr,
)
def test_bool_str_none_become_params(value: Any, expected: Any) -> None:
    record = make_record({"p": value}, model="m")
    assert record["metrics"] == {}
    assert record["params"] == {"p": expected}
    assert type(record["params"]["p"]) is type(expected)


@pytest.mark.parametrize(
    "values",
    [
        [1, 2, 3, 4],
        (1, 2, 3, 4),
        np.array([1, 2, 3, 4]),
        np.array([[1.0, 2.0], [3.0, 4.0]]),
        [np.int64(1), 2, 3.0, 4],
    ],
    ids=["list", "tuple", "array", "2d-array", "mixed-numpy-list"],
)
def test_numeric_sequences_become_statistics(values: Any) -> None:
    record = make_record({"scores": values}, model="m")
    metrics = record["metrics"]
    assert set(metrics) == {"scores.mean", "scores.min", "scores.max", "scores.std", "scores.count"}
    assert metrics["scores.mean"] == 2.5
    assert metrics["scores.min"] == 1.0
    assert metrics["scores.max"] == 4.0
    assert metrics["scores.std"] == pytest.approx(math.sqrt(1.25))  # population std (ddof=0)
    assert metrics["scores.std"] == pytest.approx(float(np.std(np.asarray(values, dtype=float))))
    assert metrics["scores.count"] == 4.0
    _assert_plain(record)


@pytest.mark.parametrize(
    "empty", [[], (), np.array([]), np.zeros((0, 3))], ids=["list", "tuple", "array", "2d"]
)
def test_empty_sequence_gives_only_count_zero(empty: Any) -> None:
    record = make_record({"scores": empty}, model="m")
    assert record["metrics"] == {"scores.count": 0.0}


def test_single_value_sequence_has_zero_std() -> None:
    metrics = make_record({"s": [0.3]}, model="m")["metrics"]
    assert metrics == {"s.mean": 0.3, "s.min": 0.3, "s.max": 0.3, "s.std": 0.0, "s.count": 1.0}


def test_scope_prefixes_metric_and_param_keys_not_tags() -> None:
    record = make_record(
        {"demographic_parity_ratio": 0.8, "nested": {"v": 1}, "note": "x", "arr": [1, 3]},
        model="m",
        scope="sex",
        params={"threshold": 0.5, "algo": "lr"},
        tags={"team": "risk"},
    )
    assert record["metrics"] == {
        "sex/demographic_parity_ratio": 0.8,
        "sex/nested.v": 1.0,
        "sex/arr.mean": 2.0,
        "sex/arr.min": 1.0,
        "sex/arr.max": 3.0,
        "sex/arr.std": 1.0,
        "sex/arr.count": 2.0,
    }
    assert record["params"] == {"sex/note": "x", "sex/threshold": 0.5, "sex/algo": "lr"}
    assert record["tags"] == {"team": "risk"}


def test_explicit_params_keep_numbers_as_params() -> None:
    record = make_record(
        {"acc": 0.9},
        model="m",
        params={"n_estimators": np.int64(100), "lr": np.float32(0.5), "cfg": {"depth": 3}},
    )
    assert record["metrics"] == {"acc": 0.9}
    assert record["params"] == {"n_estimators": 100, "lr": 0.5, "cfg.depth": 3}
    _assert_plain(record)


def test_tags_are_a_mapping_of_strings() -> None:
    assert make_record({}, model="m", tags={"owner": "ana", "stage": "dev"})["tags"] == {
        "owner": "ana",
        "stage": "dev",
    }
    with pytest.raises(RecordError, match="tags"):
        make_record({}, model="m", tags=["owner"])  # type: ignore[arg-type]
    with pytest.raises(RecordError, match="owner"):
        make_record({}, model="m", tags={"owner": {"nested": "x"}})


def test_unsupported_values_are_rejected_naming_the_key() -> None:
    with pytest.raises(RecordError, match=r"'a\.weird'"):
        make_record({"a": {"weird": object()}}, model="m")
    with pytest.raises(RecordError, match="'flags'"):
        make_record({"flags": [True, False]}, model="m")
    with pytest.raises(RecordError, match="mapping"):
        make_record([("a", 1)], model="m")  # type: ignore[arg-type]


def test_record_holds_only_plain_python_values() -> None:
    record = make_record(
        {
            "a": np.float64(0.1),
            "b": np.array([1, 2], dtype=np.int32),
            "c": np.bool_(False),
            "d": {"e": np.int16(3)},
        },
        model="m",
        scope="s",
        params={"p": np.float64(1.5), "q": np.str_("x")},
        tags={"t": "v"},
    )
    _assert_plain(record)


# --- keys (pure) ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["accuracy", "sex/age.dp ratio", "A-b_c.d/e f", "ñandú 2", "x" * MAX_KEY_LENGTH]
)
def test_allowed_keys(key: str) -> None:
    assert list(make_record({key: 1}, model="m")["metrics"]) == [key]


@pytest.mark.parametrize("bad", [":", "<", "=", ",", ">", "\n", "\t", "|", "\\", "*", "?"])
def test_rejected_characters_name_the_key(bad: str) -> None:
    key = f"ratio{bad}x"
    with pytest.raises(RecordError) as info:
        make_record({key: 1.0}, model="m")
    assert repr(key) in str(info.value)


def test_trailing_newline_is_rejected() -> None:
    with pytest.raises(RecordError, match="ratio"):
        make_record({"ratio\n": 1.0}, model="m")


@pytest.mark.parametrize("kind", ["metric", "param", "params=", "tag"])
def test_key_characters_are_validated_everywhere(kind: str) -> None:
    key = "a:b"
    with pytest.raises(RecordError, match="'a:b'"):
        if kind == "metric":
            make_record({key: 1.0}, model="m")
        elif kind == "param":
            make_record({key: "text"}, model="m")
        elif kind == "params=":
            make_record({}, model="m", params={key: 1})
        else:
            make_record({}, model="m", tags={key: "x"})


def test_key_length_limit_is_250_including_scope() -> None:
    make_record({"x" * 250: 1.0}, model="m")
    with pytest.raises(RecordError, match="251 characters"):
        make_record({"x" * 251: 1.0}, model="m")
    make_record({"x" * 246: 1.0}, model="m", scope="sex")  # "sex/" + 246 = 250
    with pytest.raises(RecordError, match="at most 250"):
        make_record({"x" * 247: 1.0}, model="m", scope="sex")
    with pytest.raises(RecordError, match="at most 250"):
        make_record({"x" * 200: {"y" * 50: 1.0}}, model="m")  # 200 + "." + 50 after flattening


def test_scope_is_validated() -> None:
    with pytest.raises(RecordError, match="'a:b'"):
        make_record({"x": 1.0}, model="m", scope="a:b")


def test_nothing_is_renamed_silently() -> None:
    record = make_record({"Mixed Case key": 1.0, "  spaced  ": 2.0}, model="m")
    assert set(record["metrics"]) == {"Mixed Case key", "  spaced  "}


# --- the fixture in a session --------------------------------------------------------------------


def test_fairmind_is_exported_for_type_hints(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from __future__ import annotations

        import typing

        import pytest_fairmind
        from pytest_fairmind import Fairmind


        def test_annotated(fairmind: Fairmind) -> None:
            assert isinstance(fairmind, Fairmind)
            assert "Fairmind" in pytest_fairmind.__all__
            assert typing.get_type_hints(test_annotated)["fairmind"] is Fairmind
            fairmind.record({"acc": 1}, model="m")
            assert fairmind.records[0]["metrics"] == {"acc": 1.0}
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
    assert Fairmind.__module__.startswith("pytest_fairmind")


def test_fixture_is_function_scoped_records_belong_to_their_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_one(fairmind):
            fairmind.record({"one": 1}, model="m")
            assert len(fairmind.records) == 1

        def test_two(fairmind):
            assert fairmind.records == []
            fairmind.record({"two": 2}, model="m")
        """
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=2)
    assert doc["models"]["m"]["metrics"] == {"one": 1.0, "two": 2.0}
    assert outcomes(doc, "m") == {
        "test_fixture_is_function_scoped_records_belong_to_their_test.py::test_one": "passed",
        "test_fixture_is_function_scoped_records_belong_to_their_test.py::test_two": "passed",
    }


def test_record_end_to_end(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import numpy as np

        def test_rec(fairmind):
            fairmind.record(
                {"overall": {"accuracy": np.float64(0.91), "n": np.int64(1000)},
                 "fold_scores": np.array([0.8, 0.9, 1.0]),
                 "empty": [],
                 "calibrated": np.bool_(True),
                 "solver": "lbfgs",
                 "seed": None},
                model="credit",
                scope="sex",
                params={"C": 1.0},
                tags={"owner": "risk-team"},
            )
        """
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=1)
    model = doc["models"]["credit"]
    assert model["metrics"] == {
        "sex/overall.accuracy": 0.91,
        "sex/overall.n": 1000.0,
        "sex/fold_scores.mean": pytest.approx(0.9),
        "sex/fold_scores.min": 0.8,
        "sex/fold_scores.max": 1.0,
        "sex/fold_scores.std": pytest.approx(float(np.std([0.8, 0.9, 1.0]))),
        "sex/fold_scores.count": 3.0,
        "sex/empty.count": 0.0,
    }
    assert model["params"] == {"sex/calibrated": True, "sex/solver": "lbfgs", "sex/seed": None, "sex/C": 1.0}
    assert model["tags"] == {"owner": "risk-team"}
    assert model["verdict"] == "pass"


def test_model_fallback_order(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        fairmind_model = ini-model
        """
    )
    pytester.makepyfile(
        test_marked="""
        import pytest

        pytestmark = pytest.mark.fairmind(model="module-model")

        def test_module(fairmind):
            fairmind.record({"module_key": 1})

        @pytest.mark.fairmind(model="test-model")
        def test_marker(fairmind):
            fairmind.record({"marker_key": 1})

        @pytest.mark.fairmind(model="test-model")
        def test_explicit(fairmind):
            fairmind.record({"explicit_key": 1}, model="explicit-model")

        @pytest.mark.fairmind("positional-model")
        def test_positional(fairmind):
            fairmind.record({"positional_key": 1})

        @pytest.mark.fairmind(model="class-model")
        class TestClass:
            def test_class(self, fairmind):
                fairmind.record({"class_key": 1})

            @pytest.mark.fairmind(gates=["gated_key >= 0"])
            def test_gates_only_marker(self, fairmind):
                # a marker without a model does not hide the class's model
                fairmind.record({"gated_key": 1})
        """,
        test_unmarked="""
        def test_ini(fairmind):
            fairmind.record({"ini_key": 1})

        def test_ini_but_explicit(fairmind):
            fairmind.record({"other_key": 1}, model="other-model")
        """,
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=8)
    metrics = {name: sorted(m["metrics"]) for name, m in doc["models"].items()}
    assert metrics == {
        "class-model": ["class_key", "gated_key"],
        "explicit-model": ["explicit_key"],
        "ini-model": ["ini_key"],
        "module-model": ["module_key"],
        "other-model": ["other_key"],
        "positional-model": ["positional_key"],
        "test-model": ["marker_key"],
    }
    # a test that named its model explicitly does not also appear under the ini default
    assert list(outcomes(doc, "ini-model")) == ["test_unmarked.py::test_ini"]
    # the marker's gates apply to the class's model
    assert [(g["key"], g["passed"]) for g in doc["models"]["class-model"]["gates"]] == [("gated_key", True)]


def test_fixture_default_model_attribute(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nfairmind_model = ini-model\n")
    pytester.makepyfile(
        """
        import pytest

        def test_ini(fairmind):
            assert fairmind.default_model == "ini-model"

        @pytest.mark.fairmind(model="marked")
        def test_marked(fairmind):
            assert fairmind.default_model == "marked"
        """
    )
    pytester.runpytest().assert_outcomes(passed=2)


def test_no_model_anywhere_errors_with_help(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_no_model(fairmind):
            fairmind.record({"accuracy": 0.9})
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no model named*"])
    text = result.stdout.str()
    for hint in ("model='...'", "@pytest.mark.fairmind(model=", "fairmind_model"):
        assert hint in text, hint
    assert not (pytester.path / ".fairmind").exists()  # nothing was recorded


def test_bad_key_fails_the_test_naming_the_key(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_bad_key(fairmind):
            fairmind.record({"sex": {"ratio:new": 0.9}}, model="m")
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*'sex.ratio:new'*"])


def test_model_name_may_hold_spaces_and_unicode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_rec(fairmind):
            fairmind.record({"acc": 0.5}, model="Modèle crédit v2 (prod)")
        """
    )
    _, doc = run_with_report(pytester)
    assert list(doc["models"]) == ["Modèle crédit v2 (prod)"]


def test_records_do_not_appear_in_junitxml(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_rec(fairmind, record_property):
            record_property("user_prop", "kept")
            fairmind.record({"very_distinct_metric_key": 0.123456}, model="junit-model",
                            params={"very_distinct_param": "pval"}, tags={"very_distinct_tag": "tval"})
        """
    )
    result, doc = run_with_report(pytester, "--junitxml=junit.xml")
    result.assert_outcomes(passed=1)
    xml = (pytester.path / "junit.xml").read_text(encoding="utf-8")
    assert 'name="user_prop" value="kept"' in xml  # the user's own properties are untouched
    for leaked in ("very_distinct", "0.123456", "junit-model", "pval", "tval", "fairmind_payload"):
        assert leaked not in xml, leaked
    assert doc["models"]["junit-model"]["metrics"] == {"very_distinct_metric_key": 0.123456}


def test_records_made_in_a_fixture_belong_to_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def trained(fairmind):
            fairmind.record({"train_accuracy": 0.99}, model="m")
            yield
            fairmind.record({"teardown_metric": 1.0}, model="m")

        def test_uses_fixture(trained, fairmind):
            fairmind.record({"test_accuracy": 0.9}, model="m")
        """
    )
    _, doc = run_with_report(pytester)
    assert doc["models"]["m"]["metrics"] == {
        "train_accuracy": 0.99,
        "test_accuracy": 0.9,
        "teardown_metric": 1.0,
    }
    assert outcomes(doc, "m") == {
        "test_records_made_in_a_fixture_belong_to_the_test.py::test_uses_fixture": "passed"
    }


@pytest.mark.skipif(
    importlib.util.find_spec("pytest_fairmind.metrics") is None,
    reason="the metrics engine has not landed yet",
)
def test_assess_records_scoped_metrics_and_groups(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest_fairmind

        def test_assess(fairmind):
            y_true = [1, 0, 1, 0, 1, 0, 1, 0]
            y_pred = [1, 0, 0, 0, 1, 1, 1, 0]
            sex = {"sex": ["f", "f", "f", "f", "m", "m", "m", "m"]}
            result = fairmind.assess(y_true, y_pred, sensitive_features=sex, model="clf")
            assert isinstance(result, pytest_fairmind.FairnessResult)
            fairmind.assess(y_true, y_pred, sensitive_features=sex["sex"], model="clf", scope="gender")
        """
    )
    result, doc = run_with_report(pytester)
    result.assert_outcomes(passed=1)
    model = doc["models"]["clf"]
    for scope in ("sex", "gender"):
        for metric in ("demographic_parity_difference", "equalized_odds_ratio", "accuracy", "count"):
            assert f"{scope}/{metric}" in model["metrics"], (scope, metric)
        rows = model["groups"][scope]
        assert len(rows) == 2
        assert {row["count"] for row in rows} == {4}
    assert not [k for k in model["metrics"] if "/" not in k]


def test_record_and_assess_signatures_match_the_spec() -> None:
    import inspect

    record = inspect.signature(Fairmind.record)
    assert [(p.name, p.kind, p.default) for p in list(record.parameters.values())[1:]] == [
        ("metrics", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("model", inspect.Parameter.KEYWORD_ONLY, None),
        ("scope", inspect.Parameter.KEYWORD_ONLY, None),
        ("params", inspect.Parameter.KEYWORD_ONLY, None),
        ("tags", inspect.Parameter.KEYWORD_ONLY, None),
    ]
    assess = inspect.signature(Fairmind.assess)
    params = list(assess.parameters.values())[1:]
    assert [(p.name, p.kind, p.default) for p in params[:2]] == [
        ("y_true", inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.empty),
        ("y_pred", inspect.Parameter.POSITIONAL_OR_KEYWORD, None),
    ]
    assert {p.name: p.default for p in params[2:]} == {
        "sensitive_features": inspect.Parameter.empty,
        "y_score": None,
        "task": None,
        "metrics": None,
        "threshold": None,
        "class_names": None,
        "per_class": False,
        "model": None,
        "scope": None,
        "sample_weight": None,
        "pos_label": 1,
        "n_boot": None,
        "ci": 0.95,
        "random_state": 0,
        "min_group_size": None,
    }
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[2:])


def test_record_options_are_keyword_only(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_positional_model(fairmind):
            with pytest.raises(TypeError):
                fairmind.record({"a": 1}, "m")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "metrics",
    [{"a.b": 1, "a": {"b": 2}}, {"s": [1, 2], "s.mean": 5}, {0: 1.0, "0": 2.0}, {"a.b": "x", "a": {"b": 1}}],
    ids=["dotted-vs-nested", "stat-vs-key", "int-vs-str", "param-vs-metric"],
)
def test_keys_that_flatten_to_the_same_name_are_rejected(metrics: dict[Any, Any]) -> None:
    with pytest.raises(RecordError, match=r"recorded twice|both as a metric and as a param"):
        make_record(metrics, model="m")
