"""Keep secrets out of everything we print, save or send.

Secrets are credentials in URIs (``https://user:pass@host``) and the values of environment
variables whose names end in ``_TOKEN``, ``_KEY``, ``_PASSWORD``, ``_SECRET`` (``WANDB_API_KEY``,
``MLFLOW_TRACKING_TOKEN``...). Every string that reaches the terminal, the report, the history or
a provider's run goes through :func:`redact_text`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

_SECRET_ENV_SUFFIXES = ("_TOKEN", "_KEY", "_PASSWORD", "_SECRET", "_CREDENTIALS", "_PASS")
_SECRET_ENV_NAMES = ("WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")
# ://userinfo@ in free text (any scheme, or none: redacting more is safe). Anchored on the literal
# "://" so the scan is linear: a scheme group in front, ``[A-Za-z][A-Za-z0-9+.-]*://``, made the
# regex quadratic on long alphanumeric runs (a 1 MB param took an hour to redact).
_URI_USERINFO = re.compile(r"://(?P<userinfo>[^/\s@]+)@")
# Short values (e.g. "1", "true") would redact innocent text everywhere.
_MIN_SECRET_LENGTH = 4


def is_secret_env_name(name: str) -> bool:
    upper = name.upper()
    return upper in _SECRET_ENV_NAMES or upper.endswith(_SECRET_ENV_SUFFIXES)


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret values found in ``environ`` (default ``os.environ``), longest first."""
    env = os.environ if environ is None else environ
    values = {
        value for name, value in env.items() if is_secret_env_name(name) and len(value) >= _MIN_SECRET_LENGTH
    }
    for value in env.values():  # credentials inside URIs held by any variable
        for match in _URI_USERINFO.finditer(value):
            userinfo = match.group("userinfo")
            password = userinfo.partition(":")[2]
            for part in (userinfo, password):
                if len(part) >= _MIN_SECRET_LENGTH:
                    values.add(part)
    return sorted(values, key=len, reverse=True)


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


def redact_obj(obj: Any, extra_secrets: list[str] | None = None) -> Any:
    """:func:`redact_text` applied to every string (keys included) in a JSON-like structure."""
    secrets = [*(extra_secrets or []), *secret_values()]
    return _redact(obj, secrets)


def _redact(obj: Any, secrets: list[str]) -> Any:
    if isinstance(obj, str):
        return redact_text(obj, secrets) if _may_hold_secret(obj, secrets) else obj
    if isinstance(obj, dict):
        return {_redact(k, secrets): _redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_redact(v, secrets) for v in obj]
    return obj


def _may_hold_secret(text: str, secrets: list[str]) -> bool:
    return "@" in text or any(s in text for s in secrets)
