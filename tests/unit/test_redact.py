"""Secret redaction (``pytest_fairmind.redact``): URI credentials, secret environment names, and
keys that hold a secret (which are refused, never rewritten)."""

from __future__ import annotations

import time
import urllib.parse

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
