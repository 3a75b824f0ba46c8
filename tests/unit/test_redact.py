"""Secret redaction (``pytest_fairmind.redact``): URI credentials, secret environment names, and
keys that hold a secret (which are refused, never rewritten)."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_fairmind import redact
from pytest_fairmind.redact import is_secret_env_name, redact_obj, redact_text, redact_uri, secret_values

# --------------------------------------------------------------------------- item 19: raw `@`


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:p@ss@host/x", "http://***@host/x"),
        ("see https://bob:a@b@c@db.example:5432/x?y=1 now", "see https://***@db.example:5432/x?y=1 now"),
        ("postgres://me@corp.com:pw@h/db", "postgres://***@h/db"),  # an e-mail as the user name
        ("http://u:pw@host/path?mail=a@b", "http://***@host/path?mail=a@b"),  # `@` after the path
        ("http://u:pw@host#frag@x", "http://***@host#frag@x"),
        ("two: http://a:b1@h1/ and http://c:d2@h2/", "two: http://***@h1/ and http://***@h2/"),
        ("no credentials: http://host:5000/x, a@b.c", "no credentials: http://host:5000/x, a@b.c"),
    ],
)
def test_userinfo_runs_to_the_last_at_sign_of_the_authority(text: str, expected: str) -> None:
    assert redact_text(text, []) == expected


def test_a_raw_at_in_the_password_leaks_nothing_anywhere() -> None:
    uri = "http://user:p@ss-tail@mlflow.example:5000"
    assert redact_uri(uri) == "http://***@mlflow.example:5000"
    env = {"MLFLOW_TRACKING_URI": uri}
    assert "p@ss-tail" in secret_values(env)  # the password as an HTTP client reads it
    message = f"cannot reach {uri}: refused; password p@ss-tail"
    redacted = redact_text(message, secret_values(env))
    assert "ss-tail" not in redacted and "p@ss" not in redacted
    assert redact_obj({"uri": uri}) == {"uri": "http://***@mlflow.example:5000"}


def test_what_an_http_client_sends_is_what_is_redacted() -> None:
    """The password urllib takes from the URI is the secret (its tail included)."""
    for uri in ("http://user:p@ss@host/x", "https://a:b@c@d@h:1/", "http://u:x@@h/"):
        parts = urllib.parse.urlsplit(uri)
        assert parts.password and parts.hostname
        redacted = redact_text(uri, [])
        assert redacted == f"{parts.scheme}://***@{parts.netloc.rpartition('@')[2]}{parts.path}"
        assert parts.password not in redacted
        assert redact_uri(uri) == redacted


@given(
    userinfo=st.text(alphabet="abz09:@!%$-._~", min_size=1, max_size=40),
    host=st.text(alphabet="abz09.-", min_size=1, max_size=20),
)
def test_the_whole_userinfo_goes_whatever_it_holds(userinfo: str, host: str) -> None:
    """Everything before the authority's last `@` is credentials, `@` and `:` included."""
    assert redact_text(f"x http://{userinfo}@{host}/p?q=1 y", []) == f"x http://***@{host}/p?q=1 y"


def test_redaction_stays_linear() -> None:
    huge = "a@" * 300_000 + "://" + "b" * 300_000  # many `@`, then an authority with none
    start = time.monotonic()
    redact_text(huge, [])
    redact_text("://" * 200_000, [])
    redact_text(("://" + "c" * 50 + "@") * 20_000, [])
    assert time.monotonic() - start < 2


# --------------------------------------------------------------------------- item 19: env names


@pytest.mark.parametrize(
    "name",
    ["PGPASSWORD", "MYSQL_PWD_PASSWORD", "GITHUBTOKEN", "APIKEY", "AWS_SECRET_ACCESS_KEY", "DBSECRET",
     "db_password", "WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN", "GOOGLE_APPLICATION_CREDENTIALS",
     "FTP_PASS", "SMBPASSWD"],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_env_name(name)


@pytest.mark.parametrize(
    "name", ["PATH", "HOME", "BYPASS", "TOKENIZERS_PARALLELISM", "KEYBOARD", "PASSWORDS_URL"]
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_env_name(name)


def test_pgpassword_is_redacted() -> None:
    env = {"PGPASSWORD": "hunter2-db", "PLAIN": "hunter2-db-not"}
    assert secret_values(env) == ["hunter2-db"]
    assert redact_text("psql failed with hunter2-db", secret_values(env)) == "psql failed with ***"
    assert redact.secret_sources(env) == {"hunter2-db": "PGPASSWORD"}


# --------------------------------------------------------------------------- item 20: keys


def test_a_key_holding_a_secret_is_named_with_where_the_secret_comes_from() -> None:
    env = {"PGPASSWORD": "sekret-pw", "DB_URL": "postgres://u:uri-pw-1@h/x", "PATH": "/bin"}
    assert redact.key_leaks_secret("sex/sekret-pw_rate", env) == "the value of PGPASSWORD"
    assert redact.key_leaks_secret("rate/uri-pw-1", env) == "the value of DB_URL"
    assert redact.key_leaks_secret("sex/***_rate", env) == "a redacted secret (***)"
    assert redact.key_leaks_secret("sex/selection_rate", env) is None
    why = redact.key_leaks_secret("a/sekret-pw", env)
    assert why is not None and "sekret-pw" not in why  # never the secret itself


def test_keys_are_kept_when_asked_values_always_redacted() -> None:
    doc = {"metrics": {"tok-abcdef/rate": 0.5}, "params": {"conn": "tok-abcdef"}}
    kept = redact_obj(doc, ["tok-abcdef"], keys=False)
    assert kept == {"metrics": {"tok-abcdef/rate": 0.5}, "params": {"conn": "***"}}
    assert redact_obj(doc, ["tok-abcdef"]) == {"metrics": {"***/rate": 0.5}, "params": {"conn": "***"}}


# --------------------------------------------------------------------------- the environment's secrets, kept


def test_the_secrets_of_the_environment_follow_its_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_TOKEN", "first-secret")
    assert "first-secret" in secret_values()
    monkeypatch.setenv("DEPLOY_TOKEN", "second-secret")  # a changed value
    assert "second-secret" in secret_values() and "first-secret" not in secret_values()
    monkeypatch.setenv("DB_URL", "postgres://svc:hunter22@db/x")  # a new variable
    assert redact.key_leaks_secret("rate/hunter22") == "the value of DB_URL"
    monkeypatch.delenv("DEPLOY_TOKEN")  # a removed one
    assert "second-secret" not in secret_values()
    assert redact.secret_sources() == redact.secret_sources(dict(os.environ))


def test_the_answer_is_a_copy_callers_may_change(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_KEY", "kept-secret")
    secret_values().clear()
    redact.secret_sources().clear()
    assert "kept-secret" in secret_values() and "kept-secret" in redact.secret_sources()


@pytest.mark.parametrize(
    ("value", "secret", "found"),
    [
        ({"a": "plain", "b": ["text", 1.5]}, "s3cr3t-value", False),
        ({"a": "x s3cr3t-value y"}, "s3cr3t-value", True),
        ({"s3cr3t-value/rate": 0.5}, "s3cr3t-value", True),  # keys count
        ({"a": 'q"uo\\te\n-secret'}, 'q"uo\\te\n-secret', True),  # escaped in JSON text
        ({"a": "é-ünïcode-secret"}, "é-ünïcode-secret", True),
        ({"a": "mail me at a@b.c"}, "s3cr3t-value", True),  # '@': maybe URI credentials
    ],
)
def test_the_quick_check_of_json_text_never_misses_what_redaction_changes(
    monkeypatch: pytest.MonkeyPatch, value: dict[str, object], secret: str, found: bool
) -> None:
    monkeypatch.setenv("CHECK_SECRET", secret)
    text = json.dumps(value, ensure_ascii=False)
    assert redact.json_may_hold_secret(text) is found
    if not found:
        assert redact_obj(value) == value


@given(st.text(min_size=4, max_size=12), st.text(max_size=8), st.text(max_size=8))
def test_a_secret_anywhere_in_a_string_is_seen_in_its_json(secret: str, before: str, after: str) -> None:
    text = json.dumps({"k": [before + secret + after]}, ensure_ascii=False)
    assert redact.json_may_hold_secret(text, [secret])


def test_the_environment_is_rescanned_only_when_a_change_may_hold_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scans: list[int] = []
    real_scan = redact._scan

    def counting(env: Mapping[str, str]) -> dict[str, str]:
        scans.append(1)
        return real_scan(env)

    monkeypatch.setattr(redact, "_scan", counting)
    secret_values()
    before = len(scans)
    for phase in ("setup", "call", "teardown"):  # what pytest does for every test
        monkeypatch.setenv("PYTEST_CURRENT_TEST", f"t.py::test ({phase})")
        secret_values()
    assert len(scans) == before
    monkeypatch.setenv("PYTEST_CURRENT_TEST", "t.py::test[http://u:pw-in-an-id@h] (call)")  # '@': rescan
    assert "pw-in-an-id" in secret_values() and len(scans) == before + 1
    monkeypatch.setenv("SOME_PASSWORD", "from-now-on")  # a secret name: rescan
    assert "from-now-on" in secret_values()
