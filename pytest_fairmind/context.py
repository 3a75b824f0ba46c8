"""Where a session ran: git state and CI job, for the report and provider tags.

Pure (no pytest import). Git is asked with a short timeout; no repository means ``None``.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from typing import Any

from pytest_fairmind.redact import redact_uri


def _git(args: list[str], cwd: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def git_info(cwd: str) -> dict[str, Any] | None:
    """``{commit, branch, dirty}`` of the repository holding ``cwd``, or None."""
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return None
    branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    return {
        "commit": commit,
        "branch": None if branch in (None, "HEAD") else branch,
        "dirty": bool(status),
    }


def ci_job_url(env: Mapping[str, str] | None = None) -> str | None:
    """The CI job's URL when the usual CI variables say where it runs."""
    env = os.environ if env is None else env
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com")
        return f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
    for name in ("CI_JOB_URL", "BUILD_URL", "CIRCLE_BUILD_URL", "BUILDKITE_BUILD_URL"):
        if env.get(name):
            return redact_uri(env[name])
    return None


def context_tags(*, pytest_version: str, plugin_version: str, git: dict[str, Any] | None) -> dict[str, str]:
    """Tags every provider run carries besides the ``fairmind.*`` ones (see docs/providers.md)."""
    tags = {
        "fairmind.version": plugin_version,
        "pytest.version": pytest_version,
        "python.version": platform.python_version(),
    }
    if git:
        tags["git.commit"] = git["commit"]
        if git.get("branch"):
            tags["git.branch"] = git["branch"]
        tags["git.dirty"] = str(git["dirty"]).lower()
    url = ci_job_url()
    if url:
        tags["ci.job_url"] = url
    return tags
