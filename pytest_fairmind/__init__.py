"""pytest-fairmind: fairness testing of ML models as a first-class part of a pytest suite.

Importing this package is nearly free: its public names load on first use, so provider child
processes need not import pytest, and numpy is imported only when metrics are computed.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_fairmind.exceptions import FairmindWarning
    from pytest_fairmind.fixture import Fairmind
    from pytest_fairmind.metrics import FairnessResult, assess
    from pytest_fairmind.metrics.callables import MetricCallableError
    from pytest_fairmind.subgroup_scan import ScanResult, scan

__all__ = [
    "Fairmind",
    "FairmindWarning",
    "FairnessResult",
    "MetricCallableError",
    "ScanResult",
    "assess",
    "scan",
]
__version__ = "0.1.0"

_LAZY = {
    "Fairmind": "pytest_fairmind.fixture",
    "FairmindWarning": "pytest_fairmind.exceptions",
    "FairnessResult": "pytest_fairmind.metrics",
    "assess": "pytest_fairmind.metrics",
    "MetricCallableError": "pytest_fairmind.metrics.callables",
    "ScanResult": "pytest_fairmind.subgroup_scan",
    "scan": "pytest_fairmind.subgroup_scan",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_fairmind' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
