"""Issue 12: what the ``fairmind`` command reads and decides before it touches a provider.

- a report file of any shape is a session or one :class:`~pytest_fairmind.report.ReportError`
  (hypothesis over malformed documents), never another exception;
- ``classify_baseline``: a misspelt ``--fairmind-baseline`` is an error with a suggestion;
- where a replay logs (flags, recorded target, environment, ini, default);
- ``fairmind check`` of a report: the baselines the session recorded, strict reasons, ``--strict``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_fairmind import cli, gating, report
from pytest_fairmind.gating.baseline import recorded_baseline
from pytest_fairmind.gating.pipeline import strict_line
from pytest_fairmind.gating.sources import BaselineError, BaselineRequest, classify_baseline, read_baseline
from pytest_fairmind.replay import ReplayOptions, replay_target
from pytest_fairmind.result import (
    Collision,
    GateResult,
    ModelResult,
    ProviderOutcome,
    RunRef,
    SessionResult,
)
from pytest_fairmind.result import TestOutcome as Outcome
from pytest_fairmind.summary import verdict_lines

EOD = "sex/equalized_odds_difference"
DPR = "sex/demographic_parity_ratio"


def rich_session() -> SessionResult:
    """A session using every part of the report: gates of both kinds, groups, collisions, providers."""
    model = ModelResult(
        "credit",
        metrics={EOD: 0.2, DPR: 0.85, "sex/inf": math.inf, "sex/nan": math.nan},
        params={"threshold": "0.5", "n": 3, "flag": True, "none": None},
        tags={"team": "risk"},
        groups={"sex": [{"group": {"sex": "f"}, "count": 4, "selection_rate": 0.5, "accuracy": math.nan}]},
        tests=[Outcome("t.py::test_a", "passed"), Outcome("t.py::test_b", "failed")],
        gates=[
            GateResult("demographic_parity_ratio >= 0.8", DPR, 0.85, ">= 0.8", "pass"),
            GateResult(
                "equalized_odds_difference ~ 0.02",
                EOD,
                0.2,
                "<= 0.07 (...)",
                "fail",
                "regression",
                baseline=0.05,
                change=0.15,
                direction="lower",
            ),
        ],
        collisions=[Collision("sex/x", [("t.py::a", 1.0), ("t.py::b", "two")])],
        verdict="fail",
    )
    return SessionResult(
        id="abc123",
        project="p",
        started="2026-01-01T00:00:00+00:00",
        finished="2026-01-01T00:00:01+00:00",
        exitstatus=1,
        git={"commit": "0123abcd", "branch": "main", "dirty": False},
        models={"credit": model},
        providers={
            "mlflow": ProviderOutcome(ok=False, error="down", target="http://127.0.0.1:5000"),
            "wandb": ProviderOutcome(ok=True, runs={"credit": RunRef("r1", None, "/w", skipped=True)}),
        },
        gates_not_evaluated=["nothing <= 1"],
        context={"pytest.version": "9"},
        notices=["a notice"],
    )


VALID: dict[str, Any] = json.loads(report.dumps(rich_session()))


# --------------------------------------------------------------------------- malformed documents

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**6)
    | st.sampled_from([10**400, -(10**309), 2**63, 2**31])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


def _mutate(doc: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    if not path:
        return value
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete" and isinstance(parent, dict):
        del parent[last]
    elif action == "delete":
        parent.pop(last)
    else:
        parent[last] = value
    return doc


@st.composite
def malformed_documents(draw: st.DrawFn) -> Any:
    """The valid report with a few of its values replaced by arbitrary JSON, or removed."""
    doc: Any = copy.deepcopy(VALID)
    if draw(st.integers(min_value=0, max_value=50)) == 0:
        return draw(json_values)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = list(_paths(doc))[1:] or [()]  # the document itself is replaced below, rarely
        paths.sort(key=lambda path: zlib.crc32(repr(path).encode()))  # not schema, session... first
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "replace", "delete"]))
        doc = _mutate(doc, path, action, draw(json_values))
        if not isinstance(doc, dict | list):
            break
    return doc


def _usable(session: SessionResult) -> None:
    """What the command does with a session it read: print it, gate it, save it again."""
    text = report.dumps(session)
    again = report.loads(text)
    assert report.dumps(again) == text
    verdict_lines(again)
    exprs = [g.expr for m in again.models.values() for g in m.gates]
    gates = []
    for expr in exprs:
        with contextlib.suppress(gating.GateSyntaxError):
            gates.append(gating.parse_gate(expr))
    gating.run(gates, again.models, baseline=recorded_baseline(again.models))


@settings(max_examples=400, deadline=None)
@given(malformed_documents())
def test_any_document_is_a_session_or_one_report_error(doc: Any) -> None:
    try:
        text = json.dumps(doc, allow_nan=True)
    except ValueError:  # a float that JSON cannot spell at all
        return
    decoders: list[Callable[[], SessionResult]] = [
        lambda: report.session_from_dict(copy.deepcopy(doc)),
        lambda: report.loads(text),
    ]
    for decode in decoders:
        try:
            session = decode()
        except report.ReportError as exc:
            message = str(exc)
            assert message and "\n" not in message and len(message) < 400, message
            continue
        _usable(session)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=malformed_documents())
def test_fairmind_check_of_any_document_exits_0_1_or_2(
    doc: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        monkeypatch.chdir(folder)
        Path(folder, "r.json").write_text(json.dumps(doc, allow_nan=True), encoding="utf-8")
        code = cli.main(["check", "r.json"])
        out, err = capsys.readouterr()
    assert code in (0, 1, 2), out + err
    if code == 2:
        assert err.startswith("fairmind: error: r.json: ") and err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"schema": "pytest-fairmind/1", "n": ' + "9" * 400 + "}", "a number with 400 digits: out of range"),
        ('{"schema": "pytest-fairmind/1", "n": ' + "9" * 5000 + "}", "not valid JSON"),
        ("[" * 200_000 + "]" * 200_000, "nested deeper than 32 levels"),
        ("[" * 40 + "]" * 40, "nested deeper than 32 levels"),
        ('{"schema": "pytest-fairmind/1", "n": NaN}', "the token 'NaN': not strict JSON"),
        ('{"schema": "pytest-fairmind/1", "n": -Infinity}', "the token '-Infinity': not strict JSON"),
        ('{"schema": "pytest-fairmind/1", "n": "\\udcff"}', "not valid Unicode"),
        ('{"schema": "pytest-fairmind/1", "\\ud800": 1}', "not valid Unicode"),
        ("[1, 2]", "the document: expected an object, got an array"),
        ('{"schema": "x"}', "not a pytest-fairmind report"),
        ('{"schema": "pytest-fairmind/1", "session": 7}', "session: expected an object, got a number"),
    ],
)
def test_specific_malformations(text: str, message: str) -> None:
    with pytest.raises(report.ReportError, match=None) as caught:
        report.loads(text)
    assert message in str(caught.value)


def test_wrong_types_name_where_they_are() -> None:
    doc = copy.deepcopy(VALID)
    doc["models"]["credit"]["metrics"][EOD] = "0.2"
    with pytest.raises(report.ReportError) as caught:
        report.session_from_dict(doc)
    assert str(caught.value) == f"models.credit.metrics.{EOD}: expected a number, got a string"
    doc = copy.deepcopy(VALID)
    doc["models"]["credit"]["gates"][1]["outcome"] = "maybe"
    with pytest.raises(report.ReportError, match=r"models\.credit\.gates\[1\]\.outcome: maybe is not one of"):
        report.session_from_dict(doc)


def test_the_file_size_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report, "MAX_REPORT_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({**VALID, "pad": "x" * 2000}), encoding="utf-8")
    with pytest.raises(report.ReportError, match="larger than"):
        report.load(str(path))
    path.write_bytes(b"\xef\xbb\xbf" + report.dumps(SessionResult("s", "p", "2026-01-01")).encode())
    assert report.load(str(path)).id == "s"  # a byte order mark is fine


def test_the_valid_document_still_round_trips() -> None:
    session = report.session_from_dict(copy.deepcopy(VALID))
    assert report.dumps(session) == report.dumps(rich_session())


# --------------------------------------------------------------------------- classify_baseline


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("last", "keyword"),
        ("mlflow", "keyword"),
        ("base.json", "file"),
        ("main.json", "first-run"),
        ("./baseline", "first-run"),
        ("ci/artifacts/fairness", "first-run"),
        ("base", "file"),  # an existing file, even without a suffix
    ],
)
def test_classify_baseline(tmp_path: Path, value: str, kind: str) -> None:
    (tmp_path / "base.json").write_text("{}", encoding="utf-8")
    (tmp_path / "base").write_text("{}", encoding="utf-8")
    assert classify_baseline(value, str(tmp_path)) == kind


@pytest.mark.parametrize(
    ("value", "suggestion"),
    [("lastt", "last"), ("Last", "last"), ("mlfow", "mlflow"), ("bse", "base.json"), ("xyzzy", None)],
)
def test_a_bare_word_that_is_nothing_is_an_error_with_a_suggestion(
    tmp_path: Path, value: str, suggestion: str | None
) -> None:
    (tmp_path / "base.json").write_text("{}", encoding="utf-8")
    with pytest.raises(BaselineError) as caught:
        classify_baseline(value, str(tmp_path))
    message = str(caught.value)
    assert message.startswith(f"{value!r} is not 'last', 'mlflow' or an existing file")
    if suggestion is None:
        assert "did you mean" not in message
    else:
        assert f"did you mean {suggestion!r}?" in message
    assert f"./{value}.json" in message  # how to name a first run's file


def test_a_folder_is_not_a_baseline(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="a folder"):
        classify_baseline(str(tmp_path))
    with pytest.raises(BaselineError, match="did you mean 'last'"):
        gating.check_source("lastt", workdir=str(tmp_path))  # what the plugin calls at session start


# --------------------------------------------------------------------------- replay targets


def _failed(name: str, target: str | None, project: str = "proj") -> SessionResult:
    return SessionResult("s1", project, "2026", providers={name: ProviderOutcome(ok=False, target=target)})


def test_replay_goes_to_the_recorded_mlflow_uri() -> None:
    session = _failed("mlflow", "http://tracking.example:5000")
    env = {"MLFLOW_TRACKING_URI": "http://elsewhere:1"}
    target = replay_target(
        "mlflow", session, ReplayOptions(), ini={"mlflow_uri": "sqlite:///x.db"}, environ=env
    )
    assert target.settings.mlflow_uri == "http://tracking.example:5000" and target.project == "proj"
    flagged = ReplayOptions(mlflow_uri="sqlite:///flag.db", project="other")
    target = replay_target("mlflow", session, flagged, ini={}, environ=env)
    assert target.settings.mlflow_uri == "sqlite:///flag.db" and target.settings.project == "other"


def test_replay_without_a_record_takes_the_environment_then_the_ini() -> None:
    session = _failed("mlflow", None)
    ini = {"mlflow_uri": "sqlite:///ini.db", "wandb_mode": "disabled"}
    env = {"MLFLOW_TRACKING_URI": "sqlite:///env.db", "WANDB_MODE": "dryrun"}
    assert replay_target("mlflow", session, ReplayOptions(), ini=ini, environ=env).settings.mlflow_uri == (
        "sqlite:///env.db"
    )
    target = replay_target("mlflow", session, ReplayOptions(), ini=ini, environ={})
    assert target.settings.mlflow_uri == "sqlite:///ini.db" and target.settings.wandb_mode == "disabled"
    assert (
        replay_target("wandb", session, ReplayOptions(), ini=ini, environ=env).settings.wandb_mode
        == "offline"
    )


def test_replay_draws_charts_as_the_session_would() -> None:
    """ini ``fairmind_plots``, then ``FAIRMIND_PLOTS``, then on (replay drew them always before)."""
    session = _failed("mlflow", None)

    def plots(ini: dict[str, str], env: dict[str, str]) -> bool:
        return replay_target("mlflow", session, ReplayOptions(), ini=ini, environ=env).settings.plots

    assert plots({}, {}) is True
    assert plots({"plots": "false"}, {}) is False
    assert plots({}, {"FAIRMIND_PLOTS": "no"}) is False
    assert plots({"plots": "true"}, {"FAIRMIND_PLOTS": "no"}) is True  # ini first, as in pytest


def test_replay_with_a_bad_plots_value_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAIRMIND_PLOTS", "maybe")
    (tmp_path / "r.json").write_text(report.dumps(_failed("mlflow", None)), encoding="utf-8")
    assert cli.main(["replay", "r.json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fairmind: error: fairmind_plots: ") and "FAIRMIND_PLOTS" in err, err


def test_redacted_credentials_come_back_from_the_environment() -> None:
    session = _failed("mlflow", "https://***@tracking.example/mlflow")
    env = {"MLFLOW_TRACKING_URI": "https://bob:s3cret-value@tracking.example/mlflow"}
    target = replay_target("mlflow", session, ReplayOptions(), ini={}, environ=env)
    assert target.settings.mlflow_uri == env["MLFLOW_TRACKING_URI"] and target.problem is None
    assert target.notes == ["credentials of https://***@tracking.example/mlflow from MLFLOW_TRACKING_URI"]
    # Not in the environment: the URI without credentials, and how to supply them.
    bare = replay_target("mlflow", session, ReplayOptions(), ini={}, environ={})
    assert bare.settings.mlflow_uri == "https://tracking.example/mlflow"
    assert "MLFLOW_TRACKING_USERNAME" in bare.notes[0] and "never saved" in bare.notes[0]
    quiet = replay_target(
        "mlflow", session, ReplayOptions(), ini={}, environ={"MLFLOW_TRACKING_TOKEN": "t0ken"}
    )
    assert quiet.settings.mlflow_uri == "https://tracking.example/mlflow" and not quiet.notes


def test_a_target_redacted_beyond_its_credentials_is_not_guessed() -> None:
    session = _failed("mlflow", "sqlite:////home/***/mlflow.db")
    target = replay_target("mlflow", session, ReplayOptions(), ini={}, environ={})
    assert target.problem is not None and "pass --mlflow-uri" in target.problem
    garbled = replay_target(
        "mlflow", _failed("mlflow", "target unknown: boom"), ReplayOptions(), ini={}, environ={}
    )
    assert garbled.problem is not None and "cannot tell" in garbled.problem


def test_replay_goes_to_the_recorded_wandb_folder_and_mode(tmp_path: Path) -> None:
    session = _failed("wandb", f"offline: {tmp_path / 'runs' / 'wandb'}")
    target = replay_target("wandb", session, ReplayOptions(), ini={}, environ={"WANDB_MODE": "online"})
    assert target.settings.wandb_mode == "offline"
    assert target.environ == {"WANDB_DIR": str(tmp_path / "runs")}
    online = _failed("wandb", "online: https://wandb.example (team/wproj)", project="first")
    target = replay_target("wandb", online, ReplayOptions(), ini={}, environ={})
    assert target.settings.wandb_mode == "online" and target.project == "wproj"
    assert target.environ == {"WANDB_BASE_URL": "https://wandb.example", "WANDB_ENTITY": "team"}
    forced = replay_target("wandb", session, ReplayOptions(wandb_mode="disabled"), ini={}, environ={})
    assert forced.settings.wandb_mode == "disabled" and forced.environ == {}


def test_replay_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_fairmind.replay import environ_set

    monkeypatch.setenv("WANDB_DIR", "/before")
    monkeypatch.delenv("WANDB_ENTITY", raising=False)
    with environ_set({"WANDB_DIR": "/during", "WANDB_ENTITY": "team"}):
        assert os.environ["WANDB_DIR"] == "/during" and os.environ["WANDB_ENTITY"] == "team"
    assert os.environ["WANDB_DIR"] == "/before" and "WANDB_ENTITY" not in os.environ


# --------------------------------------------------------------------------- check


def test_the_recorded_baselines_of_a_session() -> None:
    models = {
        "a": ModelResult("a", metrics={EOD: 0.3}, gates=[
            GateResult("e~0.1", EOD, 0.3, "<= 0.2", "fail", "regression", 0.1, 0.2, "lower")]),
        "b": ModelResult("b", metrics={EOD: 0.3}, gates=[
            GateResult("e~0.1", EOD, 0.3, "no baseline", "pass", "regression", direction="lower")]),
        "c": ModelResult("c", metrics={DPR: 0.9}, gates=[GateResult("d>=0.8", DPR, 0.9, ">= 0.8", "pass")]),
    }  # fmt: skip
    baseline = recorded_baseline(models, strict_flag="--strict")
    assert baseline is not None and baseline.models == {"a": {EOD: 0.1}}
    assert baseline.value("b", EOD) == (None, "none recorded: the session had no baseline value")
    assert recorded_baseline({"c": models["c"]}) is None  # no regression rule: nothing recorded
    for model in models.values():
        model.gates = []
    gated = gating.run([gating.parse_gate("equalized_odds_difference ~ 0.1")], models, baseline=baseline)
    assert gated.exitstatus == 1 and [m for m, _ in gated.failed] == ["a"]
    assert "(it is with --strict)" in " ".join(gated.notices)


def test_strict_says_why() -> None:
    models = {"a": ModelResult("a", metrics={"gap": 0.3})}
    rules = [gating.parse_gate("nothing <= 1"), gating.parse_gate("gap ~ 0.1")]
    nothing = gating.Baseline(source=None, available=False, reason="no --baseline given")
    gated = gating.run(rules, models, baseline=nothing, strict=True)
    assert gated.strict_failure and gated.exitstatus == 1
    assert strict_line(gated.strict_reasons) == (
        "strict: FAILED because 2 gate(s) not evaluated (nothing <= 1, gap ~ 0.1); "
        "regression rule(s) not applied to metrics of unknown direction (gap ~ 0.1)"
    )
    assert gating.run([gating.parse_gate("gap <= 1")], models, strict=True).strict_reasons == []


def test_an_mlflow_baseline_on_a_refused_port_answers_without_a_query_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listens on the tracking server's port: no baseline at once, not after a child
    process spent seconds importing mlflow to find out."""

    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("the baseline query process was started")

    monkeypatch.setattr(subprocess, "run", no_child)  # what sources runs the query with
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    request = BaselineRequest(
        source="mlflow", project="p", history_folder=tmp_path, mlflow_uri=f"http://127.0.0.1:{port}"
    )
    baseline = read_baseline(request)
    assert not baseline.available
    assert baseline.reason == f"mlflow: MLflow did not answer: connection refused by 127.0.0.1:{port}"
    # Behind a proxy the requests go to the proxy: MLflow's client judges (the query process starts).
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    with pytest.raises(AssertionError, match="query process was started"):
        read_baseline(request)


class FakeWarmProcess:
    """What the controller hands the ``mlflow`` source: the MLflow provider's warm child."""

    def __init__(self, answer: Callable[[], Any]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, list[Any]]] = []

    def call(self, function: str, args: Sequence[Any], *, timeout: float) -> Any:
        self.calls.append((function, list(args)))
        return self.answer()


def raising(exc: Exception) -> Callable[[], Any]:
    def answer() -> Any:
        raise exc

    return answer


def test_the_mlflow_baseline_is_asked_in_the_providers_warm_process_when_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_fairmind.isolation import CallFailed, NotWarm

    started: list[list[str]] = []

    def query_process(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        started.append(args)
        return subprocess.CompletedProcess(args, 0, 'FAIRMIND-BASELINE {"m": {"gap": 0.5}}\n', "")

    monkeypatch.setattr(subprocess, "run", query_process)
    (tmp_path / "mlflow.db").touch()  # a store that exists (one that does not has no run to ask for)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def ask(process: FakeWarmProcess) -> gating.Baseline:
        request = BaselineRequest(
            source="mlflow", project="p", history_folder=tmp_path, mlflow_uri=uri, exclude_session="s",
            timeout=7, mlflow_process=process,
        )  # fmt: skip
        return read_baseline(request)

    warm = FakeWarmProcess(lambda: {"m": {"gap": 0.25, "big": 1.7976931348623157e308}})
    baseline = ask(warm)
    assert baseline.available and baseline.models == {"m": {"gap": 0.25, "big": math.inf}}
    [(function, args)] = warm.calls
    assert function == "pytest_fairmind.gating.mlflow_query:bounded_query"
    assert args[:3] == [uri, "p", "s"] and 0 < args[3] <= 7
    assert started == []
    # the warm process is gone: a process of its own asks
    assert ask(FakeWarmProcess(raising(NotWarm("gone")))).models == {"m": {"gap": 0.5}}
    assert len(started) == 1
    # MLflow's error, first line; no answer in time: what the query process would have said
    failed = ask(FakeWarmProcess(raising(CallFailed("MlflowException: bad store\nmore detail"))))
    assert failed.reason == "mlflow: MLflow did not answer: MlflowException: bad store"
    late = ask(FakeWarmProcess(raising(TimeoutError("no answer within 7 s"))))
    assert late.reason == "mlflow: MLflow did not answer within 7 s"
    assert len(started) == 1


def test_an_mlflow_baseline_of_a_store_that_does_not_exist_is_a_first_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking MLflow would create the store and migrate it (seconds), only to find no run."""

    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("the baseline query process was started")

    monkeypatch.setattr(subprocess, "run", no_child)
    warm = FakeWarmProcess(raising(AssertionError("the warm process was asked")))
    for uri in (f"sqlite:///{tmp_path / 'none.db'}", "sqlite:///new/mlflow.db", None):  # None: ./mlflow.db
        request = BaselineRequest(
            source="mlflow", project="p", history_folder=tmp_path, mlflow_uri=uri, workdir=str(tmp_path),
            mlflow_process=warm,
        )  # fmt: skip
        baseline = read_baseline(request)
        assert baseline.reason == "no finished run in the MLflow experiment 'p': first run?", uri
    assert list(tmp_path.iterdir()) == []
