"""Keep secrets out of everything we print, save or send.

Secrets are credentials in URIs (``https://user:pass@host``) and the values of environment
variables whose names end in ``TOKEN``, ``KEY``, ``PASSWORD``, ``PASSWD``, ``SECRET`` (with or without
an underscore before it: ``WANDB_API_KEY``, ``MLFLOW_TRACKING_TOKEN``, ``PGPASSWORD``...),
``_CREDENTIALS`` or ``_PASS``. Every string that reaches the terminal, the report, the history or a
provider's run goes through :func:`redact_text`.

Values are redacted; names (metric, param and tag keys) are not rewritten, because a rewritten
key is a different key (and ``***`` is one MLflow refuses): a key that holds a secret is refused
where it is recorded, see :func:`key_leaks_secret` (docs/reliability.md, "Secrets").
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

# Names ending in one of these are secret, with or without an underscore before the word
# (`PGPASSWORD`, `GITHUBTOKEN`, `APIKEY` as well as `DB_PASSWORD`).
_SECRET_ENV_WORDS = ("TOKEN", "KEY", "PASSWORD", "PASSWD", "SECRET")
# These only with the underscore: `BYPASS` or `COMPASS` are no secrets.
_SECRET_ENV_SUFFIXES = ("_CREDENTIALS", "_PASS")
_SECRET_ENV_NAMES = ("WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")
# ://userinfo@ in free text (any scheme, or none: redacting more is safe). The userinfo runs to the
# LAST `@` of the authority (which ends at `/`, `?`, `#` or white space), as HTTP clients split it:
# `http://user:p@ss@host` has the password `p@ss`. Anchored on the literal "://" so the scan stays
# linear: the authority of one "://" ends at the next "://"'s `/`, so no character is scanned twice
# (a scheme group in front, ``[A-Za-z][A-Za-z0-9+.-]*://``, made the regex quadratic on long
# alphanumeric runs: a 1 MB param took an hour to redact).
_URI_USERINFO = re.compile(r"://(?P<userinfo>[^/?#\s]+)@")
# Short values (e.g. "1", "true") would redact innocent text everywhere.
_MIN_SECRET_LENGTH = 4


def is_secret_env_name(name: str) -> bool:
    """Whether the value of the environment variable ``name`` is treated as a secret."""
    upper = name.upper()
    return upper in _SECRET_ENV_NAMES or upper.endswith(_SECRET_ENV_WORDS + _SECRET_ENV_SUFFIXES)


def secret_sources(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Secret value -> the variable it comes from, for every secret in ``environ`` (default
    ``os.environ``): the values of secret variables and the credentials inside any URI.

    For ``os.environ`` the answer is kept until the environment changes (every record asks).
    """
    if environ is None:
        return dict(_from_os_environ()[0])
    return _scan(environ)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret values found in ``environ`` (default ``os.environ``), longest first."""
    if environ is None:
        return list(_from_os_environ()[1])
    return _longest_first(_scan(environ))


def _scan(env: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in env.items():
        if is_secret_env_name(name) and len(value) >= _MIN_SECRET_LENGTH:
            found.setdefault(value, name)
    for name, value in env.items():  # credentials inside URIs held by any variable
        for match in _URI_USERINFO.finditer(value):
            userinfo = match.group("userinfo")
            password = userinfo.partition(":")[2]
            for part in (userinfo, password):
                if len(part) >= _MIN_SECRET_LENGTH:
                    found.setdefault(part, name)
    return found


def _longest_first(sources: Mapping[str, str]) -> list[str]:
    return sorted(sources, key=len, reverse=True)


# (the environment as last scanned, its secrets, them longest first)
_cached: tuple[dict[Any, Any], dict[str, str], list[str]] | None = None


def _from_os_environ() -> tuple[dict[str, str], list[str]]:
    """The secrets of ``os.environ``, rescanned only when it changed in a way that matters.

    An unchanged environment holds the very same objects as the copy kept of it, so comparing
    them is identity checks in C. pytest changes ``PYTEST_CURRENT_TEST`` for every test phase:
    a change of variables that hold no secret before or after (not a secret name, no ``@``) keeps
    the answer.
    """
    global _cached
    current: dict[Any, Any] = getattr(os.environ, "_data", None) or dict(os.environ)
    if _cached is not None and _cached[0] != current:
        changed = current.items() ^ _cached[0].items()
        if all(_harmless(name, value) for name, value in changed):
            _cached = (dict(current), _cached[1], _cached[2])
    if _cached is None or _cached[0] != current:
        sources = _scan(os.environ)
        _cached = (dict(current), sources, _longest_first(sources))
    return _cached[1], _cached[2]


def _harmless(name: str | bytes, value: str | bytes) -> bool:
    """Whether the variable ``name=value`` (as ``os.environ`` stores them) adds no secret."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    has_at = b"@" in value if isinstance(value, bytes) else "@" in value
    return not has_at and not is_secret_env_name(name)


def key_leaks_secret(key: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why ``key`` may not be recorded or sent (it holds a secret), or None when it may.

    The answer names where the secret comes from, never the secret: ``"the value of PGPASSWORD"``.
    A key already redacted (holding ``***``) leaks one too: the name it had is gone.
    """
    if REDACTED in key:
        return "a redacted secret (***)"
    if environ is None:
        sources, longest_first = _from_os_environ()
    else:
        sources = _scan(environ)
        longest_first = _longest_first(sources)
    for value in longest_first:
        if value in key:
            return f"the value of {sources[value]}"
    if _URI_USERINFO.search(key):
        return "the credentials of a URI"
    return None


def redact_uri(uri: str) -> str:
    """``https://user:pass@host/x`` -> ``https://***@host/x``; other URIs unchanged."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return redact_text(uri)
    if "@" not in parts.netloc:
        return redact_text(uri)
    host = parts.netloc.rpartition("@")[2]
    return redact_text(urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}")))


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Replace URI credentials and secret values (default: those in the environment) in ``text``."""
    text = _URI_USERINFO.sub(f"://{REDACTED}@", text)
    for secret in secret_values() if secrets is None else secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_obj(obj: Any, extra_secrets: list[str] | None = None, *, keys: bool = True) -> Any:
    """:func:`redact_text` applied to every string of a JSON-like structure: its values, and its
    mapping keys too unless ``keys=False`` (what a key holds is checked with
    :func:`key_leaks_secret` instead)."""
    secrets = [*(extra_secrets or []), *secret_values()]
    return _redact(obj, secrets, keys)


def json_may_hold_secret(text: str, extra_secrets: list[str] | None = None) -> bool:
    """Whether JSON ``text`` (``json.dumps(..., ensure_ascii=False)``) holds a string that
    :func:`redact_obj` would change; False means the document can be written as it is.

    One scan of the text instead of a walk of every string: URI credentials need an ``@`` (JSON
    never escapes it), and a secret shows in the text as its JSON-escaped form.
    """
    if "@" in text:
        return True
    secrets = [*(extra_secrets or []), *secret_values()]
    return any(json.dumps(s, ensure_ascii=False)[1:-1] in text for s in secrets if s)


def _redact(obj: Any, secrets: list[str], keys: bool) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secrets) if _may_hold_secret(obj, secrets) else obj
    if isinstance(obj, dict):
        return {(_redact(k, secrets, keys) if keys else k): _redact(v, secrets, keys) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, secrets, keys) for v in obj]
    return obj


def _may_hold_secret(text: str, secrets: list[str]) -> bool:
    return "@" in text or any(s in text for s in secrets)
