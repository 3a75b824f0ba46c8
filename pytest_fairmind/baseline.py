"""Baseline regression gating (being written)."""

from __future__ import annotations

from pathlib import Path

from pytest_fairmind.result import SessionResult


def apply_baseline(result: SessionResult, source: str, *, history_folder: Path, strict: bool) -> None:
    """Compare ``result`` with the baseline session named by ``source``."""
