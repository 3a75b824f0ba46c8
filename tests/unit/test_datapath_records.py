"""Scans and evidence on records (``records.make_record``) and through aggregation
(``aggregate.build_models``): plain data, the last test of a scope wins, collisions as before."""

from __future__ import annotations

import math
from typing import Any

import execnet
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_fairmind.aggregate import Collector, build_models
from pytest_fairmind.aggregate import TestData as Data
from pytest_fairmind.records import RecordError, make_record, validate_key, validate_keys

PLAIN = (str, int, float, bool, type(None))


def _plain_only(value: Any) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and _plain_only(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_only(v) for v in value)
    return type(value) in PLAIN


def test_scans_and_evidence_become_plain_json_data() -> None:
    scan = {
        "metric": "selection_rate",
        "subgroups_tested": np.int64(3),
        "rows": [{"conditions": {"sex": np.str_("f")}, "count": np.int32(4), "ratio": np.float64(np.inf)}],
    }
    evidence = {
        "kind": "grid",
        "probs": np.array([0.025, 0.975]),
        "quantiles": {"a": (np.float32(0.5), math.nan)},
    }
    record = make_record({"a": 1.0}, model="m", scans={"sex": scan}, evidence={"sex": evidence})
    assert _plain_only(record)
    assert record["scans"] == {
        "sex": {
            "metric": "selection_rate",
            "subgroups_tested": 3,
            "rows": [{"conditions": {"sex": "f"}, "count": 4, "ratio": math.inf}],
        }
    }
    assert record["evidence"]["sex"]["probs"] == [0.025, 0.975]
    assert record["evidence"]["sex"]["quantiles"]["a"][0] == 0.5 and math.isnan(
        record["evidence"]["sex"]["quantiles"]["a"][1]
    )
    execnet.dumps(record)  # what xdist sends from a worker: raises on anything it cannot carry


def test_records_without_them_carry_empty_ones() -> None:
    record = make_record({"a": 1.0}, model="m")
    assert record["scans"] == {} and record["evidence"] == {}


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"scans": {"bad:scope": {}}}, "scans scope 'bad:scope' contains ':'"),
        ({"evidence": {"a//b": {}}}, "evidence scope 'a//b' is not a clean path"),
        ({"scans": {1: {}}}, "scans scope 1 is a int"),
        ({"scans": [("sex", {})]}, "scans must be a mapping of scope to data, not list"),
        ({"evidence": {"sex": [1, 2]}}, r"evidence\['sex'\] must be a mapping, not list"),
        ({"evidence": {"sex": {"cells": {1, 2}}}}, r"evidence\['sex'\]\['cells'\] is a set"),
        ({"scans": {"sex": {"rows": [{"n": object()}]}}}, r"scans\['sex'\]\['rows'\]\[0\]\['n'\] is a obj"),
        ({"evidence": {"sex": {"kind": np.array(["a", None], dtype=object)}}}, None),  # JSON: accepted
    ],
)  # fmt: skip
def test_bad_scans_and_evidence_are_refused_where_they_are_recorded(
    kwargs: dict[str, Any], problem: str | None
) -> None:
    if problem is None:
        assert make_record({}, model="m", **kwargs)["evidence"] == {"sex": {"kind": ["a", None]}}
        return
    with pytest.raises(RecordError, match=problem):
        make_record({}, model="m", **kwargs)


def test_a_scope_holding_a_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICE_TOKEN", "abcd1234")
    with pytest.raises(RecordError, match="holds the value of SERVICE_TOKEN"):
        make_record({}, model="m", evidence={"sex abcd1234": {"kind": "grid"}})


# --------------------------------------------------------------------------- aggregation


def _payload(model: str, **kinds: Any) -> dict[str, Any]:
    return {"records": [{"model": model, "metrics": {}, "params": {}, "tags": {}, **kinds}]}


def test_the_last_test_of_a_scope_wins_for_scans_and_evidence() -> None:
    collector = Collector()
    # arrival order is not node id order (xdist): node ids decide
    collector.add_report(
        "t.py::b",
        "call",
        "passed",
        payload=_payload("m", scans={"sex": {"n": 2}}, evidence={"sex": {"n": 2}}),
    )
    collector.add_report(
        "t.py::a",
        "call",
        "passed",
        payload=_payload("m", scans={"sex": {"n": 1}, "age": {"n": 1}}, evidence={"age": {"n": 1}}),
    )
    collector.add_report("t.py::c", "call", "passed", payload=_payload("other", evidence={"sex": {"n": 3}}))
    models, warnings = collector.build()
    assert models["m"].scans == {"sex": {"n": 2}, "age": {"n": 1}}
    assert models["m"].evidence == {"age": {"n": 1}, "sex": {"n": 2}}
    assert models["other"].evidence == {"sex": {"n": 3}} and models["other"].scans == {}
    assert warnings == []  # like groups: a scope replaced as a whole is no collision


def test_within_one_test_a_later_record_of_a_scope_wins() -> None:
    collector = Collector()
    first, second = _payload("m", scans={"sex": {"n": 1}}), _payload("m", scans={"sex": {"n": 2}})
    collector.add_report(
        "t.py::a", "call", "passed", payload={"records": first["records"] + second["records"]}
    )
    assert collector.build()[0]["m"].scans == {"sex": {"n": 2}}


_VALUES = st.sampled_from([0.5, 0.25, math.nan, "x", True, 1.0])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["m1", "m2"]),
            st.sampled_from(["metrics", "params", "tags"]),
            st.dictionaries(st.sampled_from(["k1", "k2", "k3", "k4"]), _VALUES, max_size=3),
        ),
        max_size=8,
    )
)
def test_collisions_match_a_key_by_key_reference(recorded: list[tuple[str, str, dict[str, Any]]]) -> None:
    tests = [
        Data(f"t.py::test_{i}", "passed", records=[{"model": model, kind: values}])
        for i, (model, kind, values) in enumerate(recorded)
    ]
    models, warnings = build_models(reversed(tests))
    expected = _reference_collisions(tests)
    got = [(name, c.key, c.values) for name, result in models.items() for c in result.collisions]
    assert _comparable(got) == _comparable([c for c in expected if c[0] in models])
    assert len(warnings) == len(expected)
    for name, result in models.items():
        for kind in ("metrics", "params", "tags"):
            last: dict[str, Any] = {}
            for test in tests:
                for record in test.records:
                    if record["model"] == name:
                        last.update(record.get(kind) or {})
            assert _comparable(list(getattr(result, kind).items())) == _comparable(list(last.items()))


def _reference_collisions(tests: list[Data]) -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """Every (model, key) recorded by several tests with differing values, key by key."""
    history: dict[tuple[str, str], dict[str, list[tuple[str, Any]]]] = {}
    for test in sorted(tests, key=lambda t: t.nodeid):
        for record in test.records:
            for kind in ("metrics", "params", "tags"):
                for key, value in (record.get(kind) or {}).items():
                    history.setdefault((kind, record["model"]), {}).setdefault(key, []).append(
                        (test.nodeid, value)
                    )
    found = []
    for kind in ("metrics", "params", "tags"):
        for (k, model), keys in history.items():
            for key, values in keys.items():
                if k == kind and len({repr(v) + type(v).__name__ for _, v in values}) > 1:
                    found.append((model, key, values))
    return sorted(found, key=lambda c: c[0])


def _comparable(value: Any) -> str:
    return repr(value)  # NaN is equal to NaN in its repr


# --------------------------------------------------------------------------- keys checked together


_KEY_CHARS = st.sampled_from(["a", "Z", "0", "_", "-", ".", "/", " ", "é", ":", "\n", "<", "~"])


@given(st.lists(st.text(_KEY_CHARS, max_size=8), max_size=5), st.sampled_from(["", "x" * 251, "ok"]))
def test_keys_checked_together_pass_exactly_when_each_passes(keys: list[str], extra: str) -> None:
    names = [*keys, extra]
    errors = []
    for name in names:
        try:
            validate_key(name)
        except RecordError as exc:
            errors.append(str(exc))
    if not errors:
        validate_keys(names)
    else:
        with pytest.raises(RecordError) as info:
            validate_keys(names)
        assert str(info.value) == errors[0]  # the first bad key, as validate_key words it
