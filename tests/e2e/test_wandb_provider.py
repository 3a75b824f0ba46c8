"""The W&B provider against the real wandb SDK in offline mode (no mocks, no network).

wandb itself only ever runs in child processes here: through ``IsolatedProvider`` as the plugin
does, or ``WandbProvider.log`` called directly in a fresh interpreter. Runs are read back from
their ``.wandb`` files with the reader in ``helpers``.
"""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from helpers import (
    BLOCK_SIZE,
    StalledListener,
    WandbEnv,
    WandbRun,
    all_bytes,
    core_processes_for,
    free_port,
    offline_run_dirs,
    read_runs,
    wait_no_core,
)

from pytest_fairmind.isolation import IsolatedProvider
from pytest_fairmind.plots import keep_charts
from pytest_fairmind.providers.base import ProviderSettings
from pytest_fairmind.providers.wandb import (
    COMPLETE_MARKER,
    TAG_MAX_LENGTH,
    WandbProvider,
    _table_data,
    api_key_configured,
    fit_tag,
    resolve_mode,
    run_id,
    run_tags,
    validate_project,
)
from pytest_fairmind.report import provider_from_dict
from pytest_fairmind.result import ModelResult, ProviderOutcome, SessionResult
from pytest_fairmind.result import TestOutcome as Outcome

IMPL = "pytest_fairmind.providers.wandb:WandbProvider"
FAKE_KEY = "f" * 40


def _rows(shift: float = 0.0) -> list[dict[str, object]]:
    return [
        {
            "group": {"sex": "F"},
            "count": 10,
            "selection_rate": 0.5 + shift,
            "true_positive_rate": math.nan,
            "false_positive_rate": 0.1,
            "accuracy": 0.8,
        },
        {
            "group": {"sex": "M"},
            "count": 12,
            "selection_rate": 0.4,
            "true_positive_rate": 0.7,
            "false_positive_rate": 0.2,
            "accuracy": 0.85,
        },
    ]


def make_session(
    n_models: int = 2, session_id: str = "20260101T000000-abcd", project: str = "fm-test"
) -> SessionResult:
    models = {}
    for i in range(n_models):
        name = f"model-{i}"
        models[name] = ModelResult(
            name=name,
            metrics={
                "sex/demographic_parity_difference": 0.1 * (i + 1),
                "sex/demographic_parity_ratio": 0.8,
                "accuracy": 0.9 - 0.01 * i,
                "undefined_rate": math.nan,
                "unbounded": math.inf,
            },
            params={"threshold": "0.5", "calibrated": True, "notes": None},
            tags={"team": "risk", "dataset": "adult-" + "x" * 80},
            groups={"sex": _rows(0.01 * i)},
            tests=[Outcome("tests/test_bias.py::test_model", "passed")],
            verdict="pass" if i % 2 == 0 else "fail",
        )
    return SessionResult(
        id=session_id,
        project=project,
        started="2026-01-01T00:00:00+00:00",
        models=models,
        context={"pytest": "9.0"},
    )


def isolated(env: WandbEnv, *, mode: str | None = None, plots: bool = True) -> IsolatedProvider:
    settings = ProviderSettings(wandb_mode=mode, plots=plots, workdir=str(env.root.parent))
    return IsolatedProvider("wandb", IMPL, settings)


_DIRECT = textwrap.dedent(
    """
    import json, pickle, sys
    from pytest_fairmind.providers.wandb import WandbProvider
    from pytest_fairmind.report import provider_to_dict
    with open(sys.argv[1], "rb") as fh:
        settings, session, timeout = pickle.load(fh)
    outcome = WandbProvider(settings).log(session, timeout=timeout)
    with open(sys.argv[2], "w", encoding="utf-8") as fh:
        json.dump(provider_to_dict(outcome), fh)
    """
)


def log_direct(
    tmp_path: Path,
    session: SessionResult,
    settings: ProviderSettings,
    *,
    timeout: float = 30.0,
    argv: tuple[str, ...] = (),
) -> tuple[ProviderOutcome, float]:
    """``WandbProvider.log`` in a fresh interpreter, as a caller without isolation would run it.

    The session is pickled, not serialised as a report, so no redaction happens on the way.
    """
    payload = tmp_path / "direct.pickle"
    out = tmp_path / "direct-outcome.json"
    payload.write_bytes(pickle.dumps((settings, session, timeout)))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _DIRECT, str(payload), str(out), *argv],
        capture_output=True,
        text=True,
        timeout=timeout + 60,
        cwd=str(tmp_path),
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    return provider_from_dict(json.loads(out.read_text(encoding="utf-8"))), elapsed


# --- pure helpers (no wandb) -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["fairmind", "my project", "a.b-c_d", "x" * 128])
def test_valid_project_names(name: str) -> None:
    assert validate_project(name) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("team/proj", "contains /"),
        ("a:b", "contains :"),
        ("q?%", "% ?"),
        ("x" * 129, "longer than 128"),
        (" ", "empty"),
    ],
)
def test_invalid_project_names_say_why(name: str, expected: str) -> None:
    problem = validate_project(name)
    assert problem is not None and expected in problem


def test_run_id_is_deterministic_distinct_and_valid() -> None:
    first = run_id("s1", "model")
    assert first == run_id("s1", "model")
    assert len({first, run_id("s2", "model"), run_id("s1", "model2"), run_id("s1model", "")}) == 4
    assert not set(first) & set(":;,#?/' ")  # characters W&B reserves


def test_long_tags_are_cut_visibly() -> None:
    assert fit_tag("t" * 64) == "t" * 64
    cut = fit_tag("t" * 65)
    assert len(cut) == TAG_MAX_LENGTH and cut.endswith("…")
    model = ModelResult(name="m", tags={"a": "b", "long": "y" * 100}, verdict="fail")
    tags = run_tags(model)
    assert tags[:2] == ["fail", "a:b"]
    assert len(tags[2]) == TAG_MAX_LENGTH and tags[2].startswith("long:yyy") and tags[2].endswith("…")


def test_mode_resolution(tmp_path: Path) -> None:
    netrc = tmp_path / "netrc"
    base = {"NETRC": str(netrc)}
    assert resolve_mode(None, base) == "offline"
    assert resolve_mode(None, {**base, "WANDB_API_KEY": FAKE_KEY}) == "online"
    assert resolve_mode(None, {**base, "WANDB_MODE": "dryrun", "WANDB_API_KEY": FAKE_KEY}) == "offline"
    assert resolve_mode("disabled", {**base, "WANDB_MODE": "online"}) == "disabled"
    assert resolve_mode("run", base) == "online"
    with pytest.raises(ValueError, match="unknown W&B mode"):
        resolve_mode("sometimes", base)
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {FAKE_KEY}\n", encoding="utf-8")
    assert api_key_configured(base)
    assert resolve_mode(None, base) == "online"
    # An entry for another host is not a key for this one.
    assert not api_key_configured({**base, "WANDB_BASE_URL": "https://wandb.example.com"})


def test_target_names_where_runs_go_without_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wb"))
    assert WandbProvider(ProviderSettings()).target() == f"offline: {tmp_path / 'wb' / 'wandb'}"
    assert WandbProvider(ProviderSettings(wandb_mode="disabled")).target().startswith("disabled")
    monkeypatch.setenv("WANDB_API_KEY", "canary-key-" + "k" * 29)
    monkeypatch.setenv("WANDB_BASE_URL", "https://alice:canary-pw-4242@wandb.example.com")
    monkeypatch.setenv("WANDB_ENTITY", "acme")
    target = WandbProvider(ProviderSettings(project="bias")).target()
    assert target == "online: https://***@wandb.example.com (acme/bias)"


def test_constructing_and_target_do_not_import_wandb() -> None:
    code = (
        "import sys\n"
        "from pytest_fairmind.providers.base import ProviderSettings\n"
        "from pytest_fairmind.isolation import IsolatedProvider\n"
        f"p = IsolatedProvider('wandb', {IMPL!r}, ProviderSettings())\n"
        "p.target()\n"
        "assert 'wandb' not in sys.modules, 'wandb imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_charts_are_dropped_before_runs_are() -> None:
    assert keep_charts(remaining=30.0, spent=1.0, done=5, left=10)  # 0.2 s a model: 3 s needed
    assert not keep_charts(remaining=2.0, spent=1.0, done=5, left=10)
    assert keep_charts(remaining=0.1, spent=0.0, done=0, left=50)  # no pace known yet


def test_group_table_columns_and_undefined_cells() -> None:
    rows = [
        {"group": {"sex": "F", "count": "a"}, "count": 3, "selection_rate": math.nan, "accuracy": math.inf},
        {"group": {"sex": "M", "count": "b"}, "count": 4, "selection_rate": 0.5, "accuracy": 1.0},
    ]
    columns, data = _table_data(rows)
    assert columns == ["sex", "group.count", "count", "selection_rate", "accuracy"]
    assert data == [["F", "a", 3, None, None], ["M", "b", 4, 0.5, 1.0]]


def test_empty_session_starts_nothing(wandb_env: WandbEnv) -> None:
    session = make_session(0)
    outcome = WandbProvider(ProviderSettings()).log(session, timeout=10)
    assert outcome.ok and outcome.runs == {} and outcome.error is None
    assert not wandb_env.root.exists()


def test_invalid_project_fails_before_wandb_starts(wandb_env: WandbEnv) -> None:
    outcome = WandbProvider(ProviderSettings()).log(make_session(project="team/bias"), timeout=10)
    assert not outcome.ok
    assert outcome.error is not None and "team/bias" in outcome.error and "forbids" in outcome.error
    assert not wandb_env.root.exists()


# --- real wandb, offline -----------------------------------------------------------------------


def _check_run(run: WandbRun, session: SessionResult, model: ModelResult, *, charts: bool) -> None:
    assert run.id == run_id(session.id, model.name)
    assert run.project == session.project
    assert run.group == session.id
    assert run.job_type == "fairness"
    assert run.config == model.params
    assert run.tags == run_tags(model)
    assert run.tags[0] == model.verdict
    assert all(len(t) <= TAG_MAX_LENGTH for t in run.tags)
    assert session.id in run.notes and "pytest: 9.0" in run.notes
    expected = {k: (None if math.isnan(v) else v) for k, v in model.metrics.items()}
    assert run.metrics == {**expected, "fairmind.verdict": model.verdict, "fairmind.session": session.id}
    assert run.summary["unbounded"] == math.inf
    table = run.table("sex/by_group")
    assert table["columns"] == [
        "sex",
        "count",
        "selection_rate",
        "true_positive_rate",
        "false_positive_rate",
        "accuracy",
    ]
    rows = model.groups["sex"]
    assert [r[0] for r in table["data"]] == [r["group"]["sex"] for r in rows]
    assert table["data"][0][2] == rows[0]["selection_rate"]
    assert table["data"][0][3] is None  # NaN rate: an empty cell, not 0
    # One chart per column family of the rows: the rates, and accuracy.
    families = ["sex/by_group_chart.accuracy", "sex/by_group_chart.rates"]
    assert run.media_keys("image-file") == (families if charts else [])
    assert run.environment == []  # no metadata record: it would carry the command line
    assert run.exited


def test_offline_runs_through_isolation(wandb_env: WandbEnv) -> None:
    session = make_session(3)
    outcome = isolated(wandb_env).log(session, timeout=60)
    assert outcome.ok, outcome.error
    assert outcome.note == f"uploadable with: wandb sync {wandb_env.wandb_dir}/offline-run-*"
    assert outcome.target == f"offline: {wandb_env.wandb_dir}"
    runs = read_runs(str(wandb_env.wandb_dir))
    assert sorted(runs) == sorted(session.models)
    try:
        import matplotlib  # noqa: F401

        charts = True
    except ImportError:
        charts = False
    for name, model in session.models.items():
        _check_run(runs[name], session, model, charts=charts)
        ref = outcome.runs[name]
        assert ref.id == runs[name].id and not ref.skipped and ref.url is None
        assert ref.path == runs[name].dir
        assert (Path(ref.path) / COMPLETE_MARKER).exists()
    assert wait_no_core(str(wandb_env.root)) == []


def test_plots_off_logs_tables_only(wandb_env: WandbEnv) -> None:
    session = make_session(1)
    model = session.models["model-0"]
    model.metrics["sex/by_group"] = 1.0  # a metric owns that key: the table moves
    # Enough metrics for records that span several 32 KiB blocks of the .wandb file.
    model.metrics.update({f"bulk/metric_{i:04d}": i / 7 for i in range(3000)})
    outcome = isolated(wandb_env, plots=False).log(session, timeout=60)
    assert outcome.ok, outcome.error
    run = read_runs(str(wandb_env.wandb_dir))["model-0"]
    assert os.path.getsize(next(Path(run.dir).glob("run-*.wandb"))) > 3 * BLOCK_SIZE
    assert {k: v for k, v in run.metrics.items() if k.startswith("bulk/")} == {
        k: v for k, v in model.metrics.items() if k.startswith("bulk/")
    }
    assert run.summary["sex/by_group"] == 1.0
    assert run.media_keys("table-file") == ["fairmind.by_group/sex"]
    assert run.media_keys("image-file") == []


def test_relogging_a_session_skips_finished_runs_and_redoes_cut_ones(
    wandb_env: WandbEnv, tmp_path: Path
) -> None:
    session = make_session(2)
    settings = ProviderSettings(workdir=str(tmp_path))
    first, _ = log_direct(tmp_path, session, settings)
    assert first.ok, first.error
    dirs = offline_run_dirs(str(wandb_env.wandb_dir))
    assert len(dirs) == 2

    again, _ = log_direct(tmp_path, session, settings)
    assert again.ok and all(ref.skipped for ref in again.runs.values())
    assert {r.path for r in again.runs.values()} == {r.path for r in first.runs.values()}
    assert offline_run_dirs(str(wandb_env.wandb_dir)) == dirs

    # A run cut at the deadline has no completion marker: it is logged again, under the same id.
    cut = first.runs["model-1"]
    assert cut.path is not None
    (Path(cut.path) / COMPLETE_MARKER).unlink()
    time.sleep(1.1)  # offline dirs are named by the second they started
    third, _ = log_direct(tmp_path, session, settings)
    assert third.ok, third.error
    assert third.runs["model-0"].skipped and not third.runs["model-1"].skipped
    assert not Path(cut.path).exists()
    runs = read_runs(str(wandb_env.wandb_dir))  # raises on two runs of one model
    assert sorted(runs) == ["model-0", "model-1"]
    assert runs["model-1"].id == cut.id


def test_disabled_writes_nothing(wandb_env: WandbEnv) -> None:
    outcome = isolated(wandb_env, mode="disabled").log(make_session(2), timeout=30)
    assert outcome.ok and outcome.runs == {}
    assert outcome.note is not None and "disabled" in outcome.note
    written = [p for root in wandb_env.scan_roots() for p in Path(root).rglob("*")]
    assert written == []


def test_secrets_never_reach_the_run(
    wandb_env: WandbEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = {
        "env": "canary-token-123456",
        "key": "canary" + "0" * 34,
        "env-uri": "canary-env-uri-pw",
        "argv": "canary-argv-pw",
        "param": "canary-param-pw",
    }
    monkeypatch.setenv("MY_SERVICE_TOKEN", canaries["env"])
    monkeypatch.setenv("WANDB_API_KEY", canaries["key"])  # present, but the mode says offline
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{canaries['env-uri']}@mlflow.example.com")
    session = make_session(1)
    model = session.models["model-0"]
    model.params["tracking"] = f"http://carol:{canaries['param']}@mlflow.example.com/x"
    model.params["token_echo"] = canaries["env"]
    model.tags["leak"] = canaries["env"]
    session.context["ci"] = f"https://dave:{canaries['env-uri']}@ci.example.com/job/1"
    argv = ("--fairmind-mlflow-uri", f"http://bob:{canaries['argv']}@mlflow.example.com")
    outcome, _ = log_direct(tmp_path, session, ProviderSettings(wandb_mode="offline"), argv=argv)
    assert outcome.ok, outcome.error
    run = read_runs(str(wandb_env.wandb_dir))["model-0"]
    assert run.config["tracking"] == "http://***@mlflow.example.com/x"
    assert run.config["token_echo"] == "***"
    assert "leak:***" in run.tags
    leaks = [
        (label, path)
        for path, blob in all_bytes(*wandb_env.scan_roots())
        for label, canary in canaries.items()
        if canary.encode() in blob
    ]
    assert leaks == []
    assert not any(c in json.dumps(dataclasses.asdict(outcome)) for c in canaries.values())


# --- bounded in time ---------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["stalled", "closed"])
def test_online_without_a_reachable_server_gives_up_at_the_timeout(
    wandb_env: WandbEnv, monkeypatch: pytest.MonkeyPatch, stalled_listener: StalledListener, server: str
) -> None:
    base = stalled_listener.url if server == "stalled" else f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("WANDB_BASE_URL", base)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    provider = isolated(wandb_env)
    assert provider.target().startswith("online: http://127.0.0.1:")
    timeout = 3.0
    started = time.monotonic()
    outcome = provider.log(make_session(2), timeout=timeout)
    elapsed = time.monotonic() - started
    assert not outcome.ok
    assert outcome.error and FAKE_KEY not in outcome.error
    # The child gives up by itself before the deadline; on a loaded machine its start-up alone
    # may eat the 3 s, and the parent's kill at the deadline ends it instead.
    assert (
        "time budget (3 s, --fairmind-timeout) waiting for http://127.0.0.1:" in outcome.error
        or outcome.error == "timed out after 3 s (--fairmind-timeout); abandoned"
        # start-up took the whole budget before the first model (a loaded machine)
        or outcome.error == "time budget (3 s) exhausted; 2 model(s) not logged"
    )
    # The parent's deadline counts from the call (the child's start-up included): what is left
    # after it is the kill and the reaping, a little longer on a loaded machine.
    assert elapsed < timeout + 3, f"took {elapsed:.1f} s"
    assert wait_no_core(str(wandb_env.root), grace=0.5) == []


def test_direct_call_bounds_itself_without_the_parent_kill(
    wandb_env: WandbEnv, stalled_listener: StalledListener, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_BASE_URL", stalled_listener.url)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    timeout = 4.0
    outcome, elapsed = log_direct(tmp_path, make_session(2), ProviderSettings(), timeout=timeout)
    assert not outcome.ok
    assert outcome.error and "model 'model-0'" in outcome.error and "not attempted" in outcome.error
    # Bounded by its own budget: counted from when wandb reached the stalled server to when the
    # process let go of it (the interpreter's start-up before depends on the machine's load).
    if stalled_listener.accepted.is_set():
        held = stalled_listener.held_seconds()
        assert held < timeout + 3, f"held {held:.1f} s"
    assert elapsed < timeout + 30, f"took {elapsed:.1f} s"  # and never wandb's own minutes of retries
    assert core_processes_for(str(wandb_env.root)) == []


# --- fairmind status ---------------------------------------------------------------------------


class _FakeWandbServer:
    """A local HTTP server answering ``POST /graphql`` with a fixed status and body."""

    def __init__(self, status: int, body: dict[str, object]) -> None:
        self.status, self.body = status, body
        self.auth: list[str | None] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                owner.auth.append(self.headers.get("Authorization"))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.dumps(owner.body).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"data": {"viewer": {"id": "VXNlcjox"}}}, None),
        (401, {"errors": [{"message": "unauthorized"}]}, "API key rejected (HTTP 401)"),
        (200, {"data": {"viewer": None}}, "not authorised"),
    ],
)
def test_status_check_online(
    wandb_env: WandbEnv,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    body: dict[str, object],
    expected: str | None,
) -> None:
    server = _FakeWandbServer(status, body)
    try:
        monkeypatch.setenv("WANDB_BASE_URL", server.url)
        monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
        problem = WandbProvider(ProviderSettings()).check(5)
    finally:
        server.close()
    assert server.auth == ["Basic " + base64.b64encode(f"api:{FAKE_KEY}".encode()).decode()]
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem and FAKE_KEY not in problem


def test_status_check_unreachable(
    wandb_env: WandbEnv, monkeypatch: pytest.MonkeyPatch, stalled_listener: StalledListener
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", stalled_listener.url)
    problem = WandbProvider(ProviderSettings()).check(1)
    end = time.monotonic()
    assert problem == f"{stalled_listener.url}: no answer within 1 s"
    assert stalled_listener.first_accept is not None, "the check never reached the listener"
    assert end - stalled_listener.first_accept < 1 + 2  # counted from the connection, not the imports
    closed_port = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("WANDB_BASE_URL", closed_port)
    problem = WandbProvider(ProviderSettings()).check(1)
    assert problem is not None and problem.startswith(closed_port) and "refused" in problem


def test_status_check_offline_and_disabled(wandb_env: WandbEnv) -> None:
    assert WandbProvider(ProviderSettings()).check(1) is None  # WANDB_DIR's parent is writable
    assert WandbProvider(ProviderSettings(wandb_mode="disabled")).check(1) is None
    problem = WandbProvider(ProviderSettings(project="a#b")).check(1)
    assert problem is not None and "forbids" in problem
    assert not wandb_env.root.exists()  # checking writes nothing
